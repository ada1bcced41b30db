//! Retries and fallback before the first byte, the end of a stream after it (error event, no
//! `[DONE]`), timeouts, keep-alives, cancellation, and load.

use std::time::{Duration, Instant};

use prism_simulator::{Behavior, Provider, Reply};
use serde_json::json;

use crate::support::{Harness, Opts, Sse, Streamed, error_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_then_succeed_on_the_same_deployment() {
    let h = Harness::start().await;
    h.sim.push_behavior(Behavior::status(503));
    h.sim.push_behavior(Reply::text("second time lucky").into());
    let s = Streamed::read(h.chat("claude", true, json!({})).await).await;
    assert!(s.done, "{}", s.raw);
    assert_eq!(s.content(), "second time lucky");
    assert_eq!(s.header("x-prism-attempts"), Some("2"));
    assert_eq!(s.header("x-prism-provider"), Some("an"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let h = Harness::start().await;
    h.sim.push_behavior(Behavior::status_retry_after(429, 1));
    h.sim.push_behavior(Reply::text("patience").into());
    let started = Instant::now();
    let s = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert!(s.done);
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(s.header("x-prism-attempts"), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_then_falls_back_before_the_first_byte() {
    let h = Harness::start().await;
    // `fallback` = anthropic, then openai. Anthropic fails twice (both attempts), OpenAI answers.
    h.sim.push_behavior_for(Provider::Anthropic, Behavior::status(529));
    h.sim.push_behavior_for(Provider::Anthropic, Behavior::status(500));
    h.sim.push_behavior_for(Provider::OpenAi, Reply::text("from the fallback").into());
    let s = Streamed::read(h.chat("fallback", true, json!({})).await).await;
    assert!(s.done, "{}", s.raw);
    assert_eq!(s.content(), "from the fallback");
    assert_eq!(s.header("x-prism-attempts"), Some("3"));
    assert_eq!(s.header("x-prism-provider"), Some("oa"));
    assert_eq!(s.chunks[0]["model"], "fallback");
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("prism_fallbacks_total{model=\"fallback\"} 1"), "{metrics}");
    assert!(metrics.contains("prism_upstream_retries_total{provider=\"an\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_error_as_first_event_is_an_http_error_and_fails_over() {
    let h = Harness::start().await;
    // A 200 whose first event is `error` (and one whose error follows `message_start` alone):
    // nothing real reached the client, so it is a proper HTTP error and can fail over.
    for events in [0, 1] {
        for _ in 0..2 {
            h.sim.push_behavior_for(
                Provider::Anthropic,
                Behavior::ErrorMidstream { reply: Reply::text("never"), events },
            );
        }
        h.sim.push_behavior_for(Provider::OpenAi, Reply::text("rescued").into());
        let s = Streamed::read(h.chat("fallback", true, json!({})).await).await;
        assert!(s.done, "events={events}: {}", s.raw);
        assert_eq!(s.content(), "rescued");
        assert_eq!(s.header("x-prism-attempts"), Some("3"));
    }
    // Without a fallback the client gets the mapped status, not a 200.
    for _ in 0..2 {
        h.sim.push_behavior(Behavior::ErrorMidstream { reply: Reply::text("never"), events: 0 });
    }
    let (status, _, err) = error_body(h.chat("claude", true, json!({})).await).await;
    assert_eq!(status, 503, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retry_after_the_first_byte() {
    let h = Harness::start().await;
    let text = "one two three four five six seven eight";
    // Paced, so the first events reach the gateway before the cut (an abort may discard bytes
    // still in flight, and a failure before any content is rightly retried).
    let reply = Reply::text(text).delay(Duration::from_millis(10));
    let cases = [
        ("cut", Behavior::CutAfter { reply: reply.clone(), events: 5 }),
        ("early end", Behavior::EndAfter { reply: reply.clone(), events: 5 }),
        ("error event", Behavior::ErrorMidstream { reply, events: 5 }),
    ];
    for model in ["gpt", "claude", "gemini", "bedrock"] {
        for (name, behavior) in cases.clone() {
            let before = h.sim.requests();
            h.sim.push_behavior(behavior);
            let s = Streamed::read(h.chat(model, true, json!({})).await).await;
            assert_eq!(s.status, 200, "{model} {name}");
            assert!(!s.done, "{model} {name}: no [DONE] after a failure: {}", s.raw);
            let err = s
                .error()
                .unwrap_or_else(|| panic!("{model} {name}: ends with an error event: {}", s.raw));
            assert!(err["message"].is_string() && err["type"].is_string(), "{err}");
            assert!(
                !s.content().is_empty(),
                "{model} {name}: the first content reached the client"
            );
            assert!(text.starts_with(&s.content()), "{model} {name}");
            assert_eq!(
                s.finish_reasons(),
                Vec::<String>::new(),
                "{model} {name}: never a fake finish"
            );
            assert_eq!(s.header("x-prism-attempts"), Some("1"));
            assert_eq!(
                h.sim.requests(),
                before + 1,
                "{model} {name}: exactly one upstream request"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_drops_the_upstream_request() {
    let h = Harness::start().await;
    h.sim.push_behavior(Reply::with_n_deltas(200).delay(Duration::from_millis(20)).into());
    let mut resp = h.chat("claude", true, json!({})).await;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    assert_eq!(h.sim.open_connections(), 1);
    drop(resp);
    let started = Instant::now();
    assert!(
        h.sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await,
        "the upstream connection must close within 1 s of the client going away"
    );
    eprintln!("upstream closed {:?} after the client left", started.elapsed());
    // The stream is accounted as closed by the client.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("reason=\"client_closed\"} 1"), "{metrics}");
    assert!(metrics.contains("prism_active_streams 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_comments_then_idle_timeout() {
    let h = Harness::start_with(Opts { keepalive_ms: 60, idle_ms: 400, ..Opts::default() }).await;
    h.sim.push_behavior(Behavior::Stall {
        reply: Reply::text("hello there world, how are you"),
        events: 5,
    });
    let s = Streamed::read(h.chat("claude", true, json!({})).await).await;
    assert_eq!(s.status, 200);
    let comments = s.events.iter().filter(|e| matches!(e, Sse::Comment(_))).count();
    assert!(comments >= 3, "keep-alives while the upstream is silent: {}", s.raw);
    assert!(!s.done, "{}", s.raw);
    let err = s.error().unwrap();
    assert_eq!(err["type"], "timeout_error", "{err}");
    assert!(
        h.sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await,
        "the idle upstream is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_timeout_ends_a_long_stream() {
    let h =
        Harness::start_with(Opts { total_ms: 500, first_token_ms: 400, ..Opts::default() }).await;
    h.sim.push_behavior(Reply::with_n_deltas(100).delay(Duration::from_millis(20)).into());
    let started = Instant::now();
    let s = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(!s.done);
    assert!(!s.content().is_empty());
    assert_eq!(s.error().unwrap()["type"], "timeout_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_deadline_moves_on_to_the_next_deployment() {
    let h = Harness::start().await;
    // `ttft-fallback`: anthropic with a 200 ms first-token deadline, then openai.
    let slow_starts = [
        Behavior::Hang,
        Reply::text("late").headers_delay(Duration::from_millis(1000)).into(),
        Reply::text("late").first_delay(Duration::from_millis(1000)).into(),
    ];
    for slow in slow_starts {
        h.sim.push_behavior_for(Provider::Anthropic, slow);
        h.sim.push_behavior_for(Provider::OpenAi, Reply::text("on time").into());
        let started = Instant::now();
        let s = Streamed::read(h.chat("ttft-fallback", true, json!({})).await).await;
        assert!(s.done, "{}", s.raw);
        assert_eq!(s.content(), "on time");
        assert_eq!(s.header("x-prism-attempts"), Some("2"), "no retry of a late deployment");
        assert_eq!(s.header("x-prism-provider"), Some("oa"));
        assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_streams_get_exactly_their_content() {
    let h = Harness::start().await;
    let n = 200;
    let mut expected: Vec<String> =
        (0..n).map(|i| format!("stream {i} says w0 w1 w2 w3 w4 w5 w6 w7 w8 w9")).collect();
    for text in &expected {
        h.sim.push_behavior(Reply::text(text).delay(Duration::from_millis(2)).into());
    }
    let models = ["gpt", "claude", "gemini", "bedrock"];
    let requests = (0..n).map(|i| {
        let h = &h;
        async move { Streamed::read(h.chat(models[i % models.len()], true, json!({})).await).await }
    });
    let results = futures::future::join_all(requests).await;
    let mut got: Vec<String> = results
        .iter()
        .map(|s| {
            assert!(s.done, "{}", s.raw);
            assert_eq!(s.finish_reasons(), ["stop"]);
            s.content()
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(h.server.metrics().active_streams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_open_streams_finish() {
    let h = Harness::start().await;
    let reply = Reply::with_n_deltas(20).delay(Duration::from_millis(20));
    h.sim.push_behavior(reply.clone().into());
    let mut resp = h.chat("gpt", true, json!({})).await;
    assert_eq!(resp.status(), 200);
    let mut raw = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let addr = h.server.addr();
    h.server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // New connections are refused…
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener must be closed");
    // …while the open stream runs to its clean end.
    while let Some(chunk) = resp.chunk().await.unwrap() {
        raw.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = crate::support::parse_sse(&raw);
    assert_eq!(events.last(), Some(&Sse::Data("[DONE]".into())), "{raw}");
    let Harness { server, .. } = h;
    tokio::time::timeout(Duration::from_secs(2), server.shutdown()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_period_is_bounded() {
    let h = Harness::start_with(Opts { shutdown_grace_ms: 200, ..Opts::default() }).await;
    h.sim.push_behavior(Reply::with_n_deltas(500).delay(Duration::from_millis(20)).into());
    let mut resp = h.chat("gpt", true, json!({})).await;
    resp.chunk().await.unwrap().unwrap();
    let Harness { server, sim, .. } = h;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), server.shutdown()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
    // The cut stream ends without [DONE] for the client, and the upstream is dropped.
    let mut rest = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        rest.extend_from_slice(&chunk);
    }
    assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"));
    assert!(sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served() {
    let h = Harness::start().await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    h.sim.push_behavior(Reply::text("over h2").into());
    let resp = client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(crate::support::KEY)
        .json(&json!({"model":"gpt","stream":true,"messages":[{"role":"user","content":"x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let s = Streamed::read(resp).await;
    assert!(s.done);
    assert_eq!(s.content(), "over h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_before_the_first_token_drops_the_upstream_request() {
    let h = Harness::start().await;
    h.sim.push_behavior(Behavior::Hang);
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let req = client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(crate::support::KEY)
        .json(&json!({"model":"claude","stream":true,"messages":[{"role":"user","content":"x"}]}));
    assert!(req.send().await.unwrap_err().is_timeout());
    assert!(
        h.sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await,
        "the upstream request must be dropped with the client, not at the first-token deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_retried_then_fall_back() {
    let h = Harness::start().await;
    h.sim.push_behavior(Reply::text("the live one").into());
    let s = Streamed::read(h.chat("dead-then-gpt", true, json!({})).await).await;
    assert!(s.done, "{}", s.raw);
    assert_eq!(s.content(), "the live one");
    assert_eq!(
        s.header("x-prism-attempts"),
        Some("3"),
        "two attempts on the dead deployment, then the live one"
    );
    assert_eq!(s.header("x-prism-provider"), Some("oa"));
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("prism_upstream_errors_total{provider=\"dead\",kind=\"connect\"} 2"),
        "{metrics}"
    );
}

//! Every error status the gateway answers with, in the OpenAI error shape.

use prism_simulator::{Behavior, Provider, Reply};
use serde_json::json;

use crate::support::{Harness, KEY, LIMITED_KEY, Opts, error_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400_naming_the_field() {
    let h = Harness::start().await;
    let post = |body: &'static str| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: [(&str, Option<&str>); 7] = [
        ("{not json", None),
        (r#"{"model":"gpt"}"#, Some("messages")),
        (r#"{"model":"gpt","messages":[]}"#, Some("messages")),
        (r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"n":0}"#, Some("n")),
        (r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"n":200}"#, Some("n")),
        (
            r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"temperature":3}"#,
            Some("temperature"),
        ),
        (
            r#"{"model":"gpt","messages":[{"role":"user","content":"x"}],"max_tokens":"many"}"#,
            Some("max_tokens"),
        ),
    ];
    for (body, param) in cases {
        let (status, _, err) = error_body(post(body).await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert_eq!(err["error"]["param"].as_str(), param, "{body}: {err}");
    }
    assert_eq!(h.sim.requests(), 0, "invalid requests never go upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_errors() {
    let h = Harness::start().await;
    let url = h.url("/v1/chat/completions");
    let body = json!({"model":"gpt","messages":[{"role":"user","content":"x"}]});
    let (status, headers, err) =
        error_body(h.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(err["error"]["code"], "invalid_api_key");
    let resp =
        h.client.post(&url).bearer_auth("sk-prism-wrong-key").json(&body).send().await.unwrap();
    assert_eq!(error_body(resp).await.0, 401);
    let resp = h
        .client
        .post(&url)
        .header("authorization", format!("Basic {KEY}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(resp).await.0, 401);
    // A key limited to `gpt` may not use `claude`.
    let (status, _, err) =
        error_body(h.chat_with_key(LIMITED_KEY, "claude", true, json!({})).await).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"]["type"], "permission_error");
    assert_eq!(err["error"]["param"], "model");
    // …but may use `gpt`.
    h.sim.push_behavior(Reply::text("ok").into());
    assert_eq!(h.chat_with_key(LIMITED_KEY, "gpt", false, json!({})).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_route_and_method() {
    let h = Harness::start().await;
    let (status, _, err) = error_body(h.chat("no-such-model", true, json!({})).await).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "model_not_found");
    let (status, _, _) = error_body(h.client.get(h.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, headers, _) =
        error_body(h.client.get(h.url("/v1/chat/completions")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_is_413() {
    let h = Harness::start_with(Opts { max_body_bytes: 4096, ..Opts::default() }).await;
    let big = "x".repeat(5000);
    let (status, _, err) = error_body(h.chat("gpt", false, json!({"user": big})).await).await;
    assert_eq!(status, 413);
    assert_eq!(err["error"]["code"], "request_too_large");
    // Without a content-length (chunked upload) the limit holds too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 3000]), Ok(vec![b' '; 3000])];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let resp = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(resp).await.0, 413);
    assert_eq!(h.sim.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_statuses_are_mapped_after_retries() {
    let h = Harness::start().await;
    // 429 with retry-after: retried once (max_attempts = 2), then passed on with retry-after.
    for _ in 0..2 {
        h.sim.push_behavior(Behavior::status_retry_after(429, 1));
    }
    let resp = h.chat("claude", true, json!({})).await;
    assert_eq!(resp.headers()["x-prism-attempts"], "2");
    let (status, headers, err) = error_body(resp).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(err["error"]["type"], "rate_limit_error", "{err}");
    // 500, 503, and Anthropic's 529 (overloaded → 503).
    for (model, upstream, expected) in
        [("claude", 500, 500), ("claude", 529, 503), ("gpt", 503, 503), ("gpt", 500, 500)]
    {
        for _ in 0..2 {
            h.sim.push_behavior(Behavior::status(upstream));
        }
        let (status, _, _) = error_body(h.chat(model, false, json!({})).await).await;
        assert_eq!(status, expected, "{model}: upstream {upstream}");
    }
    // A client error upstream is not retried.
    let before = h.sim.requests();
    h.sim.push_behavior(Behavior::status(400));
    let resp = h.chat("claude", true, json!({})).await;
    assert_eq!(resp.headers()["x-prism-attempts"], "1");
    assert_eq!(error_body(resp).await.0, 400);
    assert_eq!(h.sim.requests(), before + 1);
    assert_eq!(h.sim.queued(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_protocol_error_is_502() {
    let h = Harness::start().await;
    for _ in 0..2 {
        h.sim.push_behavior(Behavior::replay("data: {this is not json\n\n", "text/event-stream"));
    }
    let (status, _, err) = error_body(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(status, 502, "{err}");
    for _ in 0..2 {
        h.sim.push_behavior(Behavior::replay("<html>not json</html>", "text/html"));
    }
    let (status, _, _) = error_body(h.chat("gpt", false, json!({})).await).await;
    assert_eq!(status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_is_504() {
    let h =
        Harness::start_with(Opts { first_token_ms: 200, max_attempts: 1, ..Opts::default() }).await;
    h.sim.push_behavior(Behavior::Hang);
    let started = std::time::Instant::now();
    let (status, _, err) = error_body(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(status, 504);
    assert_eq!(err["error"]["type"], "timeout_error");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The total timeout bounds non-streaming requests.
    let h = Harness::start_with(Opts {
        first_token_ms: 200,
        total_ms: 300,
        max_attempts: 1,
        ..Opts::default()
    })
    .await;
    h.sim.push_behavior(Behavior::Hang);
    let (status, _, _) = error_body(h.chat("gpt", false, json!({})).await).await;
    assert_eq!(status, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_auth_failure_is_502_and_hides_upstream_text() {
    let h = Harness::start().await;
    h.sim.push_behavior_for(
        Provider::OpenAi,
        Behavior::Status {
            status: 401,
            body: r#"{"error":{"message":"Incorrect API key provided: sk-upstream-openai-secret","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
            retry_after: None,
        },
    );
    let resp = h.chat("gpt", true, json!({})).await;
    // The same credentials would fail again: no retry on this deployment.
    assert_eq!(resp.headers()["x-prism-attempts"], "1");
    let (status, _, err) = error_body(resp).await;
    assert_eq!(status, 502);
    assert_eq!(err["error"]["code"], "upstream_authentication_failed");
    assert_eq!(h.sim.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_503() {
    let h = Harness::start_with(Opts { max_concurrent_requests: 1, ..Opts::default() }).await;
    h.sim.push_behavior(
        Reply::text("slow one").headers_delay(std::time::Duration::from_millis(400)).into(),
    );
    let slow = async { crate::support::Streamed::read(h.chat("gpt", true, json!({})).await).await };
    let rejected = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        error_body(h.chat("gpt", true, json!({})).await).await
    };
    let (slow, (status, headers, err)) = tokio::join!(slow, rejected);
    assert_eq!(status, 503, "{err}");
    assert_eq!(headers["retry-after"], "1");
    assert!(slow.done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_secrets_are_scrubbed_from_midstream_errors() {
    let h = Harness::start().await;
    let stream = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"partial\"},\"finish_reason\":null}]}\n\n",
        "data: {\"error\":{\"message\":\"key sk-upstream-openai-secret was revoked\",\"type\":\"server_error\",",
        "\"param\":null,\"code\":null}}\n\n",
    );
    // Paced: an error in the same read as the first content would still be retried (nothing
    // had reached the client).
    let delay = std::time::Duration::from_millis(20);
    h.sim.push_behavior(Behavior::Replay {
        body: stream.into(),
        content_type: "text/event-stream",
        delay,
    });
    let s = crate::support::Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(s.status, 200);
    assert!(!s.done, "{}", s.raw);
    assert_eq!(s.content(), "partial");
    assert_eq!(s.error().unwrap()["message"], "key [redacted] was revoked", "{}", s.raw);
    assert!(!s.raw.contains("sk-upstream-openai-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502() {
    let config = prism_server::Config::from_toml(
        &crate::support::config_toml("http://127.0.0.1:1", &Opts::default()),
        &|_| None,
    )
    .unwrap();
    let h = Harness::with_config(prism_simulator::Simulator::start().await.unwrap(), config).await;
    let resp = h.chat("gpt", true, json!({})).await;
    assert_eq!(resp.headers()["x-prism-attempts"], "2");
    let (status, _, err) = error_body(resp).await;
    assert_eq!(status, 502);
    assert_eq!(err["error"]["code"], "upstream_connect_failed");
}

//! Abusive clients: slowloris headers, trickled bodies, clients that never read, mass
//! disconnects, oversized and malformed requests, pipelining, random keys, and load shedding.
//! Each gets its status in the OpenAI error shape (or, where no request was ever complete, a
//! closed connection), holds no upstream connection, and leaves the gateway serving others.

use std::time::{Duration, Instant};

use prism_server::Config;
use prism_simulator::{Reply, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{self, Harness, KEY, LIMITED_KEY, Opts, Streamed};

/// Connection timeouts short enough for tests; `extra_limits` lands in `[limits]`.
fn harness_config(sim: &Simulator, opts: &Opts, extra_limits: &str) -> Config {
    let text = support::config_toml(&sim.base_url(), opts)
        .replace(
            "[timeouts]\n",
            "[timeouts]\nheader_read_ms = 400\nrequest_body_ms = 400\nclient_write_ms = 400\n",
        )
        .replace("[limits]\n", &format!("[limits]\n{extra_limits}\n"));
    Config::from_toml(&text, &|_| None).unwrap()
}

async fn start(opts: Opts, extra_limits: &str) -> Harness {
    let sim = Simulator::start().await.unwrap();
    let config = harness_config(&sim, &opts, extra_limits);
    Harness::with_config(sim, config).await
}

fn addr(h: &Harness) -> String {
    h.server.base_url().trim_start_matches("http://").to_owned()
}

/// A well-behaved streamed request; returns how long it took.
async fn good_request(h: &Harness) -> Duration {
    let started = Instant::now();
    let s = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(s.status, 200);
    assert!(s.done, "a well-behaved stream ends with [DONE]: {}", s.raw);
    started.elapsed()
}

/// Reads until the peer closes the connection (or `within` passes: then `None`).
async fn read_to_close(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.ok().map(|()| out)
}

fn chat_head(body_len: usize) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: prism\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
    )
}

/// The status and the JSON body of the one raw HTTP/1.1 response in `raw`.
fn raw_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn slowloris_headers_are_cut_at_the_header_read_timeout_while_others_are_served() {
    let h = start(Opts::default(), "").await;
    let head = chat_head(2);
    let mut lorises = Vec::new();
    for _ in 0..50 {
        lorises.push(TcpStream::connect(addr(&h)).await.unwrap());
    }
    let started = Instant::now();
    let drip = async {
        // One byte per connection every 50 ms: never a whole header section in time.
        for byte in head.as_bytes().iter().take(40) {
            for conn in &mut lorises {
                let _ = conn.write_all(&[*byte]).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let served = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            slowest = slowest.max(good_request(&h).await);
        }
        slowest
    };
    let ((), slowest) = tokio::join!(drip, served);
    assert!(slowest < Duration::from_secs(2), "a good request took {slowest:?} during slowloris");
    for conn in &mut lorises {
        let answer = read_to_close(conn, Duration::from_secs(3)).await;
        let answer = answer.expect("a slowloris connection is closed");
        // hyper closes without an answer, or with a bare 408: never a served request.
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    // Closed at the header deadline (400 ms after the first byte), not at the drip's end.
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(h.sim.requests(), 10, "no slowloris request reached an upstream");
}

#[tokio::test]
async fn a_trickled_body_gets_a_408_in_the_openai_shape() {
    let h = start(Opts::default(), "").await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
    conn.write_all(chat_head(body.len()).as_bytes()).await.unwrap();
    let started = Instant::now();
    for byte in body.as_bytes().iter().take(12) {
        if conn.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raw = read_to_close(&mut conn, Duration::from_secs(3)).await.expect("the gateway answers");
    let (status, body) = raw_response(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(body["error"]["message"].is_string());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(h.sim.requests(), 0);
}

#[tokio::test]
async fn a_client_that_never_reads_a_fast_stream_is_cut_and_its_upstream_closed() {
    let h = start(Opts::default(), "").await;
    // About 20 MB of events: far more than the socket buffers on both sides hold.
    let deltas: Vec<String> = (0..40_000).map(|i| format!("{i:0>400} ")).collect();
    let reply = Reply { deltas, prompt_tokens: 10, completion_tokens: 40_000, ..Reply::default() };
    h.sim.push_behavior(reply.into());
    let body = json!({"model": "gpt", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
    conn.write_all(chat_head(body.len()).as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    // The stream starts, then the client reads nothing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sim.requests() == 0 {
        assert!(Instant::now() < deadline, "the stream never reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let closed = h.sim.wait_open_connections_at_most(0, Duration::from_secs(5)).await;
    assert!(closed, "the upstream connection outlived a client that stopped reading");
    assert_eq!(h.sim.requests(), 1);
    // The gateway closed the client's connection too: what it had sent, then the end.
    let got = read_to_close(&mut conn, Duration::from_secs(5)).await.expect("closed");
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert!(got.len() < 20_000_000, "the gateway must not buffer the whole answer");
    good_request(&h).await;
}

#[tokio::test]
async fn a_thousand_clients_leaving_mid_stream_at_once_leave_no_upstream_connection() {
    // 20 s per stream: none may finish (and pool its upstream connection) before the drop, however
    // slowly the 1,000 streams open on a loaded machine.
    let paced = Reply::with_n_deltas(1000).delay(Duration::from_millis(20));
    let sim = Simulator::start_with(
        prism_simulator::SimConfig::default().with_default(paced).with_history(0),
    )
    .await
    .unwrap();
    let opts = Opts { total_ms: 60_000, ..Opts::default() };
    let config = harness_config(&sim, &opts, "");
    let h = Harness::with_config(sim, config).await;
    let mut streams = Vec::new();
    for chunk in 0..10 {
        let batch = (0..100).map(|_| async {
            let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
            let body = json!({"model": "gpt", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
            conn.write_all(chat_head(body.len()).as_bytes()).await.unwrap();
            conn.write_all(body.as_bytes()).await.unwrap();
            let mut buf = [0u8; 4096];
            // The head and the first events: the stream is live.
            let n = conn.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "batch {chunk}");
            conn
        });
        streams.extend(futures::future::join_all(batch).await);
    }
    assert_eq!(streams.len(), 1000);
    assert!(h.sim.open_connections() >= 1000, "every stream holds its upstream");
    drop(streams);
    let closed = h.sim.wait_open_connections_at_most(0, Duration::from_secs(10)).await;
    assert!(closed, "{} upstream connections left open", h.sim.open_connections());
    h.sim.push_behavior(Reply::text("still serving").into());
    good_request(&h).await;
}

#[tokio::test]
async fn oversized_uris_and_headers_get_414_and_431_in_the_openai_shape() {
    let h = start(Opts::default(), "").await;
    let long_path = format!("/v1/chat/completions?{}", "a".repeat(10_000));
    let resp = h.client.post(h.url(&long_path)).bearer_auth(KEY).send().await.unwrap();
    let (status, _, body) = support::error_body(resp).await;
    assert_eq!((status, body["error"]["code"].as_str()), (414, Some("uri_too_long")));

    let resp = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-padding", "p".repeat(70_000))
        .send()
        .await
        .unwrap();
    let (status, _, body) = support::error_body(resp).await;
    assert_eq!((status, body["error"]["code"].as_str()), (431, Some("headers_too_large")));

    // Past hyper's own read buffer the connection gets a bare 431 and is closed.
    let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
    let head = format!("GET /health HTTP/1.1\r\nhost: p\r\nx-big: {}\r\n\r\n", "b".repeat(1 << 20));
    let _ = conn.write_all(head.as_bytes()).await;
    let raw = read_to_close(&mut conn, Duration::from_secs(3)).await.expect("closed");
    assert!(
        raw.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    assert_eq!(h.sim.requests(), 0);
    good_request(&h).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let h = start(Opts::default(), "").await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let mut wire = String::new();
    wire.push_str("GET /health HTTP/1.1\r\nhost: p\r\n\r\n");
    wire.push_str(&chat_head(body.len()));
    wire.push_str(&body);
    wire.push_str("GET /v1/models HTTP/1.1\r\nhost: p\r\n\r\n");
    wire.push_str("GET /nope HTTP/1.1\r\nhost: p\r\nconnection: close\r\n\r\n");
    let mut conn = TcpStream::connect(addr(&h)).await.unwrap();
    conn.write_all(wire.as_bytes()).await.unwrap();
    let raw = read_to_close(&mut conn, Duration::from_secs(5)).await.expect("closed at the end");
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> =
        text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "200", "401", "404"], "{text}");
    assert!(text.contains("\"chat.completion\""), "the chat answer is the second: {text}");
}

/// Every malformed body is a 400 in the OpenAI shape, never a 5xx, never an upstream call.
#[tokio::test]
async fn malformed_bodies_get_400s_and_never_reach_an_upstream() {
    let h = start(Opts::default(), "").await;
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let msgs = r#"[{"role":"user","content":"hi"}]"#;
    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        (
            "invalid utf-8".into(),
            b"{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                .to_vec(),
        ),
        (
            "deep array".into(),
            format!(r#"{{"model":"gpt","messages":{msgs},"metadata":{deep}}}"#).into_bytes(),
        ),
        (
            "deep content".into(),
            format!(r#"{{"model":"gpt","messages":[{{"role":"user","content":{deep}}}]}}"#)
                .into_bytes(),
        ),
        (
            "deep object".into(),
            format!(r#"{{"model":"gpt","messages":{msgs},"tools":{deep_object}}}"#).into_bytes(),
        ),
        (
            "huge max_tokens".into(),
            format!(r#"{{"model":"gpt","messages":{msgs},"max_tokens":1e400}}"#).into_bytes(),
        ),
        (
            "u64 overflow".into(),
            format!(r#"{{"model":"gpt","messages":{msgs},"max_tokens":18446744073709551616}}"#)
                .into_bytes(),
        ),
        (
            "huge temperature".into(),
            format!(r#"{{"model":"gpt","messages":{msgs},"temperature":1e308}}"#).into_bytes(),
        ),
        (
            "duplicate keys".into(),
            format!(r#"{{"model":"gpt","model":"claude","messages":{msgs}}}"#).into_bytes(),
        ),
        ("not json".into(), b"model=gpt".to_vec()),
        ("empty".into(), Vec::new()),
        ("a number".into(), b"12".to_vec()),
        ("truncated".into(), br#"{"model":"gpt","messages":[{"role":"us"#.to_vec()),
    ];
    // A wrong type for every field.
    let wrong: [(&str, Value); 17] = [
        ("model", json!(7)),
        ("messages", json!("hi")),
        ("stream", json!("yes")),
        ("temperature", json!("hot")),
        ("top_p", json!([1])),
        ("max_tokens", json!("many")),
        ("max_completion_tokens", json!(-5)),
        ("n", json!({})),
        ("stop", json!(5)),
        ("tools", json!("all")),
        ("tool_choice", json!(3)),
        ("stream_options", json!("usage")),
        ("response_format", json!(1)),
        ("seed", json!("s")),
        ("presence_penalty", json!("p")),
        ("frequency_penalty", json!(true)),
        ("user", json!(["u"])),
    ];
    for (field, value) in wrong {
        let mut body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
        body[field] = value;
        bodies.push((format!("wrong type for {field}"), body.to_string().into_bytes()));
    }
    for (message_field, value) in
        [("role", json!(1)), ("content", json!(2)), ("role", json!("wizard"))]
    {
        let mut message = json!({"role": "user", "content": "hi"});
        message[message_field] = value;
        let body = json!({"model": "gpt", "messages": [message]});
        bodies.push((format!("wrong message {message_field}"), body.to_string().into_bytes()));
    }
    for (what, body) in bodies {
        let resp = h
            .client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, err) = support::error_body(resp).await;
        assert_eq!(status, 400, "{what}: {err}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{what}: {err}");
    }
    assert_eq!(h.sim.requests(), 0);
    good_request(&h).await;
}

#[tokio::test]
async fn a_thousand_random_keys_get_401s_and_good_clients_keep_their_latency() {
    let h = start(Opts::default(), "").await;
    let baseline = {
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            slowest = slowest.max(good_request(&h).await);
        }
        slowest
    };
    let attack = async {
        let mut statuses = Vec::new();
        for round in 0..20 {
            let batch = (0..50).map(|i| {
                let key = format!("sk-{}-{round}-{i}", uuid_like(round * 50 + i));
                let req = h.client.post(h.url("/v1/chat/completions")).bearer_auth(key).json(
                    &json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}),
                );
                async move { support::error_body(req.send().await.unwrap()).await }
            });
            for (status, _, body) in futures::future::join_all(batch).await {
                assert_eq!(body["error"]["code"], "invalid_api_key");
                statuses.push(status);
            }
        }
        statuses
    };
    let served = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            slowest = slowest.max(good_request(&h).await);
        }
        slowest
    };
    let (statuses, slowest) = tokio::join!(attack, served);
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s == 401));
    // Generous: the point is that good clients are not starved, not a benchmark.
    assert!(
        slowest < baseline * 20 + Duration::from_millis(500),
        "good requests took up to {slowest:?} during the attack (baseline {baseline:?})"
    );
    assert_eq!(h.sim.requests(), 25, "no random key reached an upstream");
}

fn uuid_like(n: usize) -> String {
    format!("{:016x}", (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[tokio::test]
async fn past_max_concurrent_requests_new_requests_get_503_at_once_and_admitted_streams_finish() {
    let opts = Opts { max_concurrent_requests: 20, ..Opts::default() };
    let h = start(opts, "").await;
    let paced = Reply::with_n_deltas(40).delay(Duration::from_millis(25));
    for _ in 0..20 {
        h.sim.push_behavior(paced.clone().into());
    }
    let admitted: Vec<_> =
        futures::future::join_all((0..20).map(|_| h.chat("gpt", true, json!({})))).await;
    assert!(admitted.iter().all(|r| r.status() == 200));
    let mut refusal_ms = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let resp = h.chat("gpt", true, json!({})).await;
        let (status, headers, body) = support::error_body(resp).await;
        refusal_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], "overloaded");
        assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    }
    refusal_ms.sort_by(f64::total_cmp);
    let p99 = refusal_ms[refusal_ms.len() * 99 / 100 - 1];
    eprintln!("load shedding: 503 refusal p50 {:.2} ms, p99 {p99:.2} ms", refusal_ms[100]);
    for resp in admitted {
        let s = Streamed::read(resp).await;
        assert!(s.done, "an admitted stream is untouched by shedding: {}", s.raw);
        assert_eq!(s.content(), paced.text_content());
    }
    assert_eq!(h.sim.requests(), 20);
    good_request(&h).await;
}

#[tokio::test]
async fn one_key_at_its_concurrency_cap_gets_429s_while_other_keys_are_admitted() {
    let h = start(Opts::default(), "max_concurrent_per_key = 3").await;
    let paced = Reply::with_n_deltas(20).delay(Duration::from_millis(25));
    for _ in 0..4 {
        h.sim.push_behavior(paced.clone().into());
    }
    let held: Vec<_> =
        futures::future::join_all((0..3).map(|_| h.chat("gpt", true, json!({})))).await;
    assert!(held.iter().all(|r| r.status() == 200));
    let (status, headers, body) = support::error_body(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("3 requests in flight"), "{body}");
    assert!(headers.get("retry-after").is_some());
    // Another key still gets in.
    let other = Streamed::read(h.chat_with_key(LIMITED_KEY, "gpt", true, json!({})).await).await;
    assert!(other.done);
    for resp in held {
        assert!(Streamed::read(resp).await.done);
    }
    // The slots came back with the streams.
    good_request(&h).await;
}

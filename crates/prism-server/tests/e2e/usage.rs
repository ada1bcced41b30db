//! The usage ledger in-process: limits refuse in each client protocol's own shape with OpenAI's
//! rate headers, a concurrency slot is held for exactly the life of a stream, every request
//! leaves one usage record (JSON lines here) that survives shutdown, and `/v1/usage` is for
//! admin keys only.

use std::time::Duration;

use prism_server::Config;
use prism_simulator::{Behavior, Reply, Simulator};
use serde_json::{Value, json};

use crate::support::{Harness, KEY, Opts, Streamed, client, config_toml, error_body};

const METERED: &str = "sk-prism-test-metered";
const OPS: &str = "sk-prism-test-ops-admin";

/// The standard test config plus a metered key (`limits`), an admin key and a JSON-lines sink.
async fn harness(limits: &str, jsonl: &std::path::Path) -> Harness {
    let sim = Simulator::start().await.unwrap();
    let mut toml = config_toml(&sim.base_url(), &Opts::default());
    toml.push_str(&format!(
        r#"
[[keys]]
name = "metered"
key = "{METERED}"
limits = {limits}

[[keys]]
name = "ops"
key = "{OPS}"
admin = true

[usage.jsonl]
path = "{}"
"#,
        jsonl.display()
    ));
    let config = Config::from_toml(&toml, &|_| None).unwrap();
    Harness::with_config(sim, config).await
}

fn temp_jsonl(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("prism-e2e-{}-{name}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

async fn post(h: &Harness, path: &str, key: &str, body: Value) -> reqwest::Response {
    let req = h.client.post(h.url(path)).json(&body);
    let req = if path.starts_with("/v1/messages") {
        req.header("x-api-key", key).header("anthropic-version", "2023-06-01")
    } else {
        req.bearer_auth(key)
    };
    req.send().await.unwrap()
}

fn header<'r>(resp: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn limits_refuse_in_each_protocols_shape_with_openai_rate_headers() {
    let jsonl = temp_jsonl("shapes");
    let h = harness("{ rpm = 3, tpm = 500 }", &jsonl).await;
    let hi = json!([{"role": "user", "content": "hi"}]);

    // A request that could use more than the limit allows never fits: no retry-after.
    let resp = post(
        &h,
        "/v1/chat/completions",
        METERED,
        json!({"model": "gpt", "messages": hi, "max_tokens": 600}),
    )
    .await;
    assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), Some("500"));
    let (status, headers, body) = error_body(resp).await;
    assert_eq!(status, 429);
    assert!(!headers.contains_key("retry-after"));
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "tokens", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("lower max_tokens"), "{body}");

    // The same in the Messages and Responses shapes.
    let resp = post(
        &h,
        "/v1/messages",
        METERED,
        json!({"model": "claude", "messages": hi, "max_tokens": 600}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    let resp = post(
        &h,
        "/v1/responses",
        METERED,
        json!({"model": "gpt", "input": "hi", "max_output_tokens": 600}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");

    // Admitted requests carry the figures after their own reservation (estimate 8 + 100)…
    let resp = post(
        &h,
        "/v1/chat/completions",
        METERED,
        json!({"model": "gpt", "messages": hi, "max_tokens": 100}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-limit-requests"), Some("3"));
    // Refused requests counted nothing (a plan is all or nothing).
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), Some("2"));
    assert_eq!(header(&resp, "x-ratelimit-remaining-tokens"), Some("392"));
    assert!(header(&resp, "x-ratelimit-reset-tokens").unwrap().ends_with('s'));
    let cost: f64 = header(&resp, "x-prism-cost").unwrap().parse().unwrap();
    assert!(cost > 0.0, "gpt-4o-mini has a shipped price");
    resp.bytes().await.unwrap();

    // …and past the requests limit the refusal says when to come back.
    for _ in 0..2 {
        let resp = post(
            &h,
            "/v1/chat/completions",
            METERED,
            json!({"model": "gpt", "messages": hi, "max_tokens": 10}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let resp = post(
        &h,
        "/v1/chat/completions",
        METERED,
        json!({"model": "gpt", "messages": hi, "max_tokens": 10}),
    )
    .await;
    let (status, headers, body) = error_body(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "requests", "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");

    // Keys without limits get no rate headers.
    let resp = h.chat("gpt", false, json!({})).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "x-ratelimit-limit-requests").is_none());
}

#[tokio::test]
async fn a_concurrency_slot_is_held_for_the_life_of_a_stream() {
    let jsonl = temp_jsonl("concurrency");
    let h = harness("{ concurrent = 1 }", &jsonl).await;
    // A stream that stalls after two events holds the slot.
    h.sim.push_behavior(Behavior::Stall { reply: Reply::text("one two three four"), events: 2 });
    let mut held = h.chat_with_key(METERED, "gpt", true, json!({})).await;
    assert_eq!(held.status(), 200);
    held.chunk().await.unwrap().unwrap();
    let resp = h.chat_with_key(METERED, "gpt", false, json!({})).await;
    let (status, headers, body) = error_body(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(headers["retry-after"], "1");
    // The client leaves: the stream ends and frees the slot.
    drop(held);
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let resp = h.chat_with_key(METERED, "gpt", true, json!({})).await;
        if resp.status() == 200 {
            let streamed = Streamed::read(resp).await;
            assert!(streamed.done, "{}", streamed.raw);
            freed = true;
            break;
        }
        resp.bytes().await.unwrap();
    }
    assert!(freed, "the slot must be released when the client leaves");
    // A stream that ran to its end released it too.
    let resp = h.chat_with_key(METERED, "gpt", false, json!({})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn every_request_leaves_one_record_written_out_at_shutdown() {
    let jsonl = temp_jsonl("records");
    let h = harness("{ rpm = 100 }", &jsonl).await;
    let mut ids = Vec::new();
    let mut id_of =
        |resp: &reqwest::Response| ids.push(header(resp, "x-request-id").unwrap().to_owned());

    let resp = h
        .chat_with_key(METERED, "gemini", true, json!({"stream_options": {"include_usage": true}}))
        .await;
    id_of(&resp);
    assert!(Streamed::read(resp).await.done);
    let resp = post(&h, "/v1/messages", METERED, json!({"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})).await;
    id_of(&resp);
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    h.sim.push_behavior(Behavior::status(500));
    h.sim.push_behavior(Behavior::status(500));
    let resp = h.chat_with_key(METERED, "gpt", false, json!({})).await;
    id_of(&resp);
    assert_eq!(resp.status(), 500);
    // The client leaves a stream after its first bytes.
    h.sim
        .push_behavior(Behavior::Stall { reply: Reply::text("alpha beta gamma delta"), events: 3 });
    let mut left = h.chat_with_key(METERED, "gpt", true, json!({})).await;
    id_of(&left);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("alpha") {
        seen.extend_from_slice(&left.chunk().await.unwrap().unwrap());
    }
    drop(left);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The report is for admins only; it already has the records (in memory).
    let refused = h.client.get(h.url("/v1/usage")).bearer_auth(METERED).send().await.unwrap();
    let (status, _, body) = error_body(refused).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "admin_key_required");
    let report: Value = client()
        .get(h.url("/v1/usage"))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["source"], "memory", "{report}");
    let metered: u64 = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key"] == "metered")
        .map(|r| r["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(metered, 4, "{report}");

    h.server.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert!(!text.contains(METERED) && !text.contains(KEY), "keys never reach the records");
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let record = |id: &str| -> &Value {
        let all: Vec<&Value> = records.iter().filter(|r| r["request_id"] == id).collect();
        assert_eq!(all.len(), 1, "one record per request: {id} in {text}");
        all[0]
    };
    let stream = record(&ids[0]);
    assert_eq!(
        (stream["outcome"].as_str(), stream["protocol"].as_str()),
        (Some("completed"), Some("chat_completions"))
    );
    assert_eq!(stream["estimated"], false);
    assert!(stream["tokens"]["output"].as_u64().unwrap() > 0, "{stream}");
    assert_eq!(stream["deployment"], "gemini-2.5-flash");
    assert!(stream["cost_usd"].as_f64().unwrap() > 0.0 && stream["ttft_ms"].is_u64(), "{stream}");
    // The Messages answer took the same-protocol lane; its usage is read from the native body.
    let native = record(&ids[1]);
    assert_eq!(native["protocol"], "messages");
    assert!(
        native["tokens"]["input"].as_u64().unwrap() > 0
            && native["tokens"]["output"].as_u64().unwrap() > 0,
        "{native}"
    );
    let failed = record(&ids[2]);
    assert_eq!(
        (failed["outcome"].as_str(), failed["status"].as_u64()),
        (Some("upstream_error"), Some(500))
    );
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_eq!(failed["cost_usd"], 0.0);
    let gone = record(&ids[3]);
    assert_eq!(gone["outcome"], "client_gone", "{gone}");
    assert_eq!(gone["estimated"], true, "{gone}");
    let out = gone["tokens"]["output"].as_u64().unwrap();
    assert!((1..10).contains(&out), "billed for what was received: {gone}");
    let _ = std::fs::remove_file(&jsonl);
}

//! Streaming and non-streaming through every provider's native wire format, usage policy, and
//! the demo configuration.

use prism_server::{Config, EmbeddedOptions};
use prism_simulator::{Behavior, Reply, Simulator};
use serde_json::{Value, json};

use crate::support::{Harness, Opts, Streamed};

/// Public model → the simulator route the gateway must have called.
const MODELS: [(&str, &str); 6] = [
    ("gpt", "/v1/chat/completions"),
    ("claude", "/v1/messages"),
    ("gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
    (
        "vertex",
        "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
    ),
    ("bedrock", "/model/anthropic.claude-sonnet-4-5-v1%3A0/converse-stream"),
    ("bedrock-invoke", "/model/anthropic.claude-sonnet-4-5-v1%3A0/invoke-with-response-stream"),
];

fn reply() -> Reply {
    Reply::text("Hello from the simulated upstream, in several words.").usage(11, 9)
}

/// Checks the invariants of a clean translated stream and returns it.
fn check_clean_stream(s: &Streamed, model: &str) {
    assert_eq!(s.status, 200, "{model}: {}", s.raw);
    assert!(s.done, "{model}: a clean stream ends with [DONE]: {}", s.raw);
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    assert_eq!(s.header("cache-control"), Some("no-cache"));
    assert_eq!(s.header("x-accel-buffering"), Some("no"));
    assert!(s.header("x-request-id").is_some_and(|v| v.starts_with("req_")));
    assert_eq!(s.header("x-prism-attempts"), Some("1"));
    let first = &s.chunks[0];
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant", "{model}: role first: {}", s.raw);
    let id = first["id"].as_str().unwrap();
    let created = &first["created"];
    for c in &s.chunks {
        assert_eq!(c["id"], id, "{model}: one id per stream");
        assert_eq!(&c["created"], created);
        assert_eq!(c["model"], model, "{model}: the public model name on every chunk");
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    assert_eq!(s.finish_reasons(), ["stop"], "{model}: {}", s.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_through_every_provider() {
    let h = Harness::start().await;
    for (model, path) in MODELS {
        h.sim.push_behavior(reply().into());
        let s = Streamed::read(h.chat(model, true, json!({})).await).await;
        check_clean_stream(&s, model);
        assert_eq!(s.content(), reply().text_content(), "{model}: {}", s.raw);
        let provider = s.header("x-prism-provider").unwrap();
        assert_eq!(
            provider,
            match model {
                "gpt" => "oa",
                "claude" => "an",
                "gemini" => "ge",
                "vertex" => "vx",
                _ => "br",
            }
        );
        // Usage rides on the finish chunk when the client did not ask for it (usage_on_finish).
        let finish = s.chunks.iter().find(|c| !c["choices"][0]["finish_reason"].is_null()).unwrap();
        assert_eq!(finish["usage"]["prompt_tokens"], 11, "{model}: {}", s.raw);
        assert_eq!(finish["usage"]["completion_tokens"], 9);
        assert!(
            s.chunks.iter().all(|c| !c["choices"].as_array().unwrap().is_empty()),
            "{model}: no empty choices"
        );
        let upstream = h.sim.last_request().unwrap();
        assert_eq!(upstream.path(), path, "{model}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_through_every_provider() {
    let h = Harness::start().await;
    for (model, _) in MODELS {
        h.sim.push_behavior(reply().into());
        let resp = h.chat(model, false, json!({})).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["x-prism-attempts"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion", "{model}: {body}");
        assert_eq!(body["model"], model);
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            reply().text_content(),
            "{model}: {body}"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["prompt_tokens"], 11, "{model}: {body}");
        assert_eq!(body["usage"]["total_tokens"], 20);
        assert!(!h.sim.last_request().unwrap().stream, "{model}: non-streaming upstream call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_usage_gives_a_final_usage_chunk() {
    let h = Harness::start().await;
    for (model, _) in MODELS {
        h.sim.push_behavior(reply().into());
        let s = Streamed::read(
            h.chat(model, true, json!({"stream_options": {"include_usage": true}})).await,
        )
        .await;
        check_clean_stream(&s, model);
        let last = s.chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]), "{model}: {}", s.raw);
        assert_eq!(last["usage"]["prompt_tokens"], 11);
        assert_eq!(last["usage"]["completion_tokens"], 9);
        let with_usage =
            s.chunks.iter().filter(|c| c.get("usage").is_some_and(|u| !u.is_null())).count();
        assert_eq!(with_usage, 1, "{model}: usage exactly once: {}", s.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_policy_off_sends_no_usage_unless_asked() {
    let h = Harness::start_with(Opts { usage_on_finish: false, ..Opts::default() }).await;
    for (model, _) in MODELS {
        h.sim.push_behavior(reply().into());
        let s = Streamed::read(h.chat(model, true, json!({})).await).await;
        check_clean_stream(&s, model);
        assert!(
            s.chunks.iter().all(|c| c.get("usage").is_none_or(Value::is_null)),
            "{model}: {}",
            s.raw
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_always_asks_upstream_for_usage() {
    let h = Harness::start().await;
    h.sim.push_behavior(reply().into());
    let s = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert!(s.done);
    let sent = h.sim.last_request().unwrap().json().unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");
    assert_eq!(sent["model"], "gpt-4o-mini", "the upstream model id goes upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_configuration_streams_every_demo_model() {
    let sim = Simulator::start().await.unwrap();
    let base = sim.base_url();
    let env = |_: &str| None;
    let config = Config::embedded(EmbeddedOptions {
        simulator_url: &base,
        dev_key: "sk-prism-demo-key",
        env: &env,
    });
    let h = Harness::with_config(sim, config).await;
    for model in ["demo/openai", "demo/anthropic", "demo/gemini", "demo/bedrock"] {
        let resp = h.chat_with_key("sk-prism-demo-key", model, true, json!({})).await;
        let s = Streamed::read(resp).await;
        check_clean_stream(&s, model);
        assert!(!s.content().is_empty(), "{model}: {}", s.raw);
        h.sim.push_behavior(Behavior::Demo);
        let resp = h.chat_with_key("sk-prism-demo-key", model, false, json!({})).await;
        assert_eq!(resp.status(), 200, "{model}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()),
            "{body}"
        );
    }
    // The README's request, verbatim.
    let resp = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("Authorization", "Bearer sk-prism-demo-key")
        .header("content-type", "application/json")
        .body(r#"{"model":"demo/anthropic","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#)
        .send()
        .await
        .unwrap();
    let s = Streamed::read(resp).await;
    assert!(s.done && !s.content().is_empty(), "{}", s.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_stream_through() {
    let h = Harness::start().await;
    for (model, _) in MODELS {
        h.sim.push_behavior(Reply::tool_call("get_weather", r#"{"city":"Oslo"}"#).into());
        let s = Streamed::read(h.chat(model, true, json!({})).await).await;
        assert!(s.done, "{model}: {}", s.raw);
        let mut args = String::new();
        let mut name = None;
        for c in &s.chunks {
            if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
                for call in calls {
                    assert_eq!(call["index"], 0, "{model}");
                    if let Some(n) = call["function"]["name"].as_str() {
                        name = Some(n.to_owned());
                    }
                    args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
                }
            }
        }
        assert_eq!(name.as_deref(), Some("get_weather"), "{model}: {}", s.raw);
        let args: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(args, json!({"city": "Oslo"}), "{model}");
        assert_eq!(s.finish_reasons(), ["tool_calls"], "{model}");
    }
}

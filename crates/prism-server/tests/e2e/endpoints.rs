//! `/v1/models`, `/health`, `/ready`, `/metrics`, the pipeline hooks, and the example config.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prism_providers::OutChunk;
use prism_server::{
    Caller, Config, HookRejection, Hooks, InputCheck, OutputFilter, OutputFilterFactory,
};
use prism_simulator::Reply;
use prism_types::{ChatRequest, ErrorObject};
use serde_json::{Value, json};

use crate::support::{Harness, KEY, LIMITED_KEY, Opts, Streamed, UPSTREAM_SECRETS, error_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_filtered_by_key() {
    let h = Harness::start().await;
    let list = |key: &'static str| {
        let req = h.client.get(h.url("/v1/models")).bearer_auth(key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let all = list(KEY).await;
    assert_eq!(all["object"], "list");
    let ids: Vec<&str> =
        all["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "dead-then-gpt",
            "gpt",
            "gpt-responses",
            "claude",
            "gemini",
            "vertex",
            "bedrock",
            "bedrock-invoke",
            "fallback",
            "ttft-fallback"
        ]
    );
    assert_eq!(all["data"][0]["object"], "model");
    let limited = list(LIMITED_KEY).await;
    assert_eq!(limited["data"].as_array().unwrap().len(), 1);
    assert_eq!(limited["data"][0]["id"], "gpt");
    let (status, _, _) = error_body(h.client.get(h.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let h = Harness::start().await;
    let health: Value = h.client.get(h.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready = h.client.get(h.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    h.sim.push_behavior(Reply::text("counted words here").usage(7, 3).into());
    let s = Streamed::read(h.chat("claude", true, json!({})).await).await;
    assert!(s.done);
    let _ = h.chat("nope", true, json!({})).await;
    let resp = h.client.get(h.url("/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        "prism_requests_total{protocol=\"chat_completions\",model=\"claude\",provider=\"an\",status=\"200\"} 1",
        "prism_requests_total{protocol=\"chat_completions\",model=\"-\",provider=\"-\",status=\"404\"} 1",
        "prism_time_to_first_token_seconds_count{model=\"claude\",provider=\"an\"} 1",
        "prism_stream_duration_seconds_count{model=\"claude\",provider=\"an\"} 1",
        "prism_tokens_total{model=\"claude\",provider=\"an\",kind=\"prompt\"} 7",
        "prism_tokens_total{model=\"claude\",provider=\"an\",kind=\"completion\"} 3",
        "prism_stream_endings_total{model=\"claude\",provider=\"an\",reason=\"done\"} 1",
        "prism_active_streams 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(text.contains("prism_chunks_total{model=\"claude\",provider=\"an\"}"));
    for secret in UPSTREAM_SECRETS.iter().chain([&KEY, &LIMITED_KEY]) {
        assert!(!text.contains(secret));
    }
}

struct BlockWord;

impl InputCheck for BlockWord {
    fn check(
        &self,
        _caller: Caller<'_>,
        request: &ChatRequest,
        _headers: &mut http::HeaderMap,
    ) -> Result<(), HookRejection> {
        let text = serde_json::to_string(&request.messages).unwrap();
        if text.contains("forbidden") {
            return Err(HookRejection {
                status: 400,
                error: ErrorObject::new("invalid_request_error", "blocked by policy")
                    .with_code("guardrail"),
            });
        }
        Ok(())
    }
}

/// Ends the stream once it has seen `limit` content chunks.
struct CutAfter {
    limit: usize,
    seen: usize,
}

impl OutputFilter for CutAfter {
    fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        for c in chunks.iter() {
            if c.chunk
                .choices
                .iter()
                .any(|ch| ch.delta.content.as_deref().is_some_and(|t| !t.is_empty()))
            {
                self.seen += 1;
            }
        }
        if self.seen > self.limit {
            // Chunks left in the batch would still go out ahead of the error.
            chunks.clear();
            return Err(HookRejection {
                status: 400,
                error: ErrorObject::new("invalid_request_error", "output blocked")
                    .with_code("guardrail"),
            });
        }
        Ok(())
    }

    fn finish(&mut self, _chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        Ok(())
    }
}

struct Filters(Arc<AtomicUsize>);

impl OutputFilterFactory for Filters {
    fn start(&self, _caller: Caller<'_>, _request: &ChatRequest) -> Option<Box<dyn OutputFilter>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Some(Box::new(CutAfter { limit: 2, seen: 0 }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_can_refuse_input_and_end_output() {
    let started = Arc::new(AtomicUsize::new(0));
    let hooks = Hooks {
        input: Some(Arc::new(BlockWord)),
        output: Some(Arc::new(Filters(Arc::clone(&started)))),
        cache: None,
    };
    let h = Harness::start_full(Opts::default(), hooks).await;
    let resp = h
        .chat(
            "gpt",
            true,
            json!({"messages": [{"role": "user", "content": "say something forbidden"}]}),
        )
        .await;
    let (status, _, err) = error_body(resp).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("guardrail")));
    assert_eq!(h.sim.requests(), 0);

    h.sim.push_behavior(
        Reply::text("a b c d e f").delay(std::time::Duration::from_millis(10)).into(),
    );
    let s = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert_eq!(started.load(Ordering::Relaxed), 1);
    assert!(!s.done, "{}", s.raw);
    assert_eq!(s.error().unwrap()["code"], "guardrail");
    assert_eq!(s.content(), "a b ");
}

#[test]
fn the_example_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/prism.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let env = |name: &str| match name {
        "PRISM_LISTEN" | "AWS_SESSION_TOKEN" => None,
        "PRISM_BACKEND_KEY_SHA256" => Some("ab".repeat(32)),
        _ => Some(format!("test-value-of-{name}")),
    };
    let config =
        Config::from_toml(&text, &env).unwrap_or_else(|e| panic!("docs/examples/prism.toml: {e}"));
    assert!(!config.models.is_empty());
    assert!(
        config.models.iter().any(|m| m.deployments.len() > 1),
        "the example shows a fallback chain"
    );
}

//! `POST /v1/messages` and `POST /v1/responses` end to end: every provider behind each client
//! protocol, streamed and not, the same-protocol lanes (the upstream's own bytes), errors in each
//! protocol's shape before and after the first byte, and the extensions reaching the upstream.

use std::time::Duration;

use prism_simulator::{Behavior, Reply};
use serde_json::{Value, json};

use crate::support::{Harness, KEY};

/// Public model → the simulator route the gateway must have called, for a Messages client.
const MESSAGES_MODELS: [(&str, &str); 6] = [
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

/// The same for a Responses client; `gpt-responses` is the same-protocol lane (an OpenAI
/// upstream with `responses_api = true`: its own Responses events, passed through).
const RESPONSES_MODELS: [(&str, &str); 7] = [
    ("gpt", "/v1/chat/completions"),
    ("gpt-responses", "/v1/responses"),
    ("claude", "/v1/messages"),
    ("gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
    (
        "vertex",
        "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
    ),
    ("bedrock", "/model/anthropic.claude-sonnet-4-5-v1%3A0/converse-stream"),
    ("bedrock-invoke", "/model/anthropic.claude-sonnet-4-5-v1%3A0/invoke-with-response-stream"),
];

const TEXT: &str = "Hello from the simulated upstream, in several words.";

fn reply() -> Reply {
    Reply::text(TEXT).usage(11, 9)
}

/// One named SSE event: its `event:` name and its data as JSON.
#[derive(Debug)]
struct Event {
    name: String,
    data: Value,
}

struct Events {
    status: u16,
    headers: reqwest::header::HeaderMap,
    raw: String,
    events: Vec<Event>,
}

impl Events {
    async fn read(resp: reqwest::Response) -> Events {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.text().await.unwrap();
        let mut events = Vec::new();
        for block in raw.split("\n\n").filter(|b| !b.is_empty() && !b.starts_with(':')) {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).unwrap());
                }
            }
            let (Some(name), Some(data)) = (name, data) else {
                panic!("an event without a name or data: {block:?}")
            };
            events.push(Event { name, data });
        }
        Events { status, headers, raw, events }
    }

    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.name.as_str()).collect()
    }

    fn named(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e.name == name).map(|e| &e.data).collect()
    }
}

impl Harness {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn messages_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
}

fn responses_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "input": "Say hello", "store": false})
}

/// Text of a Messages stream, checking Anthropic's grammar on the way.
fn check_messages_stream(s: &Events, model: &str) -> String {
    assert_eq!(s.status, 200, "{model}: {}", s.raw);
    let names = s.names();
    assert_eq!(names.first(), Some(&"message_start"), "{model}: {names:?}");
    assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"], "{model}: {names:?}");
    for e in &s.events {
        assert_eq!(e.data["type"].as_str(), Some(e.name.as_str()), "{model}");
    }
    let start = &s.named("message_start")[0]["message"];
    assert_eq!(start["model"], model, "{model}: the public model name");
    assert_eq!(start["role"], "assistant");
    // The upstream's count where it reports one up front, else the gateway's estimate: never 0.
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0, "{model}: {start}");
    let delta = s.named("message_delta")[0];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn", "{model}: {}", s.raw);
    assert_eq!(delta["usage"]["output_tokens"], 9, "{model}: {}", s.raw);
    s.named("content_block_delta").iter().filter_map(|d| d["delta"]["text"].as_str()).collect()
}

/// Text of a Responses stream, checking the sequence numbers and the terminal event.
fn check_responses_stream(s: &Events, model: &str) -> String {
    assert_eq!(s.status, 200, "{model}: {}", s.raw);
    let names = s.names();
    assert_eq!(names[..2], ["response.created", "response.in_progress"], "{model}: {names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{model}: {names:?}");
    for (i, e) in s.events.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], i, "{model}: sequence_number of {}", e.name);
        assert_eq!(e.data["type"].as_str(), Some(e.name.as_str()));
    }
    let done = &s.named("response.completed")[0]["response"];
    assert_eq!(done["model"], model, "{model}: the public model name");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["input_tokens"], 11, "{model}: {}", s.raw);
    assert_eq!(done["usage"]["output_tokens"], 9, "{model}: {}", s.raw);
    let text: String =
        s.named("response.output_text.delta").iter().filter_map(|d| d["delta"].as_str()).collect();
    assert_eq!(s.named("response.output_text.done")[0]["text"], text.as_str());
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stream_through_every_provider() {
    let h = Harness::start().await;
    for (model, path) in MESSAGES_MODELS {
        h.sim.push_behavior(reply().into());
        let s = Events::read(h.post("/v1/messages", &messages_body(model, true)).await).await;
        assert_eq!(check_messages_stream(&s, model), TEXT, "{model}: {}", s.raw);
        assert_eq!(s.headers["content-type"], "text/event-stream");
        let upstream = h.sim.last_request().unwrap();
        assert_eq!(upstream.path(), path, "{model}");
        if model == "claude" {
            // The same-protocol lane sends the client's body with only the model replaced.
            let sent = upstream.json().unwrap();
            assert_eq!(sent["model"], "claude-sonnet-4-5");
            assert_eq!(sent["max_tokens"], 100);
            assert_eq!(sent["messages"], messages_body(model, true)["messages"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_non_streaming_through_every_provider() {
    let h = Harness::start().await;
    for (model, _) in MESSAGES_MODELS {
        h.sim.push_behavior(reply().into());
        let resp = h.post("/v1/messages", &messages_body(model, false)).await;
        assert_eq!(resp.status(), 200, "{model}");
        let m: Value = resp.json().await.unwrap();
        assert_eq!(m["type"], "message", "{model}: {m}");
        assert_eq!(m["model"], model);
        assert_eq!(m["content"][0]["text"], TEXT, "{model}: {m}");
        assert_eq!(m["stop_reason"], "end_turn");
        assert_eq!(m["usage"]["output_tokens"], 9);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_tool_calls_stream_as_tool_use_blocks() {
    let h = Harness::start().await;
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    for (model, _) in MESSAGES_MODELS {
        h.sim.push_behavior(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#).into());
        let mut body = messages_body(model, true);
        body["tools"] = tools.clone();
        let s = Events::read(h.post("/v1/messages", &body).await).await;
        let starts = s.named("content_block_start");
        let tool = starts.iter().find(|b| b["content_block"]["type"] == "tool_use");
        let tool = tool.unwrap_or_else(|| panic!("{model}: no tool_use block: {}", s.raw));
        assert_eq!(tool["content_block"]["name"], "get_weather");
        let args: String = s
            .named("content_block_delta")
            .iter()
            .filter_map(|d| d["delta"]["partial_json"].as_str())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"city": "Paris"}));
        assert_eq!(s.named("message_delta")[0]["delta"]["stop_reason"], "tool_use");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_thinking_budget_and_beta_reach_the_upstream() {
    let h = Harness::start().await;
    let mut body = messages_body("bedrock", false);
    body["max_tokens"] = json!(8000);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2000});
    h.sim.push_behavior(reply().into());
    assert_eq!(h.post("/v1/messages", &body).await.status(), 200);
    let sent = h.sim.last_request().unwrap().json().unwrap();
    assert_eq!(
        sent["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 2000}),
        "{sent}"
    );

    // anthropic-beta goes to Anthropic upstreams.
    h.sim.push_behavior(reply().into());
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .bearer_auth(KEY)
        .header("anthropic-beta", "context-management-2025-06-27")
        .json(&messages_body("claude", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let upstream = h.sim.last_request().unwrap();
    assert_eq!(upstream.header("anthropic-beta"), Some("context-management-2025-06-27"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_errors_are_in_anthropics_shape() {
    let h = Harness::start().await;
    let mut body = messages_body("gpt", false);
    body.as_object_mut().unwrap().remove("max_tokens");
    let resp = h.post("/v1/messages", &body).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"].as_str().unwrap().contains("max_tokens"), "{e}");

    let resp = h.post("/v1/messages", &messages_body("no-such-model", false)).await;
    assert_eq!(resp.status(), 404);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["type"], "not_found_error", "{e}");

    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", "sk-prism-wrong")
        .json(&messages_body("gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["type"], "authentication_error", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_first_byte_is_one_error_event() {
    let h = Harness::start().await;
    let paced = Reply::with_n_deltas(20).delay(Duration::from_millis(5));
    for model in ["gpt", "claude", "gemini", "bedrock"] {
        h.sim.push_behavior(Behavior::CutAfter { reply: paced.clone(), events: 5 });
        let s = Events::read(h.post("/v1/messages", &messages_body(model, true)).await).await;
        let names = s.names();
        assert_eq!(names.last(), Some(&"error"), "{model}: {names:?}");
        assert!(!names.contains(&"message_stop"), "{model}: {names:?}");
        assert_eq!(s.events.last().unwrap().data["error"]["type"], "api_error", "{}", s.raw);

        h.sim.push_behavior(Behavior::CutAfter { reply: paced.clone(), events: 5 });
        let s = Events::read(h.post("/v1/responses", &responses_body(model, true)).await).await;
        let names = s.names();
        assert_eq!(names[names.len() - 2..], ["error", "response.failed"], "{model}: {names:?}");
        assert!(!names.contains(&"response.completed"), "{model}: {names:?}");
        for (i, e) in s.events.iter().enumerate() {
            assert_eq!(e.data["sequence_number"], i, "{model}: {}", s.raw);
        }
        let failed = &s.named("response.failed")[0]["response"];
        assert_eq!(failed["status"], "failed");
        assert!(failed["error"]["message"].is_string(), "{failed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stream_through_every_provider() {
    let h = Harness::start().await;
    for (model, path) in RESPONSES_MODELS {
        h.sim.push_behavior(reply().into());
        let s = Events::read(h.post("/v1/responses", &responses_body(model, true)).await).await;
        assert_eq!(check_responses_stream(&s, model), TEXT, "{model}: {}", s.raw);
        let upstream = h.sim.last_request().unwrap();
        assert_eq!(upstream.path(), path, "{model}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_non_streaming_and_function_calls() {
    let h = Harness::start().await;
    for (model, _) in RESPONSES_MODELS {
        h.sim.push_behavior(reply().into());
        let resp = h.post("/v1/responses", &responses_body(model, false)).await;
        assert_eq!(resp.status(), 200, "{model}");
        let r: Value = resp.json().await.unwrap();
        assert_eq!(r["object"], "response", "{model}: {r}");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["model"], model);
        let message = r["output"].as_array().unwrap().iter().find(|i| i["type"] == "message");
        assert_eq!(message.unwrap()["content"][0]["text"], TEXT, "{model}: {r}");

        h.sim.push_behavior(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#).into());
        let mut body = responses_body(model, false);
        body["tools"] =
            json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
        let r: Value = h.post("/v1/responses", &body).await.json().await.unwrap();
        let call = r["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call");
        let call = call.unwrap_or_else(|| panic!("{model}: no function_call: {r}"));
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["arguments"], r#"{"city":"Paris"}"#);
        assert!(call["call_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_errors_name_the_parameter() {
    let h = Harness::start().await;
    let mut body = responses_body("claude", false);
    body["previous_response_id"] = json!("resp_123");
    let resp = h.post("/v1/responses", &body).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["param"], "previous_response_id", "{e}");

    // A built-in tool: a 400 on a translated lane, before anything goes upstream.
    let mut body = responses_body("claude", false);
    body["tools"] = json!([{"type": "web_search"}]);
    let before = h.sim.requests();
    let resp = h.post("/v1/responses", &body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(h.sim.requests(), before, "nothing went upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_native_lane_passes_the_upstream_events_through() {
    let h = Harness::start().await;
    h.sim.push_behavior(reply().into());
    let s =
        Events::read(h.post("/v1/responses", &responses_body("gpt-responses", true)).await).await;
    assert_eq!(check_responses_stream(&s, "gpt-responses"), TEXT, "{}", s.raw);
    // The upstream's own ids survive: nothing was re-encoded.
    let done = &s.named("response.completed")[0]["response"];
    assert_eq!(done["id"], "resp_sim0001", "{done}");
    assert_eq!(done["output"][0]["id"], "msg_sim0001", "{done}");
    let sent = h.sim.last_request().unwrap().json().unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini", "the upstream model: {sent}");
    assert_eq!(sent["input"], "Say hello", "the client's body: {sent}");

    // The upstream's in-band failure reaches the client as the upstream sent it: `error`, then
    // `response.failed`, numbered on from the events before.
    h.sim.push_behavior(Behavior::ErrorMidstream { reply: reply(), events: 4 });
    let s =
        Events::read(h.post("/v1/responses", &responses_body("gpt-responses", true)).await).await;
    let names = s.names();
    assert_eq!(names[names.len() - 2..], ["error", "response.failed"], "{names:?}");
    for (i, e) in s.events.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], i, "{}", s.raw);
    }

    // A cut upstream: the gateway ends the stream with its own `error` and `response.failed`.
    let paced = Reply::with_n_deltas(20).delay(Duration::from_millis(5));
    h.sim.push_behavior(Behavior::CutAfter { reply: paced, events: 5 });
    let s =
        Events::read(h.post("/v1/responses", &responses_body("gpt-responses", true)).await).await;
    let names = s.names();
    assert_eq!(names[names.len() - 2..], ["error", "response.failed"], "{names:?}");
    assert!(!names.contains(&"response.completed"), "{names:?}");
    for (i, e) in s.events.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], i, "{}", s.raw);
    }
}

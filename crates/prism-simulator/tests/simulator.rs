//! End-to-end tests of the simulator over loopback HTTP: every provider's native shapes, the
//! scripted behaviours, connection accounting and a concurrent load.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt as _;
use prism_simulator::{
    Behavior, Finish, Provider, RenderOptions, Reply, SimConfig, Simulator, Wire, demo_fixture,
    demo_reply, render_stream,
};
use serde_json::{Value, json};

// ===== helpers =====

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The request path and body that select `wire`, streaming or not.
fn request_for(wire: Wire, stream: bool) -> (String, Value) {
    let chat = json!({"messages": [{"role": "user", "content": "hi"}]});
    match (wire, stream) {
        (Wire::OpenAi, _) => (
            "/v1/chat/completions".into(),
            json!({"model": "gpt-sim", "stream": stream, "messages": chat["messages"]}),
        ),
        (Wire::OpenAiResponses, _) => {
            ("/v1/responses".into(), json!({"model": "gpt-sim", "stream": stream, "input": "hi"}))
        }
        (Wire::Anthropic, _) => (
            "/v1/messages".into(),
            json!({"model": "claude-sim", "stream": stream, "max_tokens": 64, "messages": chat["messages"]}),
        ),
        (Wire::Gemini, true) => (
            "/v1beta/models/gemini-sim:streamGenerateContent?alt=sse".into(),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        (Wire::Gemini, false) => (
            "/v1beta/models/gemini-sim:generateContent".into(),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        (Wire::BedrockConverse, true) => (
            "/model/anthropic.claude-sim-v1%3A0/converse-stream".into(),
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
        ),
        (Wire::BedrockConverse, false) => (
            "/model/anthropic.claude-sim-v1%3A0/converse".into(),
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
        ),
        (Wire::BedrockInvoke, true) => (
            "/model/anthropic.claude-sim-v1%3A0/invoke-with-response-stream".into(),
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": chat["messages"]}),
        ),
        (Wire::BedrockInvoke, false) => (
            "/model/anthropic.claude-sim-v1%3A0/invoke".into(),
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": chat["messages"]}),
        ),
        (wire, _) => panic!("unknown wire {wire:?}"),
    }
}

async fn send(sim: &Simulator, wire: Wire, stream: bool) -> reqwest::Response {
    send_body(sim, wire, stream, None).await
}

async fn send_body(
    sim: &Simulator,
    wire: Wire,
    stream: bool,
    body: Option<Value>,
) -> reqwest::Response {
    let (path, default_body) = request_for(wire, stream);
    client()
        .post(format!("{}{path}", sim.base_url()))
        .header("authorization", "Bearer sk-test-secret")
        .json(&body.unwrap_or(default_body))
        .send()
        .await
        .unwrap()
}

/// One decoded event of any wire: SSE `(event name, data)` or event-stream `(event type, payload)`.
#[derive(Debug, Clone, PartialEq)]
struct Ev {
    name: String,
    data: String,
}

fn decode_sse(bytes: &[u8]) -> Vec<Ev> {
    let mut decoder = prism_sse::Decoder::new();
    let mut frames = Vec::new();
    decoder.feed(bytes, &mut frames).unwrap();
    assert_eq!(decoder.finish(), 0, "unterminated SSE event at the end");
    frames
        .into_iter()
        .filter_map(|frame| match frame {
            prism_sse::Frame::Event(event) => Some(Ev {
                name: event.event_type().to_owned(),
                data: event.data.as_str().to_owned(),
            }),
            _ => None,
        })
        .collect()
}

/// A strict AWS event-stream decoder: both CRCs checked, string headers only.
type Message = (Vec<(String, String)>, Vec<u8>);

fn decode_eventstream(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 16, "truncated message");
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let prelude_crc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(crc32fast::hash(&bytes[..8]), prelude_crc, "prelude CRC");
        let msg = &bytes[..total];
        let crc = u32::from_be_bytes(msg[total - 4..].try_into().unwrap());
        assert_eq!(crc32fast::hash(&msg[..total - 4]), crc, "message CRC");
        let mut h = &msg[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let name_len = h[0] as usize;
            let name = String::from_utf8(h[1..1 + name_len].to_vec()).unwrap();
            assert_eq!(h[1 + name_len], 7, "string header");
            let vlen =
                u16::from_be_bytes(h[2 + name_len..4 + name_len].try_into().unwrap()) as usize;
            let value = String::from_utf8(h[4 + name_len..4 + name_len + vlen].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + name_len + vlen..];
        }
        out.push((headers, msg[12 + headers_len..total - 4].to_vec()));
        bytes = &bytes[total..];
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap()
}

/// Event-stream messages as `Ev`s named by `:event-type` (or `exception:<type>`).
fn eventstream_events(bytes: &[u8]) -> Vec<Ev> {
    decode_eventstream(bytes)
        .into_iter()
        .map(|(headers, payload)| {
            let name = match header(&headers, ":message-type") {
                "event" => header(&headers, ":event-type").to_owned(),
                "exception" => format!("exception:{}", header(&headers, ":exception-type")),
                other => panic!("message type {other}"),
            };
            assert_eq!(header(&headers, ":content-type"), "application/json");
            Ev { name, data: String::from_utf8(payload).unwrap() }
        })
        .collect()
}

/// Invoke `chunk` frames unwrapped to the Anthropic events inside.
fn invoke_events(bytes: &[u8]) -> Vec<Ev> {
    eventstream_events(bytes)
        .into_iter()
        .map(|ev| {
            assert_eq!(ev.name, "chunk");
            let wrapper: Value = serde_json::from_str(&ev.data).unwrap();
            let inner = base64::engine::general_purpose::STANDARD
                .decode(wrapper["bytes"].as_str().unwrap())
                .unwrap();
            let inner: Value = serde_json::from_slice(&inner).unwrap();
            Ev { name: inner["type"].as_str().unwrap().to_owned(), data: inner.to_string() }
        })
        .collect()
}

fn events_of(wire: Wire, bytes: &[u8]) -> Vec<Ev> {
    match wire {
        Wire::BedrockConverse => eventstream_events(bytes),
        Wire::BedrockInvoke => invoke_events(bytes),
        _ => decode_sse(bytes),
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The text a decoded stream carries, per wire.
fn stream_text(wire: Wire, events: &[Ev]) -> String {
    let mut text = String::new();
    for ev in events {
        if ev.data == "[DONE]" || ev.name.starts_with("exception") {
            continue;
        }
        let v = json(&ev.data);
        let piece = match wire {
            Wire::OpenAi => v["choices"][0]["delta"]["content"].as_str().map(str::to_owned),
            Wire::OpenAiResponses if v["type"] == "response.output_text.delta" => {
                v["delta"].as_str().map(str::to_owned)
            }
            Wire::Anthropic | Wire::BedrockInvoke => v["delta"]["text"].as_str().map(str::to_owned),
            Wire::Gemini => v["candidates"][0]["content"]["parts"]
                .as_array()
                .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect()),
            Wire::BedrockConverse => v["delta"]["text"].as_str().map(str::to_owned),
            _ => None,
        };
        text.push_str(&piece.unwrap_or_default());
    }
    text
}

/// Whether the stream ended with the provider's terminal event.
fn has_terminal(wire: Wire, events: &[Ev]) -> bool {
    let Some(last) = events.last() else { return false };
    match wire {
        Wire::OpenAi => last.data == "[DONE]",
        Wire::OpenAiResponses => {
            matches!(last.name.as_str(), "response.completed" | "response.incomplete")
        }
        Wire::Anthropic | Wire::BedrockInvoke => last.name == "message_stop",
        Wire::Gemini => json(&last.data)["candidates"][0]["finishReason"].is_string(),
        Wire::BedrockConverse => last.name == "metadata",
        _ => false,
    }
}

async fn body_bytes(response: reqwest::Response) -> Vec<u8> {
    response.bytes().await.unwrap().to_vec()
}

// ===== native shapes, per provider =====

#[tokio::test]
async fn openai_stream_has_the_native_shape() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("Hello big world").usage(7, 3).into());
    let body = json!({"model": "gpt-sim", "stream": true, "stream_options": {"include_usage": true}, "messages": []});
    let response = send_body(&sim, Wire::OpenAi, true, Some(body)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = decode_sse(&body_bytes(response).await);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert!(names.iter().all(|n| *n == "message"), "{names:?}");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| json(&e.data)).collect();
    assert_eq!(chunks.len(), 1 + 3 + 1 + 1, "role, 3 deltas, finish, usage");
    for chunk in &chunks {
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-sim");
        assert_eq!(chunk["created"], chunks[0]["created"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(stream_text(Wire::OpenAi, &events), "Hello big world");
    assert!(chunks[..5].iter().all(|c| c["usage"].is_null() && c.get("usage").is_some()));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["prompt_tokens"], 7);
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
    assert_eq!(chunks[5]["usage"]["total_tokens"], 10);
}

#[tokio::test]
async fn openai_stream_without_include_usage_has_no_usage() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("a b").into());
    let events = decode_sse(&body_bytes(send(&sim, Wire::OpenAi, true).await).await);
    assert_eq!(events.len(), 5, "role, 2 deltas, finish, [DONE]");
    for ev in &events[..4] {
        let chunk = json(&ev.data);
        assert!(chunk.get("usage").is_none());
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn openai_tool_call_streams_fragments_by_index() {
    let sim = Simulator::start().await.unwrap();
    let reply = Reply::tool_call("get_weather", r#"{"city":"Paris"}"#)
        .with_tool_call("get_time", r#"{"tz":"CET"}"#);
    sim.push_behavior(reply.into());
    let events = decode_sse(&body_bytes(send(&sim, Wire::OpenAi, true).await).await);
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for ev in &events[..events.len() - 1] {
        let chunk = json(&ev.data);
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(index, calls.len());
                calls.push((
                    id.into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            calls[index].2.push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[0].2, r#"{"city":"Paris"}"#);
    assert_eq!(calls[1].1, "get_time");
    assert_eq!(calls[1].2, r#"{"tz":"CET"}"#);
    assert_ne!(calls[0].0, calls[1].0);
    assert!(json(&events[0].data)["choices"][0]["delta"]["content"].is_null());
}

#[tokio::test]
async fn openai_body_is_a_chat_completion() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("Hi there").usage(5, 2).with_tool_call("f", r#"{"a":1}"#).into());
    let response = send(&sim, Wire::OpenAi, false).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-sim");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "Hi there");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "f");
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], r#"{"a":1}"#);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 7);
}

#[tokio::test]
async fn anthropic_stream_has_the_native_shape() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(
        Reply::text("Hello big world")
            .usage(9, 4)
            .with_tool_call("f", r#"{"x":[1,2]}"#)
            .finish(Finish::ToolCalls)
            .into(),
    );
    let response = send(&sim, Wire::Anthropic, true).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = decode_sse(&body_bytes(response).await);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for ev in &events {
        assert_eq!(json(&ev.data)["type"], ev.name.as_str(), "the event name equals the type");
    }
    let start = json(&events[0].data);
    assert_eq!(start["message"]["model"], "claude-sim");
    assert_eq!(start["message"]["usage"]["input_tokens"], 9);
    assert_eq!(stream_text(Wire::Anthropic, &events), "Hello big world");
    let tool_start = json(&events[7].data);
    assert_eq!(tool_start["index"], 1);
    assert_eq!(tool_start["content_block"]["type"], "tool_use");
    assert_eq!(tool_start["content_block"]["name"], "f");
    let partial: String = events[8..11]
        .iter()
        .map(|e| json(&e.data)["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(partial, r#"{"x":[1,2]}"#);
    let delta = json(&events[12].data);
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn anthropic_body_is_a_message() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("Hi there").usage(5, 2).finish(Finish::Length).into());
    let body: Value = send(&sim, Wire::Anthropic, false).await.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-sim");
    assert_eq!(body["content"], json!([{"type": "text", "text": "Hi there"}]));
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn gemini_stream_has_the_native_shape() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("Hello big world").usage(6, 3).into());
    let response = send(&sim, Wire::Gemini, true).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let bytes = body_bytes(response).await;
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("data: {"));
    assert_eq!(text.matches("\r\n\r\n").count(), 3, "CRLF-separated events");
    let events = decode_sse(&bytes);
    assert_eq!(events.len(), 3);
    assert_eq!(stream_text(Wire::Gemini, &events), "Hello big world");
    for (i, ev) in events.iter().enumerate() {
        let chunk = json(&ev.data);
        assert_eq!(ev.name, "message");
        assert_eq!(chunk["modelVersion"], "gemini-sim");
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
        assert_eq!(chunk["usageMetadata"]["promptTokenCount"], 6);
        assert_eq!(chunk["candidates"][0]["finishReason"].is_string(), i == 2);
    }
    let last = json(&events[2].data);
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 9);
}

#[tokio::test]
async fn gemini_vertex_paths_json_array_streams_and_function_calls() {
    let sim = Simulator::start().await.unwrap();
    let reply =
        Reply::text("ok").with_tool_call("lookup", r#"{"q":"x"}"#).finish(Finish::ToolCalls);
    for _ in 0..3 {
        sim.push_behavior(reply.clone().into());
    }
    let base = sim.base_url();
    let vertex = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-pro";
    let body = json!({"contents": []});
    let sse = client()
        .post(format!("{base}{vertex}:streamGenerateContent?alt=sse"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = decode_sse(&body_bytes(sse).await);
    assert_eq!(events.len(), 2);
    let last = json(&events[1].data);
    assert_eq!(
        last["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "lookup", "args": {"q": "x"}})
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");

    let array = client()
        .post(format!("{base}/v1beta/models/gemini-sim:streamGenerateContent"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(array.headers()["content-type"], "application/json");
    let array: Value = array.json().await.unwrap();
    assert_eq!(array.as_array().unwrap().len(), 2);
    assert_eq!(array[0]["candidates"][0]["content"]["parts"][0]["text"], "ok");

    let whole: Value = client()
        .post(format!("{base}{vertex}:generateContent"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts = &whole["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["text"], "ok");
    assert_eq!(parts[1]["functionCall"]["name"], "lookup");
    assert_eq!(whole["modelVersion"], "gemini-pro");
}

#[tokio::test]
async fn bedrock_converse_stream_frames_verify_and_have_the_native_shape() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(
        Reply::text("Hello big world")
            .usage(8, 3)
            .with_tool_call("f", r#"{"a":"b"}"#)
            .finish(Finish::ToolCalls)
            .into(),
    );
    let response = send(&sim, Wire::BedrockConverse, true).await;
    assert_eq!(response.headers()["content-type"], "application/vnd.amazon.eventstream");
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let events = eventstream_events(&body_bytes(response).await);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert_eq!(json(&events[0].data)["role"], "assistant");
    assert_eq!(stream_text(Wire::BedrockConverse, &events), "Hello big world");
    let start = json(&events[5].data);
    assert_eq!(start["contentBlockIndex"], 1);
    assert_eq!(start["start"]["toolUse"]["name"], "f");
    let input: String = events[6..8]
        .iter()
        .map(|e| json(&e.data)["delta"]["toolUse"]["input"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(input, r#"{"a":"b"}"#);
    assert_eq!(json(&events[9].data)["stopReason"], "tool_use");
    let usage = &json(&events[10].data)["usage"];
    assert_eq!(
        (
            usage["inputTokens"].as_u64(),
            usage["outputTokens"].as_u64(),
            usage["totalTokens"].as_u64()
        ),
        (Some(8), Some(3), Some(11))
    );
    assert_eq!(sim.last_request().unwrap().model.as_deref(), Some("anthropic.claude-sim-v1:0"));
}

#[tokio::test]
async fn bedrock_invoke_stream_wraps_anthropic_events() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::text("Hello world").usage(4, 2).into());
    let response = send(&sim, Wire::BedrockInvoke, true).await;
    assert_eq!(response.headers()["content-type"], "application/vnd.amazon.eventstream");
    assert_eq!(response.headers()["x-amzn-bedrock-content-type"], "application/json");
    let events = invoke_events(&body_bytes(response).await);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(stream_text(Wire::BedrockInvoke, &events), "Hello world");
    assert!(json(&events[0].data)["message"]["id"].as_str().unwrap().starts_with("msg_bdrk_"));
    let stop = json(&events[6].data);
    assert_eq!(stop["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 2);
}

#[tokio::test]
async fn bedrock_bodies_are_converse_and_anthropic_messages() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(
        Reply::text("Hi there")
            .usage(3, 2)
            .with_tool_call("f", r#"{"k":1}"#)
            .finish(Finish::ToolCalls)
            .into(),
    );
    sim.push_behavior(Reply::text("Hi there").usage(3, 2).into());
    let converse: Value = send(&sim, Wire::BedrockConverse, false).await.json().await.unwrap();
    assert_eq!(converse["output"]["message"]["role"], "assistant");
    assert_eq!(converse["output"]["message"]["content"][0]["text"], "Hi there");
    assert_eq!(converse["output"]["message"]["content"][1]["toolUse"]["input"], json!({"k": 1}));
    assert_eq!(converse["stopReason"], "tool_use");
    assert_eq!(converse["usage"]["totalTokens"], 5);
    let invoke: Value = send(&sim, Wire::BedrockInvoke, false).await.json().await.unwrap();
    assert_eq!(invoke["type"], "message");
    assert_eq!(invoke["content"][0]["text"], "Hi there");
    assert_eq!(invoke["stop_reason"], "end_turn");
}

#[tokio::test]
async fn the_wire_carries_exactly_what_render_stream_renders() {
    for flush in [false, true] {
        let reply =
            Reply::with_n_deltas(20).with_tool_call("f", r#"{"a":1}"#).flush_each_event(flush);
        let sim =
            Simulator::start_with(SimConfig::default().with_default(reply.clone())).await.unwrap();
        check_wire_bytes(&sim, &reply).await;
    }
}

async fn check_wire_bytes(sim: &Simulator, reply: &Reply) {
    for wire in Wire::ALL {
        let model = match wire {
            Wire::OpenAi | Wire::OpenAiResponses => "gpt-sim",
            Wire::Anthropic => "claude-sim",
            Wire::Gemini => "gemini-sim",
            _ => "anthropic.claude-sim-v1:0",
        };
        let rendered = render_stream(wire, reply, &RenderOptions::new(model));
        for _ in 0..2 {
            // The second request is served from the render cache.
            let bytes = body_bytes(send(sim, wire, true).await).await;
            assert_eq!(bytes, rendered.concat(), "{wire:?}");
            let events = events_of(wire, &bytes);
            assert_eq!(events.len(), rendered.len(), "{wire:?}: one element per event");
            assert!(has_terminal(wire, &events), "{wire:?}");
            assert_eq!(stream_text(wire, &events), reply.text_content(), "{wire:?}");
        }
    }
}

#[tokio::test]
async fn demo_answers_every_provider_streaming_and_not() {
    let sim = Simulator::start().await.unwrap();
    for wire in Wire::ALL {
        let expected = demo_reply(wire.provider()).text_content();
        let bytes = body_bytes(send(&sim, wire, true).await).await;
        let events = events_of(wire, &bytes);
        assert!(has_terminal(wire, &events), "{wire:?}");
        let text = stream_text(wire, &events);
        match demo_fixture(wire) {
            Some(fixture) => {
                assert_eq!(bytes, fixture, "{wire:?}: the fixture, replayed");
                assert!(!text.is_empty(), "{wire:?}");
            }
            None => {
                assert_eq!(text, expected, "{wire:?}");
                assert!(text.contains(wire.provider().display_name()));
            }
        }
        let response = send(&sim, wire, false).await;
        assert_eq!(response.status(), 200);
        let body = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(body.contains(&expected), "{wire:?}: {body}");
    }
}

#[tokio::test]
async fn paced_demo_replays_the_same_bytes() {
    let config = SimConfig::default().with_demo_delay(Duration::from_millis(2));
    let sim = Simulator::start_with(config).await.unwrap();
    for wire in Wire::ALL {
        let bytes = body_bytes(send(&sim, wire, true).await).await;
        if let Some(fixture) = demo_fixture(wire) {
            assert_eq!(bytes, fixture, "{wire:?}");
        }
        assert!(has_terminal(wire, &events_of(wire, &bytes)), "{wire:?}");
    }
}

// ===== behaviours =====

#[tokio::test]
async fn behaviours_are_served_in_fifo_order_then_the_default() {
    let sim = Simulator::start_with(SimConfig::default().with_default(Reply::text("default")))
        .await
        .unwrap();
    sim.push_behavior(Behavior::status(500));
    sim.push_behavior(Reply::text("first").into());
    sim.push_behavior(Reply::text("second").into());
    assert_eq!(sim.queued(), 3);
    let texts = [500, 200, 200, 200];
    let mut got = Vec::new();
    for status in texts {
        let response = send(&sim, Wire::OpenAi, false).await;
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        got.push(body["choices"][0]["message"]["content"].as_str().unwrap_or("error").to_owned());
    }
    assert_eq!(got, ["error", "first", "second", "default"]);
    assert_eq!(sim.queued(), 0);
    assert_eq!(sim.requests(), 4);
}

#[tokio::test]
async fn per_provider_queues_come_before_the_global_one() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Behavior::status(503));
    sim.push_behavior_for(Provider::Bedrock, Reply::text("bedrock").into());
    let bedrock: Value = send(&sim, Wire::BedrockConverse, false).await.json().await.unwrap();
    assert_eq!(bedrock["output"]["message"]["content"][0]["text"], "bedrock");
    assert_eq!(send(&sim, Wire::Gemini, false).await.status(), 503);
    assert_eq!(send(&sim, Wire::Gemini, false).await.status(), 200);
    sim.push_behavior(Behavior::status(503));
    sim.clear_behaviors();
    assert_eq!(send(&sim, Wire::Gemini, false).await.status(), 200);
}

#[tokio::test]
async fn status_errors_use_each_providers_body_and_retry_after() {
    let sim = Simulator::start().await.unwrap();
    for wire in Wire::ALL {
        sim.push_behavior(Behavior::status_retry_after(429, 7));
        let response = send(&sim, wire, true).await;
        assert_eq!(response.status(), 429, "{wire:?}");
        assert_eq!(response.headers()["retry-after"], "7", "{wire:?}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let errortype = response.headers().get("x-amzn-errortype").cloned();
        let body: Value = response.json().await.unwrap();
        match wire {
            Wire::OpenAi | Wire::OpenAiResponses => {
                assert_eq!(body["error"]["code"], "rate_limit_exceeded");
                assert!(body["error"]["message"].is_string());
            }
            Wire::Anthropic => {
                assert_eq!(body["type"], "error");
                assert_eq!(body["error"]["type"], "rate_limit_error");
            }
            Wire::Gemini => {
                assert_eq!(body["error"]["code"], 429);
                assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
                assert_eq!(body["error"]["details"][0]["retryDelay"], "7s");
            }
            _ => {
                assert!(body["message"].is_string());
                assert!(errortype.unwrap().to_str().unwrap().starts_with("ThrottlingException:"));
            }
        }
    }
    sim.push_behavior(Behavior::status(529));
    let overloaded: Value = send(&sim, Wire::Anthropic, true).await.json().await.unwrap();
    assert_eq!(overloaded["error"]["type"], "overloaded_error");
    sim.push_behavior(Behavior::Status { status: 500, body: "raw text".into(), retry_after: None });
    let raw = send(&sim, Wire::OpenAi, false).await;
    assert_eq!(raw.status(), 500);
    assert!(raw.headers().get("retry-after").is_none());
    assert_eq!(raw.text().await.unwrap(), "raw text");
}

#[tokio::test]
async fn hang_never_answers() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Behavior::Hang);
    let (path, body) = request_for(Wire::Anthropic, true);
    let started = Instant::now();
    let result = client()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.requests(), 1);
    // The client gave up and closed its connection: the simulator notices.
    assert!(sim.wait_open_connections_at_most(0, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn stall_sends_the_head_then_goes_silent() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Behavior::Stall { reply: Reply::text("a b c"), events: 2 });
    let mut response = send(&sim, Wire::OpenAi, true).await;
    assert_eq!(response.status(), 200);
    let mut got = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_millis(300));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            chunk = response.chunk() => got.extend_from_slice(&chunk.unwrap().unwrap()),
            () = &mut deadline => break,
        }
    }
    let events = decode_sse(&got);
    assert_eq!(events.len(), 2, "role chunk and one delta, then silence");
    assert_eq!(stream_text(Wire::OpenAi, &events), "a ");
}

#[tokio::test]
async fn cut_after_aborts_the_body_without_the_terminal_event() {
    let sim = Simulator::start().await.unwrap();
    for wire in Wire::ALL {
        sim.push_behavior(Behavior::CutAfter { reply: Reply::with_n_deltas(10), events: 3 });
        let response = send(&sim, wire, true).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut got = Vec::new();
        let mut failed = false;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "{wire:?}: the body must end in an error, not cleanly");
        let events = events_of(wire, &got);
        assert_eq!(events.len(), 3, "{wire:?}");
        assert!(!has_terminal(wire, &events), "{wire:?}");
    }
}

#[tokio::test]
async fn end_after_ends_cleanly_without_the_terminal_event() {
    let sim = Simulator::start().await.unwrap();
    for wire in Wire::ALL {
        sim.push_behavior(Behavior::EndAfter { reply: Reply::with_n_deltas(10), events: 4 });
        let bytes = body_bytes(send(&sim, wire, true).await).await;
        let events = events_of(wire, &bytes);
        assert_eq!(events.len(), 4, "{wire:?}");
        assert!(!has_terminal(wire, &events), "{wire:?}");
    }
}

#[tokio::test]
async fn error_midstream_uses_each_providers_in_band_error() {
    let sim = Simulator::start().await.unwrap();
    for wire in Wire::ALL {
        sim.push_behavior(Behavior::ErrorMidstream { reply: Reply::with_n_deltas(10), events: 2 });
        let bytes = body_bytes(send(&sim, wire, true).await).await;
        let events = match wire {
            Wire::BedrockConverse | Wire::BedrockInvoke => eventstream_events(&bytes),
            _ => decode_sse(&bytes),
        };
        if wire == Wire::OpenAiResponses {
            // The error event, then `response.failed`: both in one element.
            assert_eq!(events.len(), 4, "{wire:?}");
            assert_eq!(events[2].name, "error");
            assert_eq!(json(&events[2].data)["error"]["code"], "server_error");
            assert_eq!(events[3].name, "response.failed");
            continue;
        }
        assert_eq!(events.len(), 3, "{wire:?}");
        let last = &events[2];
        match wire {
            Wire::OpenAi => assert_eq!(json(&last.data)["error"]["type"], "server_error"),
            Wire::Anthropic => {
                assert_eq!(last.name, "error");
                assert_eq!(json(&last.data)["error"]["type"], "overloaded_error");
            }
            Wire::Gemini => assert_eq!(json(&last.data)["error"]["status"], "UNAVAILABLE"),
            _ => {
                assert_eq!(last.name, "exception:serviceUnavailableException");
                assert!(json(&last.data)["message"].is_string());
            }
        }
    }
}

#[tokio::test]
async fn replay_serves_raw_bytes_paced_per_event() {
    let sim = Simulator::start().await.unwrap();
    let raw = "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
    sim.push_behavior(Behavior::Replay {
        body: raw.into(),
        content_type: "text/event-stream",
        delay: Duration::from_millis(60),
    });
    let started = Instant::now();
    let mut response = send(&sim, Wire::OpenAi, true).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut reads = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        reads.push((started.elapsed(), chunk));
    }
    let all: Vec<u8> = reads.iter().flat_map(|(_, c)| c.to_vec()).collect();
    assert_eq!(all, raw.as_bytes());
    assert_eq!(reads.len(), 3, "one read per paced event");
    assert!(reads[2].0 - reads[0].0 >= Duration::from_millis(100));
}

#[tokio::test]
async fn delays_are_real_on_the_wire() {
    let sim = Simulator::start().await.unwrap();
    let reply = Reply::with_n_deltas(3)
        .headers_delay(Duration::from_millis(100))
        .first_delay(Duration::from_millis(100))
        .delay(Duration::from_millis(50));
    sim.push_behavior(reply.into());
    let started = Instant::now();
    let mut response = send(&sim, Wire::Anthropic, true).await;
    let head = started.elapsed();
    assert!(head >= Duration::from_millis(100), "{head:?}");
    let first = response.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(first_at >= Duration::from_millis(200), "{first_at:?}");
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start"));
    let mut count = 1;
    while response.chunk().await.unwrap().is_some() {
        count += 1;
    }
    // 9 events: each written on its own, 50 ms apart.
    assert_eq!(count, 9);
    assert!(started.elapsed() >= Duration::from_millis(200 + 8 * 50));
}

// ===== bookkeeping =====

#[tokio::test]
async fn requests_are_recorded_with_redacted_debug() {
    let sim = Simulator::start_with(SimConfig::default().with_history(2)).await.unwrap();
    send(&sim, Wire::OpenAi, false).await;
    send(&sim, Wire::Gemini, true).await.bytes().await.unwrap();
    send(&sim, Wire::BedrockConverse, true).await.bytes().await.unwrap();
    let recorded = sim.recorded();
    assert_eq!(recorded.len(), 2, "bounded history keeps the newest");
    assert_eq!(sim.requests(), 3);
    let gemini = &recorded[0];
    assert_eq!(gemini.wire, Some(Wire::Gemini));
    assert!(gemini.stream);
    assert_eq!(gemini.path(), "/v1beta/models/gemini-sim:streamGenerateContent");
    assert_eq!(gemini.path_and_query, "/v1beta/models/gemini-sim:streamGenerateContent?alt=sse");
    assert_eq!(gemini.model.as_deref(), Some("gemini-sim"));
    assert_eq!(gemini.header("authorization"), Some("Bearer sk-test-secret"));
    assert_eq!(gemini.json().unwrap()["contents"][0]["parts"][0]["text"], "hi");
    let debug = format!("{gemini:?}");
    assert!(!debug.contains("sk-test-secret"), "{debug}");
    assert!(debug.contains("<redacted>"));
    sim.clear_recorded();
    assert!(sim.recorded().is_empty());
}

#[tokio::test]
async fn unknown_paths_bad_json_and_big_bodies_are_rejected() {
    let sim = Simulator::start_with(SimConfig::default().with_max_body_bytes(1024)).await.unwrap();
    let base = sim.base_url();
    let response = client().post(format!("{base}/v2/whatever")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("/v2/whatever"));
    let response = client().get(format!("{base}/v1/chat/completions")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response =
        client().post(format!("{base}/v1/messages")).body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096));
    let response =
        client().post(format!("{base}/v1/chat/completions")).body(big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(sim.requests(), 4);
}

#[tokio::test]
async fn open_connections_drop_when_the_client_goes_away() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::with_n_deltas(1000).delay(Duration::from_millis(20)).into());
    let mut response = send(&sim, Wire::OpenAi, true).await;
    response.chunk().await.unwrap().unwrap();
    assert_eq!(sim.open_connections(), 1);
    drop(response);
    let started = Instant::now();
    assert!(sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn shutdown_closes_streams_in_flight() {
    let sim = Simulator::start().await.unwrap();
    sim.push_behavior(Reply::with_n_deltas(1000).delay(Duration::from_millis(20)).into());
    sim.push_behavior(Behavior::Hang);
    let mut response = send(&sim, Wire::Anthropic, true).await;
    response.chunk().await.unwrap().unwrap();
    let (path, body) = request_for(Wire::Anthropic, true);
    let hanging =
        tokio::spawn(client().post(format!("{}{path}", sim.base_url())).json(&body).send());
    while sim.requests() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let addr = sim.addr();
    let started = Instant::now();
    sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut rest_ok = true;
    while let Ok(Some(_)) = response.chunk().await.map_err(|_| rest_ok = false) {}
    assert!(!rest_ok, "the cut stream ends in an error");
    assert!(hanging.await.unwrap().is_err());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_streams_all_complete() {
    let reply = Reply::with_n_deltas(10).delay(Duration::from_millis(5));
    let sim =
        Simulator::start_with(SimConfig::default().with_default(reply.clone()).with_history(0))
            .await
            .unwrap();
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let (path, body) = request_for(Wire::Anthropic, true);
    let url = format!("{}{path}", sim.base_url());
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let request = client.post(&url).json(&body);
            tokio::spawn(async move { request.send().await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    let started = Instant::now();
    for task in tasks {
        let events = decode_sse(&task.await.unwrap());
        assert!(has_terminal(Wire::Anthropic, &events));
        assert_eq!(stream_text(Wire::Anthropic, &events), reply.text_content());
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(sim.requests(), 500);
}

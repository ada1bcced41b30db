use bytes::BytesMut;
use prism_types::{ChatChunk, Content, ContentPart, Delta, FunctionCallDelta, ToolCallDelta};
use serde_json::json;

use super::*;
use crate::StreamEncoder;

fn decode(v: Value) -> Decoded {
    decode_request(v.to_string().as_bytes()).unwrap()
}

fn decode_err(v: Value) -> IngressError {
    decode_request(v.to_string().as_bytes()).unwrap_err()
}

#[test]
fn a_full_request_maps_to_the_canonical_form() {
    let d = decode(json!({
        "model": "m", "max_tokens": 500, "stream": true,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 0.5, "top_k": 7, "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "context_management": {"edits": []},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "text", "text": "thanks"}
            ]}
        ]
    }));
    assert!(d.native_only.is_none());
    let r = &d.request;
    assert_eq!(r.max_completion_tokens, Some(500));
    assert!(r.include_usage());
    assert_eq!(r.ext.thinking_budget, Some(2048));
    assert_eq!(r.ext.top_k, Some(7));
    assert_eq!(r.user.as_deref(), Some("u1"));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(r.messages.len(), 5, "{:#?}", r.messages);
    assert!(
        matches!(&r.messages[0], Message::System { content: Content::Text(t), .. } if t == "Be brief.")
    );
    match &r.messages[1] {
        Message::User { content: Content::Parts(p), .. } => {
            assert!(
                matches!(&p[1], ContentPart::ImageUrl { image_url } if image_url.url == "data:image/png;base64,AAA")
            );
        }
        other => panic!("{other:?}"),
    }
    match &r.messages[2] {
        Message::Assistant { tool_calls: Some(calls), thinking_blocks: Some(blocks), .. } => {
            assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
            assert_eq!(
                blocks[0],
                ThinkingBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&r.messages[3], Message::Tool { tool_call_id, content } if tool_call_id == "toolu_1" && content.joined_text() == "18C")
    );
    assert!(matches!(&r.messages[4], Message::User { .. }));
}

#[test]
fn errors_name_the_parameter() {
    let e = decode_err(json!({"model": "m", "messages": []}));
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
    assert!(e.message.contains("max_tokens: Field required"));
    let e = decode_err(json!({"max_tokens": 1, "messages": []}));
    assert_eq!(e.param.as_deref(), Some("model"));
    let e = decode_err(
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]}),
    );
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
    let e = decode_err(json!({"model": "m", "max_tokens": "ten", "messages": []}));
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
    assert!(decode_request(b"not json").is_err());
}

#[test]
fn server_tools_need_the_native_lane() {
    let d = decode(
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}, {"name": "f", "input_schema": {"type": "object"}}]}),
    );
    assert_eq!(d.native_only.unwrap().param.as_deref(), Some("tools[0].type"));
    assert_eq!(d.request.tools.unwrap().len(), 1);
}

#[test]
fn adaptive_thinking_takes_the_effort() {
    let d = decode(
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}),
    );
    assert_eq!(d.request.reasoning_effort.as_deref(), Some("xhigh"));
}

fn ctx() -> EncodeContext {
    EncodeContext { id: "msg_1".into(), created: 1, model: "pub".into() }
}

fn chunk(delta: Delta, finish: Option<FinishReason>) -> ChatChunk {
    let mut c = ChatChunk::new("c", 1, "pub");
    c.choices.push(prism_types::ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    });
    c
}

fn events(out: &BytesMut) -> Vec<(String, Value)> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn parallel_tool_calls_do_not_interleave_and_usage_maps_cache_fields() {
    let mut enc = MessagesEncoder::new(ctx()).with_input_tokens(42);
    let mut out = BytesMut::new();
    let call = |index, id: Option<&str>, name: Option<&str>, args: &str| ToolCallDelta {
        index,
        id: id.map(Into::into),
        kind: id.map(|_| "function".into()),
        function: Some(FunctionCallDelta {
            name: name.map(Into::into),
            arguments: Some(args.into()),
        }),
    };
    enc.chunk(&chunk(Delta::role(), None), None, &mut out);
    enc.chunk(
        &chunk(Delta { content: Some("Checking.".into()), ..Delta::default() }, None),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta {
                tool_calls: Some(vec![call(0, Some("call.1"), Some("a"), "{\"x\":")]),
                ..Delta::default()
            },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta {
                tool_calls: Some(vec![call(1, Some("call_2"), Some("b"), "{}")]),
                ..Delta::default()
            },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta { tool_calls: Some(vec![call(0, None, None, "1}")]), ..Delta::default() },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(&chunk(Delta::default(), Some(FinishReason::ToolCalls)), None, &mut out);
    let mut usage = Usage::new(100, 20);
    usage.prompt_tokens_details =
        Some(prism_types::PromptTokensDetails { cached_tokens: Some(30), audio_tokens: None });
    usage.extra.insert("cache_creation_input_tokens".into(), json!(10));
    let mut last = ChatChunk::new("c", 1, "pub");
    last.usage = Some(usage);
    enc.chunk(&last, None, &mut out);
    enc.finish(&mut out);
    let ev = events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 42);
    assert_eq!(ev[4].1["content_block"]["id"], "call_1", "ids sanitised");
    assert_eq!(ev[8].1["index"], 2);
    assert_eq!(ev[8].1["content_block"]["name"], "b");
    let delta = &ev[11].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"],
        json!({"input_tokens": 60, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 30, "output_tokens": 20})
    );
}

#[test]
fn a_failure_is_one_error_event_and_nothing_after() {
    let mut enc = MessagesEncoder::new(ctx());
    let mut out = BytesMut::new();
    enc.chunk(
        &chunk(Delta { content: Some("Hi".into()), ..Delta::default() }, None),
        None,
        &mut out,
    );
    enc.keepalive(&mut out);
    enc.fail(&ErrorObject::new("upstream_error", "upstream cut"), &mut out);
    enc.finish(&mut out);
    enc.keepalive(&mut out);
    let ev = events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["message_start", "content_block_start", "content_block_delta", "ping", "error"]
    );
    assert_eq!(
        ev[4].1,
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream cut"}})
    );
}

#[test]
fn errors_use_anthropic_types_and_statuses() {
    let e = ErrorObject::new("server_error", "busy");
    let (status, body) = error_response(503, &e);
    assert_eq!(status, 529);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    );
    assert_eq!(error_response(401, &e).0, 401);
    assert_eq!(error_type_for(404).1, "not_found_error");
}

#[test]
fn the_estimate_counts_text_tools_and_framing() {
    let small = decode(
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .request;
    let big = decode(json!({"model": "m", "max_tokens": 1, "system": "x".repeat(400),
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}]}))
    .request;
    assert_eq!(estimate_input_tokens(&small), 3 + 4 + 1);
    assert!(estimate_input_tokens(&big) > estimate_input_tokens(&small) + 100);
    assert_eq!(count_tokens_body(12), br#"{"input_tokens":12}"#);
}

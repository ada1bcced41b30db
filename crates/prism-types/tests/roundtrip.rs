//! Round trips of OpenAI-shaped requests, completions and chunks through the wire types.

#![expect(clippy::expect_used, reason = "test helpers fail loudly")]

use prism_types::{
    ChatChunk, ChatCompletion, ChatRequest, Content, ContentPart, Delta, ErrorBody, FinishReason,
    Message, Stop, ThinkingBlock, ToolCallDelta, ToolChoice, ToolChoiceMode, Usage,
};
use serde_json::{Value, json};

fn reparse<T: serde::Serialize + serde::de::DeserializeOwned>(v: &Value) -> Value {
    let typed: T = serde_json::from_value(v.clone()).expect("deserialise");
    serde_json::to_value(&typed).expect("serialise")
}

#[test]
fn request_with_everything_round_trips_and_keeps_unknown_fields() {
    let req = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ], "name": "ann"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_completion_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "n": 1,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "user": "u-1",
        "reasoning_effort": "low",
        "metadata": {"trace": "abc"},
        "service_tier": "flex",
        "prediction": {"type": "content", "content": "x"}
    });
    // Assistant messages omit `content: null` on the way out; everything else must survive.
    let mut expected = req.clone();
    expected["messages"][3].as_object_mut().unwrap().remove("content");
    assert_eq!(reparse::<ChatRequest>(&req), expected);

    let typed: ChatRequest = serde_json::from_value(req).unwrap();
    assert!(typed.is_stream());
    assert!(typed.include_usage());
    assert_eq!(typed.output_token_limit(), Some(256));
    assert_eq!(typed.stop, Some(Stop::Many(vec!["\n\n".into(), "END".into()])));
    assert_eq!(typed.extra.get("service_tier"), Some(&json!("flex")));
    assert!(matches!(typed.tool_choice, Some(ToolChoice::Named(_))));
    match &typed.messages[2] {
        Message::User { content: Content::Parts(parts), .. } => match &parts[1] {
            ContentPart::ImageUrl { image_url } => {
                assert_eq!(image_url.as_data_url(), Some(("image/png", "iVBORw0KGgo=")));
            }
            other => panic!("unexpected part {other:?}"),
        },
        other => panic!("unexpected message {other:?}"),
    }
}

#[test]
fn tool_choice_modes_parse() {
    for (text, mode) in [
        ("\"none\"", ToolChoiceMode::None),
        ("\"auto\"", ToolChoiceMode::Auto),
        ("\"required\"", ToolChoiceMode::Required),
    ] {
        let parsed: ToolChoice = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, ToolChoice::Mode(mode));
    }
    assert!(serde_json::from_str::<ToolChoice>("\"sometimes\"").is_err());
}

#[test]
fn request_rejects_unknown_role_and_missing_messages() {
    assert!(serde_json::from_value::<ChatRequest>(json!({"model": "m"})).is_err());
    let bad = json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]});
    assert!(serde_json::from_value::<ChatRequest>(bad).is_err());
}

#[test]
fn openai_chunks_round_trip_byte_for_byte() {
    // As OpenAI emits them (key order included), minus `usage: null` which we omit.
    let lines = [
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
    ];
    for line in lines {
        let chunk: ChatChunk = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&chunk).unwrap(), line);
    }
}

#[test]
fn chunk_tolerates_null_choices_and_missing_fields() {
    let chunk: ChatChunk =
        serde_json::from_str(r#"{"id":"","choices":null,"created":0,"model":""}"#).unwrap();
    assert!(chunk.choices.is_empty());
    assert_eq!(chunk.object, "chat.completion.chunk");
}

#[test]
fn built_chunks_serialise_like_openai() {
    let first = ChatChunk::new("chatcmpl-x", 1, "m").with_delta(0, Delta::role());
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        r#"{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]}"#
    );
    let call = ChatChunk::new("chatcmpl-x", 1, "m").with_delta(
        0,
        Delta {
            tool_calls: Some(vec![ToolCallDelta::start(0, "call_1", "f")]),
            ..Delta::default()
        },
    );
    let v = serde_json::to_value(&call).unwrap();
    assert_eq!(
        v["choices"][0]["delta"]["tool_calls"][0],
        json!({"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}})
    );
    let usage = ChatChunk::new("chatcmpl-x", 1, "m").with_usage(Usage::new(3, 4));
    let v = serde_json::to_value(&usage).unwrap();
    assert_eq!(v["choices"], json!([]));
    assert_eq!(v["usage"]["total_tokens"], json!(7));
    let fin = ChatChunk::new("chatcmpl-x", 1, "m").with_finish(0, FinishReason::Length);
    let v = serde_json::to_value(&fin).unwrap();
    assert_eq!(v["choices"][0]["delta"], json!({}));
    assert_eq!(v["choices"][0]["finish_reason"], json!("length"));
}

#[test]
fn completion_round_trips() {
    let body = json!({
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "system_fingerprint": "fp_2"
    });
    assert_eq!(reparse::<ChatCompletion>(&body), body);
}

#[test]
fn error_body_round_trips() {
    let body = json!({"error": {"message": "Unsupported parameter: 'max_tokens'", "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}});
    assert_eq!(reparse::<ErrorBody>(&body), body);
}

#[test]
fn thinking_blocks_round_trip_in_messages_deltas_and_completions() {
    // An assistant turn echoed back LiteLLM-style: signed thinking, redacted thinking, tool call.
    let req = json!({
        "model": "claude",
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null,
             "thinking_blocks": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "EqQBsig=="},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                {"type": "thinking", "thinking": "", "signature": "omitted-display-sig"}
             ],
             "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "3C"}
        ]
    });
    let mut expected = req.clone();
    expected["messages"][1].as_object_mut().unwrap().remove("content");
    assert_eq!(reparse::<ChatRequest>(&req), expected);
    let typed: ChatRequest = serde_json::from_value(req).unwrap();
    let Message::Assistant { thinking_blocks: Some(blocks), .. } = &typed.messages[1] else {
        panic!("thinking_blocks lost: {:?}", typed.messages[1]);
    };
    assert_eq!(
        blocks[0],
        ThinkingBlock::Thinking {
            thinking: "Use the tool.".into(),
            signature: Some("EqQBsig==".into())
        }
    );
    assert_eq!(
        blocks[1],
        ThinkingBlock::RedactedThinking { data: "EmwKAhgBEgy3va3pzix/LafPsn4a".into() }
    );
    assert_eq!(blocks[2], ThinkingBlock::signature("omitted-display-sig"));
    assert!(blocks.iter().all(ThinkingBlock::is_replayable));

    // Missing `thinking` text parses as empty; a missing signature is omitted on the way out
    // and makes the block unreplayable; unknown block types are rejected.
    let unsigned: ThinkingBlock =
        serde_json::from_value(json!({"type": "thinking", "thinking": "x"})).unwrap();
    assert!(!unsigned.is_replayable());
    assert_eq!(
        serde_json::to_value(&unsigned).unwrap(),
        json!({"type": "thinking", "thinking": "x"})
    );
    let sig_only: ThinkingBlock =
        serde_json::from_value(json!({"type": "thinking", "signature": "s"})).unwrap();
    assert_eq!(sig_only, ThinkingBlock::signature("s"));
    assert!(!ThinkingBlock::RedactedThinking { data: String::new() }.is_replayable());
    assert!(
        serde_json::from_value::<ThinkingBlock>(json!({"type": "musing", "data": "x"})).is_err()
    );

    // The streamed signature delta, byte for byte.
    let line = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"EqQB"}]},"logprobs":null,"finish_reason":null}]}"#;
    let chunk: ChatChunk = serde_json::from_str(line).unwrap();
    assert_eq!(chunk.choices[0].delta, Delta::thinking_block(ThinkingBlock::signature("EqQB")));
    assert!(!chunk.choices[0].delta.is_empty());
    assert_eq!(serde_json::to_string(&chunk).unwrap(), line);

    // From upstreams, unknown block types are skipped rather than failing the stream, and a
    // null text reads as empty; the strict request side rejects them (above).
    let tolerant: ChatChunk = serde_json::from_str(
        r#"{"id":"x","choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"musing"},{"type":"thinking","thinking":null,"signature":"s"}]}}]}"#,
    )
    .unwrap();
    assert_eq!(
        tolerant.choices[0].delta.thinking_blocks,
        Some(vec![ThinkingBlock::signature("s")])
    );
    let unknown_only: ChatChunk = serde_json::from_str(
        r#"{"id":"x","choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"musing"}]}}]}"#,
    )
    .unwrap();
    assert!(unknown_only.choices[0].delta.is_empty());

    // A whole completion carries reasoning text and the blocks side by side.
    let body = json!({
        "id": "chatcmpl-3", "object": "chat.completion", "created": 1, "model": "claude",
        "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "3C in Oslo.", "refusal": null,
            "reasoning_content": "Use the tool.",
            "thinking_blocks": [{"type": "thinking", "thinking": "Use the tool.", "signature": "EqQBsig=="},
                                {"type": "redacted_thinking", "data": "Emw"}]
        }, "logprobs": null, "finish_reason": "stop"}],
        "system_fingerprint": null
    });
    assert_eq!(reparse::<ChatCompletion>(&body), body);
    // Absent blocks stay absent.
    let plain = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": null},
        "logprobs": null, "finish_reason": "stop"}], "system_fingerprint": null});
    assert_eq!(reparse::<ChatCompletion>(&plain), plain);
}

/// Found by the `requests` fuzz target: an integer too big for `u64` in an unknown field becomes
/// an `f64`, and serde_json's default (faster, not exact) float parser read the number Prism
/// wrote for it back one ulp off, so a forwarded request was not the request. With
/// `float_roundtrip` every float survives being forwarded.
#[test]
fn unknown_fields_with_long_numbers_survive_being_forwarded() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],
        "x_big":44444444444444444444444444444444444444444444441,
        "x_float":0.30000000000000004,"x_tiny":5e-324,"x_digits":1.7976931348623157e308,
        "x_nested":{"v":[2.2250738585072014e-308,123456789012345678901234567890]}}"#;
    let first: ChatRequest = serde_json::from_slice(body).expect("decode");
    let forwarded = serde_json::to_vec(&first).expect("encode");
    let again: ChatRequest = serde_json::from_slice(&forwarded).expect("decode again");
    assert_eq!(again, first);
    // And each is the correctly rounded value of what the client wrote (std's parser is exact).
    for (key, text) in [
        ("x_big", "44444444444444444444444444444444444444444444441"),
        ("x_float", "0.30000000000000004"),
    ] {
        let exact: f64 = text.parse().expect("a number");
        assert_eq!(first.extra[key].as_f64(), Some(exact), "{key}");
    }
}

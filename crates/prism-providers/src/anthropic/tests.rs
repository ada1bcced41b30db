//! Tests of the Anthropic error table, the event translator's API (as Bedrock uses it) and a
//! replay of the recorded reference streams when they are present.

use std::path::Path;

use prism_types::{ChatChunk, Delta, FinishReason, ThinkingBlock};

use super::*;
use crate::translate::{ByteTranslator, OutChunk};

fn ctx(include_usage: bool, usage_on_finish: bool) -> StreamContext {
    StreamContext { include_usage, usage_on_finish, ..StreamContext::new("chatcmpl-t", 7, "pub") }
}

fn chunks(out: &[OutChunk]) -> Vec<&ChatChunk> {
    out.iter().map(|c| &c.chunk).collect()
}

#[test]
fn error_table() {
    let cases = [
        ("invalid_request_error", 400, 400, "invalid_request_error", None),
        (
            "authentication_error",
            401,
            502,
            "upstream_error",
            Some("upstream_authentication_failed"),
        ),
        ("billing_error", 402, 429, "insufficient_quota", Some("insufficient_quota")),
        ("permission_error", 403, 403, "permission_error", None),
        ("not_found_error", 404, 404, "invalid_request_error", Some("model_not_found")),
        ("request_too_large", 413, 413, "invalid_request_error", Some("request_too_large")),
        ("rate_limit_error", 429, 429, "rate_limit_error", Some("rate_limit_exceeded")),
        ("api_error", 500, 500, "server_error", None),
        ("timeout_error", 504, 504, "timeout_error", Some("timeout")),
        ("overloaded_error", 529, 503, "server_error", Some("overloaded")),
    ];
    for (kind, http, status, openai_type, code) in cases {
        let body = format!(
            r#"{{"type":"error","error":{{"type":"{kind}","message":"m {kind}"}},"request_id":"req_1"}}"#
        );
        let err = map_error(http, body.as_bytes());
        assert_eq!(err.status, status, "{kind}");
        assert_eq!(err.error.kind, openai_type, "{kind}");
        assert_eq!(err.error.code.as_deref(), code, "{kind}");
        assert_eq!(err.error.message, format!("m {kind}"));
        assert_eq!(err.retryable, status == 429 || status >= 500, "{kind}");
    }
}

#[test]
fn error_bodies_without_a_known_shape() {
    let too_long = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    assert_eq!(map_error(400, too_long).error.code.as_deref(), Some("context_length_exceeded"));
    // Not JSON (a proxy's HTML page): the status decides.
    let err = map_error(529, b"<html>overloaded</html>");
    assert_eq!((err.status, err.error.code.as_deref()), (503, Some("overloaded")));
    assert_eq!(map_error(401, b"").status, 502);
    assert_eq!(map_error(404, b"nope").status, 404);
    // An unknown error type keeps the HTTP status.
    let err = map_error(
        418,
        br#"{"type":"error","error":{"type":"teapot_error","message":"short and stout"}}"#,
    );
    assert_eq!((err.status, err.error.message.as_str()), (418, "short and stout"));
}

#[test]
fn stop_reasons() {
    let cases = [
        (None, FinishReason::Stop, None),
        (Some("end_turn"), FinishReason::Stop, None),
        (Some("stop_sequence"), FinishReason::Stop, None),
        (Some("max_tokens"), FinishReason::Length, None),
        (Some("tool_use"), FinishReason::ToolCalls, None),
        (Some("refusal"), FinishReason::ContentFilter, None),
        (Some("pause_turn"), FinishReason::Stop, Some("pause_turn")),
        (
            Some("model_context_window_exceeded"),
            FinishReason::Length,
            Some("model_context_window_exceeded"),
        ),
        (Some("something_new"), FinishReason::Stop, Some("something_new")),
    ];
    for (native, reason, exposed) in cases {
        assert_eq!(map_stop_reason(native), (reason, exposed), "{native:?}");
    }
}

#[test]
fn usage_counts_cache_into_prompt_tokens() {
    let u = usage_from_wire(&wire::WireUsage {
        input_tokens: Some(12),
        cache_creation_input_tokens: Some(248),
        cache_read_input_tokens: Some(1800),
        output_tokens: Some(9),
    });
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (2060, 9, 2069));
    assert_eq!(u.prompt_tokens_details.and_then(|d| d.cached_tokens), Some(1800));
    assert_eq!(u.extra.get("cache_creation_input_tokens"), Some(&serde_json::json!(248)));
}

/// The API Bedrock's InvokeModelWithResponseStream uses: one event JSON at a time.
#[test]
fn event_translator_feeds_json_events() {
    let mut t = EventTranslator::new(ctx(true, true));
    let mut out = Vec::new();
    let events = [
        r#"{"type":"message_start","message":{"id":"msg_bdrk_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}"#,
    ];
    for e in events {
        t.feed_json(e.as_bytes(), &mut out).unwrap();
        assert!(!t.is_done());
    }
    assert!(matches!(t.finish(&mut out), Err(TranslateError::Truncated { provider: "anthropic" })));
    t.feed_json(br#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":1}}"#, &mut out)
        .unwrap();
    assert!(t.is_done());
    let summary = t.finish(&mut out).unwrap();
    assert_eq!(summary.finish_reasons, vec![(0, FinishReason::ToolCalls)]);
    // The invocation metrics never overwrite the message's own usage.
    assert_eq!(
        summary.usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((5, 7))
    );
    let c = chunks(&out);
    assert_eq!(c.len(), 5, "role, call start, arguments, finish, usage");
    assert!(c.iter().all(|c| c.id == "chatcmpl-t" && c.model == "pub" && c.created == 7));
    assert!(c[4].choices.is_empty() && c[4].usage.is_some());
    // After message_stop only pings are acceptable.
    t.feed_json(br#"{"type":"ping"}"#, &mut out).unwrap();
    assert!(matches!(
        t.feed_json(br#"{"type":"content_block_stop","index":0}"#, &mut out),
        Err(TranslateError::UnexpectedEvent { .. })
    ));
}

#[test]
fn event_translator_errors() {
    let mut t = EventTranslator::new(ctx(false, false));
    let mut out = Vec::new();
    assert!(matches!(t.feed_json(b"{not json", &mut out), Err(TranslateError::InvalidJson { .. })));
    let mut t = EventTranslator::new(ctx(false, false));
    let err = t
        .feed_json(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &mut out,
        )
        .unwrap_err();
    let TranslateError::Upstream(e) = err else { panic!("expected an upstream error") };
    assert_eq!((e.status, e.error.code.as_deref()), (503, Some("overloaded")));
    assert!(out.is_empty(), "nothing is emitted before the error");
}

#[test]
fn tolerates_streams_without_message_start_and_whole_blocks() {
    let mut t = EventTranslator::new(ctx(false, false));
    let mut out = Vec::new();
    for e in [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"x":[1]}}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        t.feed_json(e.as_bytes(), &mut out).unwrap();
    }
    let rendered: Vec<String> = out
        .iter()
        .map(|c| {
            let mut b = Vec::new();
            c.write_json(&mut b);
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            v["choices"][0]["delta"].to_string()
                + " "
                + &v["choices"][0]["finish_reason"].to_string()
        })
        .collect();
    assert_eq!(
        rendered,
        [
            r#"{"content":"","role":"assistant"} null"#,
            r#"{"content":"Hi"} null"#,
            r#"{"tool_calls":[{"function":{"arguments":"","name":"f"},"id":"t","index":0,"type":"function"}]} null"#,
            r#"{"tool_calls":[{"function":{"arguments":"{\"x\":[1]}"},"index":0}]} null"#,
            r#"{} "tool_calls""#,
        ]
    );
    // The usage policy was off: nothing carries usage.
    assert!(out.iter().all(|c| c.chunk.usage.is_none()));
}

/// Signatures and redacted blocks reach the client as `thinking_blocks` deltas, in block order,
/// each after the reasoning text it closes; whole blocks in `message_start` do the same.
#[test]
fn thinking_signatures_and_redacted_blocks_are_streamed() {
    let mut t = EventTranslator::new(ctx(false, false));
    let mut out = Vec::new();
    for e in [
        r#"{"type":"message_start","message":{"id":"msg_t","content":[{"type":"thinking","thinking":"Earlier.","signature":"sig0"}],"usage":{"input_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Need "}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"a tool."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig1"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"opaque=="}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        // Adaptive thinking with the display omitted: a signature and no text.
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"signature_delta","signature":"sig2"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        // A signature delta outside a thinking block is not a thinking block's.
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"signature_delta","signature":"stray"}}"#,
        r#"{"type":"content_block_stop","index":3}"#,
        r#"{"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        r#"{"type":"content_block_stop","index":4}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        t.feed_json(e.as_bytes(), &mut out).unwrap();
    }
    let deltas: Vec<&Delta> = out.iter().flat_map(|c| &c.chunk.choices).map(|c| &c.delta).collect();
    let sig = |s: &str| Delta::thinking_block(ThinkingBlock::signature(s));
    assert_eq!(deltas[1], &Delta::reasoning("Earlier."));
    assert_eq!(deltas[2], &sig("sig0"));
    assert_eq!(deltas[3], &Delta::reasoning("Need "));
    assert_eq!(deltas[4], &Delta::reasoning("a tool."));
    assert_eq!(deltas[5], &sig("sig1"));
    assert_eq!(
        deltas[6],
        &Delta::thinking_block(ThinkingBlock::RedactedThinking { data: "opaque==".into() })
    );
    assert_eq!(deltas[7], &sig("sig2"));
    assert!(deltas[8].tool_calls.is_some(), "the tool call follows directly: {:?}", deltas[8]);
    let blocks = deltas.iter().filter(|d| d.thinking_blocks.is_some()).count();
    assert_eq!(blocks, 4, "the stray signature is dropped");
}

#[test]
fn whole_message_translation() {
    let c = ctx(false, false);
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[
        {"type":"thinking","thinking":"hmm","signature":"sig"},
        {"type":"redacted_thinking","data":"xx"},
        {"type":"text","text":"Calling."},
        {"type":"server_tool_use","id":"srv","name":"web_search","input":{"q":1}},
        {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],
        "stop_reason":"tool_use","usage":{"input_tokens":3,"cache_read_input_tokens":2,"output_tokens":4}}"#;
    let done = translate_message(&c, body).unwrap();
    let m = &done.choices[0].message;
    assert_eq!(m.content.as_deref(), Some("Calling."));
    assert_eq!(m.reasoning_content.as_deref(), Some("hmm"));
    assert_eq!(
        m.thinking_blocks,
        Some(vec![
            ThinkingBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) },
            ThinkingBlock::RedactedThinking { data: "xx".into() },
        ])
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].function.arguments.as_str()),
        ("toolu_1", r#"{"a":1}"#)
    );
    assert_eq!(done.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(done.usage.as_ref().map(|u| u.prompt_tokens), Some(5));
    assert_eq!((done.id.as_str(), done.model.as_str()), ("chatcmpl-t", "pub"));

    let err =
        translate_message(&c, br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#)
            .unwrap_err();
    assert!(matches!(err, TranslateError::Upstream(ref e) if e.status == 500));
    assert!(matches!(translate_message(&c, b"[]"), Err(TranslateError::InvalidJson { .. })));
}

#[test]
fn request_headers_and_credentials() {
    let req: ChatRequest =
        serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
    let mut d = Deployment::new(crate::ProviderKind::Anthropic, "http://localhost:9000/", "claude");
    d.credentials = Credentials::Bearer(crate::Secret::new("tok"));
    let r = build_request(&req, &d, &BuildOptions { stream: false, ..BuildOptions::default() })
        .unwrap();
    assert_eq!(r.uri(), "http://localhost:9000/v1/messages");
    assert_eq!(r.headers()["authorization"], "Bearer tok");
    assert_eq!(r.headers()["anthropic-version"], API_VERSION);
    assert!(r.headers().get("x-api-key").is_none() && r.headers().get("accept").is_none());
    let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    assert!(body.get("stream").is_none());
    d.credentials = Credentials::Aws {
        access_key_id: crate::Secret::new("a"),
        secret_access_key: crate::Secret::new("b"),
        session_token: None,
    };
    assert!(matches!(
        build_request(&req, &d, &BuildOptions::default()),
        Err(TranslateError::Signing(_))
    ));
}

/// Replays the recorded Anthropic streams (when `shared/reference-streams` is present) and checks
/// the invariants every translated stream keeps.
#[test]
fn reference_streams_keep_the_invariants() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference-streams/anthropic");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut seen = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let sse = if name.ends_with(".raw.sse") {
            bytes
        } else if name.ends_with(".chunks.txt") {
            // One payload per line: put the SSE framing back.
            let text = String::from_utf8(bytes).unwrap();
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let kind: serde_json::Value = serde_json::from_str(l).unwrap();
                    format!("event: {}\ndata: {l}\n\n", kind["type"].as_str().unwrap())
                })
                .collect::<String>()
                .into_bytes()
        } else {
            continue;
        };
        seen += 1;
        let mut p = StreamPipeline::new(ctx(true, true));
        let mut out = Vec::new();
        let fed = p.feed(&sse, &mut out);
        if name.starts_with("spliced-message-start") {
            assert!(matches!(fed, Err(TranslateError::UnexpectedEvent { .. })), "{name}");
            continue;
        }
        fed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let summary = p.finish(&mut out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.finish_reasons.len(), 1, "{name}");
        let mut next_tool = 0;
        let mut finishes = 0;
        for (i, c) in out.iter().enumerate() {
            assert_eq!(
                (c.chunk.id.as_str(), c.chunk.model.as_str()),
                ("chatcmpl-t", "pub"),
                "{name}"
            );
            for choice in &c.chunk.choices {
                assert_eq!(choice.delta.role.is_some(), i == 0, "{name}: role only first");
                for call in choice.delta.tool_calls.iter().flatten() {
                    if call.id.is_some() {
                        assert_eq!(call.index, next_tool, "{name}: dense tool indices");
                        next_tool += 1;
                    } else {
                        assert!(call.index < next_tool, "{name}");
                    }
                }
                finishes += usize::from(choice.finish_reason.is_some());
            }
        }
        assert_eq!(finishes, 1, "{name}");
        // Every signed or redacted thinking block reaches the client as replay data.
        let text = String::from_utf8_lossy(&sse);
        let replay: Vec<&ThinkingBlock> = out
            .iter()
            .flat_map(|c| &c.chunk.choices)
            .flat_map(|c| c.delta.thinking_blocks.iter().flatten())
            .collect();
        let signed = replay.iter().filter(|b| matches!(b, ThinkingBlock::Thinking { .. })).count();
        assert_eq!(signed, text.matches("\"signature_delta\"").count(), "{name}: signatures");
        let redacted = replay.len() - signed;
        assert_eq!(
            redacted,
            text.matches("\"redacted_thinking\"").count(),
            "{name}: redacted blocks"
        );
        assert!(
            out.last().is_some_and(|c| c.chunk.choices.is_empty() && c.chunk.usage.is_some()),
            "{name}"
        );
    }
    assert!(seen >= 10, "only {seen} reference streams found");
}

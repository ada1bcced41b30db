//! Tests of the OpenAI request builder, error mapping and the pass-through's edge cases.

use prism_types::ThinkingBlock;
use serde_json::{Value, json};

use super::*;
use crate::{ProviderKind, Secret};

fn request(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

fn deployment(base: &str) -> Deployment {
    let mut d = Deployment::new(ProviderKind::OpenAi, base, "up-model");
    d.credentials = Credentials::ApiKey(Secret::new("sk-test"));
    d
}

fn build(
    req: &ChatRequest,
    d: &Deployment,
    stream: bool,
    request_usage: bool,
) -> (http::Request<Bytes>, Value) {
    let r =
        build_request(req, d, &BuildOptions { stream, request_usage, ..BuildOptions::default() })
            .unwrap();
    let body = serde_json::from_slice(r.body()).unwrap();
    (r, body)
}

#[test]
fn request_keeps_the_client_body_and_sets_model_stream_and_usage() {
    let req = request(
        json!({"model": "public", "messages": [{"role": "user", "content": "hi"}], "store": true,
        "prediction": {"type": "content", "content": "x"}, "max_tokens": 9}),
    );
    let d = deployment("https://api.openai.com");
    let (r, body) = build(&req, &d, true, true);
    assert_eq!(r.uri(), "https://api.openai.com/v1/chat/completions");
    assert_eq!(r.headers()["authorization"], "Bearer sk-test");
    assert_eq!(r.headers()["accept"], "text/event-stream");
    assert_eq!(
        body,
        json!({"model": "up-model", "messages": [{"role": "user", "content": "hi"}], "stream": true,
            "stream_options": {"include_usage": true}, "max_tokens": 9, "store": true,
            "prediction": {"type": "content", "content": "x"}})
    );
    let (_, body) = build(&req, &d, false, true);
    assert_eq!(body["stream"], json!(false));
    assert!(
        body.get("stream_options").is_none(),
        "non-streaming requests never carry stream_options"
    );
}

#[test]
fn stream_options_follow_client_gateway_and_deployment() {
    let asked = request(json!({"model": "p", "messages": [], "stream": true,
        "stream_options": {"include_usage": true, "include_obfuscation": false}}));
    let not_asked = request(json!({"model": "p", "messages": [], "stream": true,
        "stream_options": {"include_usage": false, "include_obfuscation": false}}));
    let d = deployment("https://api.openai.com");
    assert_eq!(
        build(&asked, &d, true, false).1["stream_options"],
        json!({"include_usage": true, "include_obfuscation": false})
    );
    assert_eq!(
        build(&not_asked, &d, true, false).1["stream_options"],
        json!({"include_obfuscation": false})
    );
    assert_eq!(
        build(&not_asked, &d, true, true).1["stream_options"],
        json!({"include_usage": true, "include_obfuscation": false})
    );
    let bare =
        request(json!({"model": "p", "messages": [], "stream_options": {"include_usage": false}}));
    assert!(build(&bare, &d, true, false).1.get("stream_options").is_none());
    let mut strict = deployment("http://localhost:8000/v1");
    strict.supports_stream_usage = false;
    let (r, body) = build(&asked, &strict, true, true);
    assert_eq!(r.uri(), "http://localhost:8000/v1/chat/completions");
    assert!(body.get("stream_options").is_none());
}

#[test]
fn credentials_by_host() {
    let req = request(json!({"model": "p", "messages": []}));
    let azure = deployment("https://res.openai.azure.com/openai");
    let (r, _) = build(&req, &azure, true, true);
    assert_eq!(r.uri(), "https://res.openai.azure.com/openai/v1/chat/completions");
    assert_eq!(r.headers()["api-key"], "sk-test");
    assert!(r.headers().get("authorization").is_none());
    let mut bearer = deployment("https://res.openai.azure.com/openai");
    bearer.credentials = Credentials::Bearer(Secret::new("entra"));
    assert_eq!(build(&req, &bearer, true, true).0.headers()["authorization"], "Bearer entra");
    let mut none = deployment("http://localhost:1");
    none.credentials = Credentials::None;
    assert!(build(&req, &none, true, true).0.headers().get("authorization").is_none());
    none.credentials = Credentials::Aws {
        access_key_id: Secret::new("a"),
        secret_access_key: Secret::new("b"),
        session_token: None,
    };
    assert!(matches!(
        build_request(&req, &none, &BuildOptions::default()),
        Err(TranslateError::Signing(_))
    ));
}

#[test]
fn error_responses() {
    let e = map_error(
        400,
        br#"{"error":{"message":"Unsupported parameter: 'max_tokens'","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#,
    );
    assert_eq!((e.status, e.retryable), (400, false));
    assert_eq!(e.error.kind, "invalid_request_error");
    assert_eq!(
        (e.error.param.as_deref(), e.error.code.as_deref()),
        (Some("max_tokens"), Some("unsupported_parameter"))
    );
    let e = map_error(401, br#"{"error":{"message":"Incorrect API key provided: sk-...","type":"invalid_request_error","code":"invalid_api_key"}}"#);
    assert_eq!((e.status, e.error.code.as_deref()), (502, Some("upstream_authentication_failed")));
    assert!(
        !e.error.message.contains("sk-"),
        "the upstream's message about our key is not passed on"
    );
    let e = map_error(429, b"Too Many Requests");
    assert_eq!((e.status, e.error.kind.as_str(), e.retryable), (429, "rate_limit_error", true));
    assert_eq!(map_error(529, b"").status, 503);
    // A compatible server with a numeric code and no type.
    let e = map_error(500, br#"{"error":{"message":"CUDA out of memory","code":500}}"#);
    assert_eq!(
        (e.status, e.error.kind.as_str(), e.error.code.as_deref()),
        (500, "server_error", Some("500"))
    );
}

#[test]
fn mid_stream_error_statuses() {
    for (kind, code, status) in [
        ("server_error", None, 500),
        ("rate_limit_error", None, 429),
        ("", Some("rate_limit_exceeded"), 429),
        ("invalid_request_error", Some("context_length_exceeded"), 400),
        ("", Some("overloaded"), 503),
        ("mystery", None, 502),
    ] {
        assert_eq!(status_for_error(kind, code), status, "{kind} {code:?}");
    }
}

#[test]
fn whole_responses() {
    let ctx = StreamContext::new("chatcmpl-x", 9, "public");
    let body = br#"{"id":"chatcmpl-up","object":"chat.completion","created":5,"model":"up-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,"finish_reason":"stop"}]}"#;
    let c = translate_response(&ctx, body).unwrap();
    assert_eq!((c.id.as_str(), c.created, c.model.as_str()), ("chatcmpl-up", 5, "public"));
    let err = translate_response(&ctx, br#"{"error":{"message":"nope","type":"server_error"}}"#)
        .unwrap_err();
    assert!(
        matches!(err, TranslateError::Upstream(ref e) if e.status == 500 && e.error.message == "nope")
    );
    assert!(matches!(translate_response(&ctx, b"[]"), Err(TranslateError::InvalidJson { .. })));
}

/// Runs `sse` through a pipeline and returns the wire JSON of every chunk, checking on the way
/// that raw bytes and parsed chunks agree.
fn run(ctx: StreamContext, sse: &str) -> (Vec<String>, Result<StreamSummary, TranslateError>) {
    let mut p = StreamPipeline::new(ctx);
    let mut out = Vec::new();
    let fed = p.feed(sse.as_bytes(), &mut out);
    let result = fed.and_then(|()| p.finish(&mut out));
    let rendered = out
        .iter()
        .map(|c| {
            if let Some(raw) = &c.raw {
                assert_eq!(
                    serde_json::from_slice::<ChatChunk>(raw).unwrap(),
                    c.chunk,
                    "raw and parsed disagree"
                );
            }
            let mut b = Vec::new();
            c.write_json(&mut b);
            String::from_utf8(b).unwrap()
        })
        .collect();
    (rendered, result)
}

fn ctx(include_usage: bool, usage_on_finish: bool) -> StreamContext {
    StreamContext { include_usage, usage_on_finish, ..StreamContext::new("chatcmpl-ctx", 7, "pub") }
}

const USAGE_STREAM: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"up\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn usage_policy_off_strips_every_trace_of_usage() {
    let (chunks, summary) = run(ctx(false, false), USAGE_STREAM);
    assert_eq!(
        chunks,
        [
            r#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"pub","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"pub","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"pub","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ]
    );
    assert_eq!(summary.unwrap().usage.map(|u| u.total_tokens), Some(3));
}

#[test]
fn usage_rides_on_the_held_finish_chunk() {
    let (chunks, _) = run(ctx(false, true), USAGE_STREAM);
    assert_eq!(chunks.len(), 3);
    assert_eq!(
        chunks[2],
        r#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"pub","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
    );
    let (chunks, _) = run(ctx(true, true), USAGE_STREAM);
    assert_eq!(chunks.len(), 4);
    assert!(chunks[2].ends_with(r#""finish_reason":"stop"}],"usage":null}"#));
    assert_eq!(
        chunks[3],
        r#"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"pub","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
    );
}

/// A LiteLLM-style upstream's `thinking_blocks` survive both the rebuilt first chunk (no role
/// yet) and raw pass-through; unknown block types are dropped from the parsed form only.
#[test]
fn thinking_blocks_from_compatible_servers_pass_through() {
    let sse = concat!(
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Hm\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"Hm\",\"signature\":null}]}}]}\n\n",
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"sig\"},{\"type\":\"future_block\"}]}}]}\n\n",
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"d\"}]},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (chunks, summary) = run(ctx(false, false), sse);
    summary.unwrap();
    let blocks: Vec<ThinkingBlock> = chunks
        .iter()
        .map(|c| serde_json::from_str::<ChatChunk>(c).unwrap())
        .flat_map(|c| c.choices)
        .flat_map(|c| c.delta.thinking_blocks.unwrap_or_default())
        .collect();
    assert_eq!(
        blocks,
        vec![
            ThinkingBlock::Thinking { thinking: "Hm".into(), signature: None },
            ThinkingBlock::signature("sig"),
            ThinkingBlock::RedactedThinking { data: "d".into() },
        ]
    );
}

#[test]
fn several_choices_are_rebuilt_and_each_finishes_once() {
    let sse = concat!(
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"}},{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n",
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"},{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );
    let (chunks, summary) = run(ctx(false, true), sse);
    let summary = summary.unwrap();
    assert_eq!(summary.finish_reasons, vec![(1, FinishReason::Length), (0, FinishReason::Stop)]);
    let parsed: Vec<ChatChunk> = chunks.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
    let finishes: Vec<(u32, bool)> = parsed
        .iter()
        .flat_map(|c| {
            c.choices
                .iter()
                .filter(|ch| ch.finish_reason.is_some())
                .map(|ch| (ch.index, c.usage.is_some()))
        })
        .collect();
    assert_eq!(finishes, vec![(1, false), (0, true)], "one finish each, usage on the last");
    let roles: Vec<u32> = parsed
        .iter()
        .flat_map(|c| c.choices.iter().filter(|ch| ch.delta.role.is_some()).map(|ch| ch.index))
        .collect();
    assert_eq!(roles, vec![0, 1]);
    assert!(parsed.iter().all(|c| c.model == "pub" && c.id == "c"));
}

#[test]
fn error_events_and_bad_payloads() {
    let (chunks, r) = run(ctx(false, false), "event: error\ndata: {\"message\":\"boom\"}\n\n");
    assert!(chunks.is_empty());
    assert!(matches!(r, Err(TranslateError::Upstream(ref e)) if e.status == 502));
    let (_, r) = run(
        ctx(false, false),
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\"}}\n\n",
    );
    assert!(
        matches!(r, Err(TranslateError::Upstream(ref e)) if e.status == 429 && e.error.message == "slow down")
    );
    let (_, r) = run(ctx(false, false), "data: {\"id\":\"c\",\"choices\":[\n\n");
    assert!(matches!(r, Err(TranslateError::InvalidJson { .. })));
    let (_, r) = run(ctx(false, false), ": keep-alive\n\n");
    assert!(matches!(r, Err(TranslateError::Truncated { provider: "openai" })));
}

#[test]
fn nothing_after_done_is_translated() {
    let mut p = StreamPipeline::new(ctx(false, false));
    let mut out = Vec::new();
    p.feed(b"data: [DONE]\n\ndata: {\"id\":\"late\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n", &mut out).unwrap();
    assert!(p.is_done());
    p.feed(b"data: {\"oops\n\n", &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(p.finish(&mut out).unwrap(), StreamSummary::default());
}

#[test]
fn missing_identity_fields_are_added_to_the_raw_bytes() {
    let sse = "data: {\"id\":\"\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let (chunks, _) = run(ctx(false, false), sse);
    // The content shares the chunk with the finish reason, so it is split; the identity comes
    // from the context because the upstream sent none.
    assert_eq!(
        chunks,
        [
            r#"{"id":"chatcmpl-ctx","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-ctx","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-ctx","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
        ]
    );
    let sse = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
    let (chunks, _) = run(ctx(false, false), sse);
    assert_eq!(
        chunks[0],
        r#"{"created":7,"model":"pub","id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}"#
    );
}

/// Replays the recorded OpenAI-compatible streams (when `shared/reference-streams` is present)
/// and checks the invariants every forwarded stream keeps.
#[test]
fn reference_streams_keep_the_invariants() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference-streams/openai");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut seen = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let sse = if name.ends_with(".sse") {
            // One recording lost the blank line after its final `data: [DONE]`.
            let mut sse = String::from_utf8(bytes).unwrap();
            while !sse.ends_with("\n\n") {
                sse.push('\n');
            }
            sse
        } else if name.ends_with(".chunks.txt") {
            let text = String::from_utf8(bytes).unwrap();
            let mut sse: String = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("data: {l}\n\n"))
                .collect();
            sse.push_str("data: [DONE]\n\n");
            sse
        } else {
            continue;
        };
        seen += 1;
        for (include_usage, usage_on_finish) in [(true, true), (false, true), (false, false)] {
            let (chunks, summary) = run(ctx(include_usage, usage_on_finish), &sse);
            let summary = summary.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(summary.finish_reasons.len(), 1, "{name}");
            let parsed: Vec<ChatChunk> =
                chunks.iter().map(|c| serde_json::from_str(c).unwrap()).collect();
            let first = &parsed[0];
            let mut next_tool = 0;
            let mut finishes = 0;
            let mut usage_chunks = 0;
            for (i, c) in parsed.iter().enumerate() {
                assert_eq!(
                    (&c.id, c.created, c.model.as_str()),
                    (&first.id, first.created, "pub"),
                    "{name}"
                );
                assert!(!c.id.is_empty() && c.created != 0, "{name}");
                if c.choices.is_empty() {
                    assert!(
                        c.usage.is_some() && include_usage && i == parsed.len() - 1,
                        "{name}: only the usage chunk is empty"
                    );
                    usage_chunks += 1;
                }
                for choice in &c.choices {
                    assert_eq!(choice.delta.role.is_some(), i == 0, "{name}: role only first");
                    for call in choice.delta.tool_calls.iter().flatten() {
                        if call.id.is_some() {
                            assert_eq!(call.index, next_tool, "{name}: dense tool indices");
                            next_tool += 1;
                        } else {
                            assert!(call.index < next_tool, "{name}");
                            let args = call.function.as_ref().and_then(|f| f.arguments.as_deref());
                            assert!(
                                args.is_some_and(|a| !a.is_empty()),
                                "{name}: no empty fragments"
                            );
                        }
                    }
                    finishes += usize::from(choice.finish_reason.is_some());
                    if choice.finish_reason.is_some() {
                        assert_eq!(
                            c.usage.is_some(),
                            !include_usage && usage_on_finish && summary.usage.is_some(),
                            "{name}"
                        );
                    }
                }
            }
            assert_eq!(finishes, 1, "{name}");
            assert_eq!(
                usage_chunks,
                usize::from(include_usage && summary.usage.is_some()),
                "{name}"
            );
        }
    }
    assert!(seen >= 5, "only {seen} reference streams found");
}

#[test]
fn unknown_finish_reasons_and_roles_from_compatible_servers() {
    let sse = concat!(
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"model\",\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"created\":5,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"eos_token\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let (chunks, summary) = run(ctx(false, false), sse);
    let summary = summary.unwrap();
    assert_eq!(summary.finish_reasons, vec![(0, FinishReason::Stop)]);
    assert_eq!(summary.native_stop_reason.as_deref(), Some("eos_token"));
    assert_eq!(chunks.len(), 3, "role, content, finish: {chunks:?}");
    assert!(
        chunks[0].contains(r#""role":"assistant""#)
            && !chunks.iter().any(|c| c.contains("model\"}"))
    );
    let body = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"end_turn"}]}"#;
    let done = translate_response(&StreamContext::new("i", 1, "pub"), body).unwrap();
    assert_eq!(done.choices[0].finish_reason, Some(FinishReason::Stop));
    // Anything else that does not parse is still an error.
    let (_, r) =
        run(ctx(false, false), "data: {\"id\":\"c\",\"choices\":[{\"index\":\"zero\"}]}\n\n");
    assert!(matches!(r, Err(TranslateError::InvalidJson { .. })));
}

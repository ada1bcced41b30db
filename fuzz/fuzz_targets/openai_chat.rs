//! Fuzz target `openai_chat`: the OpenAI Chat Completions stream translator gives the same chunks
//! and the same end for any split of its input (whole, at a fuzzer-chosen point, byte by byte),
//! never panics, and every client encoder writes whole events for whatever it produced.
//!
//! Input: a mode byte (bit 0: wrap `0xff`-separated pieces into chunk-shaped SSE events; bits
//! 1–2: the usage policy), two bytes of split point, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_fuzz::{Template, body, check_encoders, check_splits, context, header};
use prism_providers::{Deployment, ProviderKind};

const TEMPLATES: &[Template] = &[
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":$N,"delta":{"content":$S},"finish_reason":null}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":$S}}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"refusal":$S}}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":$N,"id":$S,"type":"function","function":{"name":$S,"arguments":""}}]}}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":$N,"function":{"arguments":$S}}]}}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":$N,"delta":{},"finish_reason":$S}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    ),
    (
        None,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":$N,"completion_tokens":$N,"total_tokens":$N}}"#,
    ),
    (
        None,
        r#"{"id":$S,"object":"chat.completion.chunk","created":$N,"model":$S,"choices":[{"index":0,"delta":{"content":"x"}}]}"#,
    ),
    (None, r#"{"error":{"message":$S,"type":"server_error","code":$N}}"#),
    (None, "[DONE]"),
    (Some("error"), r#"{"error":{"message":$S}}"#),
];

fuzz_target!(|input: &[u8]| {
    let Some((mode, at, data)) = header(input) else { return };
    let body = body(TEMPLATES, mode & 1 == 1, data);
    let deployment = Deployment::new(ProviderKind::OpenAi, "http://127.0.0.1:1", "m");
    let make = || prism_providers::stream_translator(&deployment, context(mode >> 1));
    let (chunks, clean) = check_splits(&make, &body, at);
    check_encoders(&chunks, clean);
});

//! Fuzz target `anthropic`: the Anthropic Messages stream translator and the Messages relay (the
//! same-protocol lane) give the same output and the same end for any split of their input, never
//! panic, and every encoder writes whole events for whatever they produced.
//!
//! Input: a mode byte (bit 0: wrap `0xff`-separated pieces into Anthropic-shaped SSE events;
//! bits 1–2: the usage policy), two bytes of split point, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_fuzz::{
    Template, body, check_encoders, check_native_encoder, check_splits, context, header,
};
use prism_ingress::Protocol;
use prism_providers::native::{self, NativeApi};
use prism_providers::{Deployment, ProviderKind};

const TEMPLATES: &[Template] = &[
    (
        Some("message_start"),
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":$N,"output_tokens":1}}}"#,
    ),
    (
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":$N,"content_block":{"type":"text","text":""}}"#,
    ),
    (
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":$N,"content_block":{"type":"tool_use","id":$S,"name":"f","input":{}}}"#,
    ),
    (
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":$N,"content_block":{"type":"thinking","thinking":""}}"#,
    ),
    (
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":$N,"content_block":{"type":"redacted_thinking","data":$S}}"#,
    ),
    (
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":$N,"content_block":{"type":"server_tool_use","id":"s","name":$S,"input":{}}}"#,
    ),
    (
        Some("content_block_delta"),
        r#"{"type":"content_block_delta","index":$N,"delta":{"type":"text_delta","text":$S}}"#,
    ),
    (
        Some("content_block_delta"),
        r#"{"type":"content_block_delta","index":$N,"delta":{"type":"input_json_delta","partial_json":$S}}"#,
    ),
    (
        Some("content_block_delta"),
        r#"{"type":"content_block_delta","index":$N,"delta":{"type":"thinking_delta","thinking":$S}}"#,
    ),
    (
        Some("content_block_delta"),
        r#"{"type":"content_block_delta","index":$N,"delta":{"type":"signature_delta","signature":$S}}"#,
    ),
    (Some("content_block_stop"), r#"{"type":"content_block_stop","index":$N}"#),
    (
        Some("message_delta"),
        r#"{"type":"message_delta","delta":{"stop_reason":$S,"stop_sequence":null},"usage":{"output_tokens":$N}}"#,
    ),
    (
        Some("message_delta"),
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":$N,"cache_read_input_tokens":$N,"output_tokens":$N}}"#,
    ),
    (Some("message_stop"), r#"{"type":"message_stop"}"#),
    (Some("ping"), r#"{"type":"ping"}"#),
    (Some("error"), r#"{"type":"error","error":{"type":$S,"message":"x"}}"#),
];

fuzz_target!(|input: &[u8]| {
    let Some((mode, at, data)) = header(input) else { return };
    let body = body(TEMPLATES, mode & 1 == 1, data);
    let deployment = Deployment::new(ProviderKind::Anthropic, "http://127.0.0.1:1", "m");
    let make = || prism_providers::stream_translator(&deployment, context(mode >> 1));
    let (chunks, clean) = check_splits(&make, &body, at);
    check_encoders(&chunks, clean);

    let make = || native::relay(NativeApi::AnthropicMessages, &deployment, context(mode >> 1));
    let (chunks, clean) = check_splits(&make, &body, at);
    check_native_encoder(Protocol::Messages, &chunks, clean);
});

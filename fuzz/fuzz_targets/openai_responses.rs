//! Fuzz target `openai_responses`: the OpenAI Responses stream relay (the same-protocol lane a
//! deployment with `supports_responses` serves) gives the same events and the same end for any
//! split of its input, never panics, and the lane's encoder writes whole events.
//!
//! Input: a mode byte (bit 0: wrap `0xff`-separated pieces into Responses-shaped SSE events;
//! bits 1–2: the usage policy), two bytes of split point, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_fuzz::{Template, body, check_native_encoder, check_splits, context, header};
use prism_ingress::Protocol;
use prism_providers::native::{self, NativeApi};
use prism_providers::{Deployment, ProviderKind};

const TEMPLATES: &[Template] = &[
    (
        Some("response.created"),
        r#"{"type":"response.created","sequence_number":$N,"response":{"id":"resp_1","object":"response","model":"m","status":"in_progress","output":[]}}"#,
    ),
    (
        Some("response.in_progress"),
        r#"{"type":"response.in_progress","sequence_number":$N,"response":{"id":"resp_1","model":$S}}"#,
    ),
    (
        Some("response.output_item.added"),
        r#"{"type":"response.output_item.added","sequence_number":$N,"output_index":0,"item":{"type":"message","id":"msg_1","role":"assistant","content":[]}}"#,
    ),
    (
        Some("response.output_text.delta"),
        r#"{"type":"response.output_text.delta","sequence_number":$N,"item_id":"msg_1","output_index":0,"content_index":0,"delta":$S}"#,
    ),
    (
        Some("response.reasoning_summary_text.delta"),
        r#"{"type":"response.reasoning_summary_text.delta","sequence_number":$N,"delta":$S}"#,
    ),
    (
        Some("response.output_item.added"),
        r#"{"type":"response.output_item.added","sequence_number":$N,"output_index":1,"item":{"type":"function_call","id":$S,"call_id":$S,"name":$S,"arguments":""}}"#,
    ),
    (
        Some("response.function_call_arguments.delta"),
        r#"{"type":"response.function_call_arguments.delta","sequence_number":$N,"item_id":"fc_1","delta":$S}"#,
    ),
    (
        Some("response.output_item.done"),
        r#"{"type":"response.output_item.done","sequence_number":$N,"output_index":0,"item":{"type":"message","id":"msg_1"}}"#,
    ),
    (
        Some("response.completed"),
        r#"{"type":"response.completed","sequence_number":$N,"response":{"id":"resp_1","model":"m","status":"completed","usage":{"input_tokens":$N,"output_tokens":$N,"total_tokens":$N,"input_tokens_details":{"cached_tokens":$N},"output_tokens_details":{"reasoning_tokens":$N}}}}"#,
    ),
    (
        Some("response.incomplete"),
        r#"{"type":"response.incomplete","sequence_number":$N,"response":{"id":"resp_1","incomplete_details":{"reason":$S}}}"#,
    ),
    (
        Some("response.failed"),
        r#"{"type":"response.failed","sequence_number":$N,"response":{"id":"resp_1","error":{"code":$S,"message":"x"}}}"#,
    ),
    (Some("error"), r#"{"type":"error","sequence_number":$N,"code":$S,"message":"x"}"#),
    (None, r#"{"type":$S,"sequence_number":$N}"#),
];

fuzz_target!(|input: &[u8]| {
    let Some((mode, at, data)) = header(input) else { return };
    let body = body(TEMPLATES, mode & 1 == 1, data);
    let deployment = Deployment::new(ProviderKind::OpenAi, "http://127.0.0.1:1", "m");
    assert!(NativeApi::OpenAiResponses.serves(&deployment));
    let make = || native::relay(NativeApi::OpenAiResponses, &deployment, context(mode >> 1));
    let (chunks, clean) = check_splits(&make, &body, at);
    check_native_encoder(Protocol::Responses, &chunks, clean);
});

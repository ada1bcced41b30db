//! Fuzz target `gemini`: the Gemini / Vertex AI stream translator (`alt=sse`, the only stream
//! form it reads) gives the same chunks and the same end for any split of its input, never
//! panics, and every client encoder writes whole events for whatever it produced.
//!
//! Input: a mode byte (bit 0: wrap `0xff`-separated pieces into `GenerateContentResponse`-shaped
//! SSE events; bits 1–2: the usage policy), two bytes of split point, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_fuzz::{Template, body, check_encoders, check_splits, context, header};
use prism_providers::{Deployment, ProviderKind};

const TEMPLATES: &[Template] = &[
    (
        None,
        r#"{"candidates":[{"content":{"parts":[{"text":$S}],"role":"model"},"index":$N}],"modelVersion":"g","responseId":"r"}"#,
    ),
    (
        None,
        r#"{"candidates":[{"content":{"parts":[{"text":$S,"thought":true}],"role":"model"},"index":0}]}"#,
    ),
    (
        None,
        r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":$S,"args":{"a":$N}}}],"role":"model"},"index":0}]}"#,
    ),
    (
        None,
        r#"{"candidates":[{"content":{"parts":[{"text":"x","thoughtSignature":$S}],"role":"model"},"index":0}]}"#,
    ),
    (
        None,
        r#"{"candidates":[{"content":{"parts":[],"role":"model"},"finishReason":$S,"index":$N}]}"#,
    ),
    (
        None,
        r#"{"candidates":[{"content":{"parts":[{"text":"."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":$N,"candidatesTokenCount":$N,"totalTokenCount":$N,"thoughtsTokenCount":$N,"cachedContentTokenCount":$N}}"#,
    ),
    (
        None,
        r#"{"usageMetadata":{"promptTokenCount":$N,"candidatesTokenCount":$N,"totalTokenCount":$N,"trafficType":$S}}"#,
    ),
    (None, r#"{"promptFeedback":{"blockReason":$S},"usageMetadata":{"promptTokenCount":$N}}"#),
    (None, r#"{"error":{"code":$N,"message":$S,"status":"UNAVAILABLE"}}"#),
    (
        None,
        r#"[{"error":{"code":$N,"message":$S,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}]"#,
    ),
];

fuzz_target!(|input: &[u8]| {
    let Some((mode, at, data)) = header(input) else { return };
    let body = body(TEMPLATES, mode & 1 == 1, data);
    let deployment = Deployment::new(ProviderKind::Gemini, "http://127.0.0.1:1", "m");
    let make = || prism_providers::stream_translator(&deployment, context(mode >> 1));
    let (chunks, clean) = check_splits(&make, &body, at);
    check_encoders(&chunks, clean);
});

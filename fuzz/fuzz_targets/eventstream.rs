//! Fuzz target `eventstream`: the AWS event-stream decoder and both Bedrock stream pipelines
//! (Converse, and InvokeModel with Claude's Anthropic events), plus the Messages relay over
//! InvokeModel. No input may panic; the decoder never holds more than one bounded message, and
//! every message it returns re-encodes to exactly the bytes it came from; every pipeline gives
//! the same output and the same end for any split of its input; every encoder writes whole events.
//!
//! Input: a mode byte (bit 0: wrap `0xff`-separated pieces into valid frames, so the fuzzer
//! reaches the JSON translators without guessing CRCs; bits 1–2: the usage policy), two bytes of
//! split point, then the body.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use prism_fuzz::{check_encoders, check_native_encoder, check_splits, context, header};
use prism_ingress::Protocol;
use prism_providers::bedrock::{self, eventstream};
use prism_providers::native::{self, NativeApi};
use prism_providers::{Deployment, ProviderKind};

const MAX: usize = 4096;

const EVENTS: &[&str] = &[
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "chunk",
];

/// A piece's first byte picks the frame: an exception, a `chunk` whose payload is the rest
/// base64-wrapped as InvokeModel sends Anthropic events, or an event of the Converse kinds.
fn frames_from(pieces: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in pieces.split(|&b| b == 0xff) {
        let Some((&selector, payload)) = piece.split_first() else { continue };
        let selector = usize::from(selector);
        let frame = match selector % 16 {
            15 => bedrock::encode_exception("throttlingException", payload),
            14 | 13 => {
                let bytes = base64::engine::general_purpose::STANDARD.encode(payload);
                bedrock::encode_event("chunk", format!(r#"{{"bytes":"{bytes}"}}"#).as_bytes())
            }
            _ => bedrock::encode_event(EVENTS[selector % EVENTS.len()], payload),
        };
        if let Ok(frame) = frame {
            body.extend_from_slice(&frame);
        }
    }
    body
}

fn check_decoder(a: &[u8], b: &[u8]) {
    let mut decoder = eventstream::Decoder::with_max_message_len(MAX);
    let mut messages = Vec::new();
    let fed = decoder.feed(a, &mut messages).and_then(|()| decoder.feed(b, &mut messages));
    assert!(decoder.buffered() <= MAX);
    if fed.is_ok() {
        let consumed = a.len() + b.len() - decoder.buffered();
        let whole: Vec<u8> = [a, b].concat();
        let mut again = Vec::new();
        for m in &messages {
            if let Err(e) = eventstream::encode_message_into(&m.headers, &m.payload, &mut again) {
                panic!("a decoded message does not re-encode: {e}");
            }
        }
        assert_eq!(again, whole[..consumed]);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((mode, at, data)) = header(input) else { return };
    let body = if mode & 1 == 1 { frames_from(data) } else { data.to_vec() };
    let (a, b) = body.split_at(at % (body.len() + 1));
    check_decoder(a, b);

    for invoke in [false, true] {
        let mut deployment = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:1", "m");
        deployment.bedrock_invoke = invoke;
        let make = || prism_providers::stream_translator(&deployment, context(mode >> 1));
        let (chunks, clean) = check_splits(&make, &body, at);
        check_encoders(&chunks, clean);
        if invoke {
            assert!(NativeApi::AnthropicMessages.serves(&deployment));
            let make =
                || native::relay(NativeApi::AnthropicMessages, &deployment, context(mode >> 1));
            let (chunks, clean) = check_splits(&make, &body, at);
            check_native_encoder(Protocol::Messages, &chunks, clean);
        }
    }
});

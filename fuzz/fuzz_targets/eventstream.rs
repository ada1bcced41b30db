//! Fuzzes the AWS event-stream decoder and both Bedrock stream pipelines (Converse and Invoke):
//! no input may panic, the decoder never holds more than one bounded message, and every message
//! it returns re-encodes to exactly the bytes it came from.
//!
//! Raw mode feeds the input as a body. Structured mode (first byte odd) first wraps the input's
//! `0xff`-separated pieces into valid frames, so the fuzzer reaches the JSON translators without
//! having to guess CRCs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_providers::bedrock::{self, eventstream};
use prism_providers::{ByteTranslator, Deployment, ProviderKind, StreamContext};

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

fn frames_from(pieces: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in pieces.split(|&b| b == 0xff) {
        let Some((&selector, payload)) = piece.split_first() else { continue };
        let selector = usize::from(selector);
        let frame = if selector % 16 == 15 {
            bedrock::encode_exception("throttlingException", payload)
        } else {
            bedrock::encode_event(EVENTS[selector % EVENTS.len()], payload)
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
            eventstream::encode_message_into(&m.headers, &m.payload, &mut again)
                .expect("decoded messages re-encode");
        }
        assert_eq!(again, whole[..consumed]);
    }
}

fn run_pipelines(a: &[u8], b: &[u8]) {
    for invoke in [false, true] {
        let mut deployment = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:1", "m");
        deployment.bedrock_invoke = invoke;
        let ctx = StreamContext {
            include_usage: invoke,
            usage_on_finish: true,
            ..StreamContext::new("c", 0, "m")
        };
        let mut pipeline = bedrock::StreamPipeline::new(&deployment, ctx);
        let mut out = Vec::new();
        if pipeline.feed(a, &mut out).is_ok() && pipeline.feed(b, &mut out).is_ok() {
            let _ = pipeline.finish(&mut out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let body = if mode % 2 == 1 { frames_from(rest) } else { rest.to_vec() };
    let at = usize::from(mode) * body.len() / 256;
    let (a, b) = body.split_at(at);
    check_decoder(a, b);
    run_pipelines(a, b);
});

//! Decoding throughput on a realistic OpenAI chat.completion.chunk stream (10,000 events fed in
//! 1–4 KiB pieces), against the `eventsource-stream` crate on the same bytes and pieces.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::executor::block_on;
use futures::stream::{self, StreamExt};
use prism_sse::{Decoder, Frame, SseStream};

const EVENTS: usize = 10_000;

/// A small deterministic generator (xorshift64*), so every run decodes the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    " the",
    " model",
    " returns",
    " tokens",
    " quickly",
    ",",
    ".",
    " and",
    " streaming",
    " is",
    " a",
    " response",
    " of",
    " JSON",
    " chunks",
    " with",
    " über",
    " naïve",
    " café",
    " 🎉",
    " \\\"quoted\\\"",
    "\\n",
    "\\n\\n",
    " `code`",
    " 42",
    " 3.14",
    " résumé",
    " 日本語",
    " to",
    " gateway",
    " latency",
    " matters",
    ":",
    " -",
    " **bold**",
    " tool",
    " call",
    " arguments",
];

/// One `data:` event per chunk, shaped like a recorded gpt-4o-mini stream: a role chunk,
/// content chunks of 1–6 tokens, a finish chunk, a usage chunk, and `[DONE]`.
fn openai_stream() -> Vec<u8> {
    let mut rng = Rng(0x5EED_CAFE_F00D_D00D);
    let id = "chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl";
    let head = format!(
        r#""id":"{id}","object":"chat.completion.chunk","created":1782955817,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_d0469e1700""#
    );
    let mut out = Vec::new();
    for index in 0..EVENTS {
        let obfuscation: String =
            (0..4 + rng.below(16)).map(|_| char::from(b'a' + rng.below(26) as u8)).collect();
        let chunk = if index == 0 {
            format!(
                r#"{{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"{obfuscation}"}}"#
            )
        } else if index == EVENTS - 2 {
            format!(
                r#"{{{head},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null,"obfuscation":"{obfuscation}"}}"#
            )
        } else if index == EVENTS - 1 {
            format!(
                r#"{{{head},"choices":[],"usage":{{"prompt_tokens":1187,"completion_tokens":{EVENTS},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":1024,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}},"obfuscation":"{obfuscation}"}}"#,
                EVENTS + 1187
            )
        } else {
            let content: String = (0..1 + rng.below(6)).map(|_| rng.pick(WORDS)).collect();
            format!(
                r#"{{{head},"choices":[{{"index":0,"delta":{{"content":"{content}"}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"{obfuscation}"}}"#
            )
        };
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(chunk.as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// Cuts `input` into pieces of 1–4 KiB, the way reads from a socket arrive.
fn pieces(input: &Bytes) -> Vec<Bytes> {
    let mut rng = Rng(0x0BAD_5EED_1234_5678);
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let end = (start + 1024 + rng.below(3 * 1024 + 1)).min(input.len());
        pieces.push(input.slice(start..end));
        start = end;
    }
    pieces
}

fn prism_decoder(pieces: &[Bytes]) -> usize {
    let mut decoder = Decoder::new();
    let mut frames = Vec::with_capacity(32);
    let mut events = 0;
    for piece in pieces {
        if decoder.feed(piece, &mut frames).is_err() {
            return 0;
        }
        events += frames.iter().filter(|frame| matches!(frame, Frame::Event(_))).count();
        frames.clear();
    }
    decoder.finish();
    events
}

fn prism_stream(pieces: &[Bytes]) -> usize {
    let inner = stream::iter(pieces.iter().cloned().map(Ok::<_, Infallible>));
    block_on(SseStream::new(inner).fold(0, |events, item| async move {
        events + usize::from(matches!(item, Ok(Frame::Event(_))))
    }))
}

fn eventsource_stream(pieces: &[Bytes]) -> usize {
    let inner = stream::iter(pieces.iter().cloned().map(Ok::<_, Infallible>));
    block_on(
        inner
            .eventsource()
            .fold(0, |events, item| async move { events + usize::from(item.is_ok()) }),
    )
}

fn run_group(mut group: BenchmarkGroup<'_, criterion::measurement::WallTime>, pieces: &[Bytes]) {
    group.bench_function("prism-sse Decoder", |b| b.iter(|| prism_decoder(black_box(pieces))));
    group.bench_function("prism-sse SseStream", |b| b.iter(|| prism_stream(black_box(pieces))));
    group
        .bench_function("eventsource-stream", |b| b.iter(|| eventsource_stream(black_box(pieces))));
    group.finish();
}

fn decode(c: &mut Criterion) {
    let input = Bytes::from(openai_stream());
    let pieces = pieces(&input);
    let events = EVENTS + 1;
    // All three must see the same events, or the comparison means nothing.
    assert_eq!(prism_decoder(&pieces), events);
    assert_eq!(prism_stream(&pieces), events);
    assert_eq!(eventsource_stream(&pieces), events);
    eprintln!(
        "input: {} bytes, {events} events ({} bytes/event on average), {} pieces",
        input.len(),
        input.len() / events,
        pieces.len()
    );

    let mut group = c.benchmark_group("decode_bytes");
    group.throughput(Throughput::Bytes(input.len() as u64));
    run_group(group, &pieces);

    let mut group = c.benchmark_group("decode_events");
    group.throughput(Throughput::Elements(events as u64));
    run_group(group, &pieces);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = decode
}
criterion_main!(benches);

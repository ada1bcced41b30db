//! Stream translation throughput: upstream bytes → SSE decode → translate → SSE encode of every
//! chunk into a reused buffer, reported as output chunks per second, plus allocations per chunk
//! (counted once per pipeline with a counting global allocator and printed before the timing).
//!
//! Adding a provider: write a generator for a long native stream (10,000 deltas) and call
//! `bench_pipeline(c, "<provider>/<what>", &deployment, &bytes, true)` from a new `fn <provider>(c)`,
//! then list that function in `criterion_group!` at the bottom. Each pipeline is also measured
//! against `baseline/<name>`: decoding and re-encoding the same SSE events without translation.
//! (Binary framings such as Bedrock's event stream have no SSE baseline; pass `sse_baseline:
//! false`.)

use std::alloc::System;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prism_providers::{Deployment, OutChunk, ProviderKind, StreamContext};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How many deltas each generated stream carries.
const DELTAS: usize = 10_000;

/// The size of the pieces the upstream body is fed in, like socket reads.
const READ_SIZE: usize = 4096;

fn context() -> StreamContext {
    StreamContext {
        include_usage: false,
        usage_on_finish: true,
        ..StreamContext::new("chatcmpl-bench-0123456789", 1_735_689_600, "public-model")
    }
}

/// Runs one whole stream through `deployment`'s pipeline, encoding every chunk as an SSE event
/// into `wire` (cleared per read, as a server flushes it). Returns the number of chunks.
fn translate(
    deployment: &Deployment,
    bytes: &[u8],
    out: &mut Vec<OutChunk>,
    json: &mut Vec<u8>,
    wire: &mut Vec<u8>,
) -> usize {
    let mut translator = prism_providers::stream_translator(deployment, context());
    let mut chunks = 0;
    let mut encode = |out: &mut Vec<OutChunk>, wire: &mut Vec<u8>| {
        for chunk in out.drain(..) {
            match &chunk.raw {
                Some(raw) => prism_sse::write_data(wire, raw),
                None => {
                    json.clear();
                    chunk.write_json(json);
                    prism_sse::write_data(wire, json);
                }
            }
            chunks += 1;
        }
    };
    for piece in bytes.chunks(READ_SIZE) {
        wire.clear();
        if let Err(e) = translator.feed(piece, out) {
            panic!("bench stream failed: {e}");
        }
        encode(out, wire);
        black_box(&wire);
    }
    wire.clear();
    if let Err(e) = translator.finish(out) {
        panic!("bench stream did not finish: {e}");
    }
    encode(out, wire);
    black_box(&wire);
    chunks
}

/// Decodes `bytes` as SSE and re-encodes every event's data: the codec cost without translation.
fn sse_only(bytes: &[u8], frames: &mut Vec<prism_sse::Frame>, wire: &mut Vec<u8>) -> usize {
    let mut decoder = prism_sse::Decoder::new();
    let mut events = 0;
    for piece in bytes.chunks(READ_SIZE) {
        wire.clear();
        if let Err(e) = decoder.feed(piece, frames) {
            panic!("bench stream failed: {e}");
        }
        for frame in frames.drain(..) {
            if let prism_sse::Frame::Event(event) = frame {
                prism_sse::write_data(wire, event.data.as_bytes());
                events += 1;
            }
        }
        black_box(&wire);
    }
    decoder.finish();
    events
}

/// Benchmarks `deployment`'s pipeline on `bytes` as `name`, with `baseline/<name>` next to it
/// when `sse_baseline` is set.
fn bench_pipeline(
    c: &mut Criterion,
    name: &str,
    deployment: &Deployment,
    bytes: &[u8],
    sse_baseline: bool,
) {
    let (mut out, mut json, mut wire) = (Vec::new(), Vec::new(), Vec::new());
    // Warm the reused buffers, then count one run's allocations.
    let chunks = translate(deployment, bytes, &mut out, &mut json, &mut wire);
    let region = Region::new(GLOBAL);
    translate(deployment, bytes, &mut out, &mut json, &mut wire);
    let stats = region.change();
    println!(
        "{name}: {} input bytes, {chunks} chunks, {:.2} allocations/chunk, {:.0} bytes allocated/chunk",
        bytes.len(),
        stats.allocations as f64 / chunks as f64,
        stats.bytes_allocated as f64 / chunks as f64,
    );
    let mut frames = Vec::new();
    if sse_baseline {
        sse_only(bytes, &mut frames, &mut wire);
        let region = Region::new(GLOBAL);
        let events = sse_only(bytes, &mut frames, &mut wire);
        let stats = region.change();
        println!(
            "{name} baseline (SSE decode + encode only): {events} events, {:.2} allocations/event",
            stats.allocations as f64 / events as f64,
        );
    }

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(chunks as u64));
    group.bench_function("translate", |b| {
        b.iter(|| translate(deployment, black_box(bytes), &mut out, &mut json, &mut wire))
    });
    if sse_baseline {
        group.bench_function("baseline_sse_only", |b| {
            b.iter(|| sse_only(black_box(bytes), &mut frames, &mut wire))
        });
    }
    group.finish();
}

/// Words the generated answers are made of (a mix of ASCII, punctuation and multi-byte text).
const WORDS: &[&str] = &[
    " The",
    " gateway",
    " streams",
    " tokens",
    ",",
    " quickly",
    " and",
    " safely",
    ".",
    " Grüße",
    " 👋",
    "\n",
    " \"quoted\"",
];

fn anthropic_stream() -> Vec<u8> {
    let mut s = String::with_capacity(DELTAS * 110);
    s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n");
    s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for i in 0..DELTAS {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
        let _ = write!(
            s,
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{word}}}}}\n\n"
        );
        if i % 1000 == 999 {
            s.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
        }
    }
    s.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    let _ = write!(
        s,
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{DELTAS}}}}}\n\n"
    );
    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

fn openai_stream() -> Vec<u8> {
    let head = "{\"id\":\"chatcmpl-BkQ7n2xY4mZc8Pq1Rt5Vw9Ab3Cd\",\"object\":\"chat.completion.chunk\",\"created\":1735689500,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_7c2a9e8b41\",\"choices\":[{\"index\":0,\"delta\":";
    let mut s = String::with_capacity(DELTAS * 330);
    let _ = write!(
        s,
        "data: {head}{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"Qup1BsQ3\"}}\n\n"
    );
    for i in 0..DELTAS {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
        let _ = write!(
            s,
            "data: {head}{{\"content\":{word}}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"{}\"}}\n\n",
            &"yhjoJbEFdTh0"[..3 + i % 9]
        );
    }
    let _ = write!(
        s,
        "data: {head}{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null,\"obfuscation\":\"zap0\"}}\n\n"
    );
    let _ = write!(
        s,
        "data: {{\"id\":\"chatcmpl-BkQ7n2xY4mZc8Pq1Rt5Vw9Ab3Cd\",\"object\":\"chat.completion.chunk\",\"created\":1735689500,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_7c2a9e8b41\",\"choices\":[],\"usage\":{{\"prompt_tokens\":16,\"completion_tokens\":{DELTAS},\"total_tokens\":{}}},\"obfuscation\":\"h9RiQLL\"}}\n\n",
        DELTAS + 16
    );
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn anthropic(c: &mut Criterion) {
    let d =
        Deployment::new(ProviderKind::Anthropic, "https://api.anthropic.com", "claude-sonnet-4-5");
    bench_pipeline(c, "anthropic/text_10k", &d, &anthropic_stream(), true);
}

fn openai(c: &mut Criterion) {
    let d = Deployment::new(ProviderKind::OpenAi, "https://api.openai.com", "gpt-4o-mini");
    bench_pipeline(c, "openai/passthrough_10k", &d, &openai_stream(), true);
}

/// A Gemini `alt=sse` stream as the API sends it: every chunk a whole `GenerateContentResponse`
/// with a usage snapshot, `\r\n\r\n` after each event, `finishReason` on the last.
fn gemini_stream() -> Vec<u8> {
    let mut s = String::with_capacity(DELTAS * 340);
    for i in 0..DELTAS {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
        let finish = if i + 1 == DELTAS { "\"finishReason\": \"STOP\"," } else { "" };
        let _ = write!(
            s,
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": {word}}}],\"role\": \"model\"}},{finish}\"index\": 0}}],\
             \"usageMetadata\": {{\"promptTokenCount\": 16,\"candidatesTokenCount\": {n},\"totalTokenCount\": {t},\
             \"promptTokensDetails\": [{{\"modality\": \"TEXT\",\"tokenCount\": 16}}],\"thoughtsTokenCount\": 24}},\
             \"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"kXBPaOSuLKqnz7IPp8WJiQk\"}}\r\n\r\n",
            n = i + 1,
            t = i + 41,
        );
    }
    s.into_bytes()
}

fn gemini(c: &mut Criterion) {
    let d = Deployment::new(
        ProviderKind::Gemini,
        "https://generativelanguage.googleapis.com",
        "gemini-2.5-flash",
    );
    bench_pipeline(c, "gemini/text_10k", &d, &gemini_stream(), true);
}

/// A ConverseStream body as Bedrock sends it: binary event-stream frames whose JSON payloads carry
/// the random-length `p` padding, `messageStop` and then `metadata`.
fn bedrock_stream() -> Vec<u8> {
    const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGH";
    let mut s = Vec::with_capacity(DELTAS * 160);
    let mut frame = |event: &str, payload: &str| {
        s.extend(
            prism_providers::bedrock::encode_event(event, payload.as_bytes()).unwrap_or_default(),
        );
    };
    frame("messageStart", r#"{"p":"abcdefghijklmnopqr","role":"assistant"}"#);
    for i in 0..DELTAS {
        let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
        let pad = &PAD[..1 + i % 30];
        frame(
            "contentBlockDelta",
            &format!(r#"{{"contentBlockIndex":0,"delta":{{"text":{word}}},"p":"{pad}"}}"#),
        );
    }
    frame("contentBlockStop", r#"{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwx"}"#);
    frame("messageStop", r#"{"p":"abcdefgh","stopReason":"end_turn"}"#);
    let total = DELTAS + 16;
    frame(
        "metadata",
        &format!(
            r#"{{"metrics":{{"latencyMs":812}},"p":"abcdef","usage":{{"inputTokens":16,"outputTokens":{DELTAS},"totalTokens":{total}}}}}"#
        ),
    );
    s
}

fn bedrock(c: &mut Criterion) {
    let d = Deployment::new(
        ProviderKind::Bedrock,
        "https://bedrock-runtime.us-east-1.amazonaws.com",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    );
    let bytes = bedrock_stream();
    bench_pipeline(c, "bedrock/converse_10k", &d, &bytes, false);
    // The event-stream framing alone (CRCs and header validation, frames borrowed as the
    // pipeline takes them), in bytes per second.
    let mut group = c.benchmark_group("bedrock/eventstream_decode");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut decoder = prism_providers::bedrock::eventstream::Decoder::new();
            let mut frames = 0usize;
            for piece in black_box(&bytes).chunks(READ_SIZE) {
                let fed = decoder.feed_with(piece, |frame| {
                    frames += black_box(frame.payload().len()).min(1);
                    Ok::<(), prism_providers::bedrock::eventstream::FrameError>(())
                });
                if let Err(e) = fed {
                    panic!("bench stream failed: {e}");
                }
            }
            frames
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // The machine is shared: short, steady runs.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = anthropic, openai, gemini, bedrock
}
criterion_main!(benches);

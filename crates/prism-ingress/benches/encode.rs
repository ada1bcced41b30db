//! Ingress encoding cost: the canonical chunk stream of a 10,000-delta Anthropic answer (as the
//! Anthropic translator emits it) encoded into each client protocol's events, into a buffer
//! cleared per 4 KiB of upstream input as the server flushes it. Criterion reports the time per
//! stream of 10,002 chunks; divide by 10 for the cost per 1,000 chunks. Allocations per chunk
//! are counted once per protocol with a counting global allocator and printed before the timing.
//!
//! `chat/raw` is the Chat Completions pass-through case (an OpenAI upstream: the upstream's JSON
//! written as is), `chat/built` the same chunks serialised, `messages` and `responses` the two
//! translating encoders.

use std::alloc::System;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prism_ingress::{EncodeContext, Protocol};
use prism_providers::{Deployment, OutChunk, ProviderKind, StreamContext};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DELTAS: usize = 10_000;
/// Chunks per flushed batch: about what one 4 KiB upstream read yields.
const BATCH: usize = 40;

const WORDS: &[&str] =
    &[" The", " gateway", " streams", " tokens", ",", " quickly", ".", " Grüße", " 👋", "\n"];

fn upstream(kind: ProviderKind) -> Vec<u8> {
    let mut s = String::with_capacity(DELTAS * 120);
    match kind {
        ProviderKind::OpenAi => {
            let head = "{\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1735689500,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":";
            let _ = write!(
                s,
                "data: {head}{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
            );
            for i in 0..DELTAS {
                let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
                let _ =
                    write!(s, "data: {head}{{\"content\":{word}}},\"finish_reason\":null}}]}}\n\n");
            }
            let _ = write!(s, "data: {head}{{}},\"finish_reason\":\"stop\"}}]}}\n\n");
            let _ = write!(
                s,
                "data: {{\"id\":\"chatcmpl-B1\",\"object\":\"chat.completion.chunk\",\"created\":1735689500,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{{\"prompt_tokens\":16,\"completion_tokens\":{DELTAS},\"total_tokens\":{}}}}}\n\n",
                DELTAS + 16
            );
            s.push_str("data: [DONE]\n\n");
        }
        _ => {
            s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
            s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for i in 0..DELTAS {
                let word = serde_json::to_string(WORDS[i % WORDS.len()]).unwrap_or_default();
                let _ = write!(
                    s,
                    "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{word}}}}}\n\n"
                );
            }
            s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            let _ = write!(
                s,
                "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{DELTAS}}}}}\n\n"
            );
            s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
    }
    s.into_bytes()
}

/// The canonical chunks a translator makes of `kind`'s generated stream.
fn canonical(kind: ProviderKind, model: &str) -> Vec<OutChunk> {
    let deployment = Deployment::new(kind, "https://upstream.test", model);
    let ctx = StreamContext {
        include_usage: true,
        ..StreamContext::new("chatcmpl-bench", 1_735_689_600, "public-model")
    };
    let mut translator = prism_providers::stream_translator(&deployment, ctx);
    let mut out = Vec::new();
    let bytes = upstream(kind);
    let fed = translator.feed(&bytes, &mut out);
    assert!(fed.is_ok() && translator.finish(&mut out).is_ok(), "bench stream failed");
    out
}

fn encode(protocol: Protocol, chunks: &[OutChunk], out: &mut BytesMut) -> usize {
    let ctx = EncodeContext {
        id: "msg_bench".into(),
        created: 1_735_689_600,
        model: "public-model".into(),
    };
    let mut encoder = prism_ingress::stream_encoder(protocol, ctx);
    let mut bytes = 0;
    for batch in chunks.chunks(BATCH) {
        out.clear();
        for c in batch {
            encoder.chunk(&c.chunk, c.raw.as_deref(), out);
        }
        bytes += out.len();
        black_box(&out);
    }
    out.clear();
    encoder.finish(out);
    bytes + out.len()
}

fn ingress(c: &mut Criterion) {
    let from_anthropic = canonical(ProviderKind::Anthropic, "claude-sonnet-4-5");
    let from_openai = canonical(ProviderKind::OpenAi, "gpt-4o-mini");
    let built: Vec<OutChunk> =
        from_openai.iter().map(|c| OutChunk { chunk: c.chunk.clone(), raw: None }).collect();
    let cases: [(&str, Protocol, &[OutChunk]); 4] = [
        ("chat/raw", Protocol::ChatCompletions, &from_openai),
        ("chat/built", Protocol::ChatCompletions, &built),
        ("messages", Protocol::Messages, &from_anthropic),
        ("responses", Protocol::Responses, &from_anthropic),
    ];
    let mut group = c.benchmark_group("ingress");
    group.measurement_time(Duration::from_secs(5));
    for (name, protocol, chunks) in cases {
        let mut out = BytesMut::with_capacity(64 * 1024);
        let region = Region::new(GLOBAL);
        let bytes = encode(protocol, chunks, &mut out);
        let stats = region.change();
        println!(
            "ingress/{name}: {} chunks -> {bytes} bytes, {:.2} allocations per chunk",
            chunks.len(),
            stats.allocations as f64 / chunks.len() as f64
        );
        group.throughput(Throughput::Elements(chunks.len() as u64));
        group.bench_function(name, |b| b.iter(|| encode(protocol, chunks, &mut out)));
    }
    group.finish();
}

/// The pass-through lane's U+2028/U+2029/U+0085 escaping: the same raw upstream chunks copied
/// out as they are and through `escape_separators`, in one run, so the ratio is its whole cost.
fn separators(c: &mut Criterion) {
    let raw: Vec<bytes::Bytes> =
        canonical(ProviderKind::OpenAi, "gpt-4o-mini").into_iter().filter_map(|c| c.raw).collect();
    let mut group = c.benchmark_group("pass-through");
    group.throughput(Throughput::Elements(raw.len() as u64));
    let mut out = Vec::with_capacity(64 * 1024);
    group.bench_function("copy", |b| {
        b.iter(|| {
            for batch in raw.chunks(BATCH) {
                out.clear();
                batch.iter().for_each(|r| out.extend_from_slice(r));
                black_box(&out);
            }
        })
    });
    group.bench_function("escaped", |b| {
        b.iter(|| {
            for batch in raw.chunks(BATCH) {
                out.clear();
                batch
                    .iter()
                    .for_each(|r| out.extend_from_slice(&prism_types::json::escape_separators(r)));
                black_box(&out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingress, separators);
criterion_main!(benches);

//! Cache key computation for a realistic request, and hit/miss latency of the memory store and
//! the `ResponseCache` facade (plus Redis when `PRISM_BENCH_REDIS_URL` points at a server).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use prism_cache::{
    CacheKey, CachePolicy, CacheStore, MemoryLimits, MemoryStore, RedisConfig, RedisStore,
    ResponseCache,
};
use prism_types::ChatRequest;

const TTL: Duration = Duration::from_secs(300);

/// A chat turn as an agent would send it: a 1.5 KB system prompt, a few turns including a tool
/// call and its result, two tools with JSON Schema parameters, and sampling settings.
fn realistic_request() -> ChatRequest {
    let system = "You are a support assistant for an online store. ".repeat(30);
    serde_json::from_value(serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "Where is my order 18273? It was due on Monday."},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"18273\"}"}
            }]},
            {"role": "tool", "tool_call_id": "call_1",
             "content": "{\"status\":\"in_transit\",\"carrier\":\"DHL\",\"eta\":\"2025-06-04\"}"},
            {"role": "assistant", "content": "Your order is in transit with DHL, due June 4."},
            {"role": "user", "content": "Can I change the delivery address?"}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "lookup_order", "description": "Look up an order by id",
                "parameters": {"type": "object", "required": ["order_id"],
                    "properties": {"order_id": {"type": "string", "description": "The order id"}}}
            }},
            {"type": "function", "function": {
                "name": "change_address", "description": "Change an order's delivery address",
                "parameters": {"type": "object", "required": ["order_id", "address"],
                    "properties": {
                        "order_id": {"type": "string"},
                        "address": {"type": "object", "properties": {
                            "street": {"type": "string"}, "city": {"type": "string"},
                            "postcode": {"type": "string"}, "country": {"type": "string"}
                        }}
                    }}
            }}
        ],
        "tool_choice": "auto",
        "temperature": 0.2,
        "max_completion_tokens": 512,
        "user": "customer-42",
        "stream": false
    }))
    .unwrap_or_default()
}

fn completion_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "id": "chatcmpl-123", "object": "chat.completion", "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {
                "role": "assistant", "refusal": null,
                "content": "Yes. Tell me the new address and I will update order 18273. ".repeat(8)
            }}],
            "usage": {"prompt_tokens": 612, "completion_tokens": 120, "total_tokens": 732}
        })
        .to_string(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => panic!("tokio runtime: {err}"),
    }
}

fn key_bench(c: &mut Criterion) {
    let request = realistic_request();
    let body_len = serde_json::to_vec(&request).map_or(0, |v| v.len());
    let mut group = c.benchmark_group("key");
    group.bench_function(format!("realistic_request_{body_len}B"), |b| {
        b.iter(|| CacheKey::new(black_box("key:tenant"), black_box(&request)))
    });
    group.finish();
}

fn memory_bench(c: &mut Criterion) {
    let rt = runtime();
    let store = Arc::new(MemoryStore::new(MemoryLimits {
        max_entries: 10_000,
        max_bytes: 100 * 1024 * 1024,
    }));
    let cache = ResponseCache::new(Arc::clone(&store) as Arc<dyn CacheStore>);
    let key = match CacheKey::new("key:tenant", &realistic_request()) {
        Ok(key) => key,
        Err(err) => panic!("key: {err}"),
    };
    let body = completion_body();
    rt.block_on(store.put(&key, body.clone(), TTL)).ok();

    let mut group = c.benchmark_group("memory");
    group.bench_function("store_get_hit", |b| b.iter(|| rt.block_on(store.get(black_box(&key)))));
    group.bench_function("response_cache_hit", |b| {
        b.iter(|| {
            rt.block_on(cache.get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
                Ok::<_, ()>((Bytes::new(), true))
            }))
        })
    });
    // A miss with an instant upstream: the cache's own overhead on the miss path (lookup,
    // flight bookkeeping, store).
    let counter = AtomicU64::new(0);
    let request = realistic_request();
    group.bench_function("response_cache_miss_and_store", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let key = CacheKey::new(&format!("miss:{n}"), &request).ok();
            rt.block_on(async {
                if let Some(key) = key {
                    let body = body.clone();
                    let _ = cache
                        .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
                            Ok::<_, ()>((body, true))
                        })
                        .await;
                }
            })
        })
    });
    group.finish();
}

fn redis_bench(c: &mut Criterion) {
    let Ok(url) = std::env::var("PRISM_BENCH_REDIS_URL") else {
        eprintln!("redis benches skipped: set PRISM_BENCH_REDIS_URL=redis://127.0.0.1:6379");
        return;
    };
    let rt = runtime();
    let config = RedisConfig { url, timeout_ms: 1_000, ..RedisConfig::default() };
    let store = match RedisStore::new(&config) {
        Ok(store) => store,
        Err(err) => panic!("redis store: {err}"),
    };
    let key = match CacheKey::new("key:tenant", &realistic_request()) {
        Ok(key) => key,
        Err(err) => panic!("key: {err}"),
    };
    if let Err(err) = rt.block_on(store.put(&key, completion_body(), TTL)) {
        panic!("redis put: {err}");
    }
    let mut group = c.benchmark_group("redis");
    group.bench_function("store_get_hit", |b| b.iter(|| rt.block_on(store.get(black_box(&key)))));
    group.finish();
}

criterion_group!(benches, key_bench, memory_bench, redis_bench);
criterion_main!(benches);

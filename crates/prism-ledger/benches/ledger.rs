//! The ledger's cost per request, as the gateway pays it: build the plan, admit, settle, record.
//! `no_limits` is a key without limits (the record alone, what every request pays); `memory`
//! and `redis` are a key with requests, tokens, concurrency and a daily budget (four checks)
//! on each counter store. Redis runs on a local `redis-server` started for the bench (skipped
//! without one). One `block_on` per iteration in every case, so the ratios compare like with
//! like.
#![expect(clippy::unwrap_used, reason = "a bench that cannot start should fail loudly")]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use prism_ledger::{
    CounterStore, FailureMode, Ledger, LimitSpec, MemoryCounters, Outcome, Recorder, Scopes,
    SinkConfig, Tokens, UsageRecord,
};

fn record(id: u64) -> UsageRecord {
    UsageRecord {
        request_id: format!("req_{id:032x}"),
        started_at_ms: 1_796_300_000_000,
        key: "backend".into(),
        model: "gpt-4o-mini".into(),
        deployment: Some("gpt-4o-mini".into()),
        provider: Some("openai".into()),
        protocol: "chat_completions".into(),
        stream: true,
        tokens: Tokens { input: 120, output: 300, ..Tokens::default() },
        cost_usd: 0.0002,
        estimated: false,
        ttft_ms: Some(180),
        duration_ms: 2_400,
        attempts: 1,
        outcome: Outcome::Completed,
        status: 200,
    }
}

/// One request through the ledger: plan, admit, settle to the actual usage, record.
async fn one_request(ledger: &Ledger, recorder: &Recorder, spec: Option<&LimitSpec>, id: u64) {
    let scopes = Scopes {
        key: "backend",
        model: "gpt-4o-mini",
        key_limits: spec,
        model_limits: None,
        key_model_limits: None,
    };
    let lease_id = format!("req_{id:032x}");
    let plan = ledger.plan(&scopes, 612, &lease_id, 1_796_300_000_000 + id);
    let admission = ledger.admit(&plan, 612).await.ok();
    if let Some(admission) = admission
        && admission.holds_anything()
    {
        ledger.settle(&admission.settlement(420, 0.0002)).await.ok();
    }
    recorder.record(black_box(record(id)));
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = runtime.enter();
    // No sink: the recorder keeps only its in-memory totals, the part every request pays.
    let recorder = Recorder::start(&SinkConfig { queue_capacity: 1, ..SinkConfig::default() });
    // Limits far above what the bench reaches, so every admission passes.
    let spec = LimitSpec {
        rpm: Some(u64::MAX / 4),
        tpm: Some(u64::MAX / 4),
        concurrent: Some(1_000_000),
        daily_usd: Some(1e9),
        monthly_usd: None,
    };
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("ledger/request");
    let memory = Ledger::new(Arc::new(MemoryCounters::new()), FailureMode::FailOpen, 600_000);
    group.bench_function("no_limits", |b| {
        b.iter(|| {
            runtime.block_on(one_request(
                &memory,
                &recorder,
                None,
                next.fetch_add(1, Ordering::Relaxed),
            ))
        });
    });
    group.bench_function("memory", |b| {
        b.iter(|| {
            runtime.block_on(one_request(
                &memory,
                &recorder,
                Some(&spec),
                next.fetch_add(1, Ordering::Relaxed),
            ));
        });
    });
    if let Some(server) = prism_testkit::RedisServer::start() {
        let config = prism_cache::RedisConfig {
            url: server.url(),
            key_prefix: "bench:".into(),
            timeout_ms: 1_000,
            connect_timeout_ms: 1_000,
            reconnect_backoff_ms: 100,
        };
        let counters: Arc<dyn CounterStore> = Arc::new(prism_ledger::RedisCounters::new(
            prism_cache::RedisStore::new(&config).unwrap(),
        ));
        let redis = Ledger::new(counters, FailureMode::FailClosed, 600_000);
        group.bench_function("redis", |b| {
            b.iter(|| {
                runtime.block_on(one_request(
                    &redis,
                    &recorder,
                    Some(&spec),
                    next.fetch_add(1, Ordering::Relaxed),
                ));
            });
        });
        drop(server);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The counters as the gateway uses them: the Redis script against the in-memory counters on
//! the same sequence of admissions and settlements (they must agree exactly, being the same
//! arithmetic), and concurrent admissions that must never overshoot a limit, on both stores.
//! The Redis tests run a real `redis-server` (skipped loudly without one, required in CI).
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]
#![cfg(feature = "redis")]

use std::sync::Arc;

use prism_cache::{RedisConfig, RedisStore};
use prism_ledger::counters::{CounterStore, MemoryCounters, RedisCounters};
use prism_ledger::limits::{
    AdmitPlan, BudgetCheck, BudgetPeriod, Failed, LeaseCheck, MINUTE_MS, Measure, ScopeKind,
    Settlement, WindowCheck,
};
use prism_testkit::RedisServer;

fn redis_counters(server: &RedisServer, prefix: &str) -> RedisCounters {
    let config = RedisConfig {
        url: server.url(),
        key_prefix: prefix.to_owned(),
        timeout_ms: 2_000,
        connect_timeout_ms: 2_000,
        reconnect_backoff_ms: 200,
    };
    RedisCounters::new(RedisStore::new(&config).unwrap())
}

/// A small deterministic generator, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn window(counter: &str, limit: u64, amount: u64, measure: Measure) -> WindowCheck {
    WindowCheck {
        counter: counter.to_owned(),
        limit,
        amount,
        window_ms: MINUTE_MS,
        measure,
        scope: ScopeKind::Key,
    }
}

#[tokio::test]
async fn the_redis_script_and_the_memory_counters_agree() {
    let Some(server) = RedisServer::start() else { return };
    let redis = redis_counters(&server, "diff:");
    let memory = MemoryCounters::new();
    let mut rng = Lcg(7);
    // Start near a minute boundary so the sequence crosses several.
    let mut now = 29_000_000 * MINUTE_MS - 5_000;
    let mut open: Vec<(AdmitPlan, u64, u64)> = Vec::new();
    let mut refusals = [0u32; 3];
    for step in 0..400 {
        now += rng.next(4_000);
        let reserve = 1 + rng.next(300);
        let plan = AdmitPlan {
            windows: vec![
                window("k:a:rpm", 20, 1, Measure::Requests),
                window("k:a:tpm", 2_000, reserve, Measure::Tokens),
                window("m:x:tpm", 3_000, reserve, Measure::Tokens),
            ],
            leases: vec![LeaseCheck {
                counter: "k:a:conc".into(),
                limit: 4,
                scope: ScopeKind::Key,
            }],
            budgets: vec![BudgetCheck {
                counter: "k:a:d1".into(),
                limit_micros: 150_000,
                ttl_ms: 86_400_000,
                resets_in_ms: 1_000,
                period: BudgetPeriod::Day,
                scope: ScopeKind::Key,
            }],
            lease_id: format!("r{step}"),
            lease_ttl_ms: 600_000,
            now_ms: Some(now),
        };
        let from_memory = memory.admit(&plan).await.unwrap();
        let from_redis = redis.admit(&plan).await.unwrap();
        assert_eq!(from_redis, from_memory, "step {step}");
        match from_memory.failed {
            None => open.push((plan, from_memory.windows[1].index, reserve)),
            Some(Failed::Window(_)) => refusals[0] += 1,
            Some(Failed::Lease(_)) => refusals[1] += 1,
            Some(Failed::Budget(_)) => refusals[2] += 1,
        }
        // Settle a random open request at a fraction of its reservation.
        if !open.is_empty() && rng.next(3) > 0 {
            let (plan, index, reserve) = open.remove(rng.next(open.len() as u64) as usize);
            let used = rng.next(reserve + 1);
            let delta = used as i64 - reserve as i64;
            let settlement = Settlement {
                windows: vec![
                    ("k:a:tpm".into(), index, MINUTE_MS, delta),
                    ("m:x:tpm".into(), index, MINUTE_MS, delta),
                ],
                leases: vec!["k:a:conc".into()],
                lease_id: plan.lease_id.clone(),
                spend: vec![("k:a:d1".into(), used * 10, 86_400_000)],
            };
            memory.settle(&settlement).await.unwrap();
            redis.settle(&settlement).await.unwrap();
        }
    }
    // The sequence exercised every kind of refusal, not only admissions.
    assert!(refusals.iter().all(|&n| n > 0), "refusals by window, lease, budget: {refusals:?}");
}

/// `tasks` admissions of `reserve` tokens at once against a limit of `limit`.
async fn admitted_at_once(
    store: Arc<dyn CounterStore>,
    tasks: u64,
    reserve: u64,
    limit: u64,
) -> u64 {
    let mut handles = Vec::new();
    for i in 0..tasks {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let plan = AdmitPlan {
                windows: vec![window("k:burst:tpm", limit, reserve, Measure::Tokens)],
                lease_id: format!("b{i}"),
                lease_ttl_ms: 60_000,
                ..AdmitPlan::default()
            };
            store.admit(&plan).await.unwrap().failed.is_none()
        }));
    }
    let mut admitted = 0;
    for h in handles {
        admitted += u64::from(h.await.unwrap());
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admissions_never_overshoot_in_memory() {
    let admitted = admitted_at_once(Arc::new(MemoryCounters::new()), 200, 70, 1_000).await;
    assert_eq!(admitted, 1_000 / 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admissions_never_overshoot_in_redis() {
    let Some(server) = RedisServer::start() else { return };
    let store = Arc::new(redis_counters(&server, "burst:"));
    let admitted = admitted_at_once(store, 200, 70, 1_000).await;
    assert_eq!(admitted, 1_000 / 70);
}

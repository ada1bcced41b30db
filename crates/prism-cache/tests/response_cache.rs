//! `ResponseCache`: outcomes per policy, what is stored, single flight, and store failures.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use prism_cache::{
    CacheConfig, CacheError, CacheKey, CacheOp, CacheOutcome, CachePolicy, CacheStats, CacheStore,
    MemoryLimits, MemoryStore, NamespaceMode, ResponseCache, Served,
};
use prism_types::ChatRequest;

const TTL: Duration = Duration::from_secs(60);
const NO_CACHE: CachePolicy = CachePolicy { lookup: false, store: true };

fn request(text: &str) -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [{"role": "user", "content": text}],
    }))
    .unwrap()
}

fn memory_cache() -> ResponseCache {
    ResponseCache::new(Arc::new(MemoryStore::new(MemoryLimits {
        max_entries: 1000,
        max_bytes: 1 << 20,
    })))
}

#[derive(Debug, PartialEq)]
struct UpstreamError;

/// An upstream stand-in that counts its calls.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn serve(
        &self,
        cache: &ResponseCache,
        key: &CacheKey,
        policy: CachePolicy,
        body: &'static str,
        cacheable: bool,
    ) -> Served {
        let calls = Arc::clone(&self.calls);
        cache
            .get_or_compute(key, TTL, policy, || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, UpstreamError>((Bytes::from_static(body.as_bytes()), cacheable))
            })
            .await
            .unwrap()
    }
}

fn stats(
    hits: u64,
    coalesced: u64,
    misses: u64,
    bypasses: u64,
    stores: u64,
    errors: u64,
) -> CacheStats {
    let mut s = CacheStats::default();
    s.hits = hits;
    s.coalesced = coalesced;
    s.misses = misses;
    s.bypasses = bypasses;
    s.stores = stores;
    s.errors = errors;
    s
}

#[tokio::test]
async fn miss_then_hit() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();

    let first = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "answer", true).await;
    assert_eq!(first, Served { body: Bytes::from_static(b"answer"), outcome: CacheOutcome::Miss });
    let second = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "other", true).await;
    assert_eq!(second, Served { body: Bytes::from_static(b"answer"), outcome: CacheOutcome::Hit });
    assert_eq!(upstream.calls(), 1);
    assert_eq!(cache.stats(), stats(1, 0, 1, 0, 1, 0));
}

#[tokio::test]
async fn uncacheable_responses_are_not_stored() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    let first = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "violation", false).await;
    assert_eq!(first.outcome, CacheOutcome::Miss);
    let second = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "ok", true).await;
    assert_eq!(second.outcome, CacheOutcome::Miss);
    assert_eq!(second.body, Bytes::from_static(b"ok"));
    assert_eq!(upstream.calls(), 2);
    assert_eq!(cache.stats().stores, 1);
}

#[tokio::test]
async fn upstream_errors_pass_through_and_are_not_stored() {
    let cache = memory_cache();
    let key = cache.key("k1", &request("hi")).unwrap();
    let err = cache
        .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
            Err::<(Bytes, bool), _>(UpstreamError)
        })
        .await
        .unwrap_err();
    assert_eq!(err, UpstreamError);
    assert!(cache.get(&key).await.is_none());
    assert_eq!(cache.stats().stores, 0);
}

#[tokio::test]
async fn no_cache_skips_lookup_but_stores() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    upstream.serve(&cache, &key, CachePolicy::DEFAULT, "old", true).await;

    let fresh = upstream.serve(&cache, &key, NO_CACHE, "new", true).await;
    assert_eq!(fresh, Served { body: Bytes::from_static(b"new"), outcome: CacheOutcome::Bypass });
    // The fresh answer replaced the old one.
    let hit = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "unused", true).await;
    assert_eq!(hit, Served { body: Bytes::from_static(b"new"), outcome: CacheOutcome::Hit });
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn no_store_neither_looks_up_nor_stores() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    upstream.serve(&cache, &key, CachePolicy::DEFAULT, "old", true).await;

    let policy = CachePolicy::from_cache_control(Some("no-store"));
    let served = upstream.serve(&cache, &key, policy, "private", true).await;
    assert_eq!(
        served,
        Served { body: Bytes::from_static(b"private"), outcome: CacheOutcome::Bypass }
    );
    let hit = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "unused", true).await;
    assert_eq!(hit.body, Bytes::from_static(b"old"), "no-store left the entry alone");
    assert_eq!(cache.stats().bypasses, 1);
}

#[tokio::test]
async fn streaming_bypasses_entirely() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    let policy = CachePolicy::resolve(None, true, true);
    for _ in 0..2 {
        let served = upstream.serve(&cache, &key, policy, "streamed", true).await;
        assert_eq!(served.outcome, CacheOutcome::Bypass);
    }
    assert_eq!(upstream.calls(), 2);
    assert!(cache.get(&key).await.is_none(), "nothing stored");
}

#[tokio::test]
async fn lookup_only_policy_does_not_store() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    let policy = CachePolicy { lookup: true, store: false };
    assert_eq!(upstream.serve(&cache, &key, policy, "a", true).await.outcome, CacheOutcome::Miss);
    assert_eq!(upstream.serve(&cache, &key, policy, "a", true).await.outcome, CacheOutcome::Miss);
    upstream.serve(&cache, &key, CachePolicy::DEFAULT, "b", true).await;
    assert_eq!(upstream.serve(&cache, &key, policy, "c", true).await.outcome, CacheOutcome::Hit);
}

#[tokio::test]
async fn tenants_do_not_share_entries_unless_configured() {
    let cache = memory_cache();
    let upstream = Upstream::default();
    let a = cache.key("key_a", &request("hi")).unwrap();
    let b = cache.key("key_b", &request("hi")).unwrap();
    upstream.serve(&cache, &a, CachePolicy::DEFAULT, "for a", true).await;
    let served = upstream.serve(&cache, &b, CachePolicy::DEFAULT, "for b", true).await;
    assert_eq!(served, Served { body: Bytes::from_static(b"for b"), outcome: CacheOutcome::Miss });

    let shared = memory_cache().with_namespace_mode(NamespaceMode::Shared);
    let a = shared.key("key_a", &request("hi")).unwrap();
    let b = shared.key("key_b", &request("hi")).unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn oversized_responses_are_served_not_stored() {
    let cache = memory_cache().with_max_entry_bytes(4);
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    let served = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "too long", true).await;
    assert_eq!(served.body, Bytes::from_static(b"too long"));
    let again = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "too long again", true).await;
    assert_eq!(again.outcome, CacheOutcome::Miss);
    assert_eq!(upstream.calls(), 2);
    assert_eq!(cache.stats().stores, 0);
    // A body within the limit is stored.
    upstream.serve(&cache, &key, CachePolicy::DEFAULT, "fits", true).await;
    assert_eq!(cache.stats().stores, 1);
}

#[tokio::test]
async fn ttl_expiry_through_the_facade() {
    let cache = memory_cache();
    let key = cache.key("k1", &request("hi")).unwrap();
    let ttl = Duration::from_millis(150);
    let compute = || async { Ok::<_, UpstreamError>((Bytes::from_static(b"v"), true)) };
    let first = cache.get_or_compute(&key, ttl, CachePolicy::DEFAULT, compute).await.unwrap();
    assert_eq!(first.outcome, CacheOutcome::Miss);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = cache.get_or_compute(&key, ttl, CachePolicy::DEFAULT, compute).await.unwrap();
    assert_eq!(again.outcome, CacheOutcome::Miss, "expired entry is a miss");
}

#[tokio::test]
async fn from_config_builds_a_working_cache() {
    let config: CacheConfig = toml::from_str("max_entries = 5\ndefault_ttl_secs = 7\n").unwrap();
    let cache = ResponseCache::from_config(&config).unwrap();
    assert_eq!(cache.backend_name(), "memory");
    assert_eq!(cache.ttl_for(None), Some(Duration::from_secs(7)));
    let upstream = Upstream::default();
    let key = cache.key("k", &request("hi")).unwrap();
    upstream.serve(&cache, &key, CachePolicy::DEFAULT, "v", true).await;
    assert_eq!(
        upstream.serve(&cache, &key, CachePolicy::DEFAULT, "v", true).await.outcome,
        CacheOutcome::Hit
    );

    let bad = CacheConfig { max_entries: 0, ..CacheConfig::default() };
    assert!(matches!(
        ResponseCache::from_config(&bad),
        Err(CacheError::InvalidConfig { field: "cache.max_entries", .. })
    ));
}

/// Runs `n` identical requests at once. The leader's closure waits until every request has
/// joined (each one increments `started` in the same poll that joins the flight), so the test
/// does not depend on timing. `fail_leader` makes the first computation fail.
async fn run_concurrent(
    cache: Arc<ResponseCache>,
    n: usize,
    fail_leader: bool,
) -> (usize, Vec<Result<Served, UpstreamError>>) {
    let key = cache.key("k1", &request("popular question")).unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (cache, key, started, calls) =
            (Arc::clone(&cache), key.clone(), Arc::clone(&started), Arc::clone(&calls));
        tasks.push(tokio::spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            cache
                .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    if call == 0 {
                        while started.load(Ordering::SeqCst) < n {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        // Let the followers reach their wait.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if fail_leader {
                            return Err(UpstreamError);
                        }
                    }
                    Ok((Bytes::from(format!("answer {call}")), true))
                })
                .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        let joined = tokio::time::timeout(Duration::from_secs(20), task).await;
        results.push(joined.expect("no request hangs").expect("task did not panic"));
    }
    (calls.load(Ordering::SeqCst), results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_misses_make_one_upstream_call() {
    let cache = Arc::new(memory_cache());
    let (calls, results) = run_concurrent(Arc::clone(&cache), 50, false).await;
    assert_eq!(calls, 1, "closure ran exactly once");
    let mut outcomes = (0, 0);
    for result in results {
        let served = result.unwrap();
        assert_eq!(served.body, Bytes::from_static(b"answer 0"));
        match served.outcome {
            CacheOutcome::Miss => outcomes.0 += 1,
            CacheOutcome::Hit => outcomes.1 += 1,
            CacheOutcome::Bypass => panic!("bypass"),
        }
    }
    assert_eq!(outcomes, (1, 49), "one leader, 49 served from its flight");
    assert_eq!(cache.stats(), stats(0, 49, 1, 0, 1, 0));
    // The leader stored before leaving the flight.
    let key = cache.key("k1", &request("popular question")).unwrap();
    assert_eq!(cache.get(&key).await.as_deref(), Some(&b"answer 0"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failure_does_not_hang_waiters() {
    let cache = Arc::new(memory_cache());
    let (calls, results) = run_concurrent(Arc::clone(&cache), 20, true).await;
    let failures = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failures, 1, "only the leader's own request sees its error");
    for served in results.into_iter().flatten() {
        assert_eq!(served.outcome, CacheOutcome::Miss, "waiters computed for themselves");
        assert!(served.body.starts_with(b"answer "));
    }
    assert_eq!(calls, 20, "the leader's call plus one per waiter");
    assert_eq!(cache.stats().coalesced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_leader_does_not_hang_waiters() {
    let cache = Arc::new(memory_cache());
    let key = cache.key("k1", &request("hi")).unwrap();
    let leader_started = Arc::new(tokio::sync::Notify::new());

    let leader = {
        let (cache, key, leader_started) =
            (Arc::clone(&cache), key.clone(), Arc::clone(&leader_started));
        tokio::spawn(async move {
            cache
                .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async move {
                    leader_started.notify_one();
                    std::future::pending::<Result<(Bytes, bool), UpstreamError>>().await
                })
                .await
        })
    };
    leader_started.notified().await;
    let follower = {
        let (cache, key) = (Arc::clone(&cache), key.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
                    Ok::<_, UpstreamError>((Bytes::from_static(b"mine"), true))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!follower.is_finished(), "the follower waits for the leader");
    leader.abort();
    let served = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("follower released")
        .unwrap()
        .unwrap();
    assert_eq!(served, Served { body: Bytes::from_static(b"mine"), outcome: CacheOutcome::Miss });
    // The flight is gone: a new request is a plain hit on what the follower stored.
    let again = cache
        .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
            Ok::<_, UpstreamError>((Bytes::from_static(b"unused"), true))
        })
        .await
        .unwrap();
    assert_eq!(again.outcome, CacheOutcome::Hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uncacheable_leader_result_is_not_shared() {
    let cache = Arc::new(memory_cache());
    let key = cache.key("k1", &request("hi")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (cache, key, calls, gate) =
            (Arc::clone(&cache), key.clone(), Arc::clone(&calls), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _permit = gate.acquire().await.unwrap();
                        return Ok::<_, UpstreamError>((Bytes::from_static(b"blocked"), false));
                    }
                    Ok((Bytes::from_static(b"fine"), true))
                })
                .await
                .unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(1);
    let mut bodies = Vec::new();
    for task in tasks {
        bodies
            .push(tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().body);
    }
    assert_eq!(bodies.iter().filter(|b| b.as_ref() == b"blocked").count(), 1);
    assert!(calls.load(Ordering::SeqCst) >= 2);
}

/// A store that always fails, slowly or at once.
struct BrokenStore {
    delay: Duration,
}

#[async_trait]
impl CacheStore for BrokenStore {
    async fn get(&self, _key: &CacheKey) -> Result<Option<Bytes>, CacheError> {
        tokio::time::sleep(self.delay).await;
        Err(CacheError::Timeout { backend: "broken", op: CacheOp::Get, timeout: self.delay })
    }

    async fn put(&self, _key: &CacheKey, _value: Bytes, _ttl: Duration) -> Result<(), CacheError> {
        Err(CacheError::Unavailable { backend: "broken" })
    }

    fn name(&self) -> &'static str {
        "broken"
    }
}

#[tokio::test]
async fn store_failures_never_fail_the_request() {
    let cache = ResponseCache::new(Arc::new(BrokenStore { delay: Duration::from_millis(10) }));
    let upstream = Upstream::default();
    let key = cache.key("k1", &request("hi")).unwrap();
    for _ in 0..3 {
        let served = upstream.serve(&cache, &key, CachePolicy::DEFAULT, "computed", true).await;
        assert_eq!(
            served,
            Served { body: Bytes::from_static(b"computed"), outcome: CacheOutcome::Miss }
        );
    }
    assert_eq!(upstream.calls(), 3);
    // Each request: one failed get and one failed put.
    assert_eq!(cache.stats(), stats(0, 0, 3, 0, 0, 6));
}

#[test]
fn futures_are_send_for_the_server() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ResponseCache>();
    let cache = memory_cache();
    let key = cache.key("k", &request("hi")).unwrap();
    let fut = cache.get_or_compute(&key, TTL, CachePolicy::DEFAULT, || async {
        Ok::<_, UpstreamError>((Bytes::new(), true))
    });
    assert_send(&fut);
}

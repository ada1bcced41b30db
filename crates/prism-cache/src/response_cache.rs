//! The facade the server uses: lookups and stores that never fail a request, counters, and
//! single flight for concurrent identical misses.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prism_types::ChatRequest;
use tokio::sync::watch;

use crate::config::MAX_TTL;
use crate::{
    CacheBackend, CacheConfig, CacheError, CacheKey, CacheOp, CacheOutcome, CachePolicy,
    CacheStore, MemoryLimits, MemoryStore, ModelCacheConfig, NamespaceMode, error_chain,
};

/// At most one store warning per this interval; the rest are counted and reported with the next.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// A response body and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The serialized `chat.completion`, ready to send.
    pub body: Bytes,
    /// What to put in the `x-prism-cache` header.
    pub outcome: CacheOutcome,
}

/// Counter values at one instant, for export as Prometheus counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests served from the store.
    pub hits: u64,
    /// Requests served from an identical request that was in flight at the same time.
    pub coalesced: u64,
    /// Requests that consulted the cache (or tried to) and then called the provider.
    pub misses: u64,
    /// Requests that did not consult the cache (`no-cache`, `no-store`, or bypassed by policy).
    pub bypasses: u64,
    /// Responses written to the store.
    pub stores: u64,
    /// Store operations that failed or timed out (each one served uncached).
    pub errors: u64,
}

/// The response cache as the server sees it: one object to build from config, share behind an
/// `Arc`, and call around the upstream request.
///
/// ```
/// # use std::time::Duration;
/// # use bytes::Bytes;
/// # use prism_cache::{CacheConfig, CacheOutcome, CachePolicy, ResponseCache};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = ResponseCache::from_config(&CacheConfig::default())?;
/// let request: prism_types::ChatRequest = serde_json::from_str(
///     r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
/// )?;
/// let key = cache.key("api-key-id", &request)?;
/// let policy = CachePolicy::resolve(None, request.is_stream(), true);
/// let ttl = Duration::from_secs(60);
///
/// let call_upstream = || async {
///     // Call the provider; say whether the response may be stored.
///     Ok::<_, std::io::Error>((Bytes::from_static(b"{\"id\":\"c1\"}"), true))
/// };
/// let first = cache.get_or_compute(&key, ttl, policy, call_upstream).await?;
/// assert_eq!(first.outcome, CacheOutcome::Miss);
/// let second = cache.get_or_compute(&key, ttl, policy, call_upstream).await?;
/// assert_eq!(second.outcome, CacheOutcome::Hit);
/// assert_eq!(second.body, first.body);
/// # Ok(())
/// # }
/// ```
pub struct ResponseCache {
    store: Arc<dyn CacheStore>,
    default_ttl: Duration,
    max_entry_bytes: usize,
    namespace: NamespaceMode,
    /// Requests currently computing a value, by key; followers subscribe to the leader's result.
    flights: Mutex<HashMap<CacheKey, Flight>>,
    next_flight_id: AtomicU64,
    counters: Counters,
    warnings: WarnLimiter,
}

/// One in-flight computation: the leader holds the sender, the map holds a receiver to clone.
struct Flight {
    id: u64,
    result: watch::Receiver<FlightState>,
}

#[derive(Clone)]
enum FlightState {
    /// The leader is looking up or computing.
    Pending,
    /// The leader has a cacheable value: every follower takes it.
    Ready(Bytes),
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    coalesced: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
}

impl ResponseCache {
    /// A cache over `store` with the default TTL (300 s), entry size limit (1 MiB) and per-key
    /// namespaces; adjust with the `with_*` methods.
    pub fn new(store: Arc<dyn CacheStore>) -> ResponseCache {
        let defaults = CacheConfig::default();
        ResponseCache {
            store,
            default_ttl: defaults.default_ttl(),
            max_entry_bytes: usize::try_from(defaults.max_entry_bytes).unwrap_or(usize::MAX),
            namespace: defaults.namespace,
            flights: Mutex::new(HashMap::new()),
            next_flight_id: AtomicU64::new(0),
            counters: Counters::default(),
            warnings: WarnLimiter::new(),
        }
    }

    /// The cache a `[cache]` section describes: validates it, then builds the memory store or
    /// the Redis store (which connects lazily, so a down Redis does not delay startup).
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] when a setting is out of range, or when `backend = "redis"`
    /// in a build without the `redis` feature.
    pub fn from_config(config: &CacheConfig) -> Result<ResponseCache, CacheError> {
        config.validate()?;
        let store: Arc<dyn CacheStore> = match config.backend {
            CacheBackend::Memory => Arc::new(MemoryStore::new(MemoryLimits {
                max_entries: config.max_entries,
                max_bytes: config.max_bytes,
            })),
            #[cfg(feature = "redis")]
            CacheBackend::Redis => Arc::new(crate::RedisStore::new(&config.redis)?),
            #[cfg(not(feature = "redis"))]
            CacheBackend::Redis => {
                return Err(CacheError::InvalidConfig {
                    field: "cache.backend",
                    reason: "this build has no redis support (the `redis` feature is off)",
                });
            }
        };
        Ok(ResponseCache::new(store)
            .with_default_ttl(config.default_ttl())
            .with_max_entry_bytes(config.max_entry_bytes)
            .with_namespace_mode(config.namespace))
    }

    /// Sets the TTL used by [`ResponseCache::ttl_for`] for models without their own.
    pub fn with_default_ttl(mut self, ttl: Duration) -> ResponseCache {
        self.default_ttl = ttl.min(MAX_TTL);
        self
    }

    /// Sets the largest body that is stored; larger ones are still served (and shared with
    /// coalesced requests).
    pub fn with_max_entry_bytes(mut self, max: u64) -> ResponseCache {
        self.max_entry_bytes = usize::try_from(max).unwrap_or(usize::MAX);
        self
    }

    /// Sets how API keys map to namespaces.
    pub fn with_namespace_mode(mut self, mode: NamespaceMode) -> ResponseCache {
        self.namespace = mode;
        self
    }

    /// The key for `request` sent with the API key whose id is `api_key_id`, in that key's
    /// namespace or the shared one, as configured.
    ///
    /// # Errors
    /// [`CacheError::KeyEncoding`], which cannot happen for valid `ChatRequest`s; serve the
    /// request with [`CachePolicy::BYPASS`] if it does.
    pub fn key(&self, api_key_id: &str, request: &ChatRequest) -> Result<CacheKey, CacheError> {
        CacheKey::new(&self.namespace.namespace_for(api_key_id), request)
    }

    /// The TTL for a model with this `cache` table, or `None` when caching is off for it.
    pub fn ttl_for(&self, model: Option<&ModelCacheConfig>) -> Option<Duration> {
        match model {
            Some(m) if !m.enabled => None,
            Some(m) => Some(m.ttl_secs.map_or(self.default_ttl, Duration::from_secs).min(MAX_TTL)),
            None => Some(self.default_ttl),
        }
    }

    /// The store's name (`memory`, `redis`), for logs and metric labels.
    pub fn backend_name(&self) -> &'static str {
        self.store.name()
    }

    /// The store behind the facade.
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.store
    }

    /// Current counter values.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bypasses: c.bypasses.load(Ordering::Relaxed),
            stores: c.stores.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Serves a request through the cache.
    ///
    /// `compute` calls the provider and returns the response body and whether it may be stored
    /// (a successful, complete response that passed the guardrails). It runs at most once, and
    /// not at all on a hit.
    ///
    /// * `policy.lookup` false: `compute` runs; the result is stored if `policy.store` and
    ///   cacheable. Outcome [`CacheOutcome::Bypass`].
    /// * `policy.lookup` true: a stored value is returned as [`CacheOutcome::Hit`]. Otherwise,
    ///   when `policy.store` is also true, concurrent calls for the same key are coalesced: the
    ///   first (the leader) runs `compute`, and the others wait for it and receive the same body,
    ///   also reported as `Hit` (counted as `coalesced`). If the leader's `compute` fails, returns
    ///   an uncacheable response, or is cancelled (its future dropped), every waiter runs its own
    ///   `compute` instead — so waiters never hang on a failed leader and always get an answer to
    ///   their own request, at the price of one upstream call each in that case. Outcome
    ///   [`CacheOutcome::Miss`] for whoever called the provider.
    ///
    /// Store failures never surface: they are logged (rate-limited, without keys or bodies),
    /// counted in [`CacheStats::errors`], and the request is served uncached. The leader stores
    /// its value after handing it to the waiters and before leaving the flight, so a request that
    /// arrives after the flight ends finds the value in the store.
    ///
    /// # Errors
    /// Only `compute`'s own error, unchanged.
    ///
    /// # Cancel safety
    /// Dropping the returned future is safe at any point; waiters of a dropped leader compute
    /// for themselves.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &CacheKey,
        ttl: Duration,
        policy: CachePolicy,
        compute: F,
    ) -> Result<Served, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Bytes, bool), E>>,
    {
        if !policy.lookup {
            bump(&self.counters.bypasses);
            let (body, cacheable) = compute().await?;
            if policy.store && cacheable {
                self.put(key, body.clone(), ttl).await;
            }
            return Ok(Served { body, outcome: CacheOutcome::Bypass });
        }
        if !policy.store {
            if let Some(body) = self.get(key).await {
                return Ok(Served { body, outcome: CacheOutcome::Hit });
            }
            bump(&self.counters.misses);
            let (body, _) = compute().await?;
            return Ok(Served { body, outcome: CacheOutcome::Miss });
        }

        match self.join_flight(key) {
            Role::Follower(result) => {
                if let Some(body) = wait_for_leader(result).await {
                    bump(&self.counters.coalesced);
                    return Ok(Served { body, outcome: CacheOutcome::Hit });
                }
                bump(&self.counters.misses);
                let (body, cacheable) = compute().await?;
                if cacheable {
                    self.put(key, body.clone(), ttl).await;
                }
                Ok(Served { body, outcome: CacheOutcome::Miss })
            }
            Role::Leader(flight) => {
                if let Some(body) = self.get(key).await {
                    flight.publish(body.clone());
                    return Ok(Served { body, outcome: CacheOutcome::Hit });
                }
                bump(&self.counters.misses);
                // On error the guard drops here, which releases the waiters.
                let (body, cacheable) = compute().await?;
                if cacheable {
                    flight.publish(body.clone());
                    self.put(key, body.clone(), ttl).await;
                }
                drop(flight);
                Ok(Served { body, outcome: CacheOutcome::Miss })
            }
        }
    }

    /// Looks `key` up; errors count as misses (logged and counted). Counts a hit when found.
    pub async fn get(&self, key: &CacheKey) -> Option<Bytes> {
        match self.store.get(key).await {
            Ok(Some(body)) => {
                bump(&self.counters.hits);
                Some(body)
            }
            Ok(None) => None,
            Err(err) => {
                self.store_failed(CacheOp::Get, &err);
                None
            }
        }
    }

    /// Stores `body` under `key` for `ttl` (capped at one year); skips bodies over the entry
    /// size limit; errors are logged and counted, never returned.
    pub async fn put(&self, key: &CacheKey, body: Bytes, ttl: Duration) {
        if body.len() > self.max_entry_bytes {
            tracing::debug!(
                backend = self.store.name(),
                bytes = body.len(),
                limit = self.max_entry_bytes,
                "response too large to cache"
            );
            return;
        }
        match self.store.put(key, body, ttl.min(MAX_TTL)).await {
            Ok(()) => bump(&self.counters.stores),
            Err(err) => self.store_failed(CacheOp::Put, &err),
        }
    }

    fn store_failed(&self, op: CacheOp, err: &CacheError) {
        bump(&self.counters.errors);
        if let Some(suppressed) = self.warnings.allow() {
            tracing::warn!(
                backend = self.store.name(),
                op = op.as_str(),
                kind = err.metric_label(),
                error = %error_chain(err),
                suppressed_since_last = suppressed,
                "cache unavailable; serving uncached"
            );
        }
    }

    fn join_flight(&self, key: &CacheKey) -> Role<'_> {
        let mut flights = self.lock_flights();
        if let Some(flight) = flights.get(key) {
            return Role::Follower(flight.result.clone());
        }
        let id = self.next_flight_id.fetch_add(1, Ordering::Relaxed);
        let (sender, result) = watch::channel(FlightState::Pending);
        flights.insert(key.clone(), Flight { id, result });
        Role::Leader(LeaderGuard { cache: self, key: key.clone(), id, sender })
    }

    fn lock_flights(&self) -> MutexGuard<'_, HashMap<CacheKey, Flight>> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert, lookup or remove.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("backend", &self.store.name())
            .field("default_ttl", &self.default_ttl)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("namespace", &self.namespace)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Follower(watch::Receiver<FlightState>),
}

/// Held by the leader while it computes. Dropping it — on success, error or cancellation —
/// removes the flight, and closes the channel so waiters without a value stop waiting.
struct LeaderGuard<'a> {
    cache: &'a ResponseCache,
    key: CacheKey,
    id: u64,
    sender: watch::Sender<FlightState>,
}

impl LeaderGuard<'_> {
    fn publish(&self, body: Bytes) {
        self.sender.send_replace(FlightState::Ready(body));
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.lock_flights();
        if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(&self.key);
        }
    }
}

/// The leader's value, or `None` once it is gone without one.
async fn wait_for_leader(mut result: watch::Receiver<FlightState>) -> Option<Bytes> {
    let ready = match result.wait_for(|s| matches!(s, FlightState::Ready(_))).await {
        Ok(state) => Some(state.clone()),
        Err(_) => None,
    };
    // Closed: the leader left. It may still have published just before leaving.
    let state = ready.unwrap_or_else(|| result.borrow().clone());
    match state {
        FlightState::Ready(body) => Some(body),
        FlightState::Pending => None,
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Lets one warning through per [`WARN_INTERVAL`] so a down backend does not flood the logs.
struct WarnLimiter {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last warning let through, plus one (0 = never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    fn new() -> WarnLimiter {
        WarnLimiter {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(number suppressed since the last one)` when a warning may be logged now.
    fn allow(&self) -> Option<u64> {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last) >= interval;
        if due
            && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited() {
        let limiter = WarnLimiter::new();
        assert_eq!(limiter.allow(), Some(0));
        assert_eq!(limiter.allow(), None);
        assert_eq!(limiter.allow(), None);
        // Pretend the interval has passed: "never warned" is stored as 0.
        limiter.last.store(0, Ordering::Relaxed);
        assert_eq!(limiter.allow(), Some(2), "reports what it suppressed");
    }
}

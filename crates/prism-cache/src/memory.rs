//! The in-process store: a moka cache bounded by entry count and bytes, with per-entry TTL.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use crate::{CacheError, CacheKey, CacheStore};

/// Bytes charged per entry on top of key and value, for moka's own bookkeeping.
const ENTRY_OVERHEAD: u64 = 128;

/// The two bounds of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// At most this many entries.
    pub max_entries: u64,
    /// At most this many bytes of keys and values (plus a fixed per-entry overhead).
    pub max_bytes: u64,
}

/// In-process [`CacheStore`] on [moka](https://docs.rs/moka): TinyLFU admission and eviction,
/// per-entry TTL, never blocks on IO.
///
/// Both bounds hold at all times (up to moka's lazy maintenance, which runs on every few
/// operations). moka has a single weighted capacity, so each entry weighs
/// `max(its bytes, max_bytes / max_entries)` against a capacity of `max_bytes`: the byte total
/// can never pass `max_bytes`, and since no entry weighs less than the per-entry quota the count
/// can never pass `max_entries`. The price is that a mix of small and large entries may be evicted
/// before either bound is reached alone (at worst at half of each). A value larger than
/// `max_bytes` is never admitted.
///
/// Entries are private to the process: several gateway instances each have their own.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<CacheKey, Entry>,
    limits: MemoryLimits,
}

#[derive(Clone)]
struct Entry {
    body: Bytes,
    ttl: Duration,
}

/// Per-entry TTL: each entry lives exactly as long as the `put` that wrote it asked.
struct PerEntryTtl;

impl Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Entry,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Entry,
        _now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl MemoryStore {
    /// An empty store with these bounds. Bounds of zero are raised to one (validate
    /// configuration with [`crate::CacheConfig::validate`] to reject them instead).
    pub fn new(limits: MemoryLimits) -> MemoryStore {
        let limits = MemoryLimits {
            max_entries: limits.max_entries.max(1),
            max_bytes: limits.max_bytes.max(1),
        };
        let quota = limits.max_bytes.div_ceil(limits.max_entries);
        let cache = Cache::builder()
            .name("prism-response-cache")
            .max_capacity(limits.max_bytes)
            .weigher(move |key: &CacheKey, value: &Entry| -> u32 {
                let bytes = (key.as_str().len() as u64)
                    .saturating_add(value.body.len() as u64)
                    .saturating_add(ENTRY_OVERHEAD);
                u32::try_from(bytes.max(quota)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .eviction_policy(EvictionPolicy::tiny_lfu())
            .build();
        MemoryStore { cache, limits }
    }

    /// The bounds in force.
    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// Entries currently held (approximate until [`MemoryStore::run_pending_tasks`]).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Total weight currently held, in bytes as charged against `max_bytes` (approximate until
    /// [`MemoryStore::run_pending_tasks`]).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Runs moka's deferred maintenance now (evictions, expirations, counters). moka does this
    /// by itself as operations happen; call it when exact counts matter, as tests do.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("limits", &self.limits)
            .field("entry_count", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .finish()
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, CacheError> {
        Ok(self.cache.get(key).await.map(|entry| entry.body))
    }

    async fn put(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        if ttl.is_zero() {
            return Ok(());
        }
        self.cache.insert(key.clone(), Entry { body: value, ttl }).await;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

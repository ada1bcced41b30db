//! The storage backend contract.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{CacheError, CacheKey};

/// Where cached responses live: in process ([`crate::MemoryStore`]) or shared (`RedisStore`,
/// with the `redis` feature).
///
/// Values are opaque bytes — the serialized `chat.completion` body exactly as it is sent to the
/// client — so a hit is served without re-encoding. Implementations must bound the time of every
/// call (a cache that hangs is worse than no cache) and must never log keys' content or values.
/// Callers normally go through [`crate::ResponseCache`], which turns every error into a counted
/// warning and a cache miss.
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// The stored value for `key`, or `None` when absent or expired.
    ///
    /// # Errors
    /// The backend failed or was too slow; the caller serves the request uncached.
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, CacheError>;

    /// Stores `value` under `key` for `ttl`, replacing any previous value. A zero `ttl` stores
    /// nothing.
    ///
    /// # Errors
    /// The backend failed or was too slow; the value is simply not cached.
    async fn put(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<(), CacheError>;

    /// A short static name for logs and metrics labels (`memory`, `redis`).
    fn name(&self) -> &'static str;
}

//! Prism's response cache: exact-match caching of non-streaming chat completions, per tenant,
//! in memory or in Redis, with single flight for concurrent identical requests.
//!
//! # How the server uses it
//!
//! 1. At startup, build one [`ResponseCache`] from the `[cache]` section with
//!    [`ResponseCache::from_config`] and share it (`Arc<ResponseCache>`). Construction does no IO;
//!    a Redis backend connects lazily in the background.
//! 2. Per request, decide the [`CachePolicy`] with [`CachePolicy::resolve`] (streaming requests
//!    and models with `cache.enabled = false` bypass the cache; otherwise the `cache-control`
//!    request header decides), the TTL with [`ResponseCache::ttl_for`], and the key with
//!    [`ResponseCache::key`] (API key id → namespace).
//! 3. Wrap the upstream call in [`ResponseCache::get_or_compute`]. The closure returns the
//!    serialized `chat.completion` and whether it may be stored: only successful, complete
//!    responses without guardrail violations. The result carries the body and a
//!    [`CacheOutcome`] for the [`CACHE_STATUS_HEADER`] (`x-prism-cache: hit | miss | bypass`).
//! 4. Export [`ResponseCache::stats`] as counters.
//!
//! ```
//! # use std::time::Duration;
//! # use bytes::Bytes;
//! # use prism_cache::{CacheConfig, CachePolicy, ResponseCache};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: CacheConfig = toml::from_str("backend = \"memory\"\ndefault_ttl_secs = 60\n")?;
//! let cache = ResponseCache::from_config(&config)?;
//!
//! let request: prism_types::ChatRequest =
//!     serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)?;
//! let cache_control: Option<&str> = None; // the request's `cache-control` header
//! let policy = CachePolicy::resolve(cache_control, request.is_stream(), true);
//! let ttl = cache.ttl_for(None).unwrap_or(Duration::ZERO);
//! let key = cache.key("key_123", &request)?;
//!
//! let served = cache
//!     .get_or_compute(&key, ttl, policy, || async {
//!         let body = Bytes::from_static(b"{\"object\":\"chat.completion\"}");
//!         Ok::<_, std::io::Error>((body, true))
//!     })
//!     .await?;
//! println!("x-prism-cache: {}", served.outcome);
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! * A cache problem never fails a request: store errors and timeouts become misses, a
//!   rate-limited `tracing` warning and a count in [`CacheStats::errors`].
//! * Tenants never share entries unless `namespace = "shared"`; keys are hashes, so neither
//!   prompts nor API key ids reach the backend or the logs.
//! * Bounded: the memory store by entries and bytes, each Redis call by a timeout, entries by
//!   `max_entry_bytes`, TTLs by [`MAX_TTL`].
//!
//! `docs/caching.md` in the repository describes the behaviour and configuration for operators.

mod config;
mod error;
mod key;
mod memory;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod response_cache;
mod store;

pub use config::{
    CacheBackend, CacheConfig, MAX_TTL, ModelCacheConfig, NamespaceMode, RedisConfig,
};
pub use error::{BoxError, CacheError, CacheOp};
pub use key::{CacheKey, KEY_VERSION, TRANSPORT_FIELDS};
pub use memory::{MemoryLimits, MemoryStore};
pub use policy::{CACHE_STATUS_HEADER, CacheOutcome, CachePolicy};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use response_cache::{CacheStats, ResponseCache, Served};
pub use store::CacheStore;

/// An error and its sources, joined with `: `, for one-line log fields.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = err.to_string();
    let mut source = err.source();
    // Source chains are short in practice; the cap keeps a cyclic chain from looping forever.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

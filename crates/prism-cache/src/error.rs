//! The crate's one error type.

use std::fmt;
use std::time::Duration;

/// A boxed error from a backend's client library, kept opaque so no dependency's type leaks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the cache.
///
/// Store errors ([`CacheError::Timeout`], [`CacheError::Unavailable`], [`CacheError::Backend`])
/// are never fatal to a request: [`crate::ResponseCache`] logs and counts them and serves the
/// request uncached. No variant carries a key's content, a request body or a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A backend operation did not finish within its time budget.
    #[error("cache {backend} {op} timed out after {timeout:?}")]
    Timeout {
        /// The store's [`crate::CacheStore::name`].
        backend: &'static str,
        /// What was attempted.
        op: CacheOp,
        /// The budget that ran out.
        timeout: Duration,
    },
    /// The backend has no connection right now (still connecting, or backing off after a failed
    /// connect); the operation was refused without waiting.
    #[error("cache {backend} is not connected")]
    Unavailable {
        /// The store's [`crate::CacheStore::name`].
        backend: &'static str,
    },
    /// The backend answered with an error or the connection broke.
    #[error("cache {backend} {op} failed")]
    Backend {
        /// The store's [`crate::CacheStore::name`].
        backend: &'static str,
        /// What was attempted.
        op: CacheOp,
        /// The client library's error.
        #[source]
        source: BoxError,
    },
    /// The request could not be turned into its canonical JSON form.
    #[error("request cannot be encoded for the cache key")]
    KeyEncoding {
        /// The encoder's error.
        #[source]
        source: BoxError,
    },
    /// A `[cache]` setting is out of range or malformed.
    #[error("invalid cache config `{field}`: {reason}")]
    InvalidConfig {
        /// The offending setting, as written in the config file (`cache.max_bytes`).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl CacheError {
    /// Whether the error is a timeout (a slow backend rather than a broken one).
    pub fn is_timeout(&self) -> bool {
        matches!(self, CacheError::Timeout { .. })
    }

    /// A low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CacheError::Timeout { .. } => "timeout",
            CacheError::Unavailable { .. } => "unavailable",
            CacheError::Backend { .. } => "backend",
            CacheError::KeyEncoding { .. } => "key_encoding",
            CacheError::InvalidConfig { .. } => "invalid_config",
        }
    }
}

/// A store operation, for error context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheOp {
    /// Establishing the connection.
    Connect,
    /// Reading an entry.
    Get,
    /// Writing an entry.
    Put,
    /// Another command or script, run by a user of [`crate::RedisStore::run`].
    Command,
}

impl CacheOp {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOp::Connect => "connect",
            CacheOp::Get => "get",
            CacheOp::Put => "put",
            CacheOp::Command => "command",
        }
    }
}

impl fmt::Display for CacheOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

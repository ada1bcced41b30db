//! The `[cache]` configuration section and the per-model `cache = { … }` table.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::CacheError;

/// The longest TTL accepted anywhere (one year); longer values are configuration mistakes and
/// would overflow clock arithmetic in the stores.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The `[cache]` section of the server config.
///
/// ```toml
/// [cache]
/// backend = "memory"          # or "redis"
/// max_entries = 10000         # memory backend only
/// max_bytes = 104857600       # memory backend only
/// max_entry_bytes = 1048576   # larger responses are served but not stored
/// default_ttl_secs = 300
/// namespace = "per_key"       # or "shared"
///
/// [cache.redis]               # only read when backend = "redis"
/// url = "redis://127.0.0.1:6379"
/// key_prefix = "prism:"
/// timeout_ms = 100
/// ```
///
/// Every field has a default, so `[cache]` alone enables an in-memory cache. Unknown fields are
/// rejected so a typo does not silently fall back to a default. Call
/// [`CacheConfig::validate`] (done by [`crate::ResponseCache::from_config`]) before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Where entries live.
    pub backend: CacheBackend,
    /// Memory backend: the most entries held.
    pub max_entries: u64,
    /// Memory backend: the most bytes held (keys + values + a small per-entry overhead).
    pub max_bytes: u64,
    /// Responses larger than this are served normally but not stored.
    pub max_entry_bytes: u64,
    /// TTL for models that do not set their own `ttl_secs`.
    pub default_ttl_secs: u64,
    /// How entries are partitioned between API keys.
    pub namespace: NamespaceMode,
    /// Redis settings, used when `backend = "redis"`.
    pub redis: RedisConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: CacheBackend::Memory,
            max_entries: 10_000,
            max_bytes: 100 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            default_ttl_secs: 300,
            namespace: NamespaceMode::PerKey,
            redis: RedisConfig::default(),
        }
    }
}

impl CacheConfig {
    /// Checks every bound.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<(), CacheError> {
        let invalid = |field, reason| Err(CacheError::InvalidConfig { field, reason });
        if self.max_entries == 0 {
            return invalid("cache.max_entries", "must be at least 1");
        }
        if self.max_bytes == 0 {
            return invalid("cache.max_bytes", "must be at least 1");
        }
        if self.max_entry_bytes == 0 {
            return invalid("cache.max_entry_bytes", "must be at least 1");
        }
        if self.backend == CacheBackend::Memory && self.max_entry_bytes > self.max_bytes {
            return invalid("cache.max_entry_bytes", "must not exceed cache.max_bytes");
        }
        validate_ttl("cache.default_ttl_secs", self.default_ttl_secs)?;
        if self.backend == CacheBackend::Redis {
            self.redis.validate()?;
        }
        Ok(())
    }

    /// The default TTL.
    pub fn default_ttl(&self) -> Duration {
        Duration::from_secs(self.default_ttl_secs)
    }

    /// The TTL for a model with this `cache` table (`None` when the model has none), or `None`
    /// when caching is disabled for it.
    pub fn ttl_for(&self, model: Option<&ModelCacheConfig>) -> Option<Duration> {
        match model {
            Some(m) if !m.enabled => None,
            Some(m) => Some(Duration::from_secs(m.ttl_secs.unwrap_or(self.default_ttl_secs))),
            None => Some(self.default_ttl()),
        }
    }
}

fn validate_ttl(field: &'static str, secs: u64) -> Result<(), CacheError> {
    if secs == 0 {
        return Err(CacheError::InvalidConfig {
            field,
            reason: "must be at least 1 (disable caching with enabled = false instead)",
        });
    }
    if secs > MAX_TTL.as_secs() {
        return Err(CacheError::InvalidConfig { field, reason: "must be at most one year" });
    }
    Ok(())
}

/// `cache.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In this process ([`crate::MemoryStore`]); each gateway instance has its own.
    #[default]
    Memory,
    /// A Redis server shared by every instance (`RedisStore`, with the `redis` feature).
    Redis,
}

/// `cache.namespace`: whose entries a request may be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceMode {
    /// Each API key has its own entries (the default): tenants never see each other's answers.
    #[default]
    PerKey,
    /// All API keys share entries. Only for deployments where every key belongs to one tenant.
    Shared,
}

impl NamespaceMode {
    /// The cache namespace for a request authenticated with the key whose id is `api_key_id`.
    ///
    /// Per-key namespaces are `key:<id>`, the shared one is `shared`, so no key id can land in
    /// the shared namespace (or the other way round) when the mode changes.
    pub fn namespace_for(self, api_key_id: &str) -> String {
        match self {
            NamespaceMode::PerKey => format!("key:{api_key_id}"),
            NamespaceMode::Shared => "shared".to_owned(),
        }
    }
}

/// `[cache.redis]`.
///
/// `Debug` hides any password in the URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` or `unix:///path/to/redis.sock`. TLS
    /// (`rediss://`) is not built in.
    pub url: String,
    /// Prepended to every key, to share one Redis database with other applications.
    pub key_prefix: String,
    /// Budget for each get or put, including any wait for the connection.
    pub timeout_ms: u64,
    /// Budget for establishing the connection (in the background).
    pub connect_timeout_ms: u64,
    /// After a failed connect, operations fail fast for this long before the next attempt.
    pub reconnect_backoff_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "prism:".to_owned(),
            timeout_ms: 100,
            connect_timeout_ms: 1_000,
            reconnect_backoff_ms: 1_000,
        }
    }
}

impl RedisConfig {
    /// Checks the URL scheme and the time budgets.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<(), CacheError> {
        let invalid = |field, reason| Err(CacheError::InvalidConfig { field, reason });
        let url = self.url.trim();
        if url.starts_with("rediss://") {
            return invalid("cache.redis.url", "TLS (rediss://) is not supported by this build");
        }
        if !["redis://", "unix://", "redis+unix://"].iter().any(|s| url.starts_with(s)) {
            return invalid(
                "cache.redis.url",
                "must start with redis://, unix:// or redis+unix://",
            );
        }
        if self.key_prefix.len() > 256 {
            return invalid("cache.redis.key_prefix", "must be at most 256 bytes");
        }
        for (field, ms) in [
            ("cache.redis.timeout_ms", self.timeout_ms),
            ("cache.redis.connect_timeout_ms", self.connect_timeout_ms),
        ] {
            if ms == 0 {
                return invalid(field, "must be at least 1");
            }
            if ms > 60_000 {
                return invalid(field, "must be at most 60000");
            }
        }
        if self.reconnect_backoff_ms > 3_600_000 {
            return invalid("cache.redis.reconnect_backoff_ms", "must be at most 3600000");
        }
        Ok(())
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("reconnect_backoff_ms", &self.reconnect_backoff_ms)
            .finish()
    }
}

/// The URL with any `user:password@` replaced by `***@`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') { "***".to_owned() } else { url.to_owned() };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A model's `cache = { enabled = true, ttl_secs = 60 }` table, for the server's model config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelCacheConfig {
    /// Whether this model's responses are cached at all (default true when `[cache]` exists).
    pub enabled: bool,
    /// This model's TTL; `cache.default_ttl_secs` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

impl Default for ModelCacheConfig {
    fn default() -> Self {
        ModelCacheConfig { enabled: true, ttl_secs: None }
    }
}

impl ModelCacheConfig {
    /// Checks the TTL bounds.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a `ttl_secs` of zero or above one year.
    pub fn validate(&self) -> Result<(), CacheError> {
        match self.ttl_secs {
            Some(secs) => validate_ttl("models.cache.ttl_secs", secs),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> CacheConfig {
        #[derive(Deserialize)]
        struct Root {
            cache: CacheConfig,
        }
        toml::from_str::<Root>(toml_text).expect("parses").cache
    }

    fn field_of(err: CacheError) -> &'static str {
        match err {
            CacheError::InvalidConfig { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn documented_example_parses() {
        let cfg = parse(
            r#"
            [cache]
            backend = "redis"
            max_entries = 10000
            max_bytes = 104857600
            default_ttl_secs = 300
            namespace = "shared"
            [cache.redis]
            url = "redis://127.0.0.1:6379"
            key_prefix = "prism:"
            timeout_ms = 100
            "#,
        );
        assert_eq!(cfg.backend, CacheBackend::Redis);
        assert_eq!(cfg.namespace, NamespaceMode::Shared);
        assert_eq!(cfg.max_bytes, 104_857_600);
        assert_eq!(cfg.redis.timeout_ms, 100);
        assert_eq!(cfg.redis.connect_timeout_ms, 1_000, "defaulted");
        cfg.validate().expect("valid");
    }

    #[test]
    fn empty_section_is_all_defaults() {
        let cfg = parse("[cache]\n");
        assert_eq!(cfg, CacheConfig::default());
        assert_eq!(cfg.backend, CacheBackend::Memory);
        assert_eq!(cfg.namespace, NamespaceMode::PerKey);
        assert_eq!(cfg.default_ttl(), Duration::from_secs(300));
        cfg.validate().expect("defaults are valid");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "only parsed")]
        struct Root {
            cache: CacheConfig,
        }
        let err = toml::from_str::<Root>("[cache]\nmax_entrys = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_entrys"), "{err}");
        let err = toml::from_str::<Root>("[cache]\nbackend = \"memcached\"\n").unwrap_err();
        assert!(err.to_string().contains("memcached"), "{err}");
    }

    type Mutation<T> = Box<dyn Fn(&mut T)>;

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(&str, Mutation<CacheConfig>)> = vec![
            ("cache.max_entries", Box::new(|c| c.max_entries = 0)),
            ("cache.max_bytes", Box::new(|c| c.max_bytes = 0)),
            ("cache.max_entry_bytes", Box::new(|c| c.max_entry_bytes = 0)),
            ("cache.max_entry_bytes", Box::new(|c| c.max_entry_bytes = c.max_bytes + 1)),
            ("cache.default_ttl_secs", Box::new(|c| c.default_ttl_secs = 0)),
            ("cache.default_ttl_secs", Box::new(|c| c.default_ttl_secs = MAX_TTL.as_secs() + 1)),
        ];
        for (field, mutate) in cases {
            let mut cfg = CacheConfig::default();
            mutate(&mut cfg);
            assert_eq!(field_of(cfg.validate().unwrap_err()), field);
        }
        let redis_cases: Vec<(&str, Mutation<RedisConfig>)> = vec![
            ("cache.redis.url", Box::new(|r| r.url = "rediss://h:6380".into())),
            ("cache.redis.url", Box::new(|r| r.url = "http://h".into())),
            ("cache.redis.url", Box::new(|r| r.url = String::new())),
            ("cache.redis.timeout_ms", Box::new(|r| r.timeout_ms = 0)),
            ("cache.redis.timeout_ms", Box::new(|r| r.timeout_ms = 60_001)),
            ("cache.redis.connect_timeout_ms", Box::new(|r| r.connect_timeout_ms = 0)),
            ("cache.redis.key_prefix", Box::new(|r| r.key_prefix = "x".repeat(257))),
        ];
        for (field, mutate) in redis_cases {
            let mut cfg = CacheConfig { backend: CacheBackend::Redis, ..CacheConfig::default() };
            mutate(&mut cfg.redis);
            assert_eq!(field_of(cfg.validate().unwrap_err()), field);
            // Redis settings are not checked while the memory backend is in use.
            cfg.backend = CacheBackend::Memory;
            cfg.validate().expect("redis section ignored for memory");
        }
    }

    #[test]
    fn per_model_ttl() {
        let cfg = CacheConfig::default();
        assert_eq!(cfg.ttl_for(None), Some(Duration::from_secs(300)));
        let model: ModelCacheConfig = toml::from_str("enabled = true\nttl_secs = 60\n").unwrap();
        assert_eq!(cfg.ttl_for(Some(&model)), Some(Duration::from_secs(60)));
        let off: ModelCacheConfig = toml::from_str("enabled = false\n").unwrap();
        assert_eq!(cfg.ttl_for(Some(&off)), None);
        let default_ttl: ModelCacheConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.ttl_for(Some(&default_ttl)), Some(Duration::from_secs(300)));
        assert!(ModelCacheConfig { enabled: true, ttl_secs: Some(0) }.validate().is_err());
        assert!(model.validate().is_ok());
    }

    #[test]
    fn namespaces_cannot_cross_modes() {
        assert_eq!(NamespaceMode::PerKey.namespace_for("k1"), "key:k1");
        assert_eq!(NamespaceMode::Shared.namespace_for("k1"), "shared");
        assert_ne!(NamespaceMode::PerKey.namespace_for("shared"), "shared");
    }

    #[test]
    fn debug_hides_redis_password() {
        let cfg = RedisConfig {
            url: "redis://admin:hunter2@cache.internal:6379/0".into(),
            ..RedisConfig::default()
        };
        let shown = format!("{:?}", CacheConfig { redis: cfg, ..CacheConfig::default() });
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("admin"), "{shown}");
        assert!(shown.contains("redis://***@cache.internal:6379/0"), "{shown}");
        assert_eq!(redact_url("redis://:p@ss@h:1"), "redis://***@h:1");
        assert_eq!(redact_url("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact_url("unix:///tmp/r.sock"), "unix:///tmp/r.sock");
        assert_eq!(redact_url("garbage@x"), "***");
    }
}

//! Per-request cache policy (from `cache-control`) and the outcome reported in `x-prism-cache`.

use std::fmt;

/// The response header that reports a request's [`CacheOutcome`].
pub const CACHE_STATUS_HEADER: &str = "x-prism-cache";

/// What the cache may do for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CachePolicy {
    /// Serve from the cache (and join an in-flight identical request) when possible.
    pub lookup: bool,
    /// Store a cacheable response.
    pub store: bool,
}

impl CachePolicy {
    /// Look up and store: the default.
    pub const DEFAULT: CachePolicy = CachePolicy { lookup: true, store: true };
    /// Neither look up nor store: streaming requests, models with caching off, `no-store`.
    pub const BYPASS: CachePolicy = CachePolicy { lookup: false, store: false };

    /// The policy a `cache-control` request header asks for (`None` when the header is absent).
    ///
    /// Directives are comma-separated and case-insensitive; arguments and unknown directives are
    /// ignored. Several `cache-control` headers may be joined with `,`.
    ///
    /// | directive | lookup | store |
    /// |---|---|---|
    /// | (none) | yes | yes |
    /// | `no-cache`, `max-age=0` | no | yes |
    /// | `no-store` (wins over everything) | no | no |
    ///
    /// ```
    /// use prism_cache::CachePolicy;
    /// assert_eq!(CachePolicy::from_cache_control(None), CachePolicy::DEFAULT);
    /// let p = CachePolicy::from_cache_control(Some("No-Cache"));
    /// assert!(!p.lookup && p.store);
    /// assert_eq!(CachePolicy::from_cache_control(Some("no-cache, no-store")), CachePolicy::BYPASS);
    /// ```
    pub fn from_cache_control(header: Option<&str>) -> CachePolicy {
        let mut policy = CachePolicy::DEFAULT;
        let Some(header) = header else {
            return policy;
        };
        for directive in header.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") {
                return CachePolicy::BYPASS;
            }
            let max_age_zero = name.eq_ignore_ascii_case("max-age")
                && arg.is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b == b'0'));
            if max_age_zero || name.eq_ignore_ascii_case("no-cache") {
                policy.lookup = false;
            }
        }
        policy
    }

    /// The whole decision for one request: streaming requests and models with caching disabled
    /// bypass the cache entirely; otherwise the `cache-control` header decides.
    pub fn resolve(cache_control: Option<&str>, stream: bool, model_enabled: bool) -> CachePolicy {
        if stream || !model_enabled {
            CachePolicy::BYPASS
        } else {
            CachePolicy::from_cache_control(cache_control)
        }
    }
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy::DEFAULT
    }
}

/// How a request was served, for the `x-prism-cache` response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// Served without calling the provider: from the store, or from an identical request that
    /// was in flight at the same time.
    Hit,
    /// The cache was consulted (or failed) and the provider was called.
    Miss,
    /// The cache was not consulted (streaming, caching off for the model, `no-cache`,
    /// `no-store`).
    Bypass,
}

impl CacheOutcome {
    /// The header value: `hit`, `miss` or `bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypass => "bypass",
        }
    }
}

impl fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, lookup: bool, store: bool) {
        assert_eq!(
            CachePolicy::from_cache_control(header),
            CachePolicy { lookup, store },
            "header {header:?}"
        );
    }

    #[test]
    fn cache_control_parsing() {
        check(None, true, true);
        check(Some(""), true, true);
        check(Some("   "), true, true);
        check(Some("no-cache"), false, true);
        check(Some("NO-CACHE"), false, true);
        check(Some(" no-cache ,"), false, true);
        check(Some("no-store"), false, false);
        check(Some("No-Store"), false, false);
        check(Some("no-store, no-cache"), false, false);
        check(Some("no-cache, no-store"), false, false);
        check(Some("max-age=0"), false, true);
        check(Some("max-age=\"0\""), false, true);
        check(Some("max-age=000"), false, true);
        check(Some("max-age=60"), true, true);
        check(Some("max-age="), true, true);
        check(Some("max-stale, private"), true, true);
        check(Some("no-cache=\"set-cookie\""), false, true);
        // Near misses are not directives.
        check(Some("no-caches, store, no_store, nostore"), true, true);
        check(Some("x-no-store"), true, true);
    }

    #[test]
    fn resolve_bypasses_streams_and_disabled_models() {
        assert_eq!(CachePolicy::resolve(None, true, true), CachePolicy::BYPASS);
        assert_eq!(CachePolicy::resolve(None, false, false), CachePolicy::BYPASS);
        assert_eq!(CachePolicy::resolve(None, false, true), CachePolicy::DEFAULT);
        assert_eq!(
            CachePolicy::resolve(Some("no-cache"), false, true),
            CachePolicy { lookup: false, store: true }
        );
    }

    #[test]
    fn outcome_header_values() {
        assert_eq!(CacheOutcome::Hit.to_string(), "hit");
        assert_eq!(CacheOutcome::Miss.as_str(), "miss");
        assert_eq!(CacheOutcome::Bypass.as_str(), "bypass");
        assert_eq!(CACHE_STATUS_HEADER, "x-prism-cache");
    }
}

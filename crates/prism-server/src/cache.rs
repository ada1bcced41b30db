//! Stage 4, the response cache (non-streaming only): [`GatewayCache`] puts `prism-cache` behind
//! the [`CompletionCache`] seam (tenant namespaces, per-model TTLs, `cache-control`, single
//! flight). The pipeline hands it the rest of the non-streaming path as a `Compute`.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response, header};
use prism_cache::{
    CACHE_STATUS_HEADER, CacheConfig, CacheError, CacheOutcome, CachePolicy, ResponseCache,
};

use crate::body::ResponseBody;
use crate::config::Config;
use crate::hooks::{BoxFuture, CacheRequest, CacheServed, CompletionCache, Compute, Hooks};
use crate::state::AppState;

/// `prism-cache`'s [`ResponseCache`] as the server's [`CompletionCache`].
pub(crate) struct GatewayCache {
    cache: ResponseCache,
}

impl GatewayCache {
    /// The cache a `[cache]` section describes. Does no IO: a Redis backend connects in the
    /// background on first use, so a down Redis never delays startup.
    pub(crate) fn from_config(config: &CacheConfig) -> Result<GatewayCache, CacheError> {
        Ok(GatewayCache { cache: ResponseCache::from_config(config)? })
    }
}

impl fmt::Debug for GatewayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCache").field("cache", &self.cache).finish()
    }
}

/// Installs the cache `config.cache` describes, unless the embedder already installed one.
///
/// # Errors
/// An out-of-range setting, which [`Config`] validation has already ruled out for loaded files.
pub(crate) fn install(hooks: &mut Hooks, config: &Config) -> Result<(), CacheError> {
    let Some(cache_config) = &config.cache else { return Ok(()) };
    if hooks.cache.is_some() {
        tracing::info!("a cache hook is installed; the [cache] section is not used");
        return Ok(());
    }
    let cache = GatewayCache::from_config(cache_config)?;
    tracing::info!(
        backend = cache.cache.backend_name(),
        namespace = ?cache_config.namespace,
        default_ttl_secs = cache_config.default_ttl_secs,
        "response cache enabled for non-streaming requests"
    );
    hooks.cache = Some(Arc::new(cache));
    Ok(())
}

impl CompletionCache for GatewayCache {
    fn serve<'a>(
        &'a self,
        req: CacheRequest<'a>,
        compute: Compute<'a>,
    ) -> BoxFuture<'a, CacheServed> {
        Box::pin(async move {
            // `None`: caching is off for this model, which bypasses the cache entirely.
            let ttl = self.cache.ttl_for(req.model_cache);
            let policy = CachePolicy::resolve(req.cache_control, false, ttl.is_some());
            let key = match self.cache.key(req.caller.key_name, req.request) {
                Ok(key) => key,
                Err(e) => {
                    // Cannot happen for a parsed request; serve it uncached rather than fail.
                    tracing::warn!(error = %e, "request has no cache key; serving it uncached");
                    let result = compute.await.map(|(body, _)| body);
                    return CacheServed { outcome: CacheOutcome::Bypass, result };
                }
            };
            let uncached = if policy.lookup { CacheOutcome::Miss } else { CacheOutcome::Bypass };
            let ttl = ttl.unwrap_or(Duration::ZERO);
            match self.cache.get_or_compute(&key, ttl, policy, || compute).await {
                Ok(served) => CacheServed { outcome: served.outcome, result: Ok(served.body) },
                Err(response) => CacheServed { outcome: uncached, result: Err(response) },
            }
        })
    }

    fn render_metrics(&self, out: &mut String) {
        let stats = self.cache.stats();
        let backend = self.cache.backend_name();
        let _ = writeln!(
            out,
            "# HELP prism_cache_requests_total Non-streaming requests by cache outcome: hit (from \
             the cache), coalesced (from an identical request in flight), miss (provider called \
             after a lookup), bypass (no lookup: no-cache, no-store, caching off for the model)."
        );
        let _ = writeln!(out, "# TYPE prism_cache_requests_total counter");
        for (outcome, value) in [
            ("hit", stats.hits),
            ("coalesced", stats.coalesced),
            ("miss", stats.misses),
            ("bypass", stats.bypasses),
        ] {
            let _ = writeln!(
                out,
                "prism_cache_requests_total{{backend=\"{backend}\",outcome=\"{outcome}\"}} {value}"
            );
        }
        let _ = writeln!(out, "# HELP prism_cache_stores_total Responses written to the cache.");
        let _ = writeln!(out, "# TYPE prism_cache_stores_total counter");
        let _ = writeln!(out, "prism_cache_stores_total{{backend=\"{backend}\"}} {}", stats.stores);
        let _ = writeln!(
            out,
            "# HELP prism_cache_errors_total Cache operations that failed or timed out; each \
             request concerned was served uncached."
        );
        let _ = writeln!(out, "# TYPE prism_cache_errors_total counter");
        let _ = writeln!(out, "prism_cache_errors_total{{backend=\"{backend}\"}} {}", stats.errors);
    }
}

/// The `cache-control` request header; several are joined with `,` as HTTP allows. Values that
/// are not visible ASCII are ignored.
pub(crate) fn cache_control(headers: &HeaderMap) -> Option<String> {
    let mut joined: Option<String> = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        match joined.as_mut() {
            None => joined = Some(value.to_owned()),
            Some(all) => {
                all.push(',');
                all.push_str(value);
            }
        }
    }
    joined
}

/// Marks a streaming response (or its error) as not served by the cache.
pub(crate) fn mark_bypass(state: &AppState, resp: &mut Response<ResponseBody>) {
    if state.hooks.cache.is_some() {
        resp.headers_mut()
            .insert(CACHE_STATUS_HEADER, HeaderValue::from_static(CacheOutcome::Bypass.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_headers_are_joined() {
        let mut headers = HeaderMap::new();
        assert_eq!(cache_control(&headers), None);
        headers.append(header::CACHE_CONTROL, HeaderValue::from_static("max-stale"));
        assert_eq!(cache_control(&headers).as_deref(), Some("max-stale"));
        headers.append(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let joined = cache_control(&headers);
        assert_eq!(joined.as_deref(), Some("max-stale,no-store"));
        assert_eq!(CachePolicy::from_cache_control(joined.as_deref()), CachePolicy::BYPASS);
        headers.append(header::CACHE_CONTROL, HeaderValue::from_bytes(b"\xffno-cache").unwrap());
        assert_eq!(cache_control(&headers).as_deref(), Some("max-stale,no-store"));
    }

    #[tokio::test]
    async fn metrics_name_backend_and_outcome() {
        let cache = GatewayCache::from_config(&CacheConfig::default()).unwrap();
        let mut out = String::new();
        cache.render_metrics(&mut out);
        for line in [
            "# TYPE prism_cache_requests_total counter",
            "prism_cache_requests_total{backend=\"memory\",outcome=\"hit\"} 0",
            "prism_cache_requests_total{backend=\"memory\",outcome=\"coalesced\"} 0",
            "prism_cache_requests_total{backend=\"memory\",outcome=\"miss\"} 0",
            "prism_cache_requests_total{backend=\"memory\",outcome=\"bypass\"} 0",
            "prism_cache_stores_total{backend=\"memory\"} 0",
            "prism_cache_errors_total{backend=\"memory\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}

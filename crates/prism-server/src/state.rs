//! Shared state: what every stage of a request reads (configuration, the upstream HTTP client,
//! metrics, the installed hooks, the concurrency limit). It imports none of the stages, so any
//! stage can depend on it without a cycle.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use prism_ledger::{CounterStore, Ledger, MemoryCounters, Recorder};

use crate::config::{Config, Counters, Timeouts};
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::telemetry::GenAiMetrics;

/// Everything a request handler needs, shared by all connections. One `AppState` is one
/// generation of the configuration: a reload builds the next one (`server.rs`) and new requests
/// take it, while a request (or stream) keeps the generation it started with to its end. What
/// must outlive a configuration (metrics, the usage recorder, the limit counters, the shutdown
/// flag) is shared by every generation through `Arc`s.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) upstream: UpstreamClient,
    pub(crate) metrics: Arc<Metrics>,
    /// The hooks in force: the embedder's, then the config's cache and guardrails.
    pub(crate) hooks: Hooks,
    /// The hooks the embedder installed, before the config added its own (for the next
    /// generation).
    pub(crate) base_hooks: Hooks,
    /// Bounds concurrent model requests; `None` when unlimited.
    pub(crate) limiter: Option<Arc<Semaphore>>,
    /// Bounds each key's concurrent model requests; `None` when keys are not capped.
    pub(crate) key_slots: Option<Arc<crate::admission::KeySlots>>,
    /// Set when shutdown starts: `/ready` answers 503 so load balancers stop sending traffic.
    pub(crate) shutting_down: Arc<AtomicBool>,
    /// Limits and budgets: the counters and the failure mode.
    pub(crate) ledger: Ledger,
    /// The limit counters (kept across generations while `[usage] counters` is unchanged).
    pub(crate) counters: Arc<dyn CounterStore>,
    /// Usage records: the sinks' queues and the in-memory totals.
    pub(crate) recorder: Arc<Recorder>,
    /// Settlements on their way to the counters; shutdown waits for them.
    pub(crate) settlements: TaskTracker,
    /// The OpenTelemetry GenAI metrics (no-ops without an installed SDK).
    pub(crate) genai: Arc<GenAiMetrics>,
}

/// The parts of a generation that do not come from its configuration alone.
pub(crate) struct Parts {
    pub(crate) upstream: UpstreamClient,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) hooks: Hooks,
    pub(crate) base_hooks: Hooks,
    pub(crate) limiter: Option<Arc<Semaphore>>,
    /// Bounds each key's concurrent model requests; `None` when keys are not capped.
    pub(crate) key_slots: Option<Arc<crate::admission::KeySlots>>,
    pub(crate) shutting_down: Arc<AtomicBool>,
    pub(crate) counters: Arc<dyn CounterStore>,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) settlements: TaskTracker,
    pub(crate) genai: Arc<GenAiMetrics>,
}

impl AppState {
    /// A first generation with fresh metrics, counters and recorder; `hooks` gets the config's
    /// guardrails added.
    #[cfg(test)]
    pub(crate) fn new(config: Config, upstream: UpstreamClient, hooks: Hooks) -> Self {
        let recorder = Arc::new(Recorder::start(&config.usage.sinks));
        let metrics = Arc::new(Metrics::with_usage(recorder.stats_handle()));
        let full = crate::guardrails::install(&config.guardrails, hooks.clone(), &metrics);
        let parts = Parts {
            upstream,
            limiter: limiter(&config),
            key_slots: crate::admission::KeySlots::new(config.limits.max_concurrent_per_key),
            counters: counters(&config.usage.counters),
            recorder,
            metrics,
            hooks: full,
            base_hooks: hooks,
            shutting_down: Arc::new(AtomicBool::new(false)),
            settlements: TaskTracker::new(),
            genai: Arc::new(GenAiMetrics::new()),
        };
        AppState::assemble(config, parts)
    }

    /// A generation from its configuration and parts.
    pub(crate) fn assemble(config: Config, parts: Parts) -> Self {
        // A lease outlives the longest request the gateway lets run.
        let lease_ttl = config.timeouts.total + Duration::from_secs(60);
        let ledger = Ledger::new(
            Arc::clone(&parts.counters),
            config.usage.failure_mode,
            u64::try_from(lease_ttl.as_millis()).unwrap_or(u64::MAX),
        );
        AppState {
            config,
            upstream: parts.upstream,
            metrics: parts.metrics,
            hooks: parts.hooks,
            base_hooks: parts.base_hooks,
            limiter: parts.limiter,
            key_slots: parts.key_slots,
            shutting_down: parts.shutting_down,
            ledger,
            counters: parts.counters,
            recorder: parts.recorder,
            settlements: parts.settlements,
            genai: parts.genai,
        }
    }
}

/// The concurrency limiter of `config`, `None` when unlimited.
pub(crate) fn limiter(config: &Config) -> Option<Arc<Semaphore>> {
    let limit = config.limits.max_concurrent_requests;
    (limit > 0).then(|| Arc::new(Semaphore::new(limit)))
}

/// The limit counters `[usage] counters` asks for.
pub(crate) fn counters(choice: &Counters) -> Arc<dyn CounterStore> {
    match choice {
        Counters::Memory => Arc::new(MemoryCounters::new()),
        Counters::Redis(redis) => match prism_cache::RedisStore::new(redis) {
            Ok(link) => Arc::new(prism_ledger::RedisCounters::new(link)),
            Err(e) => {
                // Config::from_toml checks the Redis settings; only a hand-built Config can
                // get here.
                tracing::error!(error = %e, "invalid usage.redis settings; counting in memory");
                Arc::new(MemoryCounters::new())
            }
        },
    }
}

/// The one HTTP client for every upstream: pooled connections, `TCP_NODELAY`, a connect timeout,
/// no redirects (a redirect could carry credentials elsewhere).
#[derive(Debug, Clone)]
pub(crate) struct UpstreamClient {
    pub(crate) http: reqwest::Client,
}

impl UpstreamClient {
    pub(crate) fn new(timeouts: &Timeouts) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(512)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("prism/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(UpstreamClient { http })
    }
}

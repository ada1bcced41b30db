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

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) upstream: UpstreamClient,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) hooks: Hooks,
    /// Bounds concurrent model requests; `None` when unlimited.
    pub(crate) limiter: Option<Arc<Semaphore>>,
    /// Set when shutdown starts: `/ready` answers 503 so load balancers stop sending traffic.
    pub(crate) shutting_down: AtomicBool,
    /// Limits and budgets: the counters and the failure mode.
    pub(crate) ledger: Ledger,
    /// Usage records: the sinks' queues and the in-memory totals.
    pub(crate) recorder: Recorder,
    /// Settlements on their way to the counters; shutdown waits for them.
    pub(crate) settlements: TaskTracker,
}

impl AppState {
    pub(crate) fn new(config: Config, upstream: UpstreamClient, hooks: Hooks) -> Self {
        let limit = config.limits.max_concurrent_requests;
        let metrics = Arc::new(Metrics::default());
        let hooks = crate::guardrails::install(&config.guardrails, hooks, &metrics);
        let counters: Arc<dyn CounterStore> = match &config.usage.counters {
            Counters::Memory => Arc::new(MemoryCounters::new()),
            Counters::Redis(redis) => match prism_cache::RedisStore::new(redis) {
                Ok(link) => Arc::new(prism_ledger::RedisCounters::new(link)),
                Err(e) => {
                    // Config::from_toml checks the Redis settings; only a hand-built Config
                    // can get here.
                    tracing::error!(error = %e, "invalid usage.redis settings; counting in memory");
                    Arc::new(MemoryCounters::new())
                }
            },
        };
        // A lease outlives the longest request the gateway lets run.
        let lease_ttl = config.timeouts.total + Duration::from_secs(60);
        let ledger = Ledger::new(
            counters,
            config.usage.failure_mode,
            u64::try_from(lease_ttl.as_millis()).unwrap_or(u64::MAX),
        );
        let recorder = Recorder::start(&config.usage.sinks);
        AppState {
            ledger,
            recorder,
            settlements: TaskTracker::new(),
            limiter: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            config,
            upstream,
            metrics,
            hooks,
            shutting_down: AtomicBool::new(false),
        }
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

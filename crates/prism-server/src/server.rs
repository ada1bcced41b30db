//! The listener and connection handling: HTTP/1.1 and HTTP/2 on one port (hyper-util's auto
//! builder), `TCP_NODELAY` on every accepted socket, and graceful shutdown — stop accepting,
//! let open responses finish up to the grace period, then drop what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prism_ledger::Recorder;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::conn::WriteDeadline;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::routes;

use crate::state::{self, AppState, Parts, UpstreamClient};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The upstream HTTP client could not be built (TLS set-up).
    #[error("cannot build the upstream HTTP client")]
    Client(#[source] reqwest::Error),
    /// The server task failed.
    #[error("server task failed")]
    Join(#[source] tokio::task::JoinError),
    /// The `[cache]` settings are out of range (only possible for a `Config` built by hand:
    /// [`Config::from_toml`] checks them).
    #[error("cannot build the response cache")]
    Cache(#[source] prism_cache::CacheError),
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    cell: Arc<StateCell>,
}

/// The current generation of the state. A request takes the `Arc` once, at its start, and keeps
/// it: a reload changes what later requests see, never a request in flight. The lock is held
/// only to clone or replace the `Arc`, never across an await.
#[derive(Debug)]
struct StateCell {
    current: RwLock<Arc<AppState>>,
}

impl StateCell {
    fn load(&self) -> Arc<AppState> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn store(&self, next: Arc<AppState>) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }
}

/// Applies new configurations to a running server (hot reload). Cloneable; every clone reloads
/// the same server.
#[derive(Debug, Clone)]
pub struct Reloader {
    cell: Arc<StateCell>,
}

impl Reloader {
    /// Swaps in `config`, already validated (by [`Config::load`] or [`Config::from_toml`], the
    /// validation `prism check-config` runs): requests that start afterwards use its routes,
    /// keys, guardrails, limits, timeouts and retries; requests and streams already running
    /// finish on the configuration they started with. Kept from the running server, and only
    /// applied by a restart (a warning says so when they differ): `listen`, the connection timeouts
    /// (`header_read_ms`, `client_write_ms`), and the `[usage]`
    /// sinks. The response cache and the limit counters carry over while their sections are
    /// unchanged (a changed `[cache]` starts an empty cache).
    ///
    /// # Errors
    /// [`ServerError::Cache`] or [`ServerError::Client`] when the new cache or upstream client
    /// cannot be built; the running configuration then stays.
    pub fn reload(&self, config: Config) -> Result<(), ServerError> {
        let previous = self.cell.load();
        let next = next_generation(&previous, config)?;
        self.cell.store(Arc::new(next));
        previous.metrics.config_reload("ok");
        Ok(())
    }

    /// Counts and logs a configuration that failed validation (the running one stays).
    pub fn rejected(&self, error: &dyn std::error::Error) {
        let state = self.cell.load();
        state.metrics.config_reload("invalid");
        tracing::warn!(error = %error, "invalid configuration; keeping the running one");
    }
}

/// A listening socket with `backlog` (`TcpListener::bind` fixes it at 1024). `SO_REUSEADDR` as
/// `bind` sets it, so a restart can listen while the old process's connections linger.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The generation after `previous` for `config`: the shared parts carried over, the rest built
/// from `config`.
fn next_generation(previous: &AppState, mut config: Config) -> Result<AppState, ServerError> {
    let old = &previous.config;
    if config.listen != old.listen {
        tracing::warn!(
            listen = %config.listen,
            running = %old.listen,
            "`listen` changed; it takes effect at the next restart"
        );
        config.listen = old.listen;
    }
    if config.limits.listen_backlog != old.limits.listen_backlog {
        tracing::warn!("limits.listen_backlog changed; it takes effect at the next restart");
        config.limits.listen_backlog = old.limits.listen_backlog;
    }
    if config.usage.sinks != old.usage.sinks {
        tracing::warn!("[usage] sinks changed; they take effect at the next restart");
    }
    if config.telemetry != old.telemetry {
        tracing::warn!("[telemetry] changed; it takes effect at the next restart");
    }
    let (t, o) = (&config.timeouts, &old.timeouts);
    if t.header_read != o.header_read || t.client_write != o.client_write {
        tracing::warn!(
            "timeouts.header_read_ms or timeouts.client_write_ms changed; they take effect at the \
             next restart"
        );
    }
    let mut hooks = previous.base_hooks.clone();
    if hooks.cache.is_none() {
        if config.cache == old.cache {
            hooks.cache = previous.hooks.cache.clone();
        } else {
            crate::cache::install(&mut hooks, &config).map_err(ServerError::Cache)?;
        }
    }
    let hooks = crate::guardrails::install(&config.guardrails, hooks, &previous.metrics);
    let upstream = if config.timeouts.connect == old.timeouts.connect {
        previous.upstream.clone()
    } else {
        UpstreamClient::new(&config.timeouts).map_err(ServerError::Client)?
    };
    let limiter = if config.limits.max_concurrent_requests == old.limits.max_concurrent_requests {
        previous.limiter.clone()
    } else {
        state::limiter(&config)
    };
    let key_slots = if config.limits.max_concurrent_per_key == old.limits.max_concurrent_per_key {
        previous.key_slots.clone()
    } else {
        crate::admission::KeySlots::new(config.limits.max_concurrent_per_key)
    };
    let counters = if config.usage.counters == old.usage.counters {
        Arc::clone(&previous.counters)
    } else {
        state::counters(&config.usage.counters)
    };
    let parts = Parts {
        upstream,
        metrics: Arc::clone(&previous.metrics),
        hooks,
        base_hooks: previous.base_hooks.clone(),
        limiter,
        key_slots,
        shutting_down: Arc::clone(&previous.shutting_down),
        counters,
        recorder: Arc::clone(&previous.recorder),
        settlements: previous.settlements.clone(),
        genai: Arc::clone(&previous.genai),
    };
    tracing::info!(
        models = config.models.len(),
        keys = config.keys.len(),
        "configuration reloaded"
    );
    Ok(AppState::assemble(config, parts))
}

impl Server {
    /// Binds `config.listen` (port 0 picks a free port).
    ///
    /// # Errors
    /// [`ServerError::Bind`], [`ServerError::Client`] or [`ServerError::Cache`].
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        Server::bind_with(config, Hooks::default()).await
    }

    /// Binds with pipeline hooks installed. The response cache `config.cache` describes is
    /// installed unless `hooks.cache` is already set. The guardrails of `config.guardrails` are
    /// added to the given hooks: their input check runs first, their output filter last.
    ///
    /// # Errors
    /// [`ServerError::Bind`], [`ServerError::Client`] or [`ServerError::Cache`].
    pub async fn bind_with(config: Config, base_hooks: Hooks) -> Result<Server, ServerError> {
        let mut hooks = base_hooks.clone();
        crate::cache::install(&mut hooks, &config).map_err(ServerError::Cache)?;
        let upstream = UpstreamClient::new(&config.timeouts).map_err(ServerError::Client)?;
        let listener = listen(config.listen, config.limits.listen_backlog)
            .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
        let recorder = Arc::new(Recorder::start(&config.usage.sinks));
        let metrics = Arc::new(Metrics::with_usage(recorder.stats_handle()));
        let parts = Parts {
            upstream,
            limiter: state::limiter(&config),
            key_slots: crate::admission::KeySlots::new(config.limits.max_concurrent_per_key),
            counters: state::counters(&config.usage.counters),
            recorder,
            hooks: crate::guardrails::install(&config.guardrails, hooks, &metrics),
            metrics,
            base_hooks,
            shutting_down: Arc::new(AtomicBool::new(false)),
            settlements: TaskTracker::new(),
            genai: Arc::new(crate::telemetry::GenAiMetrics::new()),
        };
        let state = Arc::new(AppState::assemble(config, parts));
        Ok(Server { listener, addr, cell: Arc::new(StateCell { current: RwLock::new(state) }) })
    }

    /// A handle that applies new configurations to this server once it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader { cell: Arc::clone(&self.cell) }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's metrics (shared by every configuration generation).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.cell.load().metrics)
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: no new connections,
    /// `/ready` answers 503, open responses get `timeouts.shutdown_grace` to finish.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for fatal listener errors.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let Server { listener, addr, cell } = self;
        let timeouts = cell.load().config.timeouts.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let tracker = TaskTracker::new();
        let graceful = CancellationToken::new();
        let hard = CancellationToken::new();
        tracing::info!(%addr, "listening");

        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let cell = Arc::clone(&cell);
            let builder = Arc::clone(&builder);
            let graceful = graceful.clone();
            let hard = hard.clone();
            tracker.spawn(async move {
                let service = service_fn(move |req| {
                    // Each request takes the generation current when it arrives.
                    let state = cell.load();
                    async move { Ok::<_, Infallible>(routes::handle(state, req).await) }
                });
                let io = WriteDeadline::new(stream, timeouts.client_write);
                let conn = builder.serve_connection(TokioIo::new(io), service);
                tokio::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    () = graceful.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        tokio::select! {
                            result = conn.as_mut() => result,
                            () = hard.cancelled() => Ok(()),
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }

        drop(listener);
        let state = cell.load();
        state.shutting_down.store(true, Ordering::Relaxed);
        let grace = state.config.timeouts.shutdown_grace;
        tracing::info!(
            open_connections = tracker.len(),
            grace_ms = grace.as_millis() as u64,
            "shutting down"
        );
        graceful.cancel();
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                open_connections = tracker.len(),
                "grace period over; closing the remaining connections"
            );
            hard.cancel();
            tracker.wait().await;
        }
        // Every request has ended and queued its usage record: settle the counters and write
        // the records out before the process goes.
        let flush_within = grace.max(Duration::from_secs(2));
        state.settlements.close();
        if tokio::time::timeout(flush_within, state.settlements.wait()).await.is_err() {
            tracing::warn!("some usage settlements did not reach the counters before shutdown");
        }
        state.recorder.flush(flush_within).await;
        tracing::info!("shut down");
        Ok(())
    }

    /// Runs the server on a task; the handle shuts it down.
    pub fn spawn(self) -> ServerHandle {
        let addr = self.addr;
        let metrics = self.metrics();
        let reloader = self.reloader();
        let token = CancellationToken::new();
        let stop = token.clone();
        let join =
            tokio::spawn(
                async move { self.run_until(async move { stop.cancelled().await }).await },
            );
        ServerHandle { addr, token, join, metrics, reloader }
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    token: CancellationToken,
    join: JoinHandle<Result<(), ServerError>>,
    metrics: Arc<Metrics>,
    reloader: Reloader,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Applies new configurations to the running server.
    pub fn reloader(&self) -> &Reloader {
        &self.reloader
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.token.cancel();
    }

    /// Shuts down gracefully and waits until the server stopped.
    ///
    /// # Errors
    /// [`ServerError::Join`] when the server task panicked.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.token.cancel();
        self.join.await.map_err(ServerError::Join)?
    }
}

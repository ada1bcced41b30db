//! The shared store: Redis through one multiplexed, self-healing connection, every call under a
//! timeout, connecting lazily in the background so a down Redis never holds up startup.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use crate::{CacheError, CacheKey, CacheOp, CacheStore, RedisConfig, error_chain};

const BACKEND: &str = "redis";

/// [`CacheStore`] on Redis, for several gateway instances sharing one cache.
///
/// * **Keys** are `<key_prefix><cache key>`, e.g. `prism:v1:<namespace>:<digest>`.
/// * **TTL**: `SET key value EX <secs>` when the TTL is whole seconds, `PX <millis>` (rounded up)
///   otherwise, so sub-second TTLs are honoured rather than truncated to zero.
/// * **Time bound**: every `get`/`put`, including any wait for the connection, runs under
///   [`RedisConfig::timeout_ms`]; past it the call fails with [`CacheError::Timeout`].
/// * **Connection**: nothing happens at construction. The first operation (or
///   [`RedisStore::connect`]) starts a connect attempt in a background task bounded by
///   [`RedisConfig::connect_timeout_ms`]; operations wait for it only within their own timeout.
///   If it fails, operations fail fast with [`CacheError::Unavailable`] for
///   [`RedisConfig::reconnect_backoff_ms`], then the next one tries again. Once connected, the
///   redis crate's `ConnectionManager` reconnects by itself after the connection breaks.
/// * **Circuit breaker**: a timeout or a connection error opens the breaker for
///   [`RedisConfig::reconnect_backoff_ms`]; meanwhile operations fail at once with
///   [`CacheError::Unavailable`] instead of each waiting out its timeout. After the backoff one
///   operation probes; its success closes the breaker. So a dead Redis costs at most one timeout
///   per backoff period, not one per request.
///
/// Cloning is cheap and clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    key_prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    reconnect_backoff: Duration,
    link: watch::Sender<Link>,
    breaker: Breaker,
}

/// Opens on timeouts and connection errors; lets one probe through after the backoff.
struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` (plus one) until which operations are refused; 0 = closed.
    open_until: AtomicU64,
    backoff_ms: u64,
}

impl Breaker {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2) + 1
    }

    /// Whether an operation may go ahead. When the backoff has passed, exactly one caller wins
    /// the probe (the others keep being refused until it reports).
    fn admit(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now();
        now >= until
            && self
                .open_until
                .compare_exchange(until, now + self.backoff_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn succeeded(&self) {
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    fn failed(&self) {
        self.open_until.store(self.now() + self.backoff_ms, Ordering::Release);
    }
}

/// What [`RedisStore::connection`] does after looking at the link state.
enum Next {
    Wait,
    Refuse,
    Connect,
}

/// Connection state, shared by every operation through a watch channel.
enum Link {
    /// No attempt made yet.
    Idle,
    /// A background task is connecting.
    Connecting,
    /// Connected; the manager reconnects on its own from here on.
    Up(Box<ConnectionManager>),
    /// The last attempt failed at this instant.
    Down(Instant),
}

impl RedisStore {
    /// A store for `config`. Parses the URL but does no IO.
    ///
    /// # Errors
    /// [`CacheError::InvalidConfig`] for a malformed URL or out-of-range setting.
    pub fn new(config: &RedisConfig) -> Result<RedisStore, CacheError> {
        config.validate()?;
        let client =
            redis::Client::open(config.url.as_str()).map_err(|_| CacheError::InvalidConfig {
                field: "cache.redis.url",
                reason: "not a usable redis URL (redis://host:port/db or unix:///path)",
            })?;
        let (link, _) = watch::channel(Link::Idle);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                key_prefix: config.key_prefix.clone(),
                timeout: Duration::from_millis(config.timeout_ms),
                connect_timeout: Duration::from_millis(config.connect_timeout_ms),
                reconnect_backoff: Duration::from_millis(config.reconnect_backoff_ms),
                link,
                breaker: Breaker {
                    epoch: Instant::now(),
                    open_until: AtomicU64::new(0),
                    backoff_ms: config.reconnect_backoff_ms,
                },
            }),
        })
    }

    /// Connects now (if not already connected) and waits for the outcome, up to the connect
    /// timeout. Optional: a server may call it at startup to warm the connection and log the
    /// result, but must not treat an error as fatal — operations keep retrying later.
    ///
    /// # Errors
    /// The attempt failed or timed out; the store stays usable and retries on later operations.
    pub async fn connect(&self) -> Result<(), CacheError> {
        let budget = self.inner.connect_timeout + Duration::from_millis(50);
        match tokio::time::timeout(budget, self.connection(false)).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(CacheError::Timeout {
                backend: BACKEND,
                op: CacheOp::Connect,
                timeout: self.inner.connect_timeout,
            }),
        }
    }

    /// Whether a connection is established right now.
    pub fn is_connected(&self) -> bool {
        matches!(*self.inner.link.borrow(), Link::Up(_))
    }

    /// The prefix put in front of every key.
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// Runs `command` on the shared connection, under the same timeout, breaker and connect
    /// backoff as the cache's own operations: other parts of the gateway (the usage ledger's
    /// counters) reuse this link instead of opening their own.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`], [`CacheError::Timeout`], or the command's own error as
    /// [`CacheError::Backend`].
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        self.bounded(CacheOp::Command, async {
            let conn = self.connection(true).await?;
            command(conn).await.map_err(|e| backend_error(CacheOp::Command, e))
        })
        .await
    }

    /// The connection, starting a connect attempt if there is none and none is under way. With
    /// `respect_backoff`, a recent failure is answered at once instead of retried.
    async fn connection(&self, respect_backoff: bool) -> Result<ConnectionManager, CacheError> {
        let mut rx = self.inner.link.subscribe();
        // Set once we have seen an attempt under way: its failure ends the wait.
        let mut waited = false;
        loop {
            let next = match &*rx.borrow_and_update() {
                Link::Up(conn) => return Ok(ConnectionManager::clone(conn)),
                Link::Connecting => Next::Wait,
                Link::Down(_) if waited => Next::Refuse,
                Link::Down(at)
                    if respect_backoff && at.elapsed() < self.inner.reconnect_backoff =>
                {
                    Next::Refuse
                }
                Link::Idle | Link::Down(_) => Next::Connect,
            };
            match next {
                Next::Wait => {}
                Next::Refuse => return Err(CacheError::Unavailable { backend: BACKEND }),
                Next::Connect => {
                    if !self.start_connect() {
                        return Err(CacheError::Unavailable { backend: BACKEND });
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(CacheError::Unavailable { backend: BACKEND });
            }
            waited = true;
        }
    }

    /// Claims the right to connect and spawns the attempt. Returns false when there is no tokio
    /// runtime to run it on.
    fn start_connect(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let claimed = self.inner.link.send_if_modified(|link| match link {
            Link::Idle | Link::Down(_) => {
                *link = Link::Connecting;
                true
            }
            Link::Connecting | Link::Up(_) => false,
        });
        if claimed {
            // The task ends within connect_timeout, so it never outlives the store for long.
            runtime.spawn(connect_task(Arc::clone(&self.inner)));
        }
        true
    }

    fn full_key(&self, key: &CacheKey) -> String {
        let mut full = String::with_capacity(self.inner.key_prefix.len() + key.as_str().len());
        full.push_str(&self.inner.key_prefix);
        full.push_str(key.as_str());
        full
    }

    /// Runs one operation through the breaker and under the timeout.
    async fn bounded<T>(
        &self,
        op: CacheOp,
        fut: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        let breaker = &self.inner.breaker;
        if !breaker.admit() {
            return Err(CacheError::Unavailable { backend: BACKEND });
        }
        let result = match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(result) => result,
            Err(_) => {
                Err(CacheError::Timeout { backend: BACKEND, op, timeout: self.inner.timeout })
            }
        };
        match &result {
            Ok(_) => breaker.succeeded(),
            Err(err) if trips_breaker(err) => breaker.failed(),
            // Unavailable is already paced by the connect backoff; a command error (a full
            // Redis refusing writes, say) says nothing about the connection.
            Err(_) => {}
        }
        result
    }
}

/// Timeouts and connection-level failures open the breaker; command errors do not.
fn trips_breaker(err: &CacheError) -> bool {
    match err {
        CacheError::Timeout { .. } => true,
        CacheError::Backend { source, .. } => {
            source.downcast_ref::<redis::RedisError>().is_none_or(|e| {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
            })
        }
        _ => false,
    }
}

async fn connect_task(inner: Arc<Inner>) {
    // No retries inside the manager, neither here nor when it reconnects later: the store's
    // connect backoff and breaker decide when to try again, and each attempt is one connect.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(inner.connect_timeout)
        .set_response_timeout(inner.timeout)
        .set_number_of_retries(0);
    let attempt = ConnectionManager::new_with_config(inner.client.clone(), config);
    let next = match tokio::time::timeout(inner.connect_timeout, attempt).await {
        Ok(Ok(conn)) => {
            tracing::info!(backend = BACKEND, "cache connected");
            Link::Up(Box::new(conn))
        }
        Ok(Err(err)) => {
            tracing::warn!(
                backend = BACKEND,
                error = %error_chain(&err),
                "cache connect failed; serving uncached until it recovers"
            );
            Link::Down(Instant::now())
        }
        Err(_) => {
            tracing::warn!(
                backend = BACKEND,
                timeout_ms = inner.connect_timeout.as_millis() as u64,
                "cache connect timed out; serving uncached until it recovers"
            );
            Link::Down(Instant::now())
        }
    };
    inner.link.send_replace(next);
}

fn backend_error(op: CacheOp, err: redis::RedisError) -> CacheError {
    CacheError::Backend { backend: BACKEND, op, source: Box::new(err) }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password, so it is not shown.
        let state = match *self.inner.link.borrow() {
            Link::Idle => "idle",
            Link::Connecting => "connecting",
            Link::Up(_) => "connected",
            Link::Down(_) => "down",
        };
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.inner.key_prefix)
            .field("timeout", &self.inner.timeout)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CacheStore for RedisStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Bytes>, CacheError> {
        let full_key = self.full_key(key);
        self.bounded(CacheOp::Get, async {
            let mut conn = self.connection(true).await?;
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&full_key)
                .query_async(&mut conn)
                .await
                .map_err(|e| backend_error(CacheOp::Get, e))?;
            Ok(value.map(Bytes::from))
        })
        .await
    }

    async fn put(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        if ttl.is_zero() {
            return Ok(());
        }
        let full_key = self.full_key(key);
        let (unit, amount) = if ttl.subsec_nanos() == 0 {
            ("EX", ttl.as_secs())
        } else {
            let millis = ttl.as_nanos().div_ceil(1_000_000);
            ("PX", u64::try_from(millis).unwrap_or(u64::MAX))
        };
        self.bounded(CacheOp::Put, async {
            let mut conn = self.connection(true).await?;
            redis::cmd("SET")
                .arg(&full_key)
                .arg(value.as_ref())
                .arg(unit)
                .arg(amount)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| backend_error(CacheOp::Put, e))
        })
        .await
    }

    fn name(&self) -> &'static str {
        BACKEND
    }
}

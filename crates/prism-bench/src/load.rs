//! The load generator: what to send on each path and how to check it ([`Plan`]), one checked
//! request, the closed loop of C workers (W2, W3, W5), and the open loop of N held streams
//! (W4). Every loop stops at a deadline and after a bounded number of requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{Barrier, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::http::{Conn, Head, HttpError, Sink};
use crate::soak_check::Protocol;
use crate::stats::{Meters, Snapshot, Usage};
use crate::verify::{
    Body, BodyWant, Check, DirectStream, ExpectedStream, IngressStream, OpenAiStream, Seen, Wrong,
};

/// Read buffer of one client connection.
pub(crate) const READ_BUF: usize = 16 * 1024;
/// Longest any single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What one request sends and how its answer is checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    pub(crate) request: Arc<[u8]>,
    pub(crate) check: CheckPlan,
}

#[derive(Debug, Clone)]
pub(crate) enum CheckPlan {
    /// Byte-identical to the simulator's native stream.
    Direct(Arc<ExpectedStream>),
    /// OpenAI chunks carrying this text, then `[DONE]`.
    OpenAi(Arc<str>),
    /// A non-streaming body.
    Body(BodyWant),
    /// A Messages or Responses stream of this many deltas.
    Ingress(Protocol, u64),
}

impl CheckPlan {
    fn make(&self) -> AnyCheck {
        match self {
            CheckPlan::Direct(expected) => {
                AnyCheck::Direct(DirectStream::new(Arc::clone(expected)))
            }
            CheckPlan::OpenAi(text) => AnyCheck::OpenAi(OpenAiStream::new(Arc::clone(text))),
            CheckPlan::Body(want) => AnyCheck::Body(Body::new(want.clone())),
            CheckPlan::Ingress(protocol, deltas) => {
                AnyCheck::Ingress(IngressStream::new(*protocol, *deltas))
            }
        }
    }
}

#[derive(Debug)]
enum AnyCheck {
    Direct(DirectStream),
    OpenAi(OpenAiStream),
    Body(Body),
    Ingress(IngressStream),
}

impl Sink for AnyCheck {
    fn head(&mut self, head: &Head) {
        match self {
            AnyCheck::Direct(c) => c.head(head),
            AnyCheck::OpenAi(c) => c.head(head),
            AnyCheck::Body(c) => c.head(head),
            AnyCheck::Ingress(c) => c.head(head),
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        match self {
            AnyCheck::Direct(c) => c.data(bytes),
            AnyCheck::OpenAi(c) => c.data(bytes),
            AnyCheck::Body(c) => c.data(bytes),
            AnyCheck::Ingress(c) => c.data(bytes),
        }
    }
}

impl Check for AnyCheck {
    fn seen(&self, ended: bool) -> Seen {
        match self {
            AnyCheck::Direct(c) => c.seen(ended),
            AnyCheck::OpenAi(c) => c.seen(ended),
            AnyCheck::Body(c) => c.seen(ended),
            AnyCheck::Ingress(c) => c.seen(ended),
        }
    }
}

/// Shared progress of the held streams (W4), read by the harness while they run.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Content chunks received by all streams so far.
    pub(crate) chunks: AtomicU64,
    /// Streams that received their first content chunk.
    pub(crate) opened: AtomicUsize,
    /// Streams that failed (any time).
    pub(crate) failed: AtomicUsize,
}

/// Counts a held stream's chunks into [`Progress`] as they arrive, and hands the ramp permit
/// back once the first content arrived.
struct Ramped<'a> {
    inner: AnyCheck,
    permit: &'a Mutex<Option<OwnedSemaphorePermit>>,
    progress: &'a Progress,
    counted: u64,
}

impl Ramped<'_> {
    fn release(&self) {
        self.permit.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

impl Sink for Ramped<'_> {
    fn head(&mut self, head: &Head) {
        self.inner.head(head);
        if head.status != 200 {
            self.release();
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        self.inner.data(bytes);
        let chunks = self.inner.seen(false).chunks;
        if chunks > self.counted {
            self.progress.chunks.fetch_add(chunks - self.counted, Ordering::Relaxed);
            if self.counted == 0 {
                self.progress.opened.fetch_add(1, Ordering::Relaxed);
                self.release();
            }
            self.counted = chunks;
        }
    }
}

/// The result of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) seen: Seen,
    /// Request written to first content chunk.
    pub(crate) ttft: Option<Duration>,
    /// Request written to end of response.
    pub(crate) latency: Duration,
    pub(crate) failure: Option<Failure>,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Failure {
    Connect,
    Io,
    Closed,
    BadHttp,
    Timeout,
    Wrong(Wrong),
}

impl Failure {
    pub(crate) fn label(self) -> String {
        match self {
            Failure::Connect => "connect failed".to_owned(),
            Failure::Io => "socket error".to_owned(),
            Failure::Closed => "closed mid-response".to_owned(),
            Failure::BadHttp => "bad HTTP".to_owned(),
            Failure::Timeout => "timed out".to_owned(),
            Failure::Wrong(w) => w.to_string(),
        }
    }
}

fn http_failure(e: &HttpError) -> Failure {
    match e {
        HttpError::Io(_) => Failure::Io,
        HttpError::Closed => Failure::Closed,
        HttpError::Malformed(_) => Failure::BadHttp,
    }
}

/// Sends one request on `conn` and checks the answer; gives up at `until`.
pub(crate) async fn one(conn: &mut Conn, plan: &Plan, until: Instant) -> Outcome {
    let mut check = plan.check.make();
    let started = Instant::now();
    let result = tokio::time::timeout_at(until, conn.request(&plan.request, &mut check)).await;
    let latency = started.elapsed();
    let (ended, transport) = match result {
        Ok(Ok(_)) => (true, None),
        Ok(Err(e)) => (false, Some(http_failure(&e))),
        Err(_) => (false, Some(Failure::Timeout)),
    };
    let seen = check.seen(ended);
    let failure = seen.wrong.map(Failure::Wrong).or(transport);
    let ttft = seen.first_content.map(|t| Instant::from_std(t).saturating_duration_since(started));
    Outcome { seen, ttft, latency, failure }
}

/// Aggregated results of many requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) ok: u64,
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) chunks: u64,
    pub(crate) cache_hits: u64,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) ttfts: Vec<Duration>,
}

impl Tally {
    pub(crate) fn add(&mut self, o: &Outcome) {
        self.chunks += o.seen.chunks;
        match o.failure {
            Some(f) => *self.failures.entry(f.label()).or_default() += 1,
            None => {
                self.ok += 1;
                self.latencies.push(o.latency);
                self.ttfts.extend(o.ttft);
                self.cache_hits += u64::from(o.seen.cache_hit);
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.chunks += other.chunks;
        self.cache_hits += other.cache_hits;
        self.latencies.extend(other.latencies);
        self.ttfts.extend(other.ttfts);
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// A connection for `plan`, reusing `conn` when it can carry another request.
async fn ready_conn(conn: &mut Option<Conn>, addr: SocketAddr) -> Result<&mut Conn, Failure> {
    if !conn.as_ref().is_some_and(Conn::reusable) {
        *conn = None;
        let fresh = tokio::time::timeout(REQUEST_TIMEOUT, Conn::connect(addr, READ_BUF))
            .await
            .map_err(|_| Failure::Connect)?
            .map_err(|_| Failure::Connect)?;
        *conn = Some(fresh);
    }
    conn.as_mut().ok_or(Failure::Connect)
}

/// One request on a worker's connection, counted into `tally`.
pub(crate) async fn worker_request(conn: &mut Option<Conn>, plan: &Plan, tally: &mut Tally) {
    let outcome = match ready_conn(conn, plan.addr).await {
        Ok(c) => one(c, plan, Instant::now() + REQUEST_TIMEOUT).await,
        Err(failure) => {
            // Back off a little so a refused connect cannot spin the loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
            Outcome {
                seen: Seen::default(),
                ttft: None,
                latency: Duration::ZERO,
                failure: Some(failure),
            }
        }
    };
    tally.add(&outcome);
}

/// The closed loop: `workers` connections, each sending its next request when the last one
/// ended. Each worker first sends `warmup` requests (not counted); then the CPU meters are read,
/// the workers run for `duration` or until `max_requests` were sent, in-flight requests finish,
/// and the meters are read again.
pub(crate) async fn closed_loop(
    plan: &Plan,
    workers: usize,
    warmup: usize,
    duration: Duration,
    max_requests: usize,
    meters: Meters,
) -> (Tally, Usage) {
    let warmed = Arc::new(Barrier::new(workers + 1));
    let go = Arc::new(Barrier::new(workers + 1));
    let stop_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let sent = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (plan, warmed, go, stop_at, sent) = (
            plan.clone(),
            Arc::clone(&warmed),
            Arc::clone(&go),
            Arc::clone(&stop_at),
            Arc::clone(&sent),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut ignored = Tally::default();
            for _ in 0..warmup {
                worker_request(&mut conn, &plan, &mut ignored).await;
            }
            warmed.wait().await;
            go.wait().await;
            let mut tally = Tally::default();
            let Some(&stop) = stop_at.get() else { return tally };
            while Instant::now() < stop && sent.fetch_add(1, Ordering::Relaxed) < max_requests {
                worker_request(&mut conn, &plan, &mut tally).await;
            }
            tally
        }));
    }
    warmed.wait().await;
    let before: Snapshot = meters.snapshot();
    let _ = stop_at.set(Instant::now() + duration);
    go.wait().await;
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(tally) = task.await {
            total.merge(tally);
        }
    }
    let after = meters.snapshot();
    (total, Usage::between(&before, &after))
}

/// One held stream of the open loop (W4).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Held {
    /// It received content and was still open when told to stop.
    pub(crate) held: bool,
    pub(crate) chunks: u64,
    /// Connect start to first content.
    pub(crate) ttft: Option<Duration>,
    pub(crate) failure: Option<Failure>,
}

/// How long a held stream keeps its ramp permit at most: by then its connection has long been
/// accepted, so the next streams may connect even while the gateway is still priming this one.
const RAMP_HOLD: Duration = Duration::from_millis(100);

/// Opens a stream (after taking a ramp permit, kept until its first content or [`RAMP_HOLD`])
/// and reads it until `stop` turns true or `deadline` passes, then drops the connection: the
/// client "leaves" mid-stream. Being told to stop is not a failure; a wrong, cut or refused
/// stream is.
pub(crate) async fn held_stream(
    plan: Arc<Plan>,
    ramp: Arc<Semaphore>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> Held {
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    let permit = tokio::select! {
        permit = ramp.acquire_owned() => match permit {
            Ok(p) => p,
            Err(_) => return Held::default(),
        },
        () = &mut stopped => return Held::default(),
        () = tokio::time::sleep_until(deadline) => return Held::default(),
    };
    let started = Instant::now();
    let connected = tokio::select! {
        c = Conn::connect(plan.addr, 4096) => Some(c),
        () = &mut stopped => None,
        () = tokio::time::sleep_until(deadline) => None,
    };
    let mut conn = match connected {
        Some(Ok(conn)) => conn,
        Some(Err(_)) => {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            return Held { failure: Some(Failure::Connect), ..Held::default() };
        }
        None => return Held::default(),
    };
    let slot = Mutex::new(Some(permit));
    let mut check =
        Ramped { inner: plan.check.make(), permit: &slot, progress: &progress, counted: 0 };
    let release_later = async {
        tokio::time::sleep(RAMP_HOLD).await;
        slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        std::future::pending::<()>().await;
    };
    let result = tokio::select! {
        r = conn.request(&plan.request, &mut check) => Some(r),
        () = release_later => None,
        () = &mut stopped => None,
        () = tokio::time::sleep_until(deadline) => None,
    };
    drop(conn);
    let (ended, transport) = match result {
        Some(Ok(_)) => (true, None),
        Some(Err(e)) => (false, Some(http_failure(&e))),
        None => (false, None),
    };
    let seen = check.inner.seen(ended);
    let failure = seen.wrong.map(Failure::Wrong).or(transport);
    if failure.is_some() {
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    Held {
        held: failure.is_none() && !ended && seen.chunks > 0,
        chunks: seen.chunks,
        ttft: seen.first_content.map(|t| Instant::from_std(t).saturating_duration_since(started)),
        failure,
    }
}

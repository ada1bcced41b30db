//! The durable side of the ledger, off the hot path: `Recorder::record` only puts the record in
//! each sink's bounded queue (never waits); one task per sink takes batches from its queue and
//! writes them, retrying with backoff while the sink is down. A record is dropped, and counted,
//! only when a queue is full. Graceful shutdown closes the queues and waits for the tasks to
//! write what is left.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::LedgerError;
use crate::record::UsageRecord;
use crate::totals::{HourlyTotals, UsageRow};

mod jsonl;
pub mod postgres;

pub use postgres::PostgresConfig;

/// `[usage.jsonl]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// A file to append to, or `-` for stdout.
    pub path: String,
}

/// Where records go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkConfig {
    pub jsonl: Option<JsonlConfig>,
    pub postgres: Option<PostgresConfig>,
    /// Records each sink's queue holds while its sink is slow or down.
    pub queue_capacity: usize,
}

/// A destination for records.
pub(crate) trait Sink: Send + 'static {
    fn name(&self) -> &'static str;
    fn write(
        &mut self,
        batch: &[Arc<UsageRecord>],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// Counters a caller can export as metrics.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records given to the recorder.
    pub recorded: AtomicU64,
    /// Records lost: a queue was full, or shutdown ran out of time.
    pub dropped: AtomicU64,
    /// Failed writes (each retried).
    pub write_errors: AtomicU64,
    /// Records written, over all sinks.
    pub written: AtomicU64,
}

struct Worker {
    tx: mpsc::Sender<Arc<UsageRecord>>,
    task: JoinHandle<()>,
    /// Records queued or being written, not yet written.
    pending: Arc<AtomicU64>,
}

/// Takes every usage record: keeps the in-memory hourly totals and feeds the sinks.
pub struct Recorder {
    workers: Mutex<Vec<Worker>>,
    totals: Mutex<HourlyTotals>,
    stats: Arc<SinkStats>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts one task per configured sink. Needs a Tokio runtime.
    pub fn start(config: &SinkConfig) -> Recorder {
        let stats = Arc::new(SinkStats::default());
        let capacity = config.queue_capacity.max(1);
        let mut workers = Vec::new();
        if let Some(jsonl) = &config.jsonl {
            let sink = jsonl::JsonlSink::new(&jsonl.path);
            workers.push(spawn(sink, capacity, 256, Duration::from_millis(50), &stats));
        }
        if let Some(pg) = &config.postgres {
            let (batch, interval) = (pg.batch_size, Duration::from_millis(pg.flush_interval_ms));
            let sink = postgres::PostgresSink::new(pg.clone());
            workers.push(spawn(sink, capacity, batch, interval, &stats));
        }
        Recorder {
            workers: Mutex::new(workers),
            totals: Mutex::new(HourlyTotals::default()),
            stats,
        }
    }

    /// Takes a record: the totals now, each sink's queue without waiting.
    pub fn record(&self, record: UsageRecord) {
        self.stats.recorded.fetch_add(1, Ordering::Relaxed);
        lock(&self.totals).add(&record);
        let record = Arc::new(record);
        for worker in lock(&self.workers).iter() {
            worker.pending.fetch_add(1, Ordering::Relaxed);
            if worker.tx.try_send(Arc::clone(&record)).is_err() {
                worker.pending.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The in-memory totals of `[from_ms, to_ms)` (hour granularity, the last days only).
    pub fn memory_totals(&self, from_ms: u64, to_ms: u64) -> Vec<UsageRow> {
        lock(&self.totals).query(from_ms, to_ms)
    }

    /// The counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// The counters, shared (for a metrics registry that reads them at each scrape).
    pub fn stats_handle(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Writes what the queues hold and stops the tasks, waiting at most `within`; records
    /// still unwritten then are counted as dropped.
    pub async fn flush(&self, within: Duration) {
        let workers = std::mem::take(&mut *lock(&self.workers));
        if workers.is_empty() {
            return;
        }
        // Closing a queue ends its task once the queue is written.
        let mut tasks = Vec::new();
        for worker in workers {
            drop(worker.tx);
            tasks.push((worker.task, worker.pending));
        }
        let deadline = tokio::time::Instant::now() + within;
        for (mut task, pending) in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let lost = pending.load(Ordering::Relaxed);
                self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                tracing::warn!(lost, "usage sink did not finish writing within the shutdown grace");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn spawn<S: Sink>(
    mut sink: S,
    capacity: usize,
    batch_size: usize,
    interval: Duration,
    stats: &Arc<SinkStats>,
) -> Worker {
    let (tx, mut rx) = mpsc::channel::<Arc<UsageRecord>>(capacity);
    let stats = Arc::clone(stats);
    let pending = Arc::new(AtomicU64::new(0));
    let task_pending = Arc::clone(&pending);
    let task = tokio::spawn(async move {
        // At start: open the file, or connect and migrate the database, so a misconfigured
        // sink shows in the log at once (records wait in the queue while it is down).
        if let Err(e) = sink.write(&[]).await {
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                sink = sink.name(),
                error = %crate::error_chain(&e),
                "usage sink unavailable at start; records wait in its queue"
            );
        }
        let mut batch = Vec::with_capacity(batch_size);
        loop {
            if rx.recv_many(&mut batch, batch_size).await == 0 {
                break;
            }
            // Let a partial batch fill for up to `interval` (a closed queue ends the wait).
            if batch.len() < batch_size {
                let fill = async {
                    while batch.len() < batch_size {
                        let want = batch_size - batch.len();
                        if rx.recv_many(&mut batch, want).await == 0 {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(interval, fill).await;
            }
            let mut backoff = Duration::from_millis(100);
            loop {
                match sink.write(&batch).await {
                    Ok(()) => {
                        stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        task_pending.fetch_sub(batch.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => {
                        stats.write_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            sink = sink.name(),
                            records = batch.len(),
                            queued = rx.len(),
                            error = %crate::error_chain(&e),
                            "usage sink write failed; retrying"
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            batch.clear();
        }
    });
    Worker { tx, task, pending }
}

//! The usage ledger: one usage record per request, prices, and the limits counted from them —
//! requests and tokens per minute, concurrent requests, daily and monthly spend — per key, per
//! model and per key on a model, in this process or shared by every instance through Redis.
//!
//! * [`limits`] and [`window`] are pure: the plan of checks for a request, the sliding-window
//!   arithmetic, the decision and the `x-ratelimit-*` figures.
//! * [`counters`] holds the counters ([`MemoryCounters`], [`RedisCounters`]); each admission is
//!   one atomic step there, so concurrent admissions cannot overshoot a limit between them.
//! * [`Ledger`] builds the plan, applies the failure mode when the counters are down, and turns
//!   a finished request into its [`Settlement`]: the reservation becomes the actual usage.
//! * [`Recorder`] takes the [`UsageRecord`]s off the hot path into bounded queues, one task per
//!   sink (JSON lines, PostgreSQL), and keeps hourly totals in memory.
//!
//! Semantics, headers and multi-instance behaviour: `docs/limits.md`.

pub mod counters;
pub mod ledger;
pub mod limits;
pub mod pricing;
pub mod record;
pub mod sink;
pub mod totals;
pub mod window;

#[cfg(feature = "redis")]
pub use counters::RedisCounters;
pub use counters::{CounterStore, MemoryCounters, unix_ms};
pub use ledger::{Admission, AdmitError, FailureMode, Ledger, Scopes};
pub use limits::{LimitSpec, RateHeaders, Refusal, RefusalReason, Settlement};
pub use pricing::{DEFAULT_PRICES, Price, Pricing};
pub use record::{Outcome, Tokens, UsageRecord, estimate_output_tokens};
pub use sink::{JsonlConfig, PostgresConfig, Recorder, SinkConfig, SinkStats};
pub use totals::{UsageRow, grand_total};

/// What can go wrong in the ledger. None of it fails a request by itself: the failure mode
/// decides for the counters, and records wait in their queue for a sink to come back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The counters could not be read or updated.
    #[error("the limit counters are unavailable")]
    Counters(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A sink failed to write.
    #[error("the {sink} usage sink failed")]
    Sink {
        sink: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An operation ran out of time.
    #[error("{what} timed out")]
    Timeout { what: &'static str },
}

/// An error and its sources, `: `-separated, for one log field.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

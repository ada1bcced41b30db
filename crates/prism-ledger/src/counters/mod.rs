//! Where the limit counters live: in this process ([`MemoryCounters`]) or in Redis, shared by
//! every instance ([`RedisCounters`]). Both run a whole [`AdmitPlan`] as one atomic step: every
//! check is read, and only when all pass is anything counted.

use async_trait::async_trait;

use crate::LedgerError;
use crate::limits::{AdmitPlan, Settlement, StoreReply};

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryCounters;
#[cfg(feature = "redis")]
pub use redis::RedisCounters;

/// A store of limit counters.
#[async_trait]
pub trait CounterStore: Send + Sync + std::fmt::Debug {
    /// Checks every limit of `plan` and, when all pass, counts the request in each.
    ///
    /// # Errors
    /// The store is unreachable or failed; nothing is known to be counted.
    async fn admit(&self, plan: &AdmitPlan) -> Result<StoreReply, LedgerError>;

    /// Applies a finished request's settlement.
    ///
    /// # Errors
    /// The store is unreachable or failed.
    async fn settle(&self, settlement: &Settlement) -> Result<(), LedgerError>;

    /// `memory` or `redis`, for metrics and logs.
    fn name(&self) -> &'static str;

    /// Applies a settlement at once when the store can without waiting (in memory), so the
    /// very next request sees it; `false` when it must go through [`CounterStore::settle`].
    fn settle_now(&self, settlement: &Settlement) -> bool {
        let _ = settlement;
        false
    }
}

/// Milliseconds since the Unix epoch (the ledger's wall clock: record times, budget periods).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

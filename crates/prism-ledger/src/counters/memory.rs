//! Counters in this process: for a single instance, or for tests. One mutex, never held across
//! an await (there is none inside it).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CounterStore, unix_ms};
use crate::LedgerError;
use crate::limits::{AdmitPlan, Failed, Settlement, StoreReply};
use crate::window::Window;

/// [`CounterStore`] in memory. Its size is bounded by the configured scopes (keys × models):
/// each keeps two window counts, its live leases and the spend of the current day and month.
#[derive(Debug, Default)]
pub struct MemoryCounters {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<String, Window>,
    /// Lease id and its expiry, per counter.
    leases: HashMap<String, Vec<(String, u64)>>,
    /// Spend in micro-dollars and the expiry of the counter.
    spend: HashMap<String, (u64, u64)>,
    /// Admissions since the last sweep of expired spend counters.
    since_sweep: u32,
}

impl MemoryCounters {
    /// Empty counters.
    pub fn new() -> Self {
        MemoryCounters::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent (each update is one
        // insert or add), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits synchronously (the async trait method only wraps this).
    pub fn admit_now(&self, plan: &AdmitPlan) -> StoreReply {
        let now = plan.now_ms.unwrap_or_else(unix_ms);
        let mut state = self.lock();
        let state = &mut *state;
        let mut failed = None;
        let mut windows = Vec::with_capacity(plan.windows.len());
        for (i, check) in plan.windows.iter().enumerate() {
            let w = state.windows.entry(check.counter.clone()).or_default();
            w.roll_to(now / check.window_ms);
            if failed.is_none() && !w.admits(check.amount, check.limit, now, check.window_ms) {
                failed = Some(Failed::Window(i));
            }
            windows.push(*w);
        }
        for (i, check) in plan.leases.iter().enumerate() {
            let leases = state.leases.entry(check.counter.clone()).or_default();
            leases.retain(|(_, expires)| *expires > now);
            if failed.is_none() && leases.len() as u64 >= check.limit {
                failed = Some(Failed::Lease(i));
            }
        }
        for (i, check) in plan.budgets.iter().enumerate() {
            let spent = state
                .spend
                .get(&check.counter)
                .filter(|(_, expires)| *expires > now)
                .map_or(0, |(micros, _)| *micros);
            if failed.is_none() && spent >= check.limit_micros {
                failed = Some(Failed::Budget(i));
            }
        }
        if failed.is_none() {
            for check in &plan.windows {
                if let Some(w) = state.windows.get_mut(&check.counter) {
                    w.current += check.amount;
                }
            }
            for check in &plan.leases {
                if let Some(leases) = state.leases.get_mut(&check.counter) {
                    leases.push((plan.lease_id.clone(), now + plan.lease_ttl_ms));
                }
            }
        }
        state.since_sweep += 1;
        if state.since_sweep >= 1024 {
            state.since_sweep = 0;
            state.spend.retain(|_, (_, expires)| *expires > now);
            state.leases.retain(|_, leases| !leases.is_empty());
        }
        StoreReply { now_ms: now, windows, failed }
    }

    /// Settles synchronously.
    pub fn apply(&self, settlement: &Settlement) {
        let now = unix_ms();
        let mut state = self.lock();
        for (counter, index, _, delta) in &settlement.windows {
            if let Some(w) = state.windows.get_mut(counter) {
                w.settle(*index, *delta);
            }
        }
        for counter in &settlement.leases {
            if let Some(leases) = state.leases.get_mut(counter) {
                leases.retain(|(id, _)| *id != settlement.lease_id);
            }
        }
        for (counter, micros, ttl_ms) in &settlement.spend {
            let entry = state.spend.entry(counter.clone()).or_insert((0, 0));
            if entry.1 <= now {
                *entry = (0, 0);
            }
            entry.0 += micros;
            entry.1 = now + ttl_ms;
        }
    }
}

#[async_trait]
impl CounterStore for MemoryCounters {
    async fn admit(&self, plan: &AdmitPlan) -> Result<StoreReply, LedgerError> {
        Ok(self.admit_now(plan))
    }

    async fn settle(&self, settlement: &Settlement) -> Result<(), LedgerError> {
        self.apply(settlement);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn settle_now(&self, settlement: &Settlement) -> bool {
        self.apply(settlement);
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::limits::{MINUTE_MS, Measure, ScopeKind, WindowCheck};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Threads admitting at the same instant: exactly as many fit as the limit holds, never
        /// one more, whatever the interleaving.
        #[test]
        fn concurrent_admissions_never_overshoot(
            threads in 2..16usize,
            per_thread in 1..20usize,
            reserve in 1..500u64,
            limit in 1..5_000u64,
        ) {
            let counters = MemoryCounters::new();
            let plan = AdmitPlan {
                windows: vec![WindowCheck {
                    counter: "k:t:tpm".into(),
                    limit,
                    amount: reserve,
                    window_ms: MINUTE_MS,
                    measure: Measure::Tokens,
                    scope: ScopeKind::Key,
                }],
                now_ms: Some(10 * MINUTE_MS + 1),
                ..AdmitPlan::default()
            };
            let admitted: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            (0..per_thread)
                                .filter(|_| counters.admit_now(&plan).failed.is_none())
                                .count()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            });
            let fits = usize::try_from(limit / reserve).unwrap_or(usize::MAX);
            prop_assert_eq!(admitted, fits.min(threads * per_thread));
        }
    }
}

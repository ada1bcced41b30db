//! Admission and settlement for one request: the plan built from its scopes' limits, the
//! store's verdict (or the failure mode when the store is down), and the settlement that turns
//! the reservation into the actual usage.

use std::sync::Arc;

use crate::LedgerError;
use crate::counters::CounterStore;
use crate::limits::{
    AdmitPlan, BudgetCheck, BudgetPeriod, LeaseCheck, LimitSpec, MINUTE_MS, Measure, RateHeaders,
    Refusal, ScopeKind, Settlement, WindowCheck, decide, usd_to_micros,
};

/// What to do when the counters cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Admit without limits (and say so in a metric and a log line).
    #[default]
    FailOpen,
    /// Refuse with 503 until the counters are back.
    FailClosed,
}

/// One request's scopes and their limits.
#[derive(Debug, Clone, Copy)]
pub struct Scopes<'a> {
    pub key: &'a str,
    pub model: &'a str,
    pub key_limits: Option<&'a LimitSpec>,
    pub model_limits: Option<&'a LimitSpec>,
    pub key_model_limits: Option<&'a LimitSpec>,
}

impl Scopes<'_> {
    fn each(&self) -> impl Iterator<Item = (ScopeKind, String, &LimitSpec)> {
        [
            (ScopeKind::Key, format!("k:{}", self.key), self.key_limits),
            (ScopeKind::Model, format!("m:{}", self.model), self.model_limits),
            (ScopeKind::KeyModel, format!("km:{}|{}", self.key, self.model), self.key_model_limits),
        ]
        .into_iter()
        .filter_map(|(kind, counter, spec)| {
            spec.filter(|s| !s.is_empty()).map(|s| (kind, counter, s))
        })
    }

    /// Whether any scope has a limit.
    pub fn limited(&self) -> bool {
        self.each().next().is_some()
    }
}

/// An admitted request's hold on the counters, settled when it ends.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// The figures for the `x-ratelimit-*` headers.
    pub headers: RateHeaders,
    /// Whether the counters were unreachable and the request was let through unlimited.
    pub degraded: bool,
    /// The tokens reserved (counted input plus the output allowance).
    pub reserved_tokens: u64,
    token_windows: Vec<(String, u64, u64)>,
    leases: Vec<String>,
    lease_id: String,
    budgets: Vec<(String, u64)>,
}

impl Admission {
    /// The settlement for a request that used `tokens` (input plus output) and cost `cost_usd`.
    pub fn settlement(&self, tokens: u64, cost_usd: f64) -> Settlement {
        let delta = i64::try_from(tokens).unwrap_or(i64::MAX)
            - i64::try_from(self.reserved_tokens).unwrap_or(i64::MAX);
        let micros = usd_to_micros(cost_usd);
        Settlement {
            windows: self
                .token_windows
                .iter()
                .map(|(counter, index, window_ms)| (counter.clone(), *index, *window_ms, delta))
                .collect(),
            leases: self.leases.clone(),
            lease_id: self.lease_id.clone(),
            spend: self.budgets.iter().map(|(c, ttl)| (c.clone(), micros, *ttl)).collect(),
        }
    }

    /// Whether settling has anything to do.
    pub fn holds_anything(&self) -> bool {
        !(self.token_windows.is_empty() && self.leases.is_empty() && self.budgets.is_empty())
    }
}

/// Why admission did not admit.
#[derive(Debug)]
pub enum AdmitError {
    /// Over a limit or budget.
    Refused(Refusal),
    /// The counters are unreachable and the failure mode is `fail_closed`.
    Unavailable(LedgerError),
}

/// The limits side of the ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    counters: Arc<dyn CounterStore>,
    failure_mode: FailureMode,
    /// How long a lease lives if never released (the instance died): the longest a request
    /// may run, plus a margin.
    lease_ttl_ms: u64,
}

impl Ledger {
    /// A ledger on `counters`.
    pub fn new(
        counters: Arc<dyn CounterStore>,
        failure_mode: FailureMode,
        lease_ttl_ms: u64,
    ) -> Self {
        Ledger { counters, failure_mode, lease_ttl_ms }
    }

    /// The counters' backend name.
    pub fn backend(&self) -> &'static str {
        self.counters.name()
    }

    /// The plan for one request: a request and `reserve_tokens` in each per-minute window, a
    /// lease in each concurrency limit, and each budget of the day and month of `now_ms`.
    pub fn plan(
        &self,
        scopes: &Scopes<'_>,
        reserve_tokens: u64,
        lease_id: &str,
        now_ms: u64,
    ) -> AdmitPlan {
        let mut plan = AdmitPlan {
            lease_id: lease_id.to_owned(),
            lease_ttl_ms: self.lease_ttl_ms,
            ..AdmitPlan::default()
        };
        let periods = Periods::at(now_ms);
        for (scope, counter, spec) in scopes.each() {
            let windows = [
                (Measure::Requests, spec.rpm, 1, "rpm"),
                (Measure::Tokens, spec.tpm, reserve_tokens, "tpm"),
            ];
            for (measure, limit, amount, suffix) in windows {
                if let Some(limit) = limit {
                    plan.windows.push(WindowCheck {
                        counter: format!("{counter}:{suffix}"),
                        limit,
                        amount,
                        window_ms: MINUTE_MS,
                        measure,
                        scope,
                    });
                }
            }
            if let Some(limit) = spec.concurrent {
                plan.leases.push(LeaseCheck { counter: format!("{counter}:conc"), limit, scope });
            }
            let budgets =
                [(BudgetPeriod::Day, spec.daily_usd), (BudgetPeriod::Month, spec.monthly_usd)];
            for (period, usd) in budgets {
                if let Some(usd) = usd {
                    let (tag, resets_in_ms, ttl_ms) = periods.of(period);
                    plan.budgets.push(BudgetCheck {
                        counter: format!("{counter}:{tag}"),
                        limit_micros: usd_to_micros(usd),
                        ttl_ms,
                        resets_in_ms,
                        period,
                        scope,
                    });
                }
            }
        }
        plan
    }

    /// Admits a request, or refuses it; with the counters down, the failure mode decides.
    ///
    /// # Errors
    /// [`AdmitError::Refused`] over a limit; [`AdmitError::Unavailable`] when the counters are
    /// down and the mode is `fail_closed`.
    pub async fn admit(
        &self,
        plan: &AdmitPlan,
        reserve_tokens: u64,
    ) -> Result<Admission, AdmitError> {
        if plan.is_empty() {
            return Ok(Admission::default());
        }
        let reply = match self.counters.admit(plan).await {
            Ok(reply) => reply,
            Err(e) => {
                return match self.failure_mode {
                    FailureMode::FailOpen => {
                        Ok(Admission { degraded: true, ..Admission::default() })
                    }
                    FailureMode::FailClosed => Err(AdmitError::Unavailable(e)),
                };
            }
        };
        let headers = decide(plan, &reply).map_err(AdmitError::Refused)?;
        let token_windows = plan
            .windows
            .iter()
            .zip(&reply.windows)
            .filter(|(c, _)| c.measure == Measure::Tokens)
            .map(|(c, w)| (c.counter.clone(), w.index, c.window_ms))
            .collect();
        Ok(Admission {
            headers,
            degraded: false,
            reserved_tokens: reserve_tokens,
            token_windows,
            leases: plan.leases.iter().map(|l| l.counter.clone()).collect(),
            lease_id: plan.lease_id.clone(),
            budgets: plan.budgets.iter().map(|b| (b.counter.clone(), b.ttl_ms)).collect(),
        })
    }

    /// Applies a settlement now when the counters can without waiting (in memory); `false`
    /// means it must go through [`Ledger::settle`].
    pub fn settle_now(&self, settlement: &Settlement) -> bool {
        settlement.is_empty() || self.counters.settle_now(settlement)
    }

    /// Applies a settlement.
    ///
    /// # Errors
    /// The counters are unreachable: the reservation stays counted until its window slides
    /// out, a lease until it expires, and the spend is not added.
    pub async fn settle(&self, settlement: &Settlement) -> Result<(), LedgerError> {
        if settlement.is_empty() {
            return Ok(());
        }
        self.counters.settle(settlement).await
    }
}

/// The UTC day and month containing a moment: their counter tags, time left, counter lifetime.
struct Periods {
    day: (String, u64, u64),
    month: (String, u64, u64),
}

impl Periods {
    fn at(now_ms: u64) -> Periods {
        const DAY_MS: u64 = 86_400_000;
        let secs = i64::try_from(now_ms / 1_000).unwrap_or(0);
        let date = time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .date();
        let day_left = DAY_MS - now_ms % DAY_MS;
        let (year, month) = (date.year(), date.month());
        let next_month = if month == time::Month::December {
            time::Date::from_calendar_date(year + 1, time::Month::January, 1)
        } else {
            time::Date::from_calendar_date(year, month.next(), 1)
        };
        let month_end_ms = next_month
            .map(|d| u64::try_from(d.midnight().assume_utc().unix_timestamp()).unwrap_or(0) * 1_000)
            .unwrap_or(now_ms + 31 * DAY_MS);
        let month_left = month_end_ms.saturating_sub(now_ms).max(1);
        Periods {
            day: (
                format!("d{:04}{:02}{:02}", year, u8::from(month), date.day()),
                day_left,
                day_left + DAY_MS,
            ),
            month: (format!("m{:04}{:02}", year, u8::from(month)), month_left, month_left + DAY_MS),
        }
    }

    fn of(&self, period: BudgetPeriod) -> (&str, u64, u64) {
        let (tag, left, ttl) = match period {
            BudgetPeriod::Day => &self.day,
            BudgetPeriod::Month => &self.month,
        };
        (tag, *left, *ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::MemoryCounters;

    fn ledger() -> Ledger {
        Ledger::new(Arc::new(MemoryCounters::new()), FailureMode::FailOpen, 600_000)
    }

    #[test]
    fn budget_periods_are_utc_days_and_months() {
        // 2026-12-31T23:00:00Z.
        let now = 1_798_758_000_000;
        let p = Periods::at(now);
        assert_eq!(p.day.0, "d20261231");
        assert_eq!(p.day.1, 3_600_000);
        assert_eq!(p.month.0, "m202612");
        assert_eq!(p.month.1, 3_600_000, "the month ends with the year");
    }

    #[tokio::test]
    async fn a_tpm_limit_counts_reservations_and_settles_to_actual_usage() {
        let ledger = ledger();
        let spec = LimitSpec { tpm: Some(1_000), ..LimitSpec::default() };
        let scopes = Scopes {
            key: "a",
            model: "m",
            key_limits: Some(&spec),
            model_limits: None,
            key_model_limits: None,
        };
        let now = 1_000 * MINUTE_MS;
        let plan = ledger.plan(&scopes, 600, "r1", now);
        let mut plan = plan;
        plan.now_ms = Some(now);
        let first = ledger.admit(&plan, 600).await.unwrap();
        assert_eq!(first.headers.tokens.unwrap().remaining, 400);
        // A second reservation of 600 does not fit while the first is held…
        let mut second = ledger.plan(&scopes, 600, "r2", now);
        second.now_ms = Some(now + 1);
        let Err(AdmitError::Refused(refusal)) = ledger.admit(&second, 600).await else {
            panic!("the second reservation must not fit");
        };
        assert_eq!(refusal.reason.label(), "tpm");
        // …but fits once the first settles at the 100 tokens it used.
        ledger.settle(&first.settlement(100, 0.0)).await.unwrap();
        let admitted = ledger.admit(&second, 600).await.unwrap();
        assert_eq!(admitted.headers.tokens.unwrap().remaining, 300);
    }

    #[tokio::test]
    async fn concurrency_leases_are_released_and_budgets_stop_the_next_request() {
        let ledger = ledger();
        let spec = LimitSpec { concurrent: Some(1), daily_usd: Some(1.0), ..LimitSpec::default() };
        let scopes = Scopes {
            key: "a",
            model: "m",
            key_limits: None,
            model_limits: None,
            key_model_limits: Some(&spec),
        };
        let now = super::super::counters::unix_ms();
        let held = ledger.admit(&ledger.plan(&scopes, 10, "r1", now), 10).await.unwrap();
        let Err(AdmitError::Refused(r)) =
            ledger.admit(&ledger.plan(&scopes, 10, "r2", now), 10).await
        else {
            panic!("one in flight at most");
        };
        assert_eq!(r.reason.label(), "concurrent");
        // The first ends having spent the whole budget: the lease is free, the budget is not.
        ledger.settle(&held.settlement(10, 1.25)).await.unwrap();
        let Err(AdmitError::Refused(r)) =
            ledger.admit(&ledger.plan(&scopes, 10, "r3", now), 10).await
        else {
            panic!("the budget is used up");
        };
        assert!(r.reason.is_budget());
        assert!(r.retry_after_ms.unwrap() <= 86_400_000);
    }
}

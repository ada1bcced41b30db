//! Limits and what admission asks of the counters: the plan (every check for one request, all
//! or nothing), the store's reply, and the pure decision over it — admitted with the
//! `x-ratelimit-*` figures, or refused with the reason and `retry-after`.

use serde::Deserialize;

use crate::window::Window;

/// The length of the requests- and tokens-per-minute windows.
pub const MINUTE_MS: u64 = 60_000;

/// The limits of one scope (a key, a model, or a key on one model). Absent means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute, input plus output. Admission reserves the request's worst case.
    pub tpm: Option<u64>,
    /// Streams and whole requests in flight at once.
    pub concurrent: Option<u64>,
    /// Spend per UTC day, in US dollars.
    pub daily_usd: Option<f64>,
    /// Spend per UTC calendar month, in US dollars.
    pub monthly_usd: Option<f64>,
}

impl LimitSpec {
    /// Whether nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == LimitSpec::default()
    }

    /// Checks the values, naming the field (`field` is where the table sits in the config).
    ///
    /// # Errors
    /// The first field out of range, and why.
    pub fn validate(&self, field: &str) -> Result<(), (String, &'static str)> {
        let counts = [("rpm", self.rpm), ("tpm", self.tpm), ("concurrent", self.concurrent)];
        for (name, value) in counts {
            if value == Some(0) {
                return Err((
                    format!("{field}.{name}"),
                    "must be at least 1 (omit it for no limit)",
                ));
            }
        }
        for (name, value) in [("daily_usd", self.daily_usd), ("monthly_usd", self.monthly_usd)] {
            if let Some(v) = value
                && !(0.0..=1e12).contains(&v)
            {
                return Err((format!("{field}.{name}"), "must be a number of dollars, 0 or more"));
            }
        }
        Ok(())
    }
}

/// Which scope a limit belongs to, for error messages and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// One client key, over all models.
    Key,
    /// One public model, over all keys.
    Model,
    /// One key on one model.
    KeyModel,
}

impl ScopeKind {
    /// The lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Key => "key",
            ScopeKind::Model => "model",
            ScopeKind::KeyModel => "key_model",
        }
    }
}

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Requests.
    Requests,
    /// Tokens (input plus output).
    Tokens,
}

/// One sliding-window check: `amount` more under `limit` in the window named `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCheck {
    /// The counter's name (without the store's prefix or window index).
    pub counter: String,
    pub limit: u64,
    pub amount: u64,
    pub window_ms: u64,
    pub measure: Measure,
    pub scope: ScopeKind,
}

/// One concurrency check: fewer than `limit` live leases under `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCheck {
    pub counter: String,
    pub limit: u64,
    pub scope: ScopeKind,
}

/// One budget check: the spend so far under `counter` must be below `limit_micros`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    pub counter: String,
    pub limit_micros: u64,
    /// How long the counter lives (its period plus a margin), and when its period ends.
    pub ttl_ms: u64,
    pub resets_in_ms: u64,
    pub period: BudgetPeriod,
    pub scope: ScopeKind,
}

/// The period of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
}

/// Everything one request must pass, checked and counted by the store in one atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmitPlan {
    pub windows: Vec<WindowCheck>,
    pub leases: Vec<LeaseCheck>,
    pub budgets: Vec<BudgetCheck>,
    /// Names this request's leases.
    pub lease_id: String,
    /// A lease not released by then (its instance died) stops counting.
    pub lease_ttl_ms: u64,
    /// The store's clock is used when `None` (Redis: its `TIME`, shared by every instance).
    pub now_ms: Option<u64>,
}

impl AdmitPlan {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.leases.is_empty() && self.budgets.is_empty()
    }
}

/// Which check refused, by index into the plan's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    Window(usize),
    Lease(usize),
    Budget(usize),
}

/// What the store answers: the clock it used, each window as it was before this request, and
/// the check that refused (nothing was counted then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReply {
    pub now_ms: u64,
    pub windows: Vec<Window>,
    pub failed: Option<Failed>,
}

/// One limit's figures for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateFigure {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window is back to empty if nothing else arrives.
    pub reset_ms: u64,
}

/// The `x-ratelimit-*` figures of a request: the tightest requests and tokens limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateHeaders {
    pub requests: Option<RateFigure>,
    pub tokens: Option<RateFigure>,
}

impl RateHeaders {
    /// The headers, OpenAI's names and duration format (`"1s"`, `"6m0s"`, `"250ms"`).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let sets = [
            (
                self.requests,
                [
                    "x-ratelimit-limit-requests",
                    "x-ratelimit-remaining-requests",
                    "x-ratelimit-reset-requests",
                ],
            ),
            (
                self.tokens,
                [
                    "x-ratelimit-limit-tokens",
                    "x-ratelimit-remaining-tokens",
                    "x-ratelimit-reset-tokens",
                ],
            ),
        ];
        for (figure, [limit, remaining, reset]) in sets {
            if let Some(f) = figure {
                out.push((limit, f.limit.to_string()));
                out.push((remaining, f.remaining.to_string()));
                out.push((reset, format_reset(f.reset_ms)));
            }
        }
        out
    }
}

/// A refusal: why, and when to try again (`None`: retrying cannot help).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub retry_after_ms: Option<u64>,
    pub headers: RateHeaders,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum RefusalReason {
    /// Over a requests- or tokens-per-minute limit.
    Rate { measure: Measure, scope: ScopeKind, limit: u64, requested: u64 },
    /// The request alone needs more tokens than the per-minute limit allows.
    TooLarge { scope: ScopeKind, limit: u64, requested: u64 },
    /// Too many requests in flight.
    Concurrency { scope: ScopeKind, limit: u64 },
    /// The spend budget of the period is used up.
    Budget { scope: ScopeKind, period: BudgetPeriod, limit_usd: f64 },
}

impl RefusalReason {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            RefusalReason::Rate { measure: Measure::Requests, .. } => "rpm",
            RefusalReason::Rate { measure: Measure::Tokens, .. } => "tpm",
            RefusalReason::TooLarge { .. } => "tpm_too_large",
            RefusalReason::Concurrency { .. } => "concurrent",
            RefusalReason::Budget { period: BudgetPeriod::Day, .. } => "daily_budget",
            RefusalReason::Budget { period: BudgetPeriod::Month, .. } => "monthly_budget",
        }
    }

    /// The message for the client: which limit, never another tenant's figures.
    pub fn message(&self) -> String {
        match self {
            RefusalReason::Rate { measure, scope, limit, requested } => {
                let what = match measure {
                    Measure::Requests => "requests",
                    Measure::Tokens => "tokens",
                };
                format!(
                    "rate limit reached: {limit} {what} per minute for this {}; this request needs {requested}",
                    scope_noun(*scope)
                )
            }
            RefusalReason::TooLarge { scope, limit, requested } => format!(
                "request too large: it may use {requested} tokens (input estimate plus max_tokens) but this {} allows {limit} tokens per minute; lower max_tokens",
                scope_noun(*scope)
            ),
            RefusalReason::Concurrency { scope, limit } => format!(
                "concurrency limit reached: {limit} requests in flight for this {}",
                scope_noun(*scope)
            ),
            RefusalReason::Budget { scope, period, limit_usd } => {
                let period = match period {
                    BudgetPeriod::Day => "daily",
                    BudgetPeriod::Month => "monthly",
                };
                format!(
                    "{period} budget of ${limit_usd:.2} for this {} is used up",
                    scope_noun(*scope)
                )
            }
        }
    }

    /// Whether this is a budget refusal (OpenAI's `insufficient_quota`).
    pub fn is_budget(&self) -> bool {
        matches!(self, RefusalReason::Budget { .. })
    }

    /// OpenAI's error `type` for this refusal: `requests`, `tokens` or `insufficient_quota`.
    pub fn error_type(&self) -> &'static str {
        match self {
            RefusalReason::Budget { .. } => "insufficient_quota",
            RefusalReason::Rate { measure: Measure::Requests, .. }
            | RefusalReason::Concurrency { .. } => "requests",
            RefusalReason::Rate { measure: Measure::Tokens, .. }
            | RefusalReason::TooLarge { .. } => "tokens",
        }
    }

    /// OpenAI's error `code`: `insufficient_quota` for budgets, else `rate_limit_exceeded`.
    pub fn error_code(&self) -> &'static str {
        if self.is_budget() { "insufficient_quota" } else { "rate_limit_exceeded" }
    }
}

fn scope_noun(scope: ScopeKind) -> &'static str {
    match scope {
        ScopeKind::Key => "key",
        ScopeKind::Model => "model",
        ScopeKind::KeyModel => "key on this model",
    }
}

/// Decides from the store's reply. Admitted: the figures after counting this request.
///
/// # Errors
/// The refusal, when the store refused a check.
pub fn decide(plan: &AdmitPlan, reply: &StoreReply) -> Result<RateHeaders, Refusal> {
    let now = reply.now_ms;
    let admitted = reply.failed.is_none();
    let mut headers = RateHeaders::default();
    for (check, window) in plan.windows.iter().zip(&reply.windows) {
        let mut w = *window;
        if admitted {
            w.current += check.amount;
        }
        let load = w.load(now, check.window_ms);
        let reset_ms = if w.current > 0 {
            (check.window_ms - now % check.window_ms) + check.window_ms
        } else if w.previous > 0 {
            check.window_ms - now % check.window_ms
        } else {
            0
        };
        let figure = RateFigure {
            limit: check.limit,
            remaining: check.limit.saturating_sub(load),
            reset_ms,
        };
        let slot = match check.measure {
            Measure::Requests => &mut headers.requests,
            Measure::Tokens => &mut headers.tokens,
        };
        if slot.is_none_or(|s| figure.remaining < s.remaining) {
            *slot = Some(figure);
        }
    }
    let Some(failed) = reply.failed else {
        return Ok(headers);
    };
    let (reason, retry_after_ms) = match failed {
        Failed::Window(i) => {
            let check = &plan.windows[i];
            let window = reply.windows[i];
            match window.wait_ms(check.amount, check.limit, now, check.window_ms) {
                Some(wait) => (
                    RefusalReason::Rate {
                        measure: check.measure,
                        scope: check.scope,
                        limit: check.limit,
                        requested: check.amount,
                    },
                    Some(wait.max(1)),
                ),
                None => (
                    RefusalReason::TooLarge {
                        scope: check.scope,
                        limit: check.limit,
                        requested: check.amount,
                    },
                    None,
                ),
            }
        }
        Failed::Lease(i) => {
            let check = &plan.leases[i];
            (RefusalReason::Concurrency { scope: check.scope, limit: check.limit }, Some(1_000))
        }
        Failed::Budget(i) => {
            let check = &plan.budgets[i];
            (
                RefusalReason::Budget {
                    scope: check.scope,
                    period: check.period,
                    limit_usd: check.limit_micros as f64 / 1e6,
                },
                Some(check.resets_in_ms),
            )
        }
    };
    Err(Refusal { reason, retry_after_ms, headers })
}

/// What settling a finished request changes: each token window by `actual - reserved`, its
/// leases released, its cost added to each budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// `(counter, window index, window_ms, delta)`.
    pub windows: Vec<(String, u64, u64, i64)>,
    pub leases: Vec<String>,
    pub lease_id: String,
    /// `(counter, micro-dollars, ttl_ms)`.
    pub spend: Vec<(String, u64, u64)>,
}

impl Settlement {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
            && self.spend.iter().all(|s| s.1 == 0)
            && self.windows.iter().all(|w| w.3 == 0)
    }
}

/// OpenAI's reset format: `"250ms"`, `"7.5s"`, `"6m0s"`.
pub fn format_reset(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let tenths = ms.div_ceil(100);
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let secs = ms.div_ceil(1_000);
    format!("{}m{}s", secs / 60, secs % 60)
}

/// US dollars as whole micro-dollars, the unit budgets are counted in.
pub fn usd_to_micros(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 { (usd * 1e6).round() as u64 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(limit: u64, amount: u64) -> WindowCheck {
        WindowCheck {
            counter: "k".into(),
            limit,
            amount,
            window_ms: MINUTE_MS,
            measure: Measure::Tokens,
            scope: ScopeKind::Key,
        }
    }

    #[test]
    fn admitted_figures_count_this_request() {
        let plan = AdmitPlan { windows: vec![tokens(1_000, 300)], ..AdmitPlan::default() };
        let reply = StoreReply {
            now_ms: 0,
            windows: vec![Window { index: 0, current: 200, previous: 0 }],
            failed: None,
        };
        let h = decide(&plan, &reply).unwrap();
        let t = h.tokens.unwrap();
        assert_eq!((t.limit, t.remaining, t.reset_ms), (1_000, 500, 2 * MINUTE_MS));
        assert!(h.requests.is_none());
        let pairs = h.to_pairs();
        assert!(pairs.contains(&("x-ratelimit-remaining-tokens", "500".into())));
        assert!(pairs.contains(&("x-ratelimit-reset-tokens", "2m0s".into())));
    }

    #[test]
    fn a_refusal_says_when_to_retry_or_that_it_never_fits() {
        let plan = AdmitPlan { windows: vec![tokens(1_000, 600)], ..AdmitPlan::default() };
        let reply = StoreReply {
            now_ms: 30_000,
            windows: vec![Window { index: 0, current: 500, previous: 0 }],
            failed: Some(Failed::Window(0)),
        };
        let refusal = decide(&plan, &reply).unwrap_err();
        assert_eq!(refusal.reason.label(), "tpm");
        // 600 fit only after the boundary, once the 500 slid down to 400: a fifth into the
        // next window (a little earlier, as the weighted count rounds down).
        assert_eq!(refusal.retry_after_ms, Some(30_000 + 11_881));
        let plan = AdmitPlan { windows: vec![tokens(1_000, 1_001)], ..AdmitPlan::default() };
        let refusal = decide(&plan, &reply).unwrap_err();
        assert_eq!(refusal.reason.label(), "tpm_too_large");
        assert_eq!(refusal.retry_after_ms, None);
        assert!(refusal.reason.message().contains("lower max_tokens"));
    }

    #[test]
    fn the_tightest_limit_is_reported() {
        let mut model = tokens(10_000, 100);
        model.scope = ScopeKind::Model;
        let plan = AdmitPlan { windows: vec![tokens(1_000, 100), model], ..AdmitPlan::default() };
        let reply = StoreReply {
            now_ms: 0,
            windows: vec![Window::default(), Window { index: 0, current: 9_850, previous: 0 }],
            failed: None,
        };
        let t = decide(&plan, &reply).unwrap().tokens.unwrap();
        assert_eq!((t.limit, t.remaining), (10_000, 50));
    }

    #[test]
    fn reset_durations_in_openai_format() {
        assert_eq!(format_reset(0), "0ms");
        assert_eq!(format_reset(250), "250ms");
        assert_eq!(format_reset(1_000), "1s");
        assert_eq!(format_reset(7_450), "7.5s");
        assert_eq!(format_reset(360_000), "6m0s");
        assert_eq!(format_reset(61_500), "1m2s");
    }

    #[test]
    fn specs_are_validated_by_field() {
        let spec = LimitSpec { tpm: Some(0), ..LimitSpec::default() };
        assert_eq!(spec.validate("keys[0].limits").unwrap_err().0, "keys[0].limits.tpm");
        let spec = LimitSpec { daily_usd: Some(f64::NAN), ..LimitSpec::default() };
        assert_eq!(spec.validate("x").unwrap_err().0, "x.daily_usd");
        assert!(LimitSpec { rpm: Some(5), ..LimitSpec::default() }.validate("x").is_ok());
    }
}

//! Totals by key and model over a time range: what `GET /v1/usage` and `prism usage` show.
//! Kept in memory by hour for the last days (for a gateway without PostgreSQL), or summed by
//! PostgreSQL from the durable records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::UsageRecord;

const HOUR_MS: u64 = 3_600_000;
/// How long the in-memory totals go back.
pub const MEMORY_RETENTION_HOURS: u64 = 24 * 8;

/// One key and model's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    pub key: String,
    pub model: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    /// Requests whose tokens are the gateway's estimate.
    pub estimated_requests: u64,
}

impl UsageRow {
    fn add(&mut self, other: &UsageRow) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_usd += other.cost_usd;
        self.estimated_requests += other.estimated_requests;
    }

    fn of(record: &UsageRecord) -> UsageRow {
        let t = &record.tokens;
        UsageRow {
            key: record.key.clone(),
            model: record.model.clone(),
            requests: 1,
            input_tokens: t.input,
            cached_input_tokens: t.cached_input,
            cache_write_tokens: t.cache_write,
            output_tokens: t.output,
            reasoning_tokens: t.reasoning,
            cost_usd: record.cost_usd,
            estimated_requests: u64::from(record.estimated),
        }
    }
}

/// Sums rows into one total row (key and model empty).
pub fn grand_total(rows: &[UsageRow]) -> UsageRow {
    let mut total = UsageRow::default();
    for row in rows {
        total.add(row);
    }
    total
}

/// In-memory totals by hour, key and model. Bounded: hours older than the retention are
/// dropped, and keys and models are the configured ones.
#[derive(Debug, Default)]
pub struct HourlyTotals {
    hours: BTreeMap<u64, BTreeMap<(String, String), UsageRow>>,
}

impl HourlyTotals {
    /// Adds a record to the hour it started in.
    pub fn add(&mut self, record: &UsageRecord) {
        let hour = record.started_at_ms / HOUR_MS;
        let row = UsageRow::of(record);
        self.hours
            .entry(hour)
            .or_default()
            .entry((row.key.clone(), row.model.clone()))
            .or_insert_with(|| UsageRow {
                key: row.key.clone(),
                model: row.model.clone(),
                ..UsageRow::default()
            })
            .add(&row);
        let oldest = hour.saturating_sub(MEMORY_RETENTION_HOURS);
        while self.hours.first_key_value().is_some_and(|(h, _)| *h < oldest) {
            self.hours.pop_first();
        }
    }

    /// Totals of the hours overlapping `[from_ms, to_ms)`, by key and model. Hour granularity:
    /// an hour counts whole when the range touches it.
    pub fn query(&self, from_ms: u64, to_ms: u64) -> Vec<UsageRow> {
        let mut out: BTreeMap<(String, String), UsageRow> = BTreeMap::new();
        let (first, last) = (from_ms / HOUR_MS, to_ms.saturating_sub(1) / HOUR_MS);
        if to_ms <= from_ms {
            return Vec::new();
        }
        for (_, rows) in self.hours.range(first..=last) {
            for (k, row) in rows {
                out.entry(k.clone())
                    .or_insert_with(|| UsageRow {
                        key: k.0.clone(),
                        model: k.1.clone(),
                        ..UsageRow::default()
                    })
                    .add(row);
            }
        }
        out.into_values().collect()
    }
}

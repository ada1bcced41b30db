//! `GET /v1/usage` (admin keys only): usage totals by key and model over a time range, from
//! PostgreSQL when `[usage.postgres]` is configured (every instance's records), otherwise from
//! this instance's in-memory hourly totals (the last eight days, hour granularity).
//!
//! Query: `start` and `end`, each Unix seconds or RFC 3339 (`2026-12-03T00:00:00Z`); the range
//! is `[start, end)`, by default the last 24 hours.

use http::{Response, StatusCode};
use hyper::body::Incoming;
use prism_ingress::Protocol;
use prism_ledger::{UsageRow, grand_total};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::body::ResponseBody;
use crate::error::GatewayError;
use crate::ingress;
use crate::respond::{self, json_response};
use crate::state::AppState;

const DAY_MS: u64 = 86_400_000;

#[derive(Serialize)]
struct Report {
    object: &'static str,
    start: String,
    end: String,
    /// `postgres` or `memory`.
    source: &'static str,
    data: Vec<UsageRow>,
    total: UsageRow,
}

/// Answers `GET /v1/usage`.
pub(crate) async fn usage(
    state: &AppState,
    req: &http::Request<Incoming>,
) -> Response<ResponseBody> {
    let key = match ingress::authenticate(state, req.headers()) {
        Ok(key) => key,
        Err(e) => return respond::error(Protocol::ChatCompletions, &e),
    };
    if !key.admin {
        return respond::error(Protocol::ChatCompletions, &GatewayError::AdminOnly);
    }
    let now = prism_ledger::unix_ms();
    let (start, end) = match range(req.uri().query().unwrap_or(""), now) {
        Ok(range) => range,
        Err(e) => return respond::error(Protocol::ChatCompletions, &e),
    };
    let (source, data) = match &state.config.usage.sinks.postgres {
        Some(pg) => match prism_ledger::sink::postgres::query_totals(pg, start, end).await {
            Ok(rows) => ("postgres", rows),
            Err(e) => {
                tracing::warn!(error = %prism_ledger::error_chain(&e), "usage query failed");
                let error = GatewayError::Rejected {
                    status: 503,
                    error: prism_types::ErrorObject::new(
                        "server_error",
                        "the usage database is unavailable; retry shortly",
                    )
                    .with_code("usage_unavailable"),
                };
                return respond::error(Protocol::ChatCompletions, &error);
            }
        },
        None => ("memory", state.recorder.memory_totals(start, end)),
    };
    let total = grand_total(&data);
    let report = Report {
        object: "usage.report",
        start: rfc3339(start),
        end: rfc3339(end),
        source,
        data,
        total,
    };
    json_response(StatusCode::OK, &report)
}

/// `[start, end)` in Unix milliseconds from the query string.
fn range(query: &str, now: u64) -> Result<(u64, u64), GatewayError> {
    let mut start = None;
    let mut end = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match name {
            "start" => start = Some(parse_time(&value, "start")?),
            "end" => end = Some(parse_time(&value, "end")?),
            _ => {}
        }
    }
    let end = end.unwrap_or(now);
    let start = start.unwrap_or(end.saturating_sub(DAY_MS));
    if start >= end {
        return Err(GatewayError::invalid("start", "start must be before end"));
    }
    Ok((start, end))
}

fn parse_time(value: &str, param: &str) -> Result<u64, GatewayError> {
    if let Ok(secs) = value.parse::<u64>() {
        return secs.checked_mul(1_000).ok_or_else(|| GatewayError::invalid(param, "out of range"));
    }
    let t = time::OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        GatewayError::invalid(param, "expected Unix seconds or RFC 3339 (2026-12-03T00:00:00Z)")
    })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| GatewayError::invalid(param, "before 1970"))
}

fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_seconds_or_rfc3339_default_to_the_last_day() {
        let now = 1_800_000_000_000;
        assert_eq!(range("", now).unwrap(), (now - DAY_MS, now));
        assert_eq!(range("start=100&end=200", now).unwrap(), (100_000, 200_000));
        let (start, _) = range("start=2026-12-03T00%3A00%3A00Z", now).unwrap();
        assert_eq!(start, 1_796_256_000_000);
        assert!(range("start=200&end=100", now).is_err());
        assert!(range("start=yesterday", now).is_err());
        assert_eq!(rfc3339(1_796_256_000_000), "2026-12-03T00:00:00Z");
    }
}

//! The usage ledger in the request path (`prism-ledger` does the counting): after admission a
//! request holds a [`Ticket`] — its reservation on every limit that applies, and the usage
//! record it will write. The ticket is finished exactly once, by the stage that knows how the
//! request ended (the stream body at its end, the pipeline for a whole answer); a ticket
//! dropped unfinished (the client left while the gateway waited for the upstream) records
//! itself as `client_gone`. Finishing writes the record (queued, never awaited) and settles the
//! reservation on a spawned task, so neither touches the response's latency.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Response};
use prism_ingress::Protocol;
use prism_ledger::{
    Admission, AdmitError, Outcome, RateHeaders, Scopes, Tokens, UsageRecord,
    estimate_output_tokens,
};
use prism_types::{ChatRequest, Usage};
use tokio::time::Instant;
use tracing::Span;

use crate::config::{ClientKey, ModelRoute};
use crate::error::GatewayError;
use crate::state::AppState;

/// The header with a non-streamed answer's cost in US dollars.
pub(crate) const COST_HEADER: &str = "x-prism-cost";

/// How a request was answered, left in the response's extensions by the stage that knew.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answered {
    pub(crate) provider: String,
    pub(crate) provider_kind: Option<&'static str>,
    pub(crate) upstream_model: Option<String>,
    pub(crate) usage: Option<Usage>,
    pub(crate) attempts: u32,
    pub(crate) finish_reasons: Vec<String>,
    /// The answer's text, only with content capture on.
    pub(crate) output: Option<String>,
}

/// How a request ended, for its record.
#[derive(Debug)]
pub(crate) struct Ending<'a> {
    pub(crate) outcome: Outcome,
    pub(crate) status: u16,
    /// The upstream's usage, when it reported it.
    pub(crate) usage: Option<&'a Usage>,
    /// Text bytes streamed to the client (content, reasoning, tool calls), for the estimate.
    pub(crate) streamed_text_bytes: u64,
    pub(crate) provider: Option<&'a str>,
    /// `gen_ai.provider.name` of the deployment that answered.
    pub(crate) provider_kind: Option<&'static str>,
    pub(crate) upstream_model: Option<&'a str>,
    pub(crate) attempts: u32,
    pub(crate) ttft: Option<Duration>,
    /// The finish reasons the client got, for the span.
    pub(crate) finish_reasons: &'a [String],
    /// The output text, only when the operator opted in to content capture.
    pub(crate) output: Option<String>,
}

impl Ending<'_> {
    /// An ending with nothing from an upstream.
    fn bare(outcome: Outcome, status: u16) -> Ending<'static> {
        Ending {
            outcome,
            status,
            usage: None,
            streamed_text_bytes: 0,
            provider: None,
            provider_kind: None,
            upstream_model: None,
            attempts: 0,
            ttft: None,
            finish_reasons: &[],
            output: None,
        }
    }
}

/// The record outcome for an error response.
pub(crate) fn outcome_of(e: &GatewayError) -> Outcome {
    match e {
        GatewayError::Upstream(_) | GatewayError::UpstreamConnect => Outcome::UpstreamError,
        GatewayError::UpstreamTimeout { .. } => Outcome::Timeout,
        GatewayError::Rejected { .. } => Outcome::Guardrail,
        GatewayError::Limited { .. } | GatewayError::LimitsUnavailable => Outcome::RateLimited,
        _ => Outcome::Rejected,
    }
}

/// What a request is, for its record and its limits.
pub(crate) struct RequestFacts<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) protocol: Protocol,
    pub(crate) key: &'a ClientKey,
    pub(crate) route: &'a ModelRoute,
    pub(crate) request: &'a ChatRequest,
    pub(crate) started: Instant,
    /// The W3C trace id the client sent (`traceparent`), for the request's log line.
    pub(crate) trace_id: Option<&'a str>,
    /// The request's span, which gets the usage and the outcome.
    pub(crate) span: &'a Span,
}

/// An admitted request's reservation and the record it will write.
pub(crate) struct Ticket {
    state: Arc<AppState>,
    admission: Admission,
    /// `None` once finished.
    record: Option<UsageRecord>,
    started: Instant,
    input_estimate: u64,
    trace_id: Option<String>,
    span: Span,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("finished", &self.record.is_none()).finish_non_exhaustive()
    }
}

/// Admits `facts` against every limit of its key, its model and the key on the model.
///
/// # Errors
/// The refusal to send (429 over a limit or budget, 503 when the counters are down and the
/// ledger fails closed), already recorded, with its `x-ratelimit-*` figures.
pub(crate) async fn admit(
    state: &Arc<AppState>,
    facts: &RequestFacts<'_>,
) -> Result<Ticket, (GatewayError, RateHeaders)> {
    let model = facts.route.name.as_str();
    let scopes = Scopes {
        key: &facts.key.name,
        model,
        key_limits: facts.key.limits.as_ref(),
        model_limits: facts.route.limits.as_ref(),
        key_model_limits: facts.key.model_limits.get(model),
    };
    let input_estimate = prism_ingress::messages::estimate_input_tokens(facts.request);
    let record = UsageRecord {
        request_id: facts.request_id.to_owned(),
        started_at_ms: prism_ledger::unix_ms(),
        key: facts.key.name.clone(),
        model: model.to_owned(),
        deployment: None,
        provider: None,
        protocol: facts.protocol.as_str().to_owned(),
        stream: facts.request.is_stream(),
        tokens: Tokens::default(),
        cost_usd: 0.0,
        estimated: false,
        ttft_ms: None,
        duration_ms: 0,
        attempts: 0,
        outcome: Outcome::Completed,
        status: 200,
    };
    let mut ticket = Ticket {
        state: Arc::clone(state),
        admission: Admission::default(),
        record: Some(record),
        started: facts.started,
        input_estimate,
        trace_id: facts.trace_id.map(str::to_owned),
        span: facts.span.clone(),
    };
    if !scopes.limited() {
        return Ok(ticket);
    }
    // The worst case: the counted input and all the output the request may ask for.
    let output_allowance = facts.request.output_token_limit().unwrap_or_else(|| {
        facts.route.deployments.first().map_or(0, |t| t.deployment.default_max_tokens)
    });
    let reserve = input_estimate + output_allowance;
    let ledger = &state.ledger;
    let plan = ledger.plan(&scopes, reserve, facts.request_id, ticket.record_started_ms());
    let refused = match ledger.admit(&plan, reserve).await {
        Ok(admission) => {
            if admission.degraded {
                state.metrics.ledger_error(ledger.backend(), "admit");
                tracing::warn!(
                    backend = ledger.backend(),
                    "limit counters unavailable; admitted without limits (fail_open)"
                );
            }
            ticket.admission = admission;
            return Ok(ticket);
        }
        Err(AdmitError::Refused(refusal)) => {
            state.metrics.rate_limited(refusal.reason.label());
            let error = GatewayError::Limited {
                message: refusal.reason.message(),
                kind: refusal.reason.error_type(),
                code: refusal.reason.error_code(),
                retry_after: refusal.retry_after_ms.map(Duration::from_millis),
                label: refusal.reason.label(),
            };
            (error, refusal.headers)
        }
        Err(AdmitError::Unavailable(e)) => {
            state.metrics.ledger_error(ledger.backend(), "admit");
            tracing::warn!(
                backend = ledger.backend(),
                error = %prism_ledger::error_chain(&e),
                "limit counters unavailable; refusing (fail_closed)"
            );
            (GatewayError::LimitsUnavailable, RateHeaders::default())
        }
    };
    ticket.finish(Ending::bare(Outcome::RateLimited, refused.0.status()));
    Err(refused)
}

impl Ticket {
    fn record_started_ms(&self) -> u64 {
        self.record.as_ref().map_or_else(prism_ledger::unix_ms, |r| r.started_at_ms)
    }

    /// The request's input tokens as estimated at admission.
    pub(crate) fn input_estimate(&self) -> u64 {
        self.input_estimate
    }

    /// The `x-ratelimit-*` figures of this request's tightest limits.
    pub(crate) fn rate_headers(&self) -> &RateHeaders {
        &self.admission.headers
    }

    /// Writes the record and settles the reservation. Returns the cost in US dollars.
    pub(crate) fn finish(&mut self, ending: Ending<'_>) -> f64 {
        let Some(mut record) = self.record.take() else { return 0.0 };
        let state = &self.state;
        let (tokens, estimated) = match ending.usage {
            Some(usage) => (Tokens::from_usage(usage), false),
            // The stream ended before the upstream's usage: bill what the client received.
            None if ending.streamed_text_bytes > 0 => (
                Tokens {
                    input: self.input_estimate,
                    output: estimate_output_tokens(ending.streamed_text_bytes),
                    ..Tokens::default()
                },
                true,
            ),
            None => (Tokens::default(), false),
        };
        let cost = ending.upstream_model.map_or(0.0, |m| state.config.pricing.cost(m, &tokens));
        record.tokens = tokens;
        record.estimated = estimated;
        record.cost_usd = cost;
        record.provider = ending.provider.map(str::to_owned);
        record.deployment = ending.upstream_model.map(str::to_owned);
        record.outcome = ending.outcome;
        record.status = ending.status;
        record.attempts = ending.attempts;
        record.ttft_ms = ending.ttft.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        record.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if cost > 0.0 {
            state.metrics.cost(&record.model, ending.provider.unwrap_or("-"), cost);
        }
        if self.admission.holds_anything() {
            let settlement = self.admission.settlement(tokens.total(), cost);
            // In memory the next request sees it at once; Redis settles on a task (one round
            // trip later), never on the response's path.
            let ledger = state.ledger.clone();
            let metrics = Arc::clone(&state.metrics);
            if !ledger.settle_now(&settlement) && tokio::runtime::Handle::try_current().is_ok() {
                state.settlements.spawn(async move {
                    if let Err(e) = ledger.settle(&settlement).await {
                        metrics.ledger_error(ledger.backend(), "settle");
                        tracing::warn!(
                            backend = ledger.backend(),
                            error = %prism_ledger::error_chain(&e),
                            "settling usage failed; the reservation stays until its window ends"
                        );
                    }
                });
            }
        }
        let error_type = (ending.outcome != Outcome::Completed).then(|| ending.outcome.as_str());
        crate::telemetry::ended(
            &self.span,
            tokens.input,
            tokens.output,
            ending.finish_reasons,
            error_type,
            ending.output,
        );
        state.genai.record(&crate::telemetry::Finished {
            request_model: &record.model,
            response_model: ending.upstream_model,
            provider: ending.provider_kind,
            error_type,
            ttft: ending.ttft,
            duration: self.started.elapsed(),
            input_tokens: tokens.input,
            output_tokens: tokens.output,
        });
        log_request(&record, self.trace_id.as_deref());
        state.recorder.record(record);
        cost
    }

    /// Finishes a whole answer from its response: the outcome from the error or the
    /// [`Answered`] extension, then `x-ratelimit-*` and, on success, `x-prism-cost`.
    pub(crate) fn finish_response<B>(&mut self, resp: &mut Response<B>) {
        let status = resp.status().as_u16();
        let answered = resp.extensions_mut().remove::<Answered>().unwrap_or_default();
        let outcome =
            resp.extensions().get::<Outcome>().copied().unwrap_or(if resp.status().is_success() {
                Outcome::Completed
            } else {
                Outcome::Rejected
            });
        let cost = self.finish(Ending {
            outcome,
            status,
            usage: answered.usage.as_ref(),
            streamed_text_bytes: 0,
            provider: (!answered.provider.is_empty()).then_some(answered.provider.as_str()),
            provider_kind: answered.provider_kind,
            upstream_model: answered.upstream_model.as_deref(),
            attempts: answered.attempts,
            ttft: None,
            finish_reasons: &answered.finish_reasons,
            output: answered.output,
        });
        set_rate_headers(resp, &self.admission.headers);
        if resp.status().is_success()
            && let Ok(value) = HeaderValue::from_str(&format_cost(cost))
        {
            resp.headers_mut().insert(COST_HEADER, value);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.record.is_some() {
            // The request future was dropped before an answer: the client went away.
            self.finish(Ending::bare(Outcome::ClientGone, 499));
        }
    }
}

/// The one line per request (`--log-format json` makes it one JSON object): the record's
/// fields, never a key, a prompt or a completion.
fn log_request(r: &UsageRecord, trace_id: Option<&str>) {
    tracing::info!(
        target: "prism::request",
        request_id = %r.request_id,
        trace_id,
        key = %r.key,
        model = %r.model,
        provider = r.provider.as_deref(),
        deployment = r.deployment.as_deref(),
        protocol = %r.protocol,
        stream = r.stream,
        status = r.status,
        outcome = r.outcome.as_str(),
        input_tokens = r.tokens.input,
        cached_input_tokens = r.tokens.cached_input,
        output_tokens = r.tokens.output,
        reasoning_tokens = r.tokens.reasoning,
        estimated = r.estimated,
        cost_usd = r.cost_usd,
        ttft_ms = r.ttft_ms,
        duration_ms = r.duration_ms,
        attempts = r.attempts,
        "request finished"
    );
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when valid.
pub(crate) fn trace_id(traceparent: Option<&str>) -> Option<&str> {
    let mut parts = traceparent?.split('-');
    let (version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = version.len() == 2
        && trace.len() == 32
        && span.len() == 16
        && trace.bytes().all(|b| b.is_ascii_hexdigit())
        && trace.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

/// Puts the `x-ratelimit-*` headers on a response.
pub(crate) fn set_rate_headers<B>(resp: &mut Response<B>, headers: &RateHeaders) {
    for (name, value) in headers.to_pairs() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
}

/// Dollars with enough digits for a one-token request (`0.00000015`), no exponent.
fn format_cost(cost: f64) -> String {
    let text = format!("{cost:.10}");
    let trimmed = text.trim_end_matches('0');
    trimmed.strip_suffix('.').map_or_else(|| trimmed.to_owned(), |t| format!("{t}.0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(Some(&format!("00-{id}-00f067aa0ba902b7-01"))), Some(id));
        assert_eq!(trace_id(Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id(Some("00-xyz-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id(None), None);
    }

    #[test]
    fn costs_are_plain_decimals() {
        assert_eq!(format_cost(0.0), "0.0");
        assert_eq!(format_cost(0.000_000_15), "0.00000015");
        assert_eq!(format_cost(1.5), "1.5");
        assert_eq!(format_cost(12.0), "12.0");
    }
}

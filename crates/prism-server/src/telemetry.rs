//! OpenTelemetry in the request path, following the GenAI semantic conventions. The server
//! only speaks the OpenTelemetry API: spans are the `tracing` spans it already has (bridged by
//! `tracing-opentelemetry`, which the binary installs with the SDK and the OTLP exporter when
//! `[telemetry]` asks for it), and the GenAI metrics are instruments of the global meter.
//! Without an installed SDK every call here is a no-op on an empty context.
//!
//! * The request span (`routes.rs`) is renamed `chat {model}` and carries `gen_ai.*`
//!   attributes; it continues the client's W3C `traceparent`.
//! * Each upstream attempt is a child span (`attempts.rs`), so retries, TTFT failover and
//!   fallback are visible; its context goes to the upstream in `traceparent`/`tracestate`.
//!   Without an SDK the client's own headers are forwarded unchanged.
//! * Metrics are recorded once per request when it ends, never per chunk; exporters batch on
//!   their own tasks.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::metrics::Histogram;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::{KeyValue, global};
use prism_providers::ProviderKind;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `gen_ai.provider.name` of a provider kind.
pub(crate) fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
        ProviderKind::Vertex => "gcp.vertex_ai",
        ProviderKind::Bedrock => "aws.bedrock",
    }
}

/// The host of a base URL (`server.address`).
pub(crate) fn host_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| &h[1..]);
    }
    authority.split(':').next().unwrap_or(authority)
}

struct HeaderExtractor<'h>(&'h HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'h>(&'h mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` continue the trace of the client's `traceparent`, when it sent one.
pub(crate) fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !headers.contains_key(TRACEPARENT) {
        return;
    }
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    // Fails only when the span is disabled (no SDK installed): nothing to continue then.
    let _ = span.set_parent(parent);
}

/// The client's trace headers, forwarded as they came when no SDK makes spans of its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientTrace {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

impl ClientTrace {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        ClientTrace {
            traceparent: headers.get(TRACEPARENT).cloned(),
            tracestate: headers.get(TRACESTATE).cloned(),
        }
    }
}

/// Puts the trace context of `attempt` (the upstream call's span) on the upstream request;
/// without a recording span, the client's own `traceparent`/`tracestate`.
pub(crate) fn inject(attempt: &Span, headers: &mut HeaderMap, client: &ClientTrace) {
    let cx = attempt.context();
    {
        use opentelemetry::trace::TraceContextExt as _;
        if cx.span().span_context().is_valid() {
            global::get_text_map_propagator(|p| {
                p.inject_context(&cx, &mut HeaderInjector(headers))
            });
            return;
        }
    }
    if let Some(tp) = &client.traceparent {
        headers.insert(TRACEPARENT, tp.clone());
        if let Some(ts) = &client.tracestate {
            headers.insert(TRACESTATE, ts.clone());
        }
    }
}

/// Content captured on spans is cut to this many bytes.
const CAPTURE_LIMIT: usize = 64 * 1024;

/// Names the request span for its model and puts the request's `gen_ai.request.*` attributes
/// on it; with `capture_content`, the input messages too.
pub(crate) fn request_attributes(
    span: &Span,
    model: &str,
    request: &prism_types::ChatRequest,
    capture_content: bool,
) {
    {
        // By now the span exists on the OpenTelemetry side, where only the API can rename it.
        use opentelemetry::trace::TraceContextExt as _;
        span.context().span().update_name(format!("chat {model}"));
    }
    span.set_attribute("gen_ai.operation.name", "chat");
    span.set_attribute("gen_ai.request.model", model.to_owned());
    if let Some(max) = request.output_token_limit() {
        span.set_attribute("gen_ai.request.max_tokens", i64::try_from(max).unwrap_or(i64::MAX));
    }
    if let Some(t) = request.temperature {
        span.set_attribute("gen_ai.request.temperature", t);
    }
    if capture_content && let Ok(json) = serde_json::to_string(&request.messages) {
        span.set_attribute("gen_ai.input.messages", capped(json));
    }
}

/// The deployment that answered: `gen_ai.provider.name`, `server.address`,
/// `gen_ai.response.model` (the upstream model) and `gen_ai.response.id`.
pub(crate) fn answered_by(
    span: &Span,
    deployment: &prism_providers::Deployment,
    response_id: &str,
) {
    span.set_attribute("gen_ai.provider.name", provider_name(deployment.kind));
    span.set_attribute("server.address", host_of(&deployment.base_url).to_owned());
    span.set_attribute("gen_ai.response.model", deployment.upstream_model.clone());
    span.set_attribute("gen_ai.response.id", response_id.to_owned());
}

/// The end of a request on its span: usage, finish reasons, the error; with
/// `capture_content`, the output text.
pub(crate) fn ended(
    span: &Span,
    input_tokens: u64,
    output_tokens: u64,
    finish_reasons: &[String],
    error_type: Option<&str>,
    output: Option<String>,
) {
    span.set_attribute(
        "gen_ai.usage.input_tokens",
        i64::try_from(input_tokens).unwrap_or(i64::MAX),
    );
    span.set_attribute(
        "gen_ai.usage.output_tokens",
        i64::try_from(output_tokens).unwrap_or(i64::MAX),
    );
    if !finish_reasons.is_empty() {
        let reasons: Vec<opentelemetry::StringValue> =
            finish_reasons.iter().map(|r| r.clone().into()).collect();
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            opentelemetry::Value::Array(opentelemetry::Array::String(reasons)),
        );
    }
    if let Some(e) = error_type {
        fail(span, e);
    }
    if let Some(text) = output {
        span.set_attribute("gen_ai.output.messages", capped(text));
    }
}

fn capped(mut text: String) -> String {
    if text.len() > CAPTURE_LIMIT {
        let mut cut = CAPTURE_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Marks a span as failed with `error.type`.
pub(crate) fn fail(span: &Span, error_type: &str) {
    span.set_attribute("error.type", error_type.to_owned());
    span.set_status(opentelemetry::trace::Status::error(error_type.to_owned()));
}

/// The GenAI metrics, with the conventions' names, units and bucket boundaries.
#[derive(Debug)]
pub(crate) struct GenAiMetrics {
    ttft: Histogram<f64>,
    time_per_output_token: Histogram<f64>,
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
}

/// What the metrics of one finished request need.
pub(crate) struct Finished<'a> {
    pub(crate) request_model: &'a str,
    pub(crate) response_model: Option<&'a str>,
    pub(crate) provider: Option<&'a str>,
    pub(crate) error_type: Option<&'a str>,
    pub(crate) ttft: Option<Duration>,
    pub(crate) duration: Duration,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl GenAiMetrics {
    /// Instruments on the global meter provider as installed now (a no-op provider when the
    /// binary installed none).
    pub(crate) fn new() -> Self {
        let meter = global::meter("prism");
        GenAiMetrics {
            ttft: meter
                .f64_histogram("gen_ai.server.time_to_first_token")
                .with_unit("s")
                .with_description("Time to generate the first token of a response")
                .with_boundaries(vec![
                    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                    5.0, 7.5, 10.0,
                ])
                .build(),
            time_per_output_token: meter
                .f64_histogram("gen_ai.server.time_per_output_token")
                .with_unit("s")
                .with_description("Time per output token after the first")
                .with_boundaries(vec![
                    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
                ])
                .build(),
            duration: meter
                .f64_histogram("gen_ai.server.request.duration")
                .with_unit("s")
                .with_description("Duration of GenAI requests")
                .with_boundaries(vec![
                    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92,
                ])
                .build(),
            tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Input and output tokens used")
                .with_boundaries(vec![
                    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
                    1048576.0, 4194304.0, 16777216.0, 67108864.0,
                ])
                .build(),
        }
    }

    /// Records a finished request.
    pub(crate) fn record(&self, f: &Finished<'_>) {
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", f.request_model.to_owned()),
        ];
        if let Some(p) = f.provider {
            attrs.push(KeyValue::new("gen_ai.provider.name", p.to_owned()));
        }
        if let Some(m) = f.response_model {
            attrs.push(KeyValue::new("gen_ai.response.model", m.to_owned()));
        }
        if let Some(e) = f.error_type {
            attrs.push(KeyValue::new("error.type", e.to_owned()));
        }
        self.duration.record(f.duration.as_secs_f64(), &attrs);
        if let Some(ttft) = f.ttft {
            self.ttft.record(ttft.as_secs_f64(), &attrs);
            if f.output_tokens > 1 && f.error_type.is_none() {
                let after_first = f.duration.saturating_sub(ttft).as_secs_f64();
                self.time_per_output_token
                    .record(after_first / (f.output_tokens - 1) as f64, &attrs);
            }
        }
        if f.error_type.is_none() {
            for (kind, n) in [("input", f.input_tokens), ("output", f.output_tokens)] {
                let mut with_kind = attrs.clone();
                with_kind.push(KeyValue::new("gen_ai.token.type", kind));
                self.tokens.record(n, &with_kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_base_urls() {
        assert_eq!(host_of("https://api.openai.com"), "api.openai.com");
        assert_eq!(host_of("http://127.0.0.1:9090/v1"), "127.0.0.1");
        assert_eq!(host_of("http://user:pw@example.com:8080/x"), "example.com");
        assert_eq!(host_of("http://[::1]:4000"), "::1");
    }

    #[test]
    fn without_an_sdk_the_clients_trace_headers_are_forwarded() {
        let mut client = HeaderMap::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        client.insert(TRACEPARENT, HeaderValue::from_static(tp));
        client.insert(TRACESTATE, HeaderValue::from_static("vendor=1"));
        let mut upstream = HeaderMap::new();
        inject(&Span::none(), &mut upstream, &ClientTrace::from_headers(&client));
        assert_eq!(upstream[TRACEPARENT], tp);
        assert_eq!(upstream[TRACESTATE], "vendor=1");
        let mut none = HeaderMap::new();
        inject(&Span::none(), &mut none, &ClientTrace::default());
        assert!(none.is_empty());
    }
}

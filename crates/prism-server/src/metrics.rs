//! Prometheus metrics, kept and exposed by the `prometheus-client` crate: a handful of counter and
//! histogram families over small label sets (configured model and provider names, statuses).
//! Streams add their per-chunk counts once, at the end, so the hot path touches no shared state.
//!
//! [`Metrics::render`] writes the Prometheus text format, version 0.0.4 (the library's
//! `prometheus_text` encoder, not its OpenMetrics one): no `# EOF` line, counter families named
//! with their `_total` suffix on the `# HELP` and `# TYPE` lines, so `/metrics` can append the
//! cache and usage counters it writes by hand and still serve `text/plain; version=0.0.4`. The
//! names, labels, help texts, units and buckets are those of the hand-written exposition this
//! replaced, listed in `docs/metrics.md`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Buckets of the time-to-first-token histogram, in seconds.
const TTFT_BUCKETS: [f64; 12] =
    [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];
/// Buckets of the stream duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Buckets of the histogram of the latency Prism itself adds, in seconds: from 0.1 ms.
const ADDED_LATENCY_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A histogram family over `L`, every member with the same fixed buckets.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn ttft_histogram() -> Histogram {
    Histogram::new(TTFT_BUCKETS)
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn added_latency_histogram() -> Histogram {
    Histogram::new(ADDED_LATENCY_BUCKETS)
}

/// All gateway metrics. Each field is a handle on a metric that `registry` also holds.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_errors: Family<ProviderKindLabels, Counter>,
    retries: Family<ProviderLabels, Counter>,
    fallbacks: Family<ModelLabels, Counter>,
    chunks: Family<DeploymentLabels, Counter>,
    upstream_bytes: Family<DeploymentLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    stream_endings: Family<EndingLabels, Counter>,
    ttft: HistogramFamily<DeploymentLabels>,
    stream_duration: HistogramFamily<DeploymentLabels>,
    added_latency: HistogramFamily<StageLabels>,
    active_streams: Gauge,
    guardrail_findings: Family<GuardrailLabels, Counter>,
    /// Kept in micro-dollars, exposed in dollars.
    cost: Family<DeploymentLabels, MicroDollars>,
    rate_limited: Family<LimitLabels, Counter>,
    ledger_errors: Family<LedgerLabels, Counter>,
    config_reloads: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            upstream_errors: Family::default(),
            retries: Family::default(),
            fallbacks: Family::default(),
            chunks: Family::default(),
            upstream_bytes: Family::default(),
            tokens: Family::default(),
            stream_endings: Family::default(),
            ttft: Family::new_with_constructor(ttft_histogram),
            stream_duration: Family::new_with_constructor(duration_histogram),
            added_latency: Family::new_with_constructor(added_latency_histogram),
            active_streams: Gauge::default(),
            guardrail_findings: Family::default(),
            cost: Family::default(),
            rate_limited: Family::default(),
            ledger_errors: Family::default(),
            config_reloads: Family::default(),
        };
        // The library appends `_total` to counter names and a full stop to help texts, so the
        // names below lack the one and the texts the other; the exposed names are those of
        // `docs/metrics.md`.
        let mut registry = Registry::default();
        registry.register(
            "prism_requests",
            "Chat completion requests by model, provider and HTTP status",
            m.requests.clone(),
        );
        registry.register(
            "prism_upstream_errors",
            "Failed upstream attempts by provider and kind",
            m.upstream_errors.clone(),
        );
        registry.register(
            "prism_upstream_retries",
            "Retries of an upstream deployment",
            m.retries.clone(),
        );
        registry.register(
            "prism_fallbacks",
            "Moves to the next deployment of a model",
            m.fallbacks.clone(),
        );
        registry.register(
            "prism_time_to_first_token_seconds",
            "Time from request to the first upstream content",
            m.ttft.clone(),
        );
        registry.register(
            "prism_stream_duration_seconds",
            "Duration of streamed responses",
            m.stream_duration.clone(),
        );
        registry.register(
            "prism_chunks",
            "chat.completion.chunk events sent to clients",
            m.chunks.clone(),
        );
        registry.register(
            "prism_upstream_bytes",
            "Response bytes read from upstreams by streams",
            m.upstream_bytes.clone(),
        );
        registry.register(
            "prism_tokens",
            "Tokens by kind (prompt = in, completion = out), as the upstream reported them",
            m.tokens.clone(),
        );
        registry.register(
            "prism_stream_endings",
            "How streams ended: done, error, timeout, client_closed",
            m.stream_endings.clone(),
        );
        registry.register(
            "prism_guardrail_findings",
            "Guardrail findings by rule, detector, stage (input, output) and mode (enforce, monitor)",
            m.guardrail_findings.clone(),
        );
        registry.register(
            "prism_cost_usd",
            "Spend in US dollars by model and provider, from the [pricing] table",
            m.cost.clone(),
        );
        registry.register(
            "prism_rate_limited",
            "Requests refused by a rate limit, concurrency limit or budget, by limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "prism_ledger_errors",
            "Failed operations on the limit counters, by backend and operation",
            m.ledger_errors.clone(),
        );
        registry.register(
            "prism_added_latency_seconds",
            "Latency Prism itself adds, by stage: before_upstream (request read to upstream \
             request sent), first_byte (first upstream byte to first byte to the client)",
            m.added_latency.clone(),
        );
        registry.register(
            "prism_config_reloads",
            "Configuration reloads by outcome (ok, invalid)",
            m.config_reloads.clone(),
        );
        registry.register(
            "prism_active_streams",
            "Streams currently open",
            m.active_streams.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The usage recorder's counters, read at each scrape from the recorder's own atomics.
#[derive(Debug)]
struct UsageCollector(std::sync::Arc<prism_ledger::SinkStats>);

impl prometheus_client::collector::Collector for UsageCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        let stats = &self.0;
        let families = [
            ("prism_usage_records", "Usage records taken by the ledger", &stats.recorded),
            (
                "prism_usage_records_written",
                "Usage records written by the sinks (each sink counts its own)",
                &stats.written,
            ),
            (
                "prism_usage_records_dropped",
                "Usage records lost: a sink's queue was full, or shutdown ran out of time",
                &stats.dropped,
            ),
            (
                "prism_usage_sink_errors",
                "Failed usage sink writes (each is retried)",
                &stats.write_errors,
            ),
        ];
        for (name, help, value) in families {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(
                value.load(Ordering::Relaxed),
            );
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// The metrics, with the usage recorder's counters read from `usage` at each scrape.
    pub(crate) fn with_usage(usage: std::sync::Arc<prism_ledger::SinkStats>) -> Self {
        let mut m = Metrics::default();
        m.registry.register_collector(Box::new(UsageCollector(usage)));
        m
    }
}

/// What one finished stream adds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamTotals {
    pub(crate) chunks: u64,
    pub(crate) upstream_bytes: u64,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
}

impl Metrics {
    /// Counts one answered request by client protocol. `model` and `provider` must be configured names (or `-`),
    /// never raw client input, to keep cardinality bounded.
    pub(crate) fn request(&self, protocol: &str, model: &str, provider: &str, status: u16) {
        let labels = RequestLabels {
            protocol: protocol.to_owned(),
            model: model.to_owned(),
            provider: provider.to_owned(),
            status: Status(status),
        };
        self.requests.get_or_create(&labels).inc();
    }

    pub(crate) fn upstream_error(&self, provider: &str, kind: &str) {
        let labels = ProviderKindLabels { provider: provider.to_owned(), kind: kind.to_owned() };
        self.upstream_errors.get_or_create(&labels).inc();
    }

    pub(crate) fn retry(&self, provider: &str) {
        self.retries.get_or_create(&ProviderLabels { provider: provider.to_owned() }).inc();
    }

    pub(crate) fn fallback(&self, model: &str) {
        self.fallbacks.get_or_create(&ModelLabels { model: model.to_owned() }).inc();
    }

    pub(crate) fn ttft(&self, model: &str, provider: &str, ttft: Duration) {
        self.ttft
            .get_or_create(&DeploymentLabels::new(model, provider))
            .observe(ttft.as_secs_f64());
    }

    /// Records latency that Prism itself added to a request at `stage` (`before_upstream`:
    /// from the request read to the upstream request sent; `first_byte`: from the first upstream
    /// byte to the first byte written to the client).
    pub(crate) fn added_latency(
        &self,
        model: &str,
        provider: &str,
        stage: &'static str,
        latency: Duration,
    ) {
        let labels = StageLabels { model: model.to_owned(), provider: provider.to_owned(), stage };
        self.added_latency.get_or_create(&labels).observe(latency.as_secs_f64());
    }

    /// Counts one configuration reload by `outcome`: `ok` (applied) or `invalid` (rejected, the
    /// running configuration kept).
    pub(crate) fn config_reload(&self, outcome: &'static str) {
        self.config_reloads.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn stream_started(&self) {
        self.active_streams.inc();
    }

    pub(crate) fn stream_ended(
        &self,
        model: &str,
        provider: &str,
        reason: &str,
        elapsed: Duration,
        t: StreamTotals,
    ) {
        self.active_streams.dec();
        let ending = EndingLabels {
            model: model.to_owned(),
            provider: provider.to_owned(),
            reason: reason.to_owned(),
        };
        self.stream_endings.get_or_create(&ending).inc();
        let deployment = DeploymentLabels::new(model, provider);
        self.stream_duration.get_or_create(&deployment).observe(elapsed.as_secs_f64());
        add(&self.chunks, &deployment, t.chunks);
        add(&self.upstream_bytes, &deployment, t.upstream_bytes);
        self.tokens(model, provider, t.prompt_tokens, t.completion_tokens);
    }

    pub(crate) fn tokens(&self, model: &str, provider: &str, prompt: u64, completion: u64) {
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            if n > 0 {
                let labels =
                    TokenLabels { model: model.to_owned(), provider: provider.to_owned(), kind };
                self.tokens.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Counts one guardrail finding. `rule` is a configured rule name, `detector` a fixed label
    /// (`pii:card`), so cardinality stays bounded.
    pub(crate) fn guardrail_finding(&self, rule: &str, detector: &str, stage: &str, mode: &str) {
        let labels = GuardrailLabels {
            rule: rule.to_owned(),
            detector: detector.to_owned(),
            stage: stage.to_owned(),
            mode: mode.to_owned(),
        };
        self.guardrail_findings.get_or_create(&labels).inc();
    }

    /// Adds a request's cost, in US dollars.
    pub(crate) fn cost(&self, model: &str, provider: &str, usd: f64) {
        let micros = prism_ledger::limits::usd_to_micros(usd);
        if micros > 0 {
            let labels = DeploymentLabels::new(model, provider);
            self.cost.get_or_create(&labels).0.fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// Counts a request refused by the usage ledger; `limit` is its label (`tpm`, …).
    pub(crate) fn rate_limited(&self, limit: &str) {
        self.rate_limited.get_or_create(&LimitLabels { limit: limit.to_owned() }).inc();
    }

    /// Counts a failed admission or settlement on the limit counters.
    pub(crate) fn ledger_error(&self, backend: &str, op: &str) {
        let labels = LedgerLabels { backend: backend.to_owned(), op: op.to_owned() };
        self.ledger_errors.get_or_create(&labels).inc();
    }

    /// Streams currently open.
    pub fn active_streams(&self) -> i64 {
        self.active_streams.get()
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric, without a `# EOF` line, so
    /// more families can be appended. A family with no series yet is left out.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            // Writing to a `String` cannot fail; the encoder fails only on a metric it cannot
            // encode, which none of ours is.
            let _ = writeln!(out, "# prism: metrics encoding failed");
        }
        // The 0.0.4 encoder writes no `# EOF` (the OpenMetrics one does): make sure none ends up
        // before the text that `/metrics` appends.
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        out
    }
}

/// Adds `n` to the series of `labels`, creating no series for nothing (as the hand-written
/// counters did).
fn add<L: Clone + std::hash::Hash + Eq>(family: &Family<L, Counter>, labels: &L, n: u64) {
    if n > 0 {
        family.get_or_create(labels).inc_by(n);
    }
}

/// An HTTP status as a label value: always three digits (`000` to `999`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Status(u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        write!(encoder, "{:03}", self.0.min(999))
    }
}

/// A counter kept in micro-dollars (integers, so sums do not drift) and exposed in dollars.
#[derive(Debug, Default)]
struct MicroDollars(AtomicU64);

impl TypedMetric for MicroDollars {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for MicroDollars {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let usd = self.0.load(Ordering::Relaxed) as f64 * 1e-6;
        encoder.encode_counter::<NoLabelSet, _, u64>(&usd, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    protocol: String,
    model: String,
    provider: String,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderKindLabels {
    provider: String,
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeploymentLabels {
    model: String,
    provider: String,
}

impl DeploymentLabels {
    fn new(model: &str, provider: &str) -> Self {
        DeploymentLabels { model: model.to_owned(), provider: provider.to_owned() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    provider: String,
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndingLabels {
    model: String,
    provider: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StageLabels {
    model: String,
    provider: String,
    stage: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GuardrailLabels {
    rule: String,
    detector: String,
    stage: String,
    mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LedgerLabels {
    backend: String,
    op: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let m = Metrics::default();
        m.request("chat_completions", "demo/openai", "demo-openai", 200);
        m.request("chat_completions", "demo/openai", "demo-openai", 200);
        m.request("messages", "we\"ird", "-", 404);
        m.ttft("demo/openai", "demo-openai", Duration::from_millis(30));
        m.stream_started();
        let text = m.render();
        assert!(text.contains("# HELP prism_requests_total Chat completion requests by model, provider and HTTP status.\n# TYPE prism_requests_total counter\n"), "{text}");
        assert!(text.contains("prism_requests_total{protocol=\"chat_completions\",model=\"demo/openai\",provider=\"demo-openai\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains(
            "prism_requests_total{protocol=\"messages\",model=\"we\\\"ird\",provider=\"-\",status=\"404\"} 1\n"
        ), "{text}");
        assert!(text.contains("# TYPE prism_time_to_first_token_seconds histogram\n"), "{text}");
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"0.025\"} 0\n"), "{text}");
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"0.05\"} 1\n"), "{text}");
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"+Inf\"} 1\n"), "{text}");
        assert!(text.contains("prism_time_to_first_token_seconds_count{model=\"demo/openai\",provider=\"demo-openai\"} 1\n"), "{text}");
        assert!(
            text.contains("# TYPE prism_active_streams gauge\nprism_active_streams 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("_total_total"), "{text}");
        assert!(text.ends_with('\n'), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.upstream_error("back\\slash", "new\nline");
        m.request("chat_completions", "-", "-", 0);
        let text = m.render();
        assert!(
            text.contains(
                "prism_upstream_errors_total{provider=\"back\\\\slash\",kind=\"new\\nline\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"000\"} 1\n"), "{text}");
    }

    #[test]
    fn stream_totals_and_cost() {
        let m = Metrics::default();
        m.stream_started();
        let totals =
            StreamTotals { chunks: 7, upstream_bytes: 0, prompt_tokens: 11, completion_tokens: 13 };
        m.stream_ended("demo", "p", "done", Duration::from_millis(300), totals);
        m.cost("demo", "p", 0.25);
        m.cost("demo", "p", 1.25);
        assert_eq!(m.active_streams(), 0);
        let text = m.render();
        assert!(text.contains("prism_chunks_total{model=\"demo\",provider=\"p\"} 7\n"), "{text}");
        // A zero total adds no series.
        assert!(!text.contains("prism_upstream_bytes_total{"), "{text}");
        assert!(
            text.contains("prism_tokens_total{model=\"demo\",provider=\"p\",kind=\"prompt\"} 11\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "prism_tokens_total{model=\"demo\",provider=\"p\",kind=\"completion\"} 13\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "prism_stream_endings_total{model=\"demo\",provider=\"p\",reason=\"done\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("prism_stream_duration_seconds_bucket{model=\"demo\",provider=\"p\",le=\"0.25\"} 0\n"), "{text}");
        assert!(
            text.contains(
                "prism_stream_duration_seconds_bucket{model=\"demo\",provider=\"p\",le=\"0.5\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE prism_cost_usd_total counter\n"), "{text}");
        assert!(
            text.contains("prism_cost_usd_total{model=\"demo\",provider=\"p\"} 1.5\n"),
            "{text}"
        );
        assert!(text.contains("prism_active_streams 0\n"), "{text}");
    }

    #[test]
    fn added_latency_buckets() {
        let m = Metrics::default();
        m.added_latency("demo", "p", "before_upstream", Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("# TYPE prism_added_latency_seconds histogram\n"), "{text}");
        let bucket = |le: &str, n: u64| {
            format!(
                "prism_added_latency_seconds_bucket{{model=\"demo\",provider=\"p\",stage=\"before_upstream\",le=\"{le}\"}} {n}\n"
            )
        };
        assert!(text.contains(&bucket("0.0001", 0)), "{text}");
        assert!(text.contains(&bucket("0.00025", 0)), "{text}");
        assert!(text.contains(&bucket("0.0005", 1)), "{text}");
        assert!(text.contains(&bucket("0.001", 1)), "{text}");
        assert!(text.contains(&bucket("1", 1)), "{text}");
        assert!(text.contains(&bucket("+Inf", 1)), "{text}");
        assert!(text.contains("prism_added_latency_seconds_count{model=\"demo\",provider=\"p\",stage=\"before_upstream\"} 1\n"), "{text}");
        // Exactly the 12 configured buckets and +Inf.
        assert_eq!(text.matches("prism_added_latency_seconds_bucket{").count(), 13, "{text}");
    }

    #[test]
    fn config_reload_counter() {
        let m = Metrics::default();
        assert!(!m.render().contains("prism_config_reloads_total{"));
        m.config_reload("ok");
        m.config_reload("ok");
        m.config_reload("invalid");
        let text = m.render();
        assert!(text.contains("# TYPE prism_config_reloads_total counter\n"), "{text}");
        assert!(text.contains("prism_config_reloads_total{outcome=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("prism_config_reloads_total{outcome=\"invalid\"} 1\n"), "{text}");
    }

    #[test]
    fn usage_counters_are_read_from_the_recorder_at_each_scrape() {
        let stats = std::sync::Arc::new(prism_ledger::SinkStats::default());
        let m = Metrics::with_usage(std::sync::Arc::clone(&stats));
        assert!(m.render().contains("prism_usage_records_dropped_total 0\n"));
        stats.dropped.fetch_add(3, Ordering::Relaxed);
        stats.recorded.fetch_add(7, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("# TYPE prism_usage_records_dropped_total counter\n"), "{text}");
        assert!(text.contains("prism_usage_records_dropped_total 3\n"), "{text}");
        assert!(text.contains("prism_usage_records_total 7\n"), "{text}");
    }

    #[test]
    fn render_can_be_appended_to() {
        let m = Metrics::default();
        m.retry("p");
        let mut text = m.render();
        text.push_str("# TYPE prism_cache_hits_total counter\nprism_cache_hits_total 1\n");
        let eof = text.find("# EOF");
        assert_eq!(eof, None, "{text}");
        assert!(text.contains("prism_upstream_retries_total{provider=\"p\"} 1\n"), "{text}");
        assert!(
            text.ends_with("prism_active_streams 0\n# TYPE prism_cache_hits_total counter\nprism_cache_hits_total 1\n"),
            "{text}"
        );
    }
}

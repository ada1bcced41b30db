//! Prometheus metrics, written in the text exposition format by hand: a handful of counter and
//! histogram families over small label sets (configured model and provider names, statuses), so a
//! dependency would buy little. Streams add their per-chunk counts once, at the end, so the hot
//! path touches no shared state.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Buckets of the time-to-first-token histogram, in seconds.
const TTFT_BUCKETS: [f64; 12] =
    [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];
/// Buckets of the stream duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] =
    [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// All gateway metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Counter<4>,
    upstream_errors: Counter<2>,
    retries: Counter<1>,
    fallbacks: Counter<1>,
    chunks: Counter<2>,
    upstream_bytes: Counter<2>,
    tokens: Counter<3>,
    stream_endings: Counter<3>,
    ttft: Histogram<2>,
    stream_duration: Histogram<2>,
    active_streams: AtomicI64,
    guardrail_findings: Counter<4>,
    /// Micro-dollars, rendered as dollars.
    cost_micros: Counter<2>,
    rate_limited: Counter<1>,
    ledger_errors: Counter<2>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Counter::new(["protocol", "model", "provider", "status"]),
            upstream_errors: Counter::new(["provider", "kind"]),
            retries: Counter::new(["provider"]),
            fallbacks: Counter::new(["model"]),
            chunks: Counter::new(["model", "provider"]),
            upstream_bytes: Counter::new(["model", "provider"]),
            tokens: Counter::new(["model", "provider", "kind"]),
            stream_endings: Counter::new(["model", "provider", "reason"]),
            ttft: Histogram::new(["model", "provider"], &TTFT_BUCKETS),
            stream_duration: Histogram::new(["model", "provider"], &DURATION_BUCKETS),
            active_streams: AtomicI64::new(0),
            guardrail_findings: Counter::new(["rule", "detector", "stage", "mode"]),
            cost_micros: Counter::new(["model", "provider"]),
            rate_limited: Counter::new(["limit"]),
            ledger_errors: Counter::new(["backend", "op"]),
        }
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
        let mut s = [0u8; 3];
        let status = status_str(status, &mut s);
        self.requests.add([protocol, model, provider, status], 1);
    }

    pub(crate) fn upstream_error(&self, provider: &str, kind: &str) {
        self.upstream_errors.add([provider, kind], 1);
    }

    pub(crate) fn retry(&self, provider: &str) {
        self.retries.add([provider], 1);
    }

    pub(crate) fn fallback(&self, model: &str) {
        self.fallbacks.add([model], 1);
    }

    pub(crate) fn ttft(&self, model: &str, provider: &str, ttft: Duration) {
        self.ttft.observe([model, provider], ttft.as_secs_f64());
    }

    pub(crate) fn stream_started(&self) {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stream_ended(
        &self,
        model: &str,
        provider: &str,
        reason: &str,
        elapsed: Duration,
        t: StreamTotals,
    ) {
        self.active_streams.fetch_sub(1, Ordering::Relaxed);
        self.stream_endings.add([model, provider, reason], 1);
        self.stream_duration.observe([model, provider], elapsed.as_secs_f64());
        self.chunks.add([model, provider], t.chunks);
        self.upstream_bytes.add([model, provider], t.upstream_bytes);
        self.tokens(model, provider, t.prompt_tokens, t.completion_tokens);
    }

    pub(crate) fn tokens(&self, model: &str, provider: &str, prompt: u64, completion: u64) {
        if prompt > 0 {
            self.tokens.add([model, provider, "prompt"], prompt);
        }
        if completion > 0 {
            self.tokens.add([model, provider, "completion"], completion);
        }
    }

    /// Counts one guardrail finding. `rule` is a configured rule name, `detector` a fixed label
    /// (`pii:card`), so cardinality stays bounded.
    pub(crate) fn guardrail_finding(&self, rule: &str, detector: &str, stage: &str, mode: &str) {
        self.guardrail_findings.add([rule, detector, stage, mode], 1);
    }

    /// Adds a request's cost, in US dollars.
    pub(crate) fn cost(&self, model: &str, provider: &str, usd: f64) {
        self.cost_micros.add([model, provider], prism_ledger::limits::usd_to_micros(usd));
    }

    /// Counts a request refused by the usage ledger; `limit` is its label (`tpm`, …).
    pub(crate) fn rate_limited(&self, limit: &str) {
        self.rate_limited.add([limit], 1);
    }

    /// Counts a failed admission or settlement on the limit counters.
    pub(crate) fn ledger_error(&self, backend: &str, op: &str) {
        self.ledger_errors.add([backend, op], 1);
    }

    /// Streams currently open.
    pub fn active_streams(&self) -> i64 {
        self.active_streams.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.requests.render(
            &mut out,
            "prism_requests_total",
            "Chat completion requests by model, provider and HTTP status.",
        );
        self.upstream_errors.render(
            &mut out,
            "prism_upstream_errors_total",
            "Failed upstream attempts by provider and kind.",
        );
        self.retries.render(
            &mut out,
            "prism_upstream_retries_total",
            "Retries of an upstream deployment.",
        );
        self.fallbacks.render(
            &mut out,
            "prism_fallbacks_total",
            "Moves to the next deployment of a model.",
        );
        self.ttft.render(
            &mut out,
            "prism_time_to_first_token_seconds",
            "Time from request to the first upstream content.",
        );
        self.stream_duration.render(
            &mut out,
            "prism_stream_duration_seconds",
            "Duration of streamed responses.",
        );
        self.chunks.render(
            &mut out,
            "prism_chunks_total",
            "chat.completion.chunk events sent to clients.",
        );
        self.upstream_bytes.render(
            &mut out,
            "prism_upstream_bytes_total",
            "Response bytes read from upstreams by streams.",
        );
        self.tokens.render(
            &mut out,
            "prism_tokens_total",
            "Tokens by kind (prompt = in, completion = out), as the upstream reported them.",
        );
        self.stream_endings.render(
            &mut out,
            "prism_stream_endings_total",
            "How streams ended: done, error, timeout, client_closed.",
        );
        self.guardrail_findings.render(
            &mut out,
            "prism_guardrail_findings_total",
            "Guardrail findings by rule, detector, stage (input, output) and mode (enforce, monitor).",
        );
        self.cost_micros.render_scaled(
            &mut out,
            "prism_cost_usd_total",
            "Spend in US dollars by model and provider, from the [pricing] table.",
            1e-6,
        );
        self.rate_limited.render(
            &mut out,
            "prism_rate_limited_total",
            "Requests refused by a rate limit, concurrency limit or budget, by limit.",
        );
        self.ledger_errors.render(
            &mut out,
            "prism_ledger_errors_total",
            "Failed operations on the limit counters, by backend and operation.",
        );
        let _ = writeln!(out, "# HELP prism_active_streams Streams currently open.");
        let _ = writeln!(out, "# TYPE prism_active_streams gauge");
        let _ = writeln!(out, "prism_active_streams {}", self.active_streams());
        out
    }
}

fn status_str(status: u16, buf: &mut [u8; 3]) -> &str {
    let status = status.min(999);
    buf[0] = b'0' + (status / 100) as u8;
    buf[1] = b'0' + (status / 10 % 10) as u8;
    buf[2] = b'0' + (status % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("000")
}

/// A counter family: a short list of label sets, scanned linearly (there are few of them).
#[derive(Debug)]
struct Counter<const N: usize> {
    names: [&'static str; N],
    series: Mutex<Vec<([String; N], u64)>>,
}

impl<const N: usize> Counter<N> {
    fn new(names: [&'static str; N]) -> Self {
        Counter { names, series: Mutex::new(Vec::new()) }
    }

    fn add(&self, labels: [&str; N], value: u64) {
        if value == 0 {
            return;
        }
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        match series.iter_mut().find(|(l, _)| l.iter().zip(labels).all(|(a, b)| a == b)) {
            Some((_, v)) => *v += value,
            None => series.push((labels.map(str::to_owned), value)),
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        self.render_scaled(out, name, help, 1.0);
    }

    /// Renders each count times `scale` (a counter kept in smaller integer units).
    fn render_scaled(&self, out: &mut String, name: &str, help: &str, scale: f64) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, value) in series.iter() {
            let _ = write!(out, "{name}");
            write_labels(out, &self.names, labels, None);
            if scale == 1.0 {
                let _ = writeln!(out, " {value}");
            } else {
                let _ = writeln!(out, " {}", *value as f64 * scale);
            }
        }
    }
}

/// A histogram family with fixed buckets.
#[derive(Debug)]
struct Histogram<const N: usize> {
    names: [&'static str; N],
    buckets: &'static [f64],
    series: Mutex<Vec<([String; N], HistogramData)>>,
}

#[derive(Debug)]
struct HistogramData {
    /// Non-cumulative count per bucket; the last slot is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl<const N: usize> Histogram<N> {
    fn new(names: [&'static str; N], buckets: &'static [f64]) -> Self {
        Histogram { names, buckets, series: Mutex::new(Vec::new()) }
    }

    fn observe(&self, labels: [&str; N], value: f64) {
        let slot = self.buckets.iter().position(|b| value <= *b).unwrap_or(self.buckets.len());
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match series.iter().position(|(l, _)| l.iter().zip(labels).all(|(a, b)| a == b)) {
            Some(i) => i,
            None => {
                let data =
                    HistogramData { counts: vec![0; self.buckets.len() + 1], sum: 0.0, count: 0 };
                series.push((labels.map(str::to_owned), data));
                series.len() - 1
            }
        };
        let data = &mut series[idx].1;
        data.counts[slot] += 1;
        data.sum += value;
        data.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, data) in series.iter() {
            let mut cumulative = 0;
            for (i, count) in data.counts.iter().enumerate() {
                cumulative += count;
                let le = self.buckets.get(i).map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = write!(out, "{name}_bucket");
                write_labels(out, &self.names, labels, Some(&le));
                let _ = writeln!(out, " {cumulative}");
            }
            let _ = write!(out, "{name}_sum");
            write_labels(out, &self.names, labels, None);
            let _ = writeln!(out, " {}", data.sum);
            let _ = write!(out, "{name}_count");
            write_labels(out, &self.names, labels, None);
            let _ = writeln!(out, " {}", data.count);
        }
    }
}

fn write_labels(out: &mut String, names: &[&str], values: &[String], le: Option<&str>) {
    out.push('{');
    let mut first = true;
    for (name, value) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
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
        assert!(text.contains("prism_requests_total{protocol=\"chat_completions\",model=\"demo/openai\",provider=\"demo-openai\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains(
            "prism_requests_total{protocol=\"messages\",model=\"we\\\"ird\",provider=\"-\",status=\"404\"} 1\n"
        ));
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"0.025\"} 0\n"));
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"0.05\"} 1\n"));
        assert!(text.contains("prism_time_to_first_token_seconds_bucket{model=\"demo/openai\",provider=\"demo-openai\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("prism_time_to_first_token_seconds_count{model=\"demo/openai\",provider=\"demo-openai\"} 1\n"));
        assert!(text.contains("prism_active_streams 1\n"));
    }
}

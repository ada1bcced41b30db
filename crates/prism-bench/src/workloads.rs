//! The five workloads of issue 9, each measured directly against the simulator (the physical
//! limit) and through the gateway, with the results added to the [`Report`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prism_simulator::{Reply, Wire};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::gateway::{self, Gateway, UPSTREAM_MODEL, Upstream};
use crate::http;
use crate::load::{self, CheckPlan, Plan, Progress, Tally, closed_loop};
use crate::report::{Report, count, num, pct};
use crate::sim::{SimProcess, SimSpec};
use crate::soak_check::Protocol;
use crate::stats::{Meters, Summary, Usage, per_1k, summarize};
use crate::verify::{BodyWant, ExpectedStream, expected_body};

/// Streams being opened at once while W4 ramps up: well under the listen backlogs (4096 for the
/// simulator and, by its `limits.listen_backlog` default, the gateway), so no SYN is dropped and
/// retried a second later and a failure at 10k is the gateway's, not the ramp's.
const RAMP_PERMITS: usize = 96;
/// File descriptors kept free in each process beyond the benchmark's sockets.
const FD_RESERVE: u64 = 64;

/// How long each workload runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durations {
    pub(crate) w1_streams: usize,
    pub(crate) closed_loop: Duration,
    pub(crate) w4_window: Duration,
    /// Longest W4 waits for all its streams to open before the window starts anyway.
    pub(crate) w4_ramp_limit: Duration,
}

impl Durations {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Durations {
                w1_streams: 8,
                closed_loop: Duration::from_secs(2),
                w4_window: Duration::from_secs(5),
                w4_ramp_limit: Duration::from_secs(15),
            }
        } else {
            Durations {
                w1_streams: 50,
                closed_loop: Duration::from_secs(8),
                w4_window: Duration::from_secs(30),
                w4_ramp_limit: Duration::from_secs(45),
            }
        }
    }
}

/// The run's fixed inputs.
#[derive(Debug)]
pub(crate) struct Bench {
    /// This binary (it is also the simulator).
    pub(crate) exe: PathBuf,
    /// The `prism` binary under test.
    pub(crate) prism: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) durations: Durations,
    pub(crate) key: String,
    pub(crate) fd_limit: u64,
    /// Record a `perf` profile of the gateway during the Prism side of W2, W3 and W5.
    pub(crate) perf: bool,
    /// A command the gateway runs under (profiling only), e.g. `heaptrack -o <file>`.
    pub(crate) wrapper: Vec<String>,
    pub(crate) report: Report,
}

const PROMPT: &str = "Say hello";

fn wire(upstream: Upstream) -> Wire {
    match upstream {
        Upstream::OpenAi => Wire::OpenAi,
        Upstream::Anthropic => Wire::Anthropic,
        Upstream::Gemini => Wire::Gemini,
        Upstream::Bedrock => Wire::BedrockConverse,
    }
}

/// The native request a provider SDK would send straight to the upstream.
fn direct_request(addr: SocketAddr, upstream: Upstream, stream: bool) -> Vec<u8> {
    let (path, auth, body) = match upstream {
        Upstream::OpenAi => (
            "/v1/chat/completions".to_owned(),
            ("authorization", "Bearer sk-sim-openai"),
            json!({"model": UPSTREAM_MODEL, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}),
        ),
        Upstream::Anthropic => (
            "/v1/messages".to_owned(),
            ("x-api-key", "sk-sim-anthropic"),
            json!({"model": UPSTREAM_MODEL, "max_tokens": 4096, "stream": stream,
                   "messages": [{"role": "user", "content": PROMPT}]}),
        ),
        Upstream::Gemini => (
            format!(
                "/v1beta/models/{UPSTREAM_MODEL}:{}",
                if stream { "streamGenerateContent?alt=sse" } else { "generateContent" }
            ),
            ("x-goog-api-key", "sim-gemini"),
            json!({"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}),
        ),
        Upstream::Bedrock => (
            format!(
                "/model/{UPSTREAM_MODEL}/{}",
                if stream { "converse-stream" } else { "converse" }
            ),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDPRISMBENCH/simulated"),
            json!({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}),
        ),
    };
    http::post(addr, &path, Some(auth), &body.to_string())
}

/// The OpenAI request a client sends to Prism.
fn prism_request(addr: SocketAddr, upstream: Upstream, stream: bool, key: &str) -> Vec<u8> {
    let body = json!({"model": upstream.public_model(), "stream": stream,
                      "messages": [{"role": "user", "content": PROMPT}]});
    http::post(
        addr,
        "/v1/chat/completions",
        Some(("authorization", &format!("Bearer {key}"))),
        &body.to_string(),
    )
}

fn direct_stream_plan(addr: SocketAddr, upstream: Upstream, reply: &Reply) -> anyhow::Result<Plan> {
    let expected = ExpectedStream::new(wire(upstream), reply, UPSTREAM_MODEL)?;
    Ok(Plan {
        addr,
        request: direct_request(addr, upstream, true).into(),
        check: CheckPlan::Direct(Arc::new(expected)),
    })
}

fn prism_stream_plan(addr: SocketAddr, upstream: Upstream, reply: &Reply, key: &str) -> Plan {
    Plan {
        addr,
        request: prism_request(addr, upstream, true, key).into(),
        check: CheckPlan::OpenAi(Arc::from(reply.text_content())),
    }
}

/// W7's rules: every PII and secret type, Enforce with `hold_back`, on input and output.
const W7_GUARDRAILS: &str = r#"
[[guardrails.rules]]
name = "bench-pii"
kind = "pii"
mode = "enforce"
hold_back = true

[[guardrails.rules]]
name = "bench-secrets"
kind = "secrets"
mode = "enforce"
hold_back = true
"#;

/// A stream through one of Prism's ingresses (Messages with `x-api-key`, as the Anthropic SDK
/// sends it), to the OpenAI upstream, checked delta by delta by the soak's checker.
fn ingress_stream_plan(addr: SocketAddr, protocol: Protocol, reply: &Reply, key: &str) -> Plan {
    let model = Upstream::OpenAi.public_model();
    let bearer = format!("Bearer {key}");
    let (path, auth, body) = match protocol {
        Protocol::Messages => (
            "/v1/messages",
            ("x-api-key", key),
            json!({"model": model, "max_tokens": 4096, "stream": true,
                   "messages": [{"role": "user", "content": PROMPT}]}),
        ),
        Protocol::Responses => (
            "/v1/responses",
            ("authorization", bearer.as_str()),
            json!({"model": model, "stream": true, "input": PROMPT}),
        ),
        Protocol::Chat => (
            "/v1/chat/completions",
            ("authorization", bearer.as_str()),
            json!({"model": model, "stream": true,
                   "messages": [{"role": "user", "content": PROMPT}]}),
        ),
    };
    Plan {
        addr,
        request: http::post(addr, path, Some(auth), &body.to_string()).into(),
        check: CheckPlan::Ingress(protocol, reply.deltas.len() as u64),
    }
}

/// Results of one side of a closed-loop comparison.
#[derive(Debug)]
struct Side {
    tally: Tally,
    usage: Usage,
}

impl Side {
    fn wall_s(&self) -> f64 {
        self.usage.wall_ms / 1e3
    }

    fn per_s(&self, n: u64) -> f64 {
        n as f64 / self.wall_s()
    }

    fn verified(&self) -> String {
        let total = self.tally.ok + self.tally.failed();
        if self.tally.failed() == 0 {
            format!("{}/{}", count(self.tally.ok), count(total))
        } else {
            let reasons: Vec<String> =
                self.tally.failures.iter().map(|(k, v)| format!("{v} {k}")).collect();
            format!("{}/{} ({})", count(self.tally.ok), count(total), reasons.join(", "))
        }
    }

    fn json(&mut self) -> Value {
        let ttft = summarize(&mut self.tally.ttfts);
        let latency = summarize(&mut self.tally.latencies);
        json!({
            "ok": self.tally.ok,
            "failures": self.tally.failures,
            "chunks": self.tally.chunks,
            "cache_hits": self.tally.cache_hits,
            "per_second": self.per_s(self.tally.ok),
            "chunks_per_second": self.per_s(self.tally.chunks),
            "ttft": ttft,
            "latency": latency,
            "usage": self.usage,
            "gateway_cpu_ms_per_1k_chunks": per_1k(self.usage.gateway_cpu_ms, self.tally.chunks),
            "sim_cpu_ms_per_1k_chunks": per_1k(self.usage.sim_cpu_ms, self.tally.chunks),
            "client_cpu_ms_per_1k_chunks": per_1k(self.usage.client_cpu_ms, self.tally.chunks),
        })
    }
}

impl Bench {
    fn log_path(&self, name: &str) -> PathBuf {
        self.out.join(format!("prism-{name}.log"))
    }

    async fn sim(&self, spec: SimSpec) -> anyhow::Result<SimProcess> {
        SimProcess::spawn(&self.exe, spec).await
    }

    async fn gateway(&self, sim: &SimProcess, name: &str, cache: bool) -> anyhow::Result<Gateway> {
        let config = gateway::config_toml(sim.addr, &self.key, cache);
        Gateway::start(&self.prism, &self.wrapper, &config, &self.log_path(name)).await
    }

    /// W1: added time to first token at C=1 (200 chunks, 5 ms apart), direct and Prism streams
    /// alternating on kept-alive connections so both see the same machine.
    pub(crate) async fn w1(&mut self) -> anyhow::Result<()> {
        eprintln!("prism-bench: W1 added TTFT (C=1, 200 chunks, 5 ms apart)");
        let spec = SimSpec { deltas: 200, delay_us: 5_000, flush_each_event: false, threads: 2 };
        let reply = spec.reply();
        let sim = self.sim(spec).await?;
        let gw = self.gateway(&sim, "w1", false).await?;
        let proxy = SimProcess::spawn_proxy(&self.exe, sim.addr).await?;
        let direct = direct_stream_plan(sim.addr, Upstream::OpenAi, &reply)?;
        let prism = prism_stream_plan(gw.addr, Upstream::OpenAi, &reply, &self.key);
        let mut null = direct_stream_plan(proxy.addr, Upstream::OpenAi, &reply)?;
        null.addr = proxy.addr;
        let plans = [&direct, &null, &prism];
        let n = self.durations.w1_streams;
        // Each stream takes about a second; past this the machine is too loaded to measure.
        let deadline = Instant::now() + Duration::from_secs(n as u64 * 6 + 30);
        let mut conns: [Option<http::Conn>; 3] = [None, None, None];
        let mut tallies: [Tally; 3] = Default::default();
        let mut added = Vec::with_capacity(n);
        let mut over_null = Vec::with_capacity(n);
        for i in 0..=n {
            if Instant::now() >= deadline {
                self.report.note(format!("W1 stopped after {i} of {n} rounds: time limit"));
                break;
            }
            // Direct, null proxy and Prism take turns, in a rotating order so none always
            // follows another; the first round warms the connections and is not counted.
            let mut round: [Tally; 3] = Default::default();
            for k in 0..3 {
                let leg = (i + k) % 3;
                load_one(&mut conns[leg], plans[leg], &mut round[leg]).await;
            }
            if i == 0 {
                continue;
            }
            let ttft = |t: &Tally| t.ttfts.first().map(|d| d.as_secs_f64() * 1e3);
            if let (Some(d), Some(x), Some(p)) = (ttft(&round[0]), ttft(&round[1]), ttft(&round[2]))
            {
                added.push(p - d);
                over_null.push(p - x);
            }
            for (total, one) in tallies.iter_mut().zip(round) {
                total.merge(one);
            }
        }
        gw.stop().await;
        proxy.stop().await;
        sim.stop().await;
        let [mut d, mut x, mut p] = tallies;
        let (ds, xs, ps) =
            (summarize(&mut d.ttfts), summarize(&mut x.ttfts), summarize(&mut p.ttfts));
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let paired_median = median(&mut added);
        let paired_over_null = median(&mut over_null);
        let added50 = ps.p50_ms - ds.p50_ms;
        let added99 = ps.p99_ms - ds.p99_ms;
        let r = &mut self.report;
        let w = "W1 TTFT C=1";
        let ok = p.failed() == 0;
        let (d50, p50) = (num(ds.p50_ms, 3), num(ps.p50_ms, 3));
        r.checked(
            "W1.p50",
            w,
            "TTFT p50 (ms)",
            d50,
            p50,
            signed_ms(added50),
            "+< 0.3 ms",
            added50 < 0.3 && ok,
        );
        let (d99, p99) = (num(ds.p99_ms, 3), num(ps.p99_ms, 3));
        r.checked(
            "W1.p99",
            w,
            "TTFT p99 (ms)",
            d99,
            p99,
            signed_ms(added99),
            "+< 1 ms",
            added99 < 1.0 && ok,
        );
        r.row(
            w,
            "paired TTFT difference, median (ms)",
            String::new(),
            String::new(),
            signed_ms(paired_median),
        );
        let null_pair = format!("{} / {}", num(xs.p50_ms, 3), num(xs.p99_ms, 3));
        let null_added =
            format!("{} / {}", signed_ms(xs.p50_ms - ds.p50_ms), signed_ms(xs.p99_ms - ds.p99_ms));
        r.row(
            w,
            "floor: byte-copying proxy TTFT p50 / p99 (ms)",
            String::new(),
            null_pair,
            null_added,
        );
        r.row(
            w,
            "Prism minus that proxy, paired median (ms)",
            String::new(),
            String::new(),
            signed_ms(paired_over_null),
        );
        r.row(
            w,
            "streams verified (direct / proxy, Prism)",
            format!("{} / {}", verified(&d), verified(&x)),
            verified(&p),
            String::new(),
        );
        r.workloads.insert(
            "W1".to_owned(),
            json!({
                "description": "C=1, 200 chunks 5 ms apart, OpenAI upstream; direct, byte-copying proxy and Prism streams take turns",
                "direct": {"ttft": ds, "ok": d.ok, "failures": d.failures},
                "null_proxy": {"ttft": xs, "ok": x.ok, "failures": x.failures},
                "prism": {"ttft": ps, "ok": p.ok, "failures": p.failures},
                "added_p50_ms": added50,
                "added_p99_ms": added99,
                "paired_difference_median_ms": paired_median,
                "paired_difference_over_null_proxy_median_ms": paired_over_null,
            }),
        );
        Ok(())
    }

    /// W2 (OpenAI) and W3 (Anthropic, Gemini, Bedrock): C=64 streams of 100 chunks without
    /// delay, closed loop, throughput and CPU per 1,000 chunks.
    pub(crate) async fn w2_w3(&mut self, flush_variant: bool) -> anyhow::Result<()> {
        let spec =
            SimSpec { deltas: 100, delay_us: 0, flush_each_event: flush_variant, threads: 2 };
        let reply = spec.reply();
        let mut sim = self.sim(spec).await?;
        let gw =
            self.gateway(&sim, if flush_variant { "w2-flush" } else { "w2-w3" }, false).await?;
        let upstreams: &[Upstream] =
            if flush_variant { &[Upstream::OpenAi] } else { &Upstream::ALL };
        for &upstream in upstreams {
            let id = match (upstream, flush_variant) {
                (Upstream::OpenAi, false) => "W2".to_owned(),
                (Upstream::OpenAi, true) => "W2f".to_owned(),
                (other, _) => format!("W3.{}", other.name()),
            };
            eprintln!(
                "prism-bench: {id} throughput (C=64, 100 chunks, {} upstream)",
                upstream.name()
            );
            let direct = direct_stream_plan(sim.addr, upstream, &reply)?;
            let prism = prism_stream_plan(gw.addr, upstream, &reply, &self.key);
            let mut d =
                self.closed(&direct, Meters { gateway: Some(gw.pid()), sim: sim.pid() }).await;
            let profile = self.start_profile(gw.pid(), &id).await;
            let mut p =
                self.closed(&prism, Meters { gateway: Some(gw.pid()), sim: sim.pid() }).await;
            self.stop_profile(profile).await;
            let label = match (upstream, flush_variant) {
                (Upstream::OpenAi, false) => "W2 C=64 openai".to_owned(),
                (Upstream::OpenAi, true) => "W2f C=64 openai, 1 event/write".to_owned(),
                (other, _) => format!("W3 C=64 {}", other.name()),
            };
            let cpu1k = per_1k(p.usage.gateway_cpu_ms, p.tally.chunks);
            let r = &mut self.report;
            let (ds, ps) = (d.per_s(d.tally.ok), p.per_s(p.tally.ok));
            if upstream == Upstream::OpenAi && !flush_variant {
                r.checked(
                    "W2.throughput",
                    &label,
                    "streams/s",
                    num(ds, 0),
                    num(ps, 0),
                    pct(ps, ds),
                    "≥ 50%",
                    ps >= 0.5 * ds,
                );
            } else {
                r.row(&label, "streams/s", num(ds, 0), num(ps, 0), pct(ps, ds));
            }
            r.row(
                &label,
                "chunks/s",
                count(d.per_s(d.tally.chunks) as u64),
                count(p.per_s(p.tally.chunks) as u64),
                pct(p.per_s(p.tally.chunks), d.per_s(d.tally.chunks)),
            );
            let (limit, target) =
                if upstream == Upstream::OpenAi { (2.5, "≤ 2.5") } else { (4.0, "≤ 4") };
            let ok = p.tally.failed() == 0;
            if flush_variant {
                r.row(&label, "Prism CPU ms / 1k chunks", "-".into(), num(cpu1k, 2), String::new());
            } else {
                r.checked(
                    &format!("{id}.cpu"),
                    &label,
                    "Prism CPU ms / 1k chunks",
                    "-".into(),
                    num(cpu1k, 2),
                    String::new(),
                    target,
                    cpu1k <= limit && ok,
                );
            }
            r.row(
                &label,
                "simulator + client CPU ms / 1k chunks",
                format!(
                    "{} + {}",
                    num(per_1k(d.usage.sim_cpu_ms, d.tally.chunks), 2),
                    num(per_1k(d.usage.client_cpu_ms, d.tally.chunks), 2)
                ),
                format!(
                    "{} + {}",
                    num(per_1k(p.usage.sim_cpu_ms, p.tally.chunks), 2),
                    num(per_1k(p.usage.client_cpu_ms, p.tally.chunks), 2)
                ),
                String::new(),
            );
            r.row(
                &label,
                "TTFT p50 / p99 (ms)",
                ttft_pair(&mut d.tally),
                ttft_pair(&mut p.tally),
                String::new(),
            );
            r.row(
                &label,
                "others' CPU on the machine (cores)",
                num(d.usage.others_cores(), 2),
                num(p.usage.others_cores(), 2),
                String::new(),
            );
            r.row(&label, "streams verified", d.verified(), p.verified(), String::new());
            let description = format!(
                "C=64 closed loop, 100 chunks per stream, no delay{}, {} upstream",
                if flush_variant { ", each upstream event in its own write" } else { "" },
                upstream.name()
            );
            r.workloads.insert(
                id,
                json!({"description": description, "direct": d.json(), "prism": p.json()}),
            );
        }
        if !flush_variant {
            self.w5(&mut sim, &gw, &reply).await?;
        }
        gw.stop().await;
        sim.stop().await;
        Ok(())
    }

    /// WT: W2's load (C=64, 100 chunks, OpenAI) through two gateways in one run, one without
    /// and one with OpenTelemetry export (spans and GenAI metrics over OTLP/HTTP to a sink in
    /// this process): the cost of telemetry per 1,000 chunks.
    pub(crate) async fn wt(&mut self) -> anyhow::Result<()> {
        eprintln!("prism-bench: WT telemetry off/on (C=64, 100 chunks, openai upstream)");
        let spec = SimSpec { deltas: 100, delay_us: 0, flush_each_event: false, threads: 2 };
        let reply = spec.reply();
        let sim = self.sim(spec).await?;
        let (sink, exports) = otlp_sink().await?;
        let off = self.gateway(&sim, "wt-off", false).await?;
        let config = format!(
            "{}\n[telemetry]\nendpoint = \"http://{sink}\"\nprotocol = \"http/protobuf\"\nexport_interval_ms = 1000\n",
            gateway::config_toml(sim.addr, &self.key, false)
        );
        let on =
            Gateway::start(&self.prism, &self.wrapper, &config, &self.log_path("wt-on")).await?;
        let [mut o, mut t] =
            self.off_and_on(&sim, &reply, [(&off, "WT.off"), (&on, "WT.on")]).await;
        let (o, t) = (&mut o, &mut t);
        let (cpu_off, cpu_on) = (
            per_1k(o.usage.gateway_cpu_ms, o.tally.chunks),
            per_1k(t.usage.gateway_cpu_ms, t.tally.chunks),
        );
        let label = "WT C=64 openai (off → on)";
        let r = &mut self.report;
        r.row(
            label,
            "streams/s",
            num(o.per_s(o.tally.ok), 0),
            num(t.per_s(t.tally.ok), 0),
            pct(t.per_s(t.tally.ok), o.per_s(o.tally.ok)),
        );
        r.row(
            label,
            "Prism CPU ms / 1k chunks",
            num(cpu_off, 2),
            num(cpu_on, 2),
            pct(cpu_on, cpu_off),
        );
        r.row(
            label,
            "OTLP exports received",
            "-".into(),
            count(exports.load(Ordering::Relaxed)),
            String::new(),
        );
        r.row(label, "streams verified", o.verified(), t.verified(), String::new());
        r.workloads.insert(
            "WT".to_owned(),
            json!({
                "description": "W2's load through a gateway without and one with OpenTelemetry export",
                "off": o.json(),
                "on": t.json(),
                "otlp_exports": exports.load(Ordering::Relaxed),
            }),
        );
        off.stop().await;
        on.stop().await;
        sim.stop().await;
        Ok(())
    }

    /// W6: W2's load (C=64, 100 chunks, OpenAI upstream) through the Anthropic Messages and
    /// the OpenAI Responses ingresses, against Chat Completions on the same gateway in the same
    /// run: each ingress's Prism CPU per 1,000 chunks within 1.3x of Chat's. Chat runs before
    /// and after the ingresses and its mean is the baseline, so warm-up favours no side.
    pub(crate) async fn w6(&mut self) -> anyhow::Result<()> {
        eprintln!("prism-bench: W6 Messages and Responses ingresses (C=64, 100 chunks, openai)");
        let spec = SimSpec { deltas: 100, delay_us: 0, flush_each_event: false, threads: 2 };
        let reply = spec.reply();
        let sim = self.sim(spec).await?;
        let gw = self.gateway(&sim, "w6", false).await?;
        let meters = Meters { gateway: Some(gw.pid()), sim: sim.pid() };
        let chat_plan = prism_stream_plan(gw.addr, Upstream::OpenAi, &reply, &self.key);
        let mut chat_before = self.closed(&chat_plan, meters).await;
        let mut sides = Vec::new();
        for (protocol, name) in
            [(Protocol::Messages, "messages"), (Protocol::Responses, "responses")]
        {
            let plan = ingress_stream_plan(gw.addr, protocol, &reply, &self.key);
            let profile = self.start_profile(gw.pid(), &format!("W6.{name}")).await;
            let side = self.closed(&plan, meters).await;
            self.stop_profile(profile).await;
            sides.push((name, side));
        }
        let mut chat_after = self.closed(&chat_plan, meters).await;
        let chat_cpu = (per_1k(chat_before.usage.gateway_cpu_ms, chat_before.tally.chunks)
            + per_1k(chat_after.usage.gateway_cpu_ms, chat_after.tally.chunks))
            / 2.0;
        let chat_ok = chat_before.tally.failed() == 0 && chat_after.tally.failed() == 0;
        let chat_streams =
            (chat_before.per_s(chat_before.tally.ok) + chat_after.per_s(chat_after.tally.ok)) / 2.0;
        let chat_verified = format!("{} + {}", chat_before.verified(), chat_after.verified());
        let mut record = serde_json::Map::new();
        record.insert(
            "description".to_owned(),
            json!("W2's load through the Chat Completions (before and after), Messages and Responses ingresses of one gateway"),
        );
        for (name, mut side) in sides {
            let cpu = per_1k(side.usage.gateway_cpu_ms, side.tally.chunks);
            let label = format!("W6 C=64 openai (chat → {name})");
            let r = &mut self.report;
            let streams = side.per_s(side.tally.ok);
            r.row(
                &label,
                "streams/s",
                num(chat_streams, 0),
                num(streams, 0),
                pct(streams, chat_streams),
            );
            r.checked(
                &format!("W6.{name}.cpu"),
                &label,
                "Prism CPU ms / 1k chunks",
                num(chat_cpu, 2),
                num(cpu, 2),
                pct(cpu, chat_cpu),
                "≤ 1.3x chat",
                cpu <= 1.3 * chat_cpu && side.tally.failed() == 0 && chat_ok,
            );
            r.row(
                &label,
                "TTFT p50 / p99 (ms)",
                ttft_pair(&mut chat_before.tally),
                ttft_pair(&mut side.tally),
                String::new(),
            );
            r.row(
                &label,
                "streams verified",
                chat_verified.clone(),
                side.verified(),
                String::new(),
            );
            record.insert(name.to_owned(), side.json());
        }
        record.insert("chat_before".to_owned(), chat_before.json());
        record.insert("chat_after".to_owned(), chat_after.json());
        self.report.workloads.insert("W6".to_owned(), Value::Object(record));
        gw.stop().await;
        sim.stop().await;
        Ok(())
    }

    /// W7: W2's load through two gateways in one run, one without and one with guardrails (the
    /// PII and the secrets detectors, Enforce with `hold_back`, on input and output): their cost
    /// per 1,000 upstream chunks, at most 20% more.
    pub(crate) async fn w7(&mut self) -> anyhow::Result<()> {
        eprintln!("prism-bench: W7 guardrails off/on (C=64, 100 chunks, openai upstream)");
        let spec = SimSpec { deltas: 100, delay_us: 0, flush_each_event: false, threads: 2 };
        let reply = spec.reply();
        let sim = self.sim(spec).await?;
        let off = self.gateway(&sim, "w7-off", false).await?;
        let config = format!("{}{W7_GUARDRAILS}", gateway::config_toml(sim.addr, &self.key, false));
        let on =
            Gateway::start(&self.prism, &self.wrapper, &config, &self.log_path("w7-on")).await?;
        let [mut o, mut g] =
            self.off_and_on(&sim, &reply, [(&off, "W7.off"), (&on, "W7.on")]).await;
        let (o, g) = (&mut o, &mut g);
        // Per upstream chunk: `hold_back` may merge deltas into fewer client chunks.
        let upstream_chunks = |side: &Side| side.tally.ok * spec.deltas as u64;
        let (cpu_off, cpu_on) = (
            per_1k(o.usage.gateway_cpu_ms, upstream_chunks(o)),
            per_1k(g.usage.gateway_cpu_ms, upstream_chunks(g)),
        );
        let label = "W7 C=64 openai (guardrails off → on)";
        let r = &mut self.report;
        let (os, gs) = (o.per_s(o.tally.ok), g.per_s(g.tally.ok));
        r.row(label, "streams/s", num(os, 0), num(gs, 0), pct(gs, os));
        r.checked(
            "W7.cpu",
            label,
            "Prism CPU ms / 1k upstream chunks",
            num(cpu_off, 2),
            num(cpu_on, 2),
            pct(cpu_on, cpu_off),
            "≤ 1.2x off",
            cpu_on <= 1.2 * cpu_off && o.tally.failed() == 0 && g.tally.failed() == 0,
        );
        r.row(
            label,
            "TTFT p50 / p99 (ms)",
            ttft_pair(&mut o.tally),
            ttft_pair(&mut g.tally),
            String::new(),
        );
        r.row(label, "streams verified", o.verified(), g.verified(), String::new());
        r.workloads.insert(
            "W7".to_owned(),
            json!({
                "description": "W2's load through a gateway without and one with the PII and secrets guardrails (enforce, hold_back)",
                "off": o.json(),
                "on": g.json(),
            }),
        );
        off.stop().await;
        on.stop().await;
        sim.stop().await;
        Ok(())
    }

    /// With `--perf`: `perf record` on the gateway (DWARF call graphs, so the release binary
    /// needs no frame pointers) while the Prism side of a workload runs.
    async fn start_profile(
        &mut self,
        pid: u32,
        id: &str,
    ) -> Option<(tokio::process::Child, PathBuf)> {
        if !self.perf {
            return None;
        }
        let data = self.out.join(format!("perf-{id}.data"));
        let child = tokio::process::Command::new("perf")
            .args([
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                "499",
                "--call-graph",
                "dwarf,8192",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(child) => {
                // perf needs a moment to attach before the measured loop starts.
                tokio::time::sleep(Duration::from_millis(300)).await;
                Some((child, data))
            }
            Err(e) => {
                self.report.note(format!("--perf: could not start perf: {e}"));
                None
            }
        }
    }

    async fn stop_profile(&mut self, profile: Option<(tokio::process::Child, PathBuf)>) {
        let Some((mut child, data)) = profile else { return };
        if let Some(pid) =
            child.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        if tokio::time::timeout(Duration::from_secs(60), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
        self.report.note(format!(
            "profile written: {} (perf report -i {} --no-children --sort symbol)",
            data.display(),
            data.display()
        ));
    }

    /// W2's closed loop (OpenAI upstream) through each of two gateways in turn, profiled under
    /// `id` with `--perf`: the two sides of an off/on comparison (WT, W7).
    async fn off_and_on(
        &mut self,
        sim: &SimProcess,
        reply: &Reply,
        gateways: [(&Gateway, &str); 2],
    ) -> [Side; 2] {
        let mut run = async |gw: &Gateway, id: &str| {
            let plan = prism_stream_plan(gw.addr, Upstream::OpenAi, reply, &self.key);
            let profile = self.start_profile(gw.pid(), id).await;
            let side = self.closed(&plan, Meters { gateway: Some(gw.pid()), sim: sim.pid() }).await;
            self.stop_profile(profile).await;
            side
        };
        let [(off, off_id), (on, on_id)] = gateways;
        let off = run(off, off_id).await;
        let on = run(on, on_id).await;
        [off, on]
    }

    async fn closed(&self, plan: &Plan, meters: Meters) -> Side {
        let (tally, usage) =
            closed_loop(plan, 64, 2, self.durations.closed_loop, 1_000_000, meters).await;
        Side { tally, usage }
    }

    /// W5: non-streaming requests at C=64 (and, when the gateway has a cache, the same request
    /// repeated so it is served from the cache).
    async fn w5(
        &mut self,
        sim: &mut SimProcess,
        gw: &Gateway,
        reply: &Reply,
    ) -> anyhow::Result<()> {
        eprintln!("prism-bench: W5 non-streaming (C=64)");
        let text: Arc<str> = Arc::from(reply.text_content());
        let direct = Plan {
            addr: sim.addr,
            request: direct_request(sim.addr, Upstream::OpenAi, false).into(),
            check: CheckPlan::Body(BodyWant::Bytes(
                expected_body(Wire::OpenAi, reply, UPSTREAM_MODEL).into(),
            )),
        };
        let prism = Plan {
            addr: gw.addr,
            request: prism_request(gw.addr, Upstream::OpenAi, false, &self.key).into(),
            check: CheckPlan::Body(BodyWant::Completion(Arc::clone(&text))),
        };
        let meters = Meters { gateway: Some(gw.pid()), sim: sim.pid() };
        let mut d = self.closed(&direct, meters).await;
        let profile = self.start_profile(gw.pid(), "W5").await;
        let mut p = self.closed(&prism, meters).await;
        self.stop_profile(profile).await;
        let (dr, pr) = (d.per_s(d.tally.ok), p.per_s(p.tally.ok));
        let (dl, pl) = (summarize(&mut d.tally.latencies), summarize(&mut p.tally.latencies));
        let w = "W5 C=64 non-streaming";
        let r = &mut self.report;
        r.checked(
            "W5.throughput",
            w,
            "requests/s",
            num(dr, 0),
            num(pr, 0),
            pct(pr, dr),
            "≥ 30%",
            pr >= 0.3 * dr && p.tally.failed() == 0,
        );
        r.row(w, "latency p50 / p99 (ms)", lat_pair(&dl), lat_pair(&pl), String::new());
        r.row(
            w,
            "Prism CPU ms / request",
            "-".into(),
            num(p.usage.gateway_cpu_ms / p.tally.ok.max(1) as f64, 3),
            String::new(),
        );
        r.row(
            w,
            "others' CPU on the machine (cores)",
            num(d.usage.others_cores(), 2),
            num(p.usage.others_cores(), 2),
            String::new(),
        );
        r.row(w, "requests verified", d.verified(), p.verified(), String::new());
        let mut record = json!({
            "description": "C=64 closed loop, non-streaming, 100-delta answer, OpenAI upstream",
            "direct": d.json(),
            "prism": p.json(),
        });

        // The cache, when this gateway build has one: the same request over and over.
        let cached_config = gateway::config_toml(sim.addr, &self.key, true);
        let scratch = self.out.join("prism-cache-check.toml");
        if gateway::accepts(&self.prism, &cached_config, &scratch).await {
            let cgw = Gateway::start(
                &self.prism,
                &self.wrapper,
                &cached_config,
                &self.log_path("w5-cache"),
            )
            .await?;
            let cached = Plan {
                addr: cgw.addr,
                request: prism_request(cgw.addr, Upstream::OpenAi, false, &self.key).into(),
                check: CheckPlan::Body(BodyWant::Completion(text)),
            };
            let before = sim.requests().await?;
            let mut c =
                self.closed(&cached, Meters { gateway: Some(cgw.pid()), sim: sim.pid() }).await;
            let upstream_calls = sim.requests().await?.saturating_sub(before);
            cgw.stop().await;
            let cr = c.per_s(c.tally.ok);
            let cl = summarize(&mut c.tally.latencies);
            let r = &mut self.report;
            let w = "W5 C=64 cache hits";
            r.row(w, "requests/s", num(dr, 0), num(cr, 0), pct(cr, dr));
            r.row(w, "latency p50 / p99 (ms)", lat_pair(&dl), lat_pair(&cl), String::new());
            r.row(
                w,
                "hits (x-prism-cache) / requests",
                String::new(),
                format!("{} / {}", count(c.tally.cache_hits), count(c.tally.ok)),
                pct(c.tally.cache_hits as f64, c.tally.ok as f64),
            );
            r.row(w, "requests verified", String::new(), c.verified(), String::new());
            if let Some(obj) = record.as_object_mut() {
                let mut cj = c.json();
                if let Some(cobj) = cj.as_object_mut() {
                    cobj.insert("upstream_requests_incl_warmup".to_owned(), json!(upstream_calls));
                }
                obj.insert("cache".to_owned(), cj);
            }
        } else {
            self.report.note(
                "W5 cache hits skipped: this prism build does not accept a [cache] section yet (check-config rejects it)",
            );
        }
        self.report.workloads.insert("W5".to_owned(), record);
        Ok(())
    }

    /// W4 at `requested` streams (fewer when the open-file limit cannot hold them through the
    /// gateway, which needs two sockets per stream).
    pub(crate) async fn w4(&mut self, requested: usize) -> anyhow::Result<()> {
        let cap =
            usize::try_from(self.fd_limit.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX);
        let n = requested.min(cap);
        if n < requested {
            self.report.note(format!(
                "W4 ran {n} streams instead of {requested}: the open-file hard limit is {} and cannot be raised here \
                 (no CAP_SYS_RESOURCE); Prism needs one client and one upstream socket per stream",
                self.fd_limit
            ));
        }
        let (window, ramp_limit) = (self.durations.w4_window, self.durations.w4_ramp_limit);
        eprintln!("prism-bench: W4 {n} concurrent streams, 20 ms apart, {} s", window.as_secs());
        // Longer than the ramp and the window together (the pace is never faster than 20 ms),
        // so every stream is still open when its client leaves.
        let deltas = ((ramp_limit + window).as_millis() / 20) as usize + 50;
        let d = self.held(n, deltas, false).await?;
        let p = self.held(n, deltas, true).await?;
        let label = format!("W4 {} streams", count(n as u64));
        let ideal = n as f64 * window.as_secs_f64() * 50.0;
        let r = &mut self.report;
        let ratio = p.window_chunks as f64 / d.window_chunks as f64;
        let (dc, pc) = (count(d.window_chunks), count(p.window_chunks));
        let share = pct(p.window_chunks as f64, d.window_chunks as f64);
        if requested <= 1000 {
            let ok = ratio >= 0.95 && p.failed == 0;
            r.checked(
                "W4.1k.delivered",
                &label,
                "chunks delivered in the window",
                dc,
                pc,
                share,
                "≥ 95%",
                ok,
            );
        } else {
            r.row(&label, "chunks delivered in the window", dc, pc, share);
        }
        let of_ideal = |s: &HeldSide| pct(s.window_chunks as f64, ideal);
        r.row(
            &label,
            "share of the ideal (50 chunks/s/stream)",
            of_ideal(&d),
            of_ideal(&p),
            String::new(),
        );
        r.row(&label, "TTFT p50 / p99 (ms)", lat_pair(&d.ttft), lat_pair(&p.ttft), String::new());
        let ramp = |s: &HeldSide| format!("{} s", num(s.ramp_s, 1));
        r.row(&label, "time to open all streams", ramp(&d), ramp(&p), String::new());
        r.row(
            &label,
            "streams held to the end / failed",
            held_text(&d),
            held_text(&p),
            String::new(),
        );
        let open = |s: &HeldSide| count(s.open_during as u64);
        r.row(&label, "upstream connections open near the end", open(&d), open(&p), String::new());
        let gw = p.gateway.unwrap_or_default();
        let cores = num(p.usage.gateway_cpu_ms / p.usage.wall_ms, 2);
        r.row(&label, "Prism CPU in the window (cores busy)", "-".into(), cores, String::new());
        let rss = format!("{} → {}", mib(gw.rss_before_kib), mib(gw.hwm_kib));
        r.row(&label, "Prism RSS before → peak (MiB)", "-".into(), rss, String::new());
        let per_stream = gw.hwm_kib.saturating_sub(gw.rss_before_kib) as f64 / n as f64;
        if requested > 1000 {
            let held_all = p.held == n as u64 && p.failed == 0;
            let text = format!(
                "{} ({})",
                num(per_stream, 1),
                if held_all { "all held" } else { "NOT all held" }
            );
            let ok = per_stream <= 32.0 && held_all;
            r.checked(
                "W4.10k.rss",
                &label,
                "Prism RSS per stream (KiB)",
                "-".into(),
                text,
                String::new(),
                "≤ 32 KiB, all held",
                ok,
            );
        } else {
            r.row(
                &label,
                "Prism RSS per stream (KiB)",
                "-".into(),
                num(per_stream, 1),
                String::new(),
            );
        }
        let (da, pa) = (count(d.open_after as u64), count(p.open_after as u64));
        let id = format!("W4.{requested}.leftover");
        r.checked(
            &id,
            &label,
            "upstream connections open 2 s after clients left",
            da,
            pa,
            String::new(),
            "0",
            p.open_after == 0,
        );
        let others = |s: &HeldSide| num(s.usage.others_cores(), 2);
        r.row(&label, "others' CPU on the machine (cores)", others(&d), others(&p), String::new());
        r.workloads.insert(
            format!("W4.{requested}"),
            json!({
                "description": format!(
                    "{n} concurrent streams (requested {requested}), 20 ms between chunks; streams open {RAMP_PERMITS} at a \
                     time, then chunks are counted for a {} s window; clients leave at its end",
                    window.as_secs()
                ),
                "streams": n,
                "requested_streams": requested,
                "deltas_per_stream": deltas,
                "ideal_window_chunks": ideal,
                "direct": d.json(),
                "prism": p.json(),
                "prism_rss_per_stream_kib": per_stream,
            }),
        );
        Ok(())
    }

    /// One side of W4: a fresh simulator (and gateway), `n` streams opened a few dozen at a
    /// time; once all are open (or the ramp limit passed) the window starts; at its end the
    /// clients leave, and 2 s later the simulator counts what is still open.
    async fn held(
        &mut self,
        n: usize,
        deltas: usize,
        through_prism: bool,
    ) -> anyhow::Result<HeldSide> {
        let spec = SimSpec { deltas, delay_us: 20_000, flush_each_event: false, threads: 2 };
        let reply = spec.reply();
        let mut sim = self.sim(spec).await?;
        let mut gw = if through_prism {
            Some(self.gateway(&sim, &format!("w4-{n}"), false).await?)
        } else {
            None
        };
        let plan = match &gw {
            Some(gw) => prism_stream_plan(gw.addr, Upstream::OpenAi, &reply, &self.key),
            None => direct_stream_plan(sim.addr, Upstream::OpenAi, &reply)?,
        };
        let plan = Arc::new(plan);
        let rss_before_kib = gw.as_ref().map(|g| g.memory().rss_kib).unwrap_or(0);
        let meters = Meters { gateway: gw.as_ref().map(Gateway::pid), sim: sim.pid() };
        let (window, ramp_limit) = (self.durations.w4_window, self.durations.w4_ramp_limit);
        let ramp = Arc::new(Semaphore::new(RAMP_PERMITS));
        let progress = Arc::new(Progress::default());
        let (stop, stopped) = watch::channel(false);
        let ramp_start = Instant::now();
        let hard_deadline = ramp_start + ramp_limit + window + Duration::from_secs(10);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let task = load::held_stream(
                Arc::clone(&plan),
                Arc::clone(&ramp),
                Arc::clone(&progress),
                stopped.clone(),
                hard_deadline,
            );
            tasks.push(tokio::spawn(task));
        }
        let mut max_fds = 0;
        let ramp_end = ramp_start + ramp_limit;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let done =
                progress.opened.load(Ordering::Relaxed) + progress.failed.load(Ordering::Relaxed);
            if done >= n || Instant::now() >= ramp_end {
                break;
            }
        }
        let ramp_s = ramp_start.elapsed().as_secs_f64();
        let opened = progress.opened.load(Ordering::Relaxed);
        let failed_in_ramp = progress.failed.load(Ordering::Relaxed);
        if opened + failed_in_ramp < n {
            self.report.note(format!(
                "W4 {n} {}: the window started at the {} s ramp limit with {opened} streams open and \
                 {failed_in_ramp} failed",
                if through_prism { "through Prism" } else { "direct" },
                ramp_limit.as_secs()
            ));
        }
        // The window: all streams open, chunks counted.
        let before = meters.snapshot();
        let chunks_before = progress.chunks.load(Ordering::Relaxed);
        let end = Instant::now() + window;
        let probe_at = end - window.min(Duration::from_millis(1500));
        let mut open_during = None;
        while Instant::now() < end {
            tokio::time::sleep_until(end.min(Instant::now() + Duration::from_millis(250))).await;
            if let Some(gw) = &gw {
                max_fds = max_fds.max(gw.open_fds());
            }
            if open_during.is_none() && Instant::now() >= probe_at {
                open_during = Some(sim.open_connections().await?);
            }
        }
        let window_chunks = progress.chunks.load(Ordering::Relaxed) - chunks_before;
        let after = meters.snapshot();
        let _ = stop.send(true);
        let mut side = HeldSide {
            window_chunks,
            ramp_s,
            open_during: open_during.unwrap_or(0),
            ..HeldSide::default()
        };
        let mut ttfts = Vec::with_capacity(n);
        for task in tasks {
            let held = task.await.context("a stream task panicked")?;
            side.chunks += held.chunks;
            ttfts.extend(held.ttft);
            match held.failure {
                Some(f) => {
                    side.failed += 1;
                    *side.failures.entry(f.label()).or_default() += 1;
                }
                None if held.held => side.held += 1,
                None => side.not_started += 1,
            }
        }
        side.usage = Usage::between(&before, &after);
        side.ttft = summarize(&mut ttfts);
        // The clients have all left: what the gateway still holds upstream is a leak.
        tokio::time::sleep(Duration::from_secs(2)).await;
        side.open_after = sim.open_connections().await?;
        if let Some(g) = gw.as_mut() {
            if !g.alive() {
                self.report
                    .note(format!("W4 {n}: prism exited during the run; see {}", g.log.display()));
            }
            let mem = g.memory();
            side.gateway = Some(GatewayMem {
                rss_before_kib,
                hwm_kib: mem.hwm_kib,
                rss_after_kib: mem.rss_kib,
                max_fds,
            });
        }
        if let Some(g) = gw {
            g.stop().await;
        }
        sim.stop().await;
        Ok(side)
    }
}

async fn load_one(conn: &mut Option<http::Conn>, plan: &Plan, tally: &mut Tally) {
    load::worker_request(conn, plan, tally).await;
}

fn verified(t: &Tally) -> String {
    if t.failed() == 0 {
        format!("{}/{}", t.ok, t.ok)
    } else {
        let reasons: Vec<String> = t.failures.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!("{}/{} ({})", t.ok, t.ok + t.failed(), reasons.join(", "))
    }
}

fn ttft_pair(t: &mut Tally) -> String {
    let s = summarize(&mut t.ttfts);
    lat_pair(&s)
}

fn lat_pair(s: &Summary) -> String {
    format!("{} / {}", num(s.p50_ms, 2), num(s.p99_ms, 2))
}

fn signed_ms(ms: f64) -> String {
    if ms.is_finite() { format!("{ms:+.3} ms") } else { "-".to_owned() }
}

fn mib(kib: u64) -> String {
    num(kib as f64 / 1024.0, 1)
}

fn held_text(side: &HeldSide) -> String {
    let mut out = format!("{} / {}", count(side.held), count(side.failed));
    if !side.failures.is_empty() {
        let reasons: Vec<String> = side.failures.iter().map(|(k, v)| format!("{v} {k}")).collect();
        out.push_str(&format!(" ({})", reasons.join(", ")));
    }
    if side.not_started > 0 {
        out.push_str(&format!(", {} never got a chunk", count(side.not_started)));
    }
    out
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct GatewayMem {
    rss_before_kib: u64,
    hwm_kib: u64,
    rss_after_kib: u64,
    max_fds: usize,
}

/// One side of W4.
#[derive(Debug, Default)]
struct HeldSide {
    /// Content chunks received during the window.
    window_chunks: u64,
    /// Seconds until every stream had its first chunk (or the ramp limit).
    ramp_s: f64,
    held: u64,
    failed: u64,
    not_started: u64,
    failures: std::collections::BTreeMap<String, u64>,
    chunks: u64,
    ttft: Summary,
    usage: Usage,
    open_during: usize,
    open_after: usize,
    gateway: Option<GatewayMem>,
}

impl HeldSide {
    fn json(&self) -> Value {
        json!({
            "window_chunks": self.window_chunks,
            "ramp_s": self.ramp_s,
            "held": self.held,
            "failed": self.failed,
            "never_got_a_chunk": self.not_started,
            "failures": self.failures,
            "chunks_incl_ramp": self.chunks,
            "ttft": self.ttft,
            "usage_in_window": self.usage,
            "upstream_open_near_end": self.open_during,
            "upstream_open_2s_after_clients_left": self.open_after,
            "gateway_memory": self.gateway,
        })
    }
}

/// An OTLP/HTTP collector that accepts and drops every export (HTTP/1.1, keep-alive): where the
/// telemetry-on gateway of WT sends its spans and metrics. Returns its address and the number
/// of exports received.
async fn otlp_sink() -> anyhow::Result<(SocketAddr, Arc<std::sync::atomic::AtomicU64>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the OTLP sink")?;
    let addr = listener.local_addr()?;
    let exports = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = Arc::clone(&exports);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(64 * 1024);
                loop {
                    // Headers, then `content-length` bytes of body.
                    let head_end = loop {
                        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 16 * 1024];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 16 * 1024];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + length);
                    count.fetch_add(1, Ordering::Relaxed);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, exports))
}

#[cfg(test)]
mod tests {
    //! The load generator against the real simulator and the real gateway, in-process.

    use std::sync::atomic::Ordering;

    use prism_simulator::{SimConfig, Simulator};

    use super::*;
    use crate::load::{Failure, one};
    use crate::verify::Wrong;

    const KEY: &str = "sk-prism-bench-test-key";

    async fn sim(reply: Reply) -> Simulator {
        Simulator::start_with(SimConfig::default().with_default(reply).with_history(0))
            .await
            .unwrap()
    }

    async fn gateway(sim: &Simulator) -> prism_server::ServerHandle {
        let text = gateway::config_toml(sim.addr(), KEY, false);
        let config = prism_server::Config::from_toml(&text, &|_| None).unwrap();
        prism_server::Server::bind(config).await.unwrap().spawn()
    }

    async fn run(plan: &Plan) -> load::Outcome {
        let mut conn = http::Conn::connect(plan.addr, load::READ_BUF).await.unwrap();
        let first = one(&mut conn, plan, Instant::now() + Duration::from_secs(10)).await;
        assert!(conn.reusable() || first.failure.is_some(), "keep-alive after a complete answer");
        first
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_streams_verify_for_every_provider_and_reuse_the_connection() {
        let reply = Reply::with_n_deltas(30);
        let sim = sim(reply.clone()).await;
        for upstream in Upstream::ALL {
            let plan = direct_stream_plan(sim.addr(), upstream, &reply).unwrap();
            let mut conn = http::Conn::connect(plan.addr, load::READ_BUF).await.unwrap();
            for _ in 0..3 {
                let o = one(&mut conn, &plan, Instant::now() + Duration::from_secs(10)).await;
                assert_eq!(o.failure, None, "{upstream:?}");
                assert_eq!(o.seen.chunks, 30, "{upstream:?}");
                assert!(o.ttft.is_some_and(|t| t <= o.latency));
                assert!(conn.reusable());
            }
        }
        assert_eq!(sim.requests(), 12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_through_the_gateway_verify_for_every_provider() {
        let reply = Reply::with_n_deltas(25);
        let sim = sim(reply.clone()).await;
        let gw = gateway(&sim).await;
        for upstream in Upstream::ALL {
            let o = run(&prism_stream_plan(gw.addr(), upstream, &reply, KEY)).await;
            assert_eq!(o.failure, None, "{upstream:?}");
            assert_eq!(o.seen.chunks, 25, "{upstream:?}");
        }
        // A different upstream text is caught, however fast it arrives.
        let other = Reply::with_n_deltas(26);
        let o = run(&prism_stream_plan(gw.addr(), Upstream::Anthropic, &other, KEY)).await;
        assert_eq!(o.failure, Some(Failure::Wrong(Wrong::Truncated)));
        let mut wrong_key =
            prism_stream_plan(gw.addr(), Upstream::OpenAi, &reply, "sk-not-the-bench-key");
        wrong_key.request =
            prism_request(gw.addr(), Upstream::OpenAi, true, "sk-not-the-bench-key").into();
        assert_eq!(run(&wrong_key).await.failure, Some(Failure::Wrong(Wrong::Status(401))));
        gw.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_and_responses_streams_verify_through_the_gateway() {
        let reply = Reply::with_n_deltas(25);
        let sim = sim(reply.clone()).await;
        let gw = gateway(&sim).await;
        for protocol in [Protocol::Messages, Protocol::Responses] {
            let o = run(&ingress_stream_plan(gw.addr(), protocol, &reply, KEY)).await;
            assert_eq!(o.failure, None, "{protocol:?}");
            assert_eq!(o.seen.chunks, 25, "{protocol:?}");
            assert!(o.ttft.is_some_and(|t| t <= o.latency), "{protocol:?}");
            // Expecting one delta more than the upstream sends: the stream is short.
            let other = Reply::with_n_deltas(26);
            let o = run(&ingress_stream_plan(gw.addr(), protocol, &other, KEY)).await;
            assert_eq!(o.failure, Some(Failure::Wrong(Wrong::Truncated)), "{protocol:?}");
            let o = run(&ingress_stream_plan(gw.addr(), protocol, &reply, "sk-wrong")).await;
            assert_eq!(o.failure, Some(Failure::Wrong(Wrong::Status(401))), "{protocol:?}");
        }
        gw.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn w7s_guardrails_load_and_pass_the_benchmark_text_unchanged() {
        let reply = Reply::with_n_deltas(40);
        let sim = sim(reply.clone()).await;
        let text = format!("{}{W7_GUARDRAILS}", gateway::config_toml(sim.addr(), KEY, false));
        let config = prism_server::Config::from_toml(&text, &|_| None).unwrap();
        let gw = prism_server::Server::bind(config).await.unwrap().spawn();
        let o = run(&prism_stream_plan(gw.addr(), Upstream::OpenAi, &reply, KEY)).await;
        assert_eq!(o.failure, None);
        assert!(o.seen.chunks >= 1, "held-back text still arrives");
        // The rules are live: a prompt carrying a secret is refused before the upstream.
        let mut secret = prism_stream_plan(gw.addr(), Upstream::OpenAi, &reply, KEY);
        let body = json!({"model": Upstream::OpenAi.public_model(), "stream": true,
                          "messages": [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]});
        secret.request = http::post(
            gw.addr(),
            "/v1/chat/completions",
            Some(("authorization", &format!("Bearer {KEY}"))),
            &body.to_string(),
        )
        .into();
        assert_eq!(run(&secret).await.failure, Some(Failure::Wrong(Wrong::Status(403))));
        gw.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn non_streaming_answers_verify_both_ways() {
        let reply = Reply::with_n_deltas(10);
        let sim = sim(reply.clone()).await;
        let gw = gateway(&sim).await;
        let direct = Plan {
            addr: sim.addr(),
            request: direct_request(sim.addr(), Upstream::OpenAi, false).into(),
            check: CheckPlan::Body(BodyWant::Bytes(
                expected_body(Wire::OpenAi, &reply, UPSTREAM_MODEL).into(),
            )),
        };
        assert_eq!(run(&direct).await.failure, None);
        let text: Arc<str> = Arc::from(reply.text_content());
        let prism = Plan {
            addr: gw.addr(),
            request: prism_request(gw.addr(), Upstream::OpenAi, false, KEY).into(),
            check: CheckPlan::Body(BodyWant::Completion(text)),
        };
        assert_eq!(run(&prism).await.failure, None);
        gw.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_closed_loop_is_bounded_by_count_and_time() {
        let reply = Reply::with_n_deltas(5);
        let sim = sim(reply.clone()).await;
        let plan = direct_stream_plan(sim.addr(), Upstream::OpenAi, &reply).unwrap();
        let meters = Meters { gateway: None, sim: std::process::id() };
        let started = Instant::now();
        let (tally, usage) = closed_loop(&plan, 4, 1, Duration::from_secs(5), 40, meters).await;
        assert!(started.elapsed() < Duration::from_secs(5), "the count bound stops it first");
        assert_eq!(tally.failed(), 0);
        assert_eq!(tally.ok, 40, "exactly the bounded number of measured requests");
        assert_eq!(tally.chunks, 200);
        assert_eq!(sim.requests(), 44, "plus one warm-up request per worker");
        assert!(usage.wall_ms > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn held_streams_count_chunks_and_leave_nothing_open_upstream() {
        let reply = Reply::with_n_deltas(500).delay(Duration::from_millis(5));
        let sim = sim(reply.clone()).await;
        let gw = gateway(&sim).await;
        let plan = Arc::new(prism_stream_plan(gw.addr(), Upstream::OpenAi, &reply, KEY));
        let ramp = Arc::new(Semaphore::new(4));
        let progress = Arc::new(Progress::default());
        let (stop, stopped) = watch::channel(false);
        let deadline = Instant::now() + Duration::from_secs(20);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let task = load::held_stream(
                    Arc::clone(&plan),
                    Arc::clone(&ramp),
                    Arc::clone(&progress),
                    stopped.clone(),
                    deadline,
                );
                tokio::spawn(task)
            })
            .collect();
        while progress.opened.load(Ordering::Relaxed) < 10 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(sim.open_connections(), 10);
        let _ = stop.send(true);
        let mut chunks = 0;
        for task in tasks {
            let held = task.await.unwrap();
            assert!(held.held, "{held:?}");
            assert_eq!(held.failure, None);
            assert!(held.ttft.is_some());
            chunks += held.chunks;
        }
        assert!(chunks >= 10 * 10, "about 40 chunks per stream arrived, got {chunks} in all");
        assert_eq!(progress.chunks.load(Ordering::Relaxed), chunks);
        assert!(
            sim.wait_open_connections_at_most(0, Duration::from_secs(2)).await,
            "the gateway dropped every upstream stream once its client left"
        );
        gw.shutdown().await.unwrap();
    }
}

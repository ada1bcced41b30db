//! `prism-bench soak`: the `prism` binary under a long, mixed, checked load in front of a set of
//! simulated upstreams (one per scripted behaviour, in a child process). Every stream is checked
//! delta by delta; the gateway's RSS, open descriptors and the upstream connections are sampled
//! every second; the run fails on lost or duplicated chunks, unexpected errors, memory growth
//! after warm-up, and descriptor or connection leaks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use memchr::memmem;
use prism_simulator::{
    Behavior, Fault, RenderOptions, Reply, SimConfig, Simulator, Wire, render_stream,
};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::gateway::Gateway;
use crate::http::{self, Conn, Head, Sink};
use crate::procfs;
use crate::report;
use crate::soak_check::{Protocol, StreamCheck, StreamSeen};
use crate::verify::{Body, BodyWant, Check as _};

/// Longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Events the faulting upstreams send before their fault.
const FAULT_AFTER_EVENTS: usize = 6;
/// Deltas of the slow reply that leaving clients read from.
const SLOW_DELTAS: usize = 400;
/// The gateway's idle timeout in the soak: a stalled upstream ends its stream after this.
const IDLE_MS: u64 = 1500;
/// The TTFT deadline of the hanging deployment, after which the gateway falls back.
const HANG_TTFT_MS: u64 = 1000;
/// The upstream pool's idle bound per host in prism-server (`pool_max_idle_per_host`).
const POOL_MAX_IDLE_PER_HOST: usize = 512;
/// The upstream pool's idle timeout in prism-server (`pool_idle_timeout`); its reaper runs on
/// the same period, so an idle connection may live up to twice this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Descriptors the gateway may hold at the end beyond those at the start and its pooled
/// upstream connections (log files, timers, a metrics scrape).
const FD_SLACK: usize = 16;

/// `prism-bench soak` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SoakArgs {
    /// The `prism` binary to soak (a debug build works at a lower concurrency).
    #[arg(long, default_value = "target/release/prism")]
    prism: PathBuf,
    /// Where the JSON report and the gateway log go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// How long the load runs, in minutes (fractions allowed).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// How long the load runs, in seconds (overrides `--minutes`).
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrent client streams.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Largest RSS growth after warm-up, in percent of the warm-up RSS.
    #[arg(long, default_value_t = 5.0)]
    max_rss_growth_pct: f64,
    /// Deltas per upstream reply.
    #[arg(long, default_value_t = 40)]
    deltas: usize,
    /// Pause between upstream events, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// The gateway's `RUST_LOG` (its per-request `info` lines would fill the disk in a long run).
    #[arg(long, default_value = "warn")]
    gateway_log: String,
    /// After the load: also wait (up to 200 s) for the gateway's idle pooled upstream
    /// connections to time out, and then require that no upstream connection is left open.
    #[arg(long)]
    wait_pool_idle: bool,
}

/// `prism-bench soak-sim` arguments: the simulators' reply.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct SoakSimArgs {
    #[arg(long)]
    deltas: usize,
    #[arg(long)]
    delay_ms: u64,
}

/// The simulated upstreams, one per behaviour, in this order.
const SIMS: [&str; 7] = ["ok", "slow", "status503", "cut", "midstream", "stall", "hang"];
/// Simulators whose connections must all be closed once the clients left: the gateway abandons
/// these streams (stalled, hung, or their client left), so a connection is never pooled.
const MUST_CLOSE: [&str; 3] = ["slow", "stall", "hang"];

fn reply(deltas: usize, delay_ms: u64) -> Reply {
    Reply::with_n_deltas(deltas).delay(Duration::from_millis(delay_ms))
}

fn behavior(name: &str, args: SoakSimArgs) -> Behavior {
    let ok = reply(args.deltas, args.delay_ms);
    let events = FAULT_AFTER_EVENTS;
    match name {
        "slow" => reply(SLOW_DELTAS, args.delay_ms).into(),
        "status503" => Behavior::status(503),
        // Written byte for byte by the raw server, so the events before the cut reach the wire
        // whatever the load (a hyper body that fails drops what it had not flushed yet).
        "cut" => Behavior::fault(ok, Fault::CutInEvent { events, bytes: 9 }),
        "midstream" => Behavior::ErrorMidstream { reply: ok, events },
        "stall" => Behavior::Stall { reply: ok, events },
        "hang" => Behavior::Hang,
        _ => ok.into(),
    }
}

/// `prism-bench soak-sim`: one simulator per behaviour of [`SIMS`] in this process. Prints
/// `READY <addr> …` (in [`SIMS`] order), then answers `open` with `OPEN <n> …`.
pub(crate) fn serve_sims(args: SoakSimArgs) -> anyhow::Result<()> {
    procfs::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the simulator runtime")?;
    runtime.block_on(async move {
        let mut sims = Vec::new();
        for name in SIMS {
            let config = SimConfig::default()
                .with_default(behavior(name, args))
                .with_history(0)
                .with_raw_http(name == "cut");
            sims.push(Simulator::start_with(config).await.context("starting a simulator")?);
        }
        let addrs: Vec<String> = sims.iter().map(|s| s.addr().to_string()).collect();
        let mut out = tokio::io::stdout();
        out.write_all(format!("READY {}\n", addrs.join(" ")).as_bytes()).await?;
        out.flush().await?;
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            let answer = match line.trim() {
                "open" => {
                    let open: Vec<String> =
                        sims.iter().map(|s| s.open_connections().to_string()).collect();
                    format!("OPEN {}\n", open.join(" "))
                }
                other => format!("ERR unknown command {other:?}\n"),
            };
            out.write_all(answer.as_bytes()).await?;
            out.flush().await?;
        }
        for sim in sims {
            sim.shutdown().await;
        }
        Ok(())
    })
}

/// The simulators' child process.
#[derive(Debug)]
struct Sims {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    addrs: Vec<SocketAddr>,
}

impl Sims {
    async fn spawn(exe: &Path, args: SoakSimArgs) -> anyhow::Result<Sims> {
        let mut child = Command::new(exe)
            .arg("soak-sim")
            .arg("--deltas")
            .arg(args.deltas.to_string())
            .arg("--delay-ms")
            .arg(args.delay_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the simulators")?;
        let stdin = child.stdin.take().context("simulator stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("simulator stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .context("the simulators did not start within 20 s")??
            .context("the simulators exited before listening")?;
        let addrs = line
            .strip_prefix("READY ")
            .map(|rest| rest.split_whitespace().map(str::parse).collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("unexpected simulator line {line:?}"))??;
        anyhow::ensure!(addrs.len() == SIMS.len(), "unexpected simulator line {line:?}");
        Ok(Sims { child, stdin, stdout, addrs })
    }

    fn addr(&self, name: &str) -> SocketAddr {
        let index = SIMS.iter().position(|s| *s == name).unwrap_or(0);
        self.addrs[index]
    }

    /// Open connections of each simulator, in [`SIMS`] order.
    async fn open(&mut self) -> anyhow::Result<Vec<usize>> {
        self.stdin.write_all(b"open\n").await?;
        self.stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
            .await
            .context("the simulators did not answer within 10 s")??
            .context("the simulators exited")?;
        let Some(rest) = line.strip_prefix("OPEN ") else {
            bail!("unexpected simulator answer {line:?}")
        };
        Ok(rest.split_whitespace().filter_map(|n| n.parse().ok()).collect())
    }

    async fn stop(self) {
        let Sims { mut child, stdin, .. } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// The gateway configuration: every provider kind (OpenAI Chat and Responses, Anthropic,
/// Gemini, Vertex, Bedrock Converse and InvokeModel) on the healthy simulator, and one
/// deployment per fault on the faulting ones.
fn config_toml(sims: &Sims, key: &str) -> String {
    let url = |name: &str| format!("http://{}", sims.addr(name));
    let mut out = format!(
        "# Generated by prism-bench soak.\nlisten = \"127.0.0.1:0\"\n\n[[keys]]\nname = \"soak\"\nkey = \"{key}\"\nmodels = [\"*\"]\n"
    );
    let providers: [(&str, &str, &str, &str); 12] = [
        ("openai", "openai", "ok", ""),
        ("openai-resp", "openai", "ok", "responses_api = true\n"),
        ("anthropic", "anthropic", "ok", ""),
        ("gemini", "gemini", "ok", ""),
        ("vertex", "vertex", "ok", ""),
        ("bedrock", "bedrock", "ok", ""),
        ("anthropic-slow", "anthropic", "slow", ""),
        ("openai-503", "openai", "status503", ""),
        ("anthropic-cut", "anthropic", "cut", ""),
        ("gemini-midstream", "gemini", "midstream", ""),
        ("openai-stall", "openai", "stall", ""),
        ("openai-hang", "openai", "hang", ""),
    ];
    for (name, kind, sim, extra) in providers {
        let credentials = match kind {
            "vertex" => {
                "access_token = \"sim-token\"\nproject = \"soak\"\nregion = \"us-central1\"\n"
            }
            "bedrock" => {
                "region = \"us-east-1\"\naccess_key_id = \"AKIDPRISMSOAK\"\nsecret_access_key = \"prism-soak-not-a-secret\"\n"
            }
            _ => "api_key = \"sk-sim\"\n",
        };
        out.push_str(&format!(
            "\n[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{}\"\n{credentials}{extra}",
            url(sim)
        ));
    }
    let models: [(&str, &str); 12] = [
        ("soak-openai", r#"{ provider = "openai", model = "m" }"#),
        ("soak-openai-resp", r#"{ provider = "openai-resp", model = "m" }"#),
        ("soak-anthropic", r#"{ provider = "anthropic", model = "m" }"#),
        ("soak-gemini", r#"{ provider = "gemini", model = "m" }"#),
        ("soak-vertex", r#"{ provider = "vertex", model = "m" }"#),
        ("soak-bedrock", r#"{ provider = "bedrock", model = "m" }"#),
        (
            "soak-bedrock-invoke",
            r#"{ provider = "bedrock", model = "anthropic.claude-m", bedrock_invoke = true }"#,
        ),
        ("soak-slow", r#"{ provider = "anthropic-slow", model = "m" }"#),
        (
            "soak-fallback",
            r#"{ provider = "openai-503", model = "m" }, { provider = "anthropic", model = "m" }"#,
        ),
        ("soak-cut", r#"{ provider = "anthropic-cut", model = "m" }"#),
        ("soak-midstream", r#"{ provider = "gemini-midstream", model = "m" }"#),
        ("soak-stall", r#"{ provider = "openai-stall", model = "m" }"#),
    ];
    for (name, deployments) in models {
        out.push_str(&format!("\n[[models]]\nname = \"{name}\"\ndeployments = [{deployments}]\n"));
    }
    out.push_str(&format!(
        "\n[[models]]\nname = \"soak-hang\"\ndeployments = [{{ provider = \"openai-hang\", model = \"m\", ttft_deadline_ms = {HANG_TTFT_MS} }}, {{ provider = \"gemini\", model = \"m\" }}]\n"
    ));
    out.push_str(&format!(
        "\n[timeouts]\nidle_ms = {IDLE_MS}\nkeepalive_ms = 500\nshutdown_grace_ms = 1000\n\n[limits]\nmax_concurrent_requests = 20000\n\n[retries]\nmax_attempts = 2\nbackoff_base_ms = 10\nbackoff_max_ms = 50\n"
    ));
    out
}

/// What a scenario's client must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The whole reply, then the protocol's terminal event.
    Complete,
    /// Exactly the first `prefix` deltas, then one error event whose kind starts with `kind`,
    /// and no terminal.
    Fault { prefix: u64, kind: &'static str },
    /// The client leaves after `after` content events (plus the request's sequence number mod
    /// 8); what arrived must be a clean prefix.
    Leave { after: u64 },
}

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    protocol: Protocol,
    model: &'static str,
    stream: bool,
    /// Share of all requests, in percent.
    weight: u32,
    expect: Expect,
}

const fn s(
    name: &'static str,
    protocol: Protocol,
    model: &'static str,
    stream: bool,
    weight: u32,
    expect: Expect,
) -> Scenario {
    Scenario { name, protocol, model, stream, weight, expect }
}

/// The traffic mix (weights sum to 100). Fault prefixes are filled in from the rendered
/// upstream streams by [`scenarios`].
const MIX: [Scenario; 22] = {
    use Expect::Complete as C;
    use Protocol::{Chat, Messages, Responses};
    let fault = Expect::Fault { prefix: 0, kind: "" };
    [
        s("chat stream openai", Chat, "soak-openai", true, 14, C),
        s("chat stream anthropic", Chat, "soak-anthropic", true, 10, C),
        s("chat stream gemini", Chat, "soak-gemini", true, 8, C),
        s("chat stream vertex", Chat, "soak-vertex", true, 6, C),
        s("chat stream bedrock converse", Chat, "soak-bedrock", true, 8, C),
        s("chat stream bedrock invoke", Chat, "soak-bedrock-invoke", true, 6, C),
        s("chat json openai", Chat, "soak-openai", false, 3, C),
        s("chat json anthropic", Chat, "soak-anthropic", false, 3, C),
        s("chat json gemini", Chat, "soak-gemini", false, 2, C),
        s("chat json vertex", Chat, "soak-vertex", false, 2, C),
        s("chat json bedrock converse", Chat, "soak-bedrock", false, 2, C),
        s("chat json bedrock invoke", Chat, "soak-bedrock-invoke", false, 2, C),
        s("messages stream anthropic (native)", Messages, "soak-anthropic", true, 4, C),
        s("messages stream gemini", Messages, "soak-gemini", true, 3, C),
        s("responses stream openai (native)", Responses, "soak-openai-resp", true, 4, C),
        s("responses stream bedrock", Responses, "soak-bedrock", true, 3, C),
        s("client leaves mid-stream", Chat, "soak-slow", true, 6, Expect::Leave { after: 3 }),
        s("503 retried, then fallback", Chat, "soak-fallback", true, 4, C),
        s("upstream hangs, TTFT fallback", Chat, "soak-hang", true, 2, C),
        s("upstream cut mid-stream", Chat, "soak-cut", true, 3, fault),
        s("in-band error mid-stream", Chat, "soak-midstream", true, 3, fault),
        s("upstream stalls, idle timeout", Chat, "soak-stall", true, 2, fault),
    ]
};

/// Deltas among the first `events` events of `reply` rendered on `wire`.
fn deltas_in_first_events(wire: Wire, reply: &Reply, events: usize) -> u64 {
    let rendered = render_stream(wire, reply, &RenderOptions::new("m"));
    let mut deltas = reply.deltas.iter().peekable();
    let mut n = 0;
    for event in rendered.iter().take(events) {
        while let Some(delta) = deltas.peek()
            && memmem::find(event, delta.as_bytes()).is_some()
        {
            n += 1;
            deltas.next();
        }
    }
    n
}

/// The mix with each fault's expected prefix and error kind.
fn scenarios(deltas: usize) -> Vec<Scenario> {
    let reply = Reply::with_n_deltas(deltas);
    MIX.iter()
        .filter(|sc| sc.weight > 0)
        .map(|&sc| {
            let expect = match sc.model {
                "soak-cut" => Expect::Fault {
                    prefix: deltas_in_first_events(Wire::Anthropic, &reply, FAULT_AFTER_EVENTS),
                    kind: "",
                },
                "soak-midstream" => Expect::Fault {
                    prefix: deltas_in_first_events(Wire::Gemini, &reply, FAULT_AFTER_EVENTS),
                    kind: "",
                },
                "soak-stall" => Expect::Fault {
                    prefix: deltas_in_first_events(Wire::OpenAi, &reply, FAULT_AFTER_EVENTS),
                    kind: "timeout_error",
                },
                _ => sc.expect,
            };
            Scenario { expect, ..sc }
        })
        .collect()
}

/// A fixed interleaving of 100 requests in the mix's proportions (smooth weighted round-robin),
/// so any window of the run carries about the same mix.
fn schedule(mix: &[Scenario]) -> Vec<usize> {
    let total: i64 = mix.iter().map(|s| i64::from(s.weight)).sum();
    let mut current = vec![0i64; mix.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, s) in current.iter_mut().zip(mix) {
            *c += i64::from(s.weight);
        }
        let (best, _) =
            current.iter().enumerate().max_by_key(|&(i, c)| (*c, -(i as i64))).unwrap_or((0, &0));
        current[best] -= total;
        out.push(best);
    }
    out
}

fn request(addr: SocketAddr, sc: &Scenario, key: &str) -> Vec<u8> {
    let bearer = format!("Bearer {key}");
    let (path, auth, body) = match sc.protocol {
        Protocol::Chat => (
            "/v1/chat/completions",
            ("authorization", bearer.as_str()),
            json!({"model": sc.model, "stream": sc.stream,
                   "messages": [{"role": "user", "content": "Say hello"}]}),
        ),
        Protocol::Messages => (
            "/v1/messages",
            ("x-api-key", key),
            json!({"model": sc.model, "stream": sc.stream, "max_tokens": 1024,
                   "messages": [{"role": "user", "content": "Say hello"}]}),
        ),
        Protocol::Responses => (
            "/v1/responses",
            ("authorization", bearer.as_str()),
            json!({"model": sc.model, "stream": sc.stream, "input": "Say hello"}),
        ),
    };
    http::post(addr, path, Some(auth), &body.to_string())
}

/// Counts of one scenario (and, merged, of the run).
#[derive(Debug, Clone, Default, Serialize)]
struct Counts {
    requests: u64,
    ok: u64,
    /// Deltas received in order and checked.
    chunks_checked: u64,
    lost: u64,
    duplicated: u64,
    corrupted: u64,
    /// Expected outcomes by kind (fault error events, clients that left).
    expected: BTreeMap<String, u64>,
    /// Everything else that went wrong, by kind.
    unexpected: BTreeMap<String, u64>,
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.chunks_checked += other.chunks_checked;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.corrupted += other.corrupted;
        for (k, v) in &other.expected {
            *self.expected.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.unexpected {
            *self.unexpected.entry(k.clone()).or_default() += v;
        }
    }

    fn unexpected(&mut self, kind: impl Into<String>) {
        *self.unexpected.entry(kind.into()).or_default() += 1;
    }

    fn expected(&mut self, kind: impl Into<String>) {
        *self.expected.entry(kind.into()).or_default() += 1;
    }
}

/// How the HTTP exchange ended.
enum Transport {
    Ended,
    /// The client left on purpose.
    Left,
    Failed(String),
}

async fn connection(conn: &mut Option<Conn>, addr: SocketAddr) -> Option<&mut Conn> {
    if !conn.as_ref().is_some_and(Conn::reusable) {
        *conn = None;
        let fresh = tokio::time::timeout(REQUEST_TIMEOUT, Conn::connect(addr, 16 * 1024)).await;
        *conn = fresh.ok().and_then(Result::ok);
    }
    conn.as_mut()
}

/// One request of scenario `sc` (sequence number `seq`), checked and counted into `counts`.
async fn one(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    wire: &[u8],
    sc: &Scenario,
    deltas: u64,
    seq: u64,
    counts: &mut Counts,
) {
    counts.requests += 1;
    let Some(c) = connection(conn, addr).await else {
        counts.unexpected("client: connect failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        return;
    };
    if !sc.stream {
        let mut body = Body::new(BodyWant::Completion(Arc::from(
            Reply::with_n_deltas(deltas as usize).text_content(),
        )));
        let result = tokio::time::timeout(REQUEST_TIMEOUT, c.request(wire, &mut body)).await;
        match result {
            Ok(Ok(_)) => match body.seen(true).wrong {
                None => {
                    counts.ok += 1;
                    counts.chunks_checked += deltas;
                }
                Some(wrong) => counts.unexpected(format!("{}: {wrong}", sc.name)),
            },
            Ok(Err(e)) => counts.unexpected(format!("{}: client: {e}", sc.name)),
            Err(_) => counts.unexpected(format!("{}: client: timed out", sc.name)),
        }
        return;
    }
    let notify = Arc::new(Notify::new());
    let mut check = StreamCheck::new(sc.protocol);
    if let Expect::Leave { after } = sc.expect {
        check = check.stop_after(after + seq % 8, Arc::clone(&notify));
    }
    let transport = tokio::select! {
        r = tokio::time::timeout(REQUEST_TIMEOUT, c.request(wire, &mut check)) => match r {
            Ok(Ok(_)) => Transport::Ended,
            Ok(Err(e)) => Transport::Failed(format!("client: {e}")),
            Err(_) => Transport::Failed("client: timed out".to_owned()),
        },
        () = notify.notified() => Transport::Left,
    };
    if matches!(transport, Transport::Left) {
        // Drop the connection mid-response: the client leaves.
        *conn = None;
    }
    let seen = check.seen(matches!(transport, Transport::Ended));
    judge(sc, deltas, &seen, transport, counts);
}

fn judge(sc: &Scenario, deltas: u64, seen: &StreamSeen, transport: Transport, counts: &mut Counts) {
    let name = sc.name;
    if seen.status != 200 {
        if seen.status == 0 {
            if let Transport::Failed(why) = transport {
                counts.unexpected(format!("{name}: {why}"));
            }
        } else {
            counts.unexpected(format!("{name}: status {}", seen.status));
        }
        return;
    }
    counts.chunks_checked += seen.next.saturating_sub(seen.lost);
    counts.lost += seen.lost;
    counts.duplicated += seen.duplicated;
    counts.corrupted += seen.corrupted;
    if seen.after_end > 0 {
        counts.unexpected(format!("{name}: events after the end"));
    }
    if seen.errors.len() > 1 {
        counts.unexpected(format!("{name}: {} error events", seen.errors.len()));
    }
    match (sc.expect, transport) {
        (_, Transport::Failed(why)) => counts.unexpected(format!("{name}: {why}")),
        (Expect::Leave { .. }, Transport::Left) => {
            counts.ok += 1;
            counts.expected("client left mid-stream");
        }
        (_, Transport::Left) => counts.unexpected(format!("{name}: left early")),
        (Expect::Leave { .. }, Transport::Ended) => {
            counts.unexpected(format!("{name}: ended before the client left"));
        }
        (Expect::Complete, Transport::Ended) => {
            if let Some(kind) = seen.errors.first() {
                counts.unexpected(format!("{name}: error {kind}"));
            } else if !seen.done {
                counts.unexpected(format!("{name}: no terminal event"));
            } else if seen.next < deltas {
                counts.lost += deltas - seen.next;
                counts.unexpected(format!("{name}: short"));
            } else if seen.next > deltas {
                counts.unexpected(format!("{name}: more deltas than the upstream sent"));
            } else {
                counts.ok += 1;
            }
        }
        (Expect::Fault { prefix, kind }, Transport::Ended) => match seen.errors.first() {
            None if seen.done => counts.unexpected(format!("{name}: completed despite the fault")),
            None => counts.unexpected(format!("{name}: no error event")),
            Some(_) if seen.done => counts.unexpected(format!("{name}: [DONE] after the error")),
            Some(got) if !got.starts_with(kind) => {
                counts.unexpected(format!("{name}: error {got}"));
            }
            Some(got) => {
                if seen.next < prefix {
                    counts.lost += prefix - seen.next;
                    counts.unexpected(format!("{name}: short prefix"));
                } else if seen.next > prefix {
                    counts.unexpected(format!("{name}: more deltas than the upstream sent"));
                } else {
                    counts.ok += 1;
                }
                counts.expected(format!("{name}: {got}"));
            }
        },
    }
}

/// One reading of the gateway and the upstreams.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_s: f64,
    rss_kib: u64,
    fds: usize,
    upstream_open: usize,
    requests: u64,
}

/// The run's fixed inputs shared by the workers.
struct Load {
    addr: SocketAddr,
    mix: Vec<Scenario>,
    requests: Vec<Arc<[u8]>>,
    schedule: Vec<usize>,
    deltas: u64,
    next: AtomicU64,
    stop: AtomicBool,
    done: AtomicU64,
}

async fn worker(load: Arc<Load>, start_delay: Duration) -> Vec<Counts> {
    tokio::time::sleep(start_delay).await;
    let mut counts = vec![Counts::default(); load.mix.len()];
    let mut conn = None;
    while !load.stop.load(Ordering::Relaxed) {
        let seq = load.next.fetch_add(1, Ordering::Relaxed);
        let index = load.schedule[(seq % load.schedule.len() as u64) as usize];
        let sc = &load.mix[index];
        let wire = &load.requests[index];
        one(&mut conn, load.addr, wire, sc, load.deltas, seq, &mut counts[index]).await;
        load.done.fetch_add(1, Ordering::Relaxed);
    }
    counts
}

/// `GET /metrics`, the value of `prism_active_streams`.
async fn active_streams(addr: SocketAddr) -> Option<u64> {
    #[derive(Default)]
    struct Collect(Vec<u8>);
    impl Sink for Collect {
        fn data(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }
    let mut conn = Conn::connect(addr, 64 * 1024).await.ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    let mut body = Collect::default();
    let head: Head =
        tokio::time::timeout(Duration::from_secs(10), conn.request(request.as_bytes(), &mut body))
            .await
            .ok()?
            .ok()?;
    if head.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body.0);
    text.lines()
        .find_map(|l| l.strip_prefix("prism_active_streams "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v.max(0.0).round() as u64)
}

/// `prism-bench soak`.
pub(crate) fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let fd_limit = procfs::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(run(args, fd_limit))
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

async fn run(args: SoakArgs, fd_limit: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let started_at = SystemTime::now();
    let duration = Duration::from_secs_f64(args.seconds.unwrap_or(args.minutes * 60.0).max(1.0));
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.prism.is_file(),
        "{} not found: build it with `cargo build -p prism` (debug) or `cargo build --release -p prism`",
        args.prism.display()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let machine = procfs::machine(fd_limit);
    let key = format!("sk-prism-soak-{:08x}", std::process::id());
    let exe = std::env::current_exe().context("locating prism-bench")?;
    let prism = args.prism.canonicalize().unwrap_or_else(|_| args.prism.clone());
    let warmup =
        if duration >= Duration::from_secs(180) { Duration::from_secs(60) } else { duration / 3 };
    eprintln!(
        "prism-bench soak: {} for {:.1} min at {} concurrent streams ({} deltas {} ms apart), \
         warm-up {:.0} s; {} × {}, load {}",
        prism.display(),
        duration.as_secs_f64() / 60.0,
        args.concurrency,
        args.deltas,
        args.delay_ms,
        warmup.as_secs_f64(),
        machine.cpus,
        machine.cpu_model,
        machine.load_average_at_start,
    );

    let mut sims =
        Sims::spawn(&exe, SoakSimArgs { deltas: args.deltas, delay_ms: args.delay_ms }).await?;
    let config = config_toml(&sims, &key);
    let log = args.out.join("prism-soak.log");
    let mut gw =
        Gateway::start_with_env(&prism, &[], &config, &log, &[("RUST_LOG", &args.gateway_log)])
            .await?;
    let fds_start = gw.open_fds();
    let rss_start = gw.memory().rss_kib;

    let mix = scenarios(args.deltas);
    let load = Arc::new(Load {
        addr: gw.addr,
        requests: mix.iter().map(|sc| Arc::from(request(gw.addr, sc, &key))).collect(),
        schedule: schedule(&mix),
        mix,
        deltas: args.deltas as u64,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
    });
    // Workers start over about two seconds, so the listen backlog never overflows.
    let stagger = Duration::from_secs(2) / args.concurrency as u32;
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(worker(Arc::clone(&load), stagger * i as u32)))
        .collect();

    let load_started = Instant::now();
    let mut samples = Vec::<Sample>::new();
    let end = load_started + duration;
    let mut tick = load_started;
    let mut next_report = 0.1;
    let mut max_upstream_open = 0;
    while Instant::now() < end {
        tick += Duration::from_secs(1);
        tokio::time::sleep_until(tick.min(end)).await;
        let s = Sample {
            t_s: load_started.elapsed().as_secs_f64(),
            rss_kib: gw.memory().rss_kib,
            fds: gw.open_fds(),
            upstream_open: sims.open().await?.iter().sum(),
            requests: load.done.load(Ordering::Relaxed),
        };
        samples.push(s.clone());
        max_upstream_open = max_upstream_open.max(s.upstream_open);
        if !gw.alive() {
            load.stop.store(true, Ordering::Relaxed);
            bail!("prism exited during the soak; see {}", log.display());
        }
        let fraction = s.t_s / duration.as_secs_f64();
        if fraction + 1e-9 >= next_report {
            eprintln!(
                "prism-bench soak: {:>3.0}%  {:>7.1} s  RSS {:>7.1} MiB  fds {:>5}  upstream open {:>5}  requests {}",
                fraction * 100.0,
                s.t_s,
                mib(s.rss_kib),
                s.fds,
                s.upstream_open,
                s.requests
            );
            next_report += 0.1;
        }
    }
    // Stop the load: every worker finishes its request in flight.
    load.stop.store(true, Ordering::Relaxed);
    let rss_end_of_load = gw.memory().rss_kib;
    let mut per_scenario = vec![Counts::default(); load.mix.len()];
    let drain_deadline = Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(10);
    let mut unfinished = 0;
    for task in workers {
        match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(Ok(counts)) => {
                for (total, c) in per_scenario.iter_mut().zip(&counts) {
                    total.merge(c);
                }
            }
            Ok(Err(_)) | Err(_) => unfinished += 1,
        }
    }
    let drained_s = load_started.elapsed().as_secs_f64() - duration.as_secs_f64();

    // Settle: the gateway closes abandoned upstream streams at once; give it a moment.
    let settle_deadline = Instant::now() + Duration::from_secs(5);
    let mut open = sims.open().await?;
    while Instant::now() < settle_deadline
        && MUST_CLOSE.iter().any(|n| open[SIMS.iter().position(|s| s == n).unwrap_or(0)] > 0)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        open = sims.open().await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    open = sims.open().await?;
    let active = active_streams(gw.addr).await;
    let fds_end = gw.open_fds();
    let rss_after_settle = gw.memory().rss_kib;
    let open_after_settle: BTreeMap<&str, usize> =
        SIMS.iter().copied().zip(open.iter().copied()).collect();
    let upstream_after_settle: usize = open.iter().sum();
    let mut pool_wait = None;
    if args.wait_pool_idle {
        eprintln!(
            "prism-bench soak: waiting up to 200 s for the gateway's idle upstream connections to time out"
        );
        let waited = Instant::now();
        let deadline = waited + POOL_IDLE_TIMEOUT * 2 + Duration::from_secs(20);
        let mut total = upstream_after_settle;
        while total > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            total = sims.open().await?.iter().sum();
        }
        pool_wait = Some((waited.elapsed().as_secs_f64(), total, gw.open_fds()));
    }
    let alive_at_end = gw.alive();
    let hwm_kib = gw.memory().hwm_kib;
    gw.stop().await;
    sims.stop().await;

    // The verdict.
    let warm_s = warmup.as_secs_f64();
    let window = 5.0_f64.min(warm_s / 2.0);
    let baseline = median(
        samples.iter().filter(|s| s.t_s > warm_s - window && s.t_s <= warm_s).map(|s| s.rss_kib),
    );
    let total_s = duration.as_secs_f64();
    let final_rss = median(samples.iter().filter(|s| s.t_s > total_s - window).map(|s| s.rss_kib));
    let growth_pct = if baseline > 0 {
        (final_rss as f64 - baseline as f64) / baseline as f64 * 100.0
    } else {
        f64::NAN
    };
    let mut totals = Counts::default();
    for c in &per_scenario {
        totals.merge(c);
    }
    let must_close_open: usize = MUST_CLOSE.iter().map(|n| open_after_settle[n]).sum();
    let pool_bound = args.concurrency.min(POOL_MAX_IDLE_PER_HOST);
    let fd_bound = fds_start + upstream_after_settle + FD_SLACK;

    let mut failures = Vec::new();
    if !growth_pct.is_finite() || growth_pct > args.max_rss_growth_pct {
        failures.push(format!(
            "RSS grew {growth_pct:.1}% after warm-up ({:.1} → {:.1} MiB, medians of the {window:.0} s \
             before {warm_s:.0} s and before the end); the bound is {}%",
            mib(baseline),
            mib(final_rss),
            args.max_rss_growth_pct
        ));
    }
    if totals.lost > 0 || totals.duplicated > 0 || totals.corrupted > 0 {
        failures.push(format!(
            "{} chunks lost, {} duplicated, {} corrupted; the bound is 0",
            totals.lost, totals.duplicated, totals.corrupted
        ));
    }
    if !totals.unexpected.is_empty() {
        let n: u64 = totals.unexpected.values().sum();
        failures.push(format!("{n} unexpected errors (listed above); the bound is 0"));
    }
    if unfinished > 0 {
        failures.push(format!("{unfinished} clients did not finish within 40 s of the stop"));
    }
    if must_close_open > 0 {
        failures.push(format!(
            "{must_close_open} upstream connections of abandoned streams (client left, stall, hang) \
             still open after the settle; the bound is 0"
        ));
    }
    for (name, &n) in &open_after_settle {
        if !MUST_CLOSE.contains(name) && n > pool_bound {
            failures.push(format!(
                "{n} upstream connections to the {name} simulator open after the settle; the bound \
                 is {pool_bound} (its idle pool holds at most one connection per concurrent stream, \
                 and at most {POOL_MAX_IDLE_PER_HOST})"
            ));
        }
    }
    if fds_end > fd_bound {
        failures.push(format!(
            "the gateway holds {fds_end} descriptors after the settle against {fds_start} at the start; \
             the bound is {fd_bound} (start + {upstream_after_settle} pooled upstream connections + {FD_SLACK})"
        ));
    }
    match active {
        Some(0) => {}
        Some(a) => {
            failures.push(format!("prism_active_streams is {a} after the settle; the bound is 0"))
        }
        None => failures.push("could not read prism_active_streams from /metrics".to_owned()),
    }
    if let Some((_, left, _)) = pool_wait
        && left > 0
    {
        failures.push(format!(
            "{left} upstream connections still open after the pool's idle timeout; the bound is 0"
        ));
    }
    if !alive_at_end {
        failures.push(format!("prism exited during the soak; see {}", log.display()));
    }

    // The report.
    let mut table = String::new();
    table.push_str("| at | time (s) | RSS (MiB) | fds | upstream open | requests |\n");
    table.push_str("|---:|---:|---:|---:|---:|---:|\n");
    table.push_str(&format!("| start | 0 | {:.1} | {fds_start} | 0 | 0 |\n", mib(rss_start)));
    for tenth in 1..=10 {
        let at = total_s * f64::from(tenth) / 10.0;
        if let Some(s) = samples.iter().rfind(|s| s.t_s <= at + 0.5) {
            table.push_str(&format!(
                "| {}% | {:.0} | {:.1} | {} | {} | {} |\n",
                tenth * 10,
                s.t_s,
                mib(s.rss_kib),
                s.fds,
                s.upstream_open,
                s.requests
            ));
        }
    }
    table.push_str(&format!(
        "| settled | {:.0} | {:.1} | {fds_end} | {upstream_after_settle} | {} |\n",
        load_started.elapsed().as_secs_f64(),
        mib(rss_after_settle),
        totals.requests
    ));
    println!();
    println!("{table}");
    println!(
        "RSS: warm-up baseline {:.1} MiB (median of the {window:.0} s before {warm_s:.0} s), end of load {:.1} MiB \
         → growth {growth_pct:+.2}% (bound {}%); peak VmHWM {:.1} MiB",
        mib(baseline),
        mib(final_rss),
        args.max_rss_growth_pct,
        mib(hwm_kib)
    );
    println!(
        "Descriptors: {fds_start} at start, {fds_end} after the settle (bound {fd_bound}); \
         upstream connections: peak {max_upstream_open}, {upstream_after_settle} after the settle \
         {open_after_settle:?} (bound {pool_bound} per simulator; those of abandoned streams — slow, stall, hang — must be 0); \
         prism_active_streams {}",
        active.map_or("?".to_owned(), |a| a.to_string())
    );
    if let Some((waited, left, fds)) = pool_wait {
        println!(
            "After {waited:.0} s more (pool idle timeout {} s): {left} upstream connections open, {fds} descriptors",
            POOL_IDLE_TIMEOUT.as_secs()
        );
    }
    println!(
        "Requests: {} ({:.0}/s), ok {}; chunks checked {}, lost {}, duplicated {}, corrupted {}; \
         drain after the stop {drained_s:.1} s",
        totals.requests,
        totals.requests as f64 / total_s,
        totals.ok,
        totals.chunks_checked,
        totals.lost,
        totals.duplicated,
        totals.corrupted
    );
    println!("Expected outcomes by kind:");
    for (k, v) in &totals.expected {
        println!("  {v:>9}  {k}");
    }
    println!(
        "Unexpected errors by kind:{}",
        if totals.unexpected.is_empty() { " none" } else { "" }
    );
    for (k, v) in &totals.unexpected {
        println!("  {v:>9}  {k}");
    }
    println!("Mix (requests / ok per scenario):");
    for (sc, c) in load.mix.iter().zip(&per_scenario) {
        println!("  {:>9} / {:>9}  {}", c.requests, c.ok, sc.name);
    }

    let record = json!({
        "schema": 1,
        "kind": "soak",
        "started_at": report::timestamp(started_at),
        "duration_s": started.elapsed().as_secs_f64(),
        "load_s": total_s,
        "warmup_s": warm_s,
        "concurrency": args.concurrency,
        "deltas": args.deltas,
        "delay_ms": args.delay_ms,
        "prism": prism.display().to_string(),
        "machine": machine,
        "load_average_at_end": procfs::load_average(),
        "rss": {
            "start_kib": rss_start,
            "baseline_kib": baseline,
            "end_of_load_kib": final_rss,
            "end_of_load_sample_kib": rss_end_of_load,
            "after_settle_kib": rss_after_settle,
            "growth_pct": growth_pct,
            "max_growth_pct": args.max_rss_growth_pct,
        },
        "fds": {"start": fds_start, "after_settle": fds_end, "bound": fd_bound},
        "upstream": {
            "peak_open": max_upstream_open,
            "open_after_settle": open_after_settle,
            "bound_per_simulator_after_settle": pool_bound,
            "must_be_closed": MUST_CLOSE,
            "pool_wait": pool_wait.map(|(w, left, fds)| json!({"waited_s": w, "open": left, "fds": fds})),
        },
        "prism_active_streams_after_settle": active,
        "totals": totals,
        "scenarios": load.mix.iter().zip(&per_scenario).map(|(sc, c)| json!({
            "name": sc.name, "weight_pct": sc.weight, "protocol": sc.protocol,
            "model": sc.model, "stream": sc.stream, "counts": c,
        })).collect::<Vec<_>>(),
        "samples": samples,
        "failures": failures,
        "passed": failures.is_empty(),
    });
    let path = args.out.join(format!("soak-{}.json", report::timestamp(started_at)));
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "Report: {}; {:.0} s in all, gateway log {}.",
        path.display(),
        started.elapsed().as_secs_f64(),
        log.display()
    );
    if failures.is_empty() {
        println!("Soak passed.");
        Ok(())
    } else {
        println!("Soak FAILED:");
        for f in &failures {
            println!("  - {f}");
        }
        bail!("soak failed: {}", failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_keeps_the_mix_proportions() {
        let mix = scenarios(40);
        assert_eq!(mix.iter().map(|s| s.weight).sum::<u32>(), 100);
        let order = schedule(&mix);
        assert_eq!(order.len(), 100);
        for (i, sc) in mix.iter().enumerate() {
            assert_eq!(order.iter().filter(|&&j| j == i).count() as u32, sc.weight, "{}", sc.name);
        }
    }

    #[test]
    fn fault_prefixes_come_from_the_rendered_streams() {
        let mix = scenarios(40);
        let prefix = |model: &str| match mix.iter().find(|s| s.model == model).map(|s| s.expect) {
            Some(Expect::Fault { prefix, .. }) => prefix,
            other => panic!("{other:?}"),
        };
        // OpenAI's first event is the role chunk; Anthropic's first three carry no text
        // (message_start, content_block_start, ping); Gemini's every event carries a delta.
        assert_eq!(prefix("soak-stall"), 5);
        assert_eq!(prefix("soak-cut"), 3);
        assert_eq!(prefix("soak-midstream"), 6);
    }
}

//! Rough gateway overhead: process CPU time to stream N chunks from the simulator directly, and
//! through the gateway (OpenAI pass-through and Anthropic translation, each also with output
//! guardrails: every PII and secret detector in Monitor, and in Enforce with `hold_back`), per
//! 1,000 chunks. Run with `cargo run -p prism-server --release --example overhead`;
//! `OVERHEAD_STREAMS` and `OVERHEAD_ROUNDS` change the work per measurement and the rounds.

#![expect(clippy::unwrap_used, reason = "a measurement tool fails loudly")]

use std::time::{Duration, Instant};

use prism_server::{Config, Server};
use prism_simulator::{Reply, SimConfig, Simulator};
use serde_json::json;

const CHUNKS: usize = 1000;
const CONCURRENCY: usize = 4;
const KEY: &str = "sk-prism-bench-key";

/// CPU time of the whole process (client, simulator and gateway share it), in nanoseconds.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec.try_into().unwrap_or(0), t.tv_nsec.try_into().unwrap_or(0))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One way of streaming: a URL, a model, and whether to authenticate.
struct Case {
    label: &'static str,
    url: String,
    model: &'static str,
    key: Option<&'static str>,
}

async fn run(client: &reqwest::Client, case: &Case, streams: usize) -> (Duration, Duration) {
    let body = json!({"model": case.model, "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for _ in 0..streams.div_ceil(CONCURRENCY) {
        let batch = (0..CONCURRENCY).map(|_| {
            let mut req = client.post(&case.url).json(&body);
            if let Some(key) = case.key {
                req = req.bearer_auth(key);
            }
            async move {
                let text = req.send().await.unwrap().text().await.unwrap();
                assert!(
                    text.ends_with("data: [DONE]\n\n"),
                    "{}",
                    &text[text.len().saturating_sub(300)..]
                );
            }
        });
        futures::future::join_all(batch).await;
    }
    (cpu_time() - cpu0, wall0.elapsed())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let streams = env_usize("OVERHEAD_STREAMS", 40).max(CONCURRENCY);
    let rounds = env_usize("OVERHEAD_ROUNDS", 3).max(1);
    let sim = Simulator::start_with(
        SimConfig::default().with_default(Reply::with_n_deltas(CHUNKS)).with_history(0),
    )
    .await
    .unwrap();
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
[[keys]]
name = "bench"
key = "{KEY}"
[providers.oa]
kind = "openai"
base_url = "{base}"
[providers.an]
kind = "anthropic"
base_url = "{base}"
[[models]]
name = "gpt"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
[[models]]
name = "claude"
deployments = [{{ provider = "an", model = "claude-sonnet-4-5" }}]
[[models]]
name = "gpt-monitor"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
guardrails = [
  {{ name = "pii", kind = "pii", mode = "monitor", stage = "output" }},
  {{ name = "secrets", kind = "secrets", mode = "monitor", stage = "output" }},
]
[[models]]
name = "gpt-hold-back"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
guardrails = [
  {{ name = "pii", kind = "pii", mode = "enforce", stage = "output", hold_back = true }},
  {{ name = "secrets", kind = "secrets", mode = "enforce", stage = "output", hold_back = true }},
]
[[models]]
name = "claude-hold-back"
deployments = [{{ provider = "an", model = "claude-sonnet-4-5" }}]
guardrails = [
  {{ name = "pii", kind = "pii", mode = "enforce", stage = "output", hold_back = true }},
  {{ name = "secrets", kind = "secrets", mode = "enforce", stage = "output", hold_back = true }},
]
"#,
        base = sim.base_url()
    );
    let config = Config::from_toml(&toml, &|_| None).unwrap();
    let server = Server::bind(config).await.unwrap().spawn();
    let client = reqwest::Client::new();
    let direct_url = format!("{}/v1/chat/completions", sim.base_url());
    let gw_url = format!("{}/v1/chat/completions", server.base_url());
    let gw = |label, model| Case { label, url: gw_url.clone(), model, key: Some(KEY) };
    let cases = [
        Case { label: "direct (openai wire)", url: direct_url, model: "gpt-4o-mini", key: None },
        gw("via gateway, openai", "gpt"),
        gw("via gateway, anthropic", "claude"),
        gw("openai + guardrails monitor", "gpt-monitor"),
        gw("openai + hold_back enforce", "gpt-hold-back"),
        gw("anthropic + hold_back", "claude-hold-back"),
    ];
    // Warm up pools and caches.
    for case in &cases {
        run(&client, case, CONCURRENCY).await;
    }
    let per_k = |d: Duration| d.as_secs_f64() * 1e6 / (streams * CHUNKS) as f64 * 1000.0;
    // Rounds interleave the cases, so load from elsewhere on the machine hits them alike.
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            let (c, w) = run(&client, case, streams).await;
            cpu[i].push(per_k(c));
            wall[i].push(w.as_secs_f64() * 1e3);
        }
    }
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let wall: Vec<f64> = wall.iter_mut().map(|v| median(v)).collect();
    println!(
        "{streams} streams x {CHUNKS} chunks, {CONCURRENCY} at a time, median of {rounds} rounds; \
         process CPU (client + simulator [+ gateway])"
    );
    for (i, case) in cases.iter().enumerate() {
        println!(
            "{:<28} {:>8.1} us CPU / 1000 chunks   wall {:>7.1} ms",
            case.label, cpu[i], wall[i]
        );
    }
    println!("gateway overhead, openai:    {:>8.1} us CPU / 1000 chunks", cpu[1] - cpu[0]);
    println!("guardrails monitor, openai:  {:>+8.1} us CPU / 1000 chunks", cpu[3] - cpu[1]);
    println!("hold_back enforce, openai:   {:>+8.1} us CPU / 1000 chunks", cpu[4] - cpu[1]);
    println!("hold_back enforce, anthropic:{:>+8.1} us CPU / 1000 chunks", cpu[5] - cpu[2]);
    server.shutdown().await.unwrap();
}

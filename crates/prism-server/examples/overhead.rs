//! Rough gateway overhead: process CPU time to stream N chunks from the simulator directly, and
//! through the gateway (OpenAI pass-through and Anthropic translation), per 1,000 chunks.
//! Run with `cargo run -p prism-server --release --example overhead` (Linux: reads /proc).

#![expect(clippy::unwrap_used, reason = "a measurement tool fails loudly")]

use std::time::{Duration, Instant};

use prism_server::{Config, Server};
use prism_simulator::{Reply, SimConfig, Simulator};
use serde_json::json;

const STREAMS: usize = 40;
const CHUNKS: usize = 1000;
const CONCURRENCY: usize = 4;

fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the command.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    key: Option<&str>,
) -> (Duration, Duration) {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for _ in 0..STREAMS / CONCURRENCY {
        let batch = (0..CONCURRENCY).map(|_| {
            let mut req = client.post(url).json(&body);
            if let Some(key) = key {
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
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
key = "sk-prism-bench-key"
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
"#,
        base = sim.base_url()
    );
    let config = Config::from_toml(&toml, &|_| None).unwrap();
    let server = Server::bind(config).await.unwrap().spawn();
    let client = reqwest::Client::new();
    let direct_url = format!("{}/v1/chat/completions", sim.base_url());
    let gw_url = format!("{}/v1/chat/completions", server.base_url());
    // Warm up pools and caches.
    run(&client, &direct_url, "gpt-4o-mini", None).await;
    run(&client, &gw_url, "gpt", Some("sk-prism-bench-key")).await;
    let per_k = |d: Duration| d.as_secs_f64() * 1e6 / (STREAMS * CHUNKS) as f64 * 1000.0;
    let (direct, dw) = run(&client, &direct_url, "gpt-4o-mini", None).await;
    let (gw, gww) = run(&client, &gw_url, "gpt", Some("sk-prism-bench-key")).await;
    let (gwa, gwaw) = run(&client, &gw_url, "claude", Some("sk-prism-bench-key")).await;
    println!(
        "{STREAMS} streams x {CHUNKS} chunks, {CONCURRENCY} at a time; process CPU (client + simulator [+ gateway])"
    );
    println!(
        "direct (openai wire):        {:>8.1} us CPU / 1000 chunks   wall {dw:?}",
        per_k(direct)
    );
    println!("via gateway, openai:         {:>8.1} us CPU / 1000 chunks   wall {gww:?}", per_k(gw));
    println!(
        "via gateway, anthropic:      {:>8.1} us CPU / 1000 chunks   wall {gwaw:?}",
        per_k(gwa)
    );
    println!(
        "gateway overhead, openai:    {:>8.1} us CPU / 1000 chunks",
        per_k(gw.saturating_sub(direct))
    );
    server.shutdown().await.unwrap();
}

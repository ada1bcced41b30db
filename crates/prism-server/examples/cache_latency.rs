//! Cache hit latency against miss latency, measured in one run: sequential non-streaming requests
//! through the gateway to the simulator, with an upstream that answers at once and one that takes
//! 50 ms, for the in-memory cache (and Redis when `REDIS_URL` is set). Run with
//! `cargo run -p prism-server --release --example cache_latency`.

#![expect(clippy::unwrap_used, reason = "a measurement tool fails loudly")]

use std::time::{Duration, Instant};

use prism_server::{Config, Server};
use prism_simulator::{Reply, SimConfig, Simulator};
use serde_json::json;

/// Requests per measured series.
const N: usize = 200;
const KEY: &str = "sk-prism-latency-key";

/// Latency percentiles of one series, in microseconds.
struct Series {
    p50: f64,
    p90: f64,
    p99: f64,
}

impl Series {
    fn of(mut samples: Vec<Duration>) -> Series {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
        Series { p50: at(0.50), p90: at(0.90), p99: at(0.99) }
    }
}

async fn post(client: &reqwest::Client, url: &str, text: &str, want: &str) -> Duration {
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": text}]});
    let started = Instant::now();
    let resp = client.post(url).bearer_auth(KEY).json(&body).send().await.unwrap();
    let cache = resp.headers()["x-prism-cache"].to_str().unwrap().to_owned();
    let bytes = resp.bytes().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(cache, want, "{}", String::from_utf8_lossy(&bytes));
    elapsed
}

/// Measures `N` misses (distinct prompts), then `N` hits (one prompt, stored first). Prompts are
/// unique per run and series, so a Redis shared between series holds none of them.
async fn measure(cache_section: &str, upstream_delay: Duration) -> (Series, Series) {
    let reply = Reply::text("A cached answer of a realistic few dozen words, long enough to be a real completion body rather than an empty one, repeated by the simulator for every request it receives.")
        .headers_delay(upstream_delay);
    let sim = Simulator::start_with(SimConfig::default().with_default(reply).with_history(0))
        .await
        .unwrap();
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
[[keys]]
name = "latency"
key = "{KEY}"
[providers.oa]
kind = "openai"
base_url = "{base}"
api_key = "sk-upstream"
[[models]]
name = "gpt"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
[retries]
max_attempts = 1
{cache_section}
"#,
        base = sim.base_url()
    );
    let config = Config::from_toml(&toml, &|_| None).unwrap();
    let server = Server::bind(config).await.unwrap().spawn();
    let url = format!("{}/v1/chat/completions", server.base_url());
    let client = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
    // Warm the connection pools (client→gateway, gateway→simulator, gateway→Redis).
    let run = format!("{} {}", std::process::id(), upstream_delay.as_millis());
    for i in 0..20 {
        post(&client, &url, &format!("warm-up {run} {i}"), "miss").await;
    }
    let hot = format!("the hot prompt {run}");
    post(&client, &url, &hot, "miss").await;
    let (mut misses, mut hits) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 0..N {
        misses.push(post(&client, &url, &format!("cold prompt {run} {i}"), "miss").await);
    }
    for _ in 0..N {
        hits.push(post(&client, &url, &hot, "hit").await);
    }
    server.shutdown().await.unwrap();
    sim.shutdown().await;
    (Series::of(misses), Series::of(hits))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut backends = vec![("memory", "[cache]\nbackend = \"memory\"".to_owned())];
    if let Ok(url) = std::env::var("REDIS_URL") {
        let section = format!(
            "[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"{url}\"\nkey_prefix = \"prism-latency:\""
        );
        backends.push(("redis", section));
    }
    println!("{N} sequential non-streaming requests per series, latency in microseconds");
    println!(
        "{:<8} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
        "backend", "upstream", "miss p50", "miss p90", "miss p99", "hit p50", "hit p90", "hit p99"
    );
    for (name, section) in &backends {
        for delay_ms in [0u64, 50] {
            let (miss, hit) = measure(section, Duration::from_millis(delay_ms)).await;
            println!(
                "{name:<8} {:>7}ms | {:>9.0} {:>9.0} {:>9.0} | {:>9.0} {:>9.0} {:>9.0}",
                delay_ms, miss.p50, miss.p90, miss.p99, hit.p50, hit.p90, hit.p99
            );
        }
    }
}

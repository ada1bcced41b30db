//! The usage ledger across real processes: `prism serve` instances sharing a real `redis-server`
//! and writing to a real PostgreSQL, in front of `prism simulate`. The Redis and PostgreSQL
//! tests skip (loudly) where those servers are not installed, and fail instead in CI
//! (`PRISM_REQUIRE_REDIS=1`, `PRISM_REQUIRE_POSTGRES=1`).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prism_testkit::{ChildGuard as Proc, PostgresServer, RedisServer};
use serde_json::{Value, json};

const PRISM: &str = env!("CARGO_BIN_EXE_prism");
const TENANT: &str = "sk-tenant-000001";
const ADMIN: &str = "sk-admin-0000001";

/// `prism simulate` with `delay_ms` between streamed events.
fn simulator(delay_ms: u64) -> (Proc, String) {
    let mut cmd = Command::new(PRISM);
    cmd.args(["simulate", "--listen", "127.0.0.1:0", "--delay-ms", &delay_ms.to_string()]);
    Proc::spawn_with_url(cmd.stderr(Stdio::null()))
}

/// `prism serve` on `config`.
fn gateway(config: &str) -> (Proc, String) {
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "prism-ledger-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(PRISM);
    cmd.env_clear().env("RUST_LOG", "warn").arg("serve").arg("--config").arg(&path);
    Proc::spawn_with_url(cmd.stderr(Stdio::null()))
}

/// A config: the tenant and admin keys, `slow` and `fast` models on two simulators (priced as
/// gpt-4o-mini), and `extra` appended (limits, `[usage]`).
fn config(slow_sim: &str, fast_sim: &str, tenant_limits: &str, extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:0"

[[keys]]
name = "tenant"
key = "{TENANT}"
limits = {tenant_limits}

[[keys]]
name = "admin"
key = "{ADMIN}"
admin = true

[providers.slow]
kind = "openai"
base_url = "{slow_sim}"

[providers.fast]
kind = "openai"
base_url = "{fast_sim}"

[[models]]
name = "slow"
deployments = [{{ provider = "slow", model = "gpt-4o-mini" }}]

[[models]]
name = "fast"
deployments = [{{ provider = "fast", model = "gpt-4o-mini" }}]

{extra}
"#
    )
}

fn chat_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> reqwest::Response {
    client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `GET /v1/usage`, and one key's rows summed over its models (`Null` when it has none).
async fn usage_of(url: &str, key_name: &str) -> (Value, Value) {
    let report: Value = reqwest::Client::new()
        .get(format!("{url}/v1/usage"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut sum: Option<serde_json::Map<String, Value>> = None;
    for row in report["data"].as_array().unwrap().iter().filter(|r| r["key"] == key_name) {
        let sum = sum.get_or_insert_with(serde_json::Map::new);
        for (field, value) in row.as_object().unwrap() {
            if let Some(n) = value.as_f64() {
                let total = sum.get(field).and_then(Value::as_f64).unwrap_or(0.0) + n;
                let total = if value.is_u64() { json!(total as u64) } else { json!(total) };
                sum.insert(field.clone(), total);
            }
        }
    }
    (report, sum.map_or(Value::Null, Value::Object))
}

fn usage_redis(redis: &RedisServer, mode: &str) -> String {
    format!(
        "[usage]\ncounters = \"redis\"\nfailure_mode = \"{mode}\"\n[usage.redis]\nurl = \"{}\"\n\
         key_prefix = \"prism-test:\"\ntimeout_ms = 200\nconnect_timeout_ms = 500\n\
         reconnect_backoff_ms = 200\n",
        redis.url()
    )
}

/// Three instances share one tokens-per-minute limit through Redis. Thirty clients hammer them
/// at once; whatever the interleaving, the tokens of the admitted requests stay within the limit
/// plus one request's reservation, and every instance both admits and refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tpm_limit_shared_by_three_instances_holds_within_one_request() {
    let Some(redis) = RedisServer::start() else { return };
    let (_sim, sim) = simulator(20);
    const LIMIT: u64 = 1_000;
    let cfg =
        config(&sim, &sim, &format!("{{ tpm = {LIMIT} }}"), &usage_redis(&redis, "fail_open"));
    let instances: Vec<(Proc, String)> = (0..3).map(|_| gateway(&cfg)).collect();
    let urls: Arc<Vec<String>> = Arc::new(instances.iter().map(|(_, u)| u.clone()).collect());

    let admitted_tokens = Arc::new(AtomicU64::new(0));
    let per_instance: Arc<[[AtomicU64; 2]; 3]> = Arc::new(Default::default());
    let stop_at = Instant::now() + Duration::from_secs(4);
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for w in 0..30 {
        let (urls, client) = (Arc::clone(&urls), client.clone());
        let (tokens, per_instance) = (Arc::clone(&admitted_tokens), Arc::clone(&per_instance));
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < stop_at {
                let which = i % 3;
                i += 1;
                let resp = post(&client, &urls[which], TENANT, &chat_body("fast", false)).await;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                assert_eq!(headers["x-ratelimit-limit-tokens"], LIMIT.to_string().as_str());
                let body: Value = resp.json().await.unwrap();
                match status {
                    200 => {
                        let used = body["usage"]["total_tokens"].as_u64().unwrap();
                        tokens.fetch_add(used, Ordering::Relaxed);
                        per_instance[which][0].fetch_add(1, Ordering::Relaxed);
                    }
                    429 => {
                        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
                        assert!(headers.contains_key("retry-after"));
                        per_instance[which][1].fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("unexpected status {other}: {body}"),
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let used = admitted_tokens.load(Ordering::Relaxed);
    // The reservation: the input estimate of "hi" (8) plus max_tokens (100).
    let one_request = 108;
    assert!(used <= LIMIT + one_request, "admitted {used} tokens against a limit of {LIMIT}");
    assert!(used >= LIMIT / 2, "the limit must have been reached, only {used} tokens admitted");
    for (i, [ok, limited]) in per_instance.iter().enumerate() {
        let (ok, limited) = (ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
        assert!(ok > 0 && limited > 0, "instance {i}: {ok} admitted, {limited} refused");
    }
}

/// A spend budget stops the next request once it is used up, but never cuts a stream that was
/// already admitted; the refusal is OpenAI's 429 `insufficient_quota`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_stops_the_next_request_not_the_running_stream() {
    let (_slow_sim, slow) = simulator(40);
    let (_fast_sim, fast) = simulator(0);
    // One demo answer (12 in, 24 out at gpt-4o-mini prices) costs $0.0000162.
    let (_gw, url) = gateway(&config(&slow, &fast, "{ daily_usd = 0.00001 }", ""));
    let client = reqwest::Client::new();
    let mut stream = post(&client, &url, TENANT, &chat_body("slow", true)).await;
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    // A whole answer spends past the budget while the stream is still running.
    let spent = post(&client, &url, TENANT, &chat_body("fast", false)).await;
    assert_eq!(spent.status(), 200);
    assert_eq!(spent.headers()["x-prism-cost"], "0.0000162");
    let refused = post(&client, &url, TENANT, &chat_body("fast", false)).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
    // The admitted stream runs to its clean end.
    let mut rest = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    // Both answers are billed at gpt-4o-mini's prices from the upstream's own usage; the
    // refusal is recorded at no cost.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, row) = usage_of(&url, "tenant").await;
    assert_eq!(row["requests"], 3, "{row}");
    assert_eq!(row["estimated_requests"], 0, "{row}");
    let (input, output) =
        (row["input_tokens"].as_f64().unwrap(), row["output_tokens"].as_f64().unwrap());
    assert!(output > 24.0, "the stream's tokens are counted too: {row}");
    let cost = row["cost_usd"].as_f64().unwrap();
    assert!((cost - (input * 0.15 + output * 0.60) / 1e6).abs() < 1e-12, "{row}");
}

/// With PostgreSQL: a client that leaves mid-stream is billed for what it received (an
/// estimate, marked as such), and records still queued at a graceful shutdown are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_postgres_with_the_left_stream_billed_and_nothing_lost_on_shutdown() {
    let Some(pg) = PostgresServer::start() else { return };
    let (_slow_sim, slow) = simulator(60);
    let (_fast_sim, fast) = simulator(0);
    // Nothing is written before shutdown: the batch waits a minute to fill.
    let usage = format!(
        "[usage.postgres]\nurl = \"{}\"\nbatch_size = 1000\nflush_interval_ms = 60000\n",
        pg.url()
    );
    let (mut gw, url) = gateway(&config(&slow, &fast, "{ rpm = 1000 }", &usage));
    let client = reqwest::Client::new();

    let mut stream = post(&client, &url, TENANT, &chat_body("slow", true)).await;
    assert_eq!(stream.status(), 200);
    let left_id = stream.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut received = Vec::new();
    while received.iter().filter(|&&b| b == b'\n').count() < 6 {
        received.extend_from_slice(&stream.chunk().await.unwrap().unwrap());
    }
    drop(stream);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let resp = post(&client, &url, TENANT, &chat_body("fast", false)).await;
        assert_eq!(resp.status(), 200);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    // The records wait in the sink's queue: PostgreSQL has none of them yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (report, row) = usage_of(&url, "tenant").await;
    assert_eq!(report["source"], "postgres", "{report}");
    assert!(row.is_null(), "nothing written before shutdown: {report}");
    assert_eq!(gw.terminate().code(), Some(0));

    let rows = pg.psql(
        "SELECT request_id, outcome, estimated, output_tokens, cost_usd > 0 FROM prism_usage \
         ORDER BY started_at",
    );
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 6, "{rows:?}");
    let left = rows.iter().find(|r| r[0] == left_id).expect("the left stream's record");
    assert_eq!(left[1], "client_gone", "{left:?}");
    assert_eq!(left[2], "t", "the tokens of a left stream are an estimate");
    let out: u64 = left[3].parse().unwrap();
    assert!((1..24).contains(&out), "billed {out} output tokens for part of a 24-token answer");
    assert_eq!(left[4], "t");
    for id in &ids {
        let row = rows.iter().find(|r| r[0] == id).expect("every whole answer is recorded");
        assert_eq!(&row[1..4], ["completed", "f", "24"], "{row:?}");
    }

    // A restarted instance reads the same records back through /v1/usage.
    let (_gw2, url2) = gateway(&config(&slow, &fast, "{ rpm = 1000 }", &usage));
    let (report, row) = usage_of(&url2, "tenant").await;
    assert_eq!(report["source"], "postgres", "{report}");
    assert_eq!(row["requests"], 6, "{report}");
    assert_eq!(row["estimated_requests"], 1, "{report}");
    assert_eq!(row["output_tokens"].as_u64().unwrap(), 5 * 24 + out, "{report}");

    // `prism usage` prints the same totals; a key that is not an admin's is refused.
    let usage = |key: &str| {
        Command::new(PRISM)
            .env_clear()
            .env("PRISM_API_KEY", key)
            .args(["usage", "--base-url", &url2])
            .output()
            .unwrap()
    };
    let printed = usage(ADMIN);
    let table = String::from_utf8(printed.stdout).unwrap();
    assert!(printed.status.success(), "{table}");
    assert!(table.contains("(postgres)"), "{table}");
    let fast = table.lines().find(|l| l.starts_with("tenant") && l.contains(" fast ")).unwrap();
    assert_eq!(fast.split_whitespace().nth(2), Some("5"), "{table}");
    assert!(table.lines().last().unwrap().starts_with("total"), "{table}");
    let refused = usage(TENANT);
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("403") && stderr.contains("admin key"), "{stderr}");
}

/// Redis killed mid-test: an instance configured `fail_open` keeps serving without limits, one
/// configured `fail_closed` answers 503 at once — neither hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_follows_the_failure_mode() {
    let Some(mut redis) = RedisServer::start() else { return };
    let (_sim, sim) = simulator(0);
    let (_open, open) =
        gateway(&config(&sim, &sim, "{ rpm = 1000 }", &usage_redis(&redis, "fail_open")));
    let (_closed, closed) =
        gateway(&config(&sim, &sim, "{ rpm = 1000 }", &usage_redis(&redis, "fail_closed")));
    let client = reqwest::Client::new();
    for url in [&open, &closed] {
        let resp = post(&client, url, TENANT, &chat_body("fast", false)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "1000");
    }
    redis.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let resp = post(&client, &open, TENANT, &chat_body("fast", false)).await;
        assert_eq!(resp.status(), 200, "fail_open serves without its counters");
        assert!(!resp.headers().contains_key("x-ratelimit-limit-requests"));
        let resp = post(&client, &closed, TENANT, &chat_body("fast", false)).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "limits_unavailable", "{body}");
        assert!(started.elapsed() < Duration::from_secs(3), "a down Redis must not hang requests");
    }
    let metrics = client.get(format!("{open}/metrics")).send().await.unwrap().text().await.unwrap();
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("prism_ledger_errors_total{backend=\"redis\",op=\"admit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "{metrics}");
}

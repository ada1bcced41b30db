//! Ten thousand idle keep-alive connections against a real `prism serve` process: it holds them
//! in bounded memory, keeps serving well-behaved clients, and lets every descriptor go when the
//! clients leave.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prism_testkit::ChildGuard;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PRISM: &str = env!("CARGO_BIN_EXE_prism");
const KEY: &str = "sk-prism-connections-test";
const IDLE_CONNECTIONS: usize = 10_000;

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0)
}

/// One keep-alive `GET /health`, answered; the connection stays open.
async fn idle_connection(addr: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nhost: prism\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    conn
}

async fn streamed_chat(client: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let resp = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"model": "demo/openai", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_keep_alive_connections_cost_bounded_memory_and_block_nobody() {
    // This process holds the client ends: raise its own soft limit as `prism serve` does.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum },
    );
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= IDLE_CONNECTIONS as u64 + 1000,
        "the hard open-file limit ({hard}) is too low for this test"
    );
    let mut cmd = Command::new(PRISM);
    cmd.env_clear()
        .env("RUST_LOG", "warn")
        .env("PRISM_DEV_KEY", KEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::null());
    let (child, url) = ChildGuard::spawn_with_url(&mut cmd);
    let pid = child.0.id();
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let mut baseline = Duration::ZERO;
    // The embedded default paces its demo streams for humans (about 1.5 s each): few suffice.
    for _ in 0..2 {
        baseline = baseline.max(streamed_chat(&client, &url).await);
    }
    let rss_before = status_field(pid, "VmRSS:");
    let fds_before = open_descriptors(pid);

    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    while idle.len() < IDLE_CONNECTIONS {
        let batch = (0..500).map(|_| idle_connection(&addr));
        idle.extend(futures::future::join_all(batch).await);
    }
    let rss_held = status_field(pid, "VmRSS:");
    let fds_held = open_descriptors(pid);
    assert!(fds_held >= fds_before + IDLE_CONNECTIONS, "{fds_held} descriptors");
    let per_connection_kib = (rss_held.saturating_sub(rss_before)) as f64 / IDLE_CONNECTIONS as f64;
    eprintln!(
        "{IDLE_CONNECTIONS} idle connections: RSS {rss_before} -> {rss_held} KiB \
         ({per_connection_kib:.1} KiB each), descriptors {fds_before} -> {fds_held}"
    );
    // hyper's idle connection keeps its read buffer and task: a few KiB, not a stream's worth.
    assert!(per_connection_kib < 32.0, "{per_connection_kib:.1} KiB per idle connection");

    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        slowest = slowest.max(streamed_chat(&client, &url).await);
    }
    assert!(
        slowest < baseline * 20 + Duration::from_millis(500),
        "a request took {slowest:?} with {IDLE_CONNECTIONS} idle connections (baseline {baseline:?})"
    );

    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_descriptors(pid) > fds_before + 50 {
        assert!(Instant::now() < deadline, "{} descriptors still open", open_descriptors(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
}

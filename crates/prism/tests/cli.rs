//! The `prism` binary end to end: `check-config` on the documented example, and the README's
//! `prism serve` (embedded default, no config, no provider key) answering the README's curl.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const PRISM: &str = env!("CARGO_BIN_EXE_prism");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/prism.toml");

/// Environment for the example file: every variable it references.
fn example_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PRISM_BACKEND_KEY_SHA256", "ab".repeat(32))
        .env("PRISM_NOTEBOOK_KEY", "sk-prism-notebook-key")
        .env("OPENAI_API_KEY", "sk-test")
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("GEMINI_API_KEY", "gemini-test")
        .env("GOOGLE_CLOUD_PROJECT", "my-project")
        .env("VERTEX_ACCESS_TOKEN", "ya29.test")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret-test")
}

#[test]
fn check_config_accepts_the_documented_example() {
    let out =
        example_env(&mut Command::new(PRISM)).args(["check-config", EXAMPLE]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(": ok (listen 127.0.0.1:8080, 2 keys, 4 models, 6 deployments)"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_the_missing_variable() {
    let out = example_env(&mut Command::new(PRISM))
        .env_remove("ANTHROPIC_API_KEY")
        .args(["check-config", EXAMPLE])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "providers.anthropic.api_key: environment variable ANTHROPIC_API_KEY is not set"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-test"), "no secret in errors: {stderr}");
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_config_streams_the_readme_request() {
    let mut child = Child(
        Command::new(PRISM)
            .env_clear()
            .env("PRISM_DEV_KEY", "sk-prism-readme-test")
            .env("RUST_LOG", "warn")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        while let Some(Ok(line)) = lines.next() {
            let done = line.starts_with("Try it:");
            banner.push(line);
            if done {
                break;
            }
        }
        banner
    });
    let banner = tokio::time::timeout(Duration::from_secs(20), banner).await.unwrap().unwrap();
    let text = banner.join("\n");
    assert!(text.contains("Development key: sk-prism-readme-test"), "{text}");
    assert!(text.contains("demo/openai, demo/anthropic, demo/gemini, demo/bedrock"), "{text}");
    let url =
        text.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).unwrap().to_owned();

    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("Authorization", "Bearer sk-prism-readme-test")
        .header("content-type", "application/json")
        .body(r#"{"model":"demo/anthropic","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("data: {"), "{body}");
    assert!(body.contains("\"delta\":{\"content\":\""), "content deltas: {body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
}

/// Starts `prism serve` on the embedded default with a fixed dev key; returns it and its URL.
async fn start_demo(key: &str) -> (Child, String) {
    let mut child = Child(
        Command::new(PRISM)
            .env_clear()
            .env("PRISM_DEV_KEY", key)
            .env("RUST_LOG", "warn")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let lines = BufReader::new(stdout).lines();
        for line in lines.map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:"))
            {
                return url.to_owned();
            }
        }
        panic!("no URL in the banner");
    });
    let url = tokio::time::timeout(Duration::from_secs(20), url).await.unwrap().unwrap();
    (child, url)
}

fn chat(url: &str, key: &str, args: &[&str]) -> std::process::Output {
    Command::new(PRISM)
        .env_clear()
        .env("PRISM_API_KEY", key)
        .env("PRISM_BASE_URL", url)
        .arg("chat")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_an_answer_with_usage_and_fails_clearly() {
    let key = "sk-prism-chat-test";
    let (_server, url) = start_demo(key).await;
    let url2 = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        chat(&url2, key, &["--model", "demo/gemini", "--usage", "Say hello"])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    // The Gemini text_basic fixture's answer, reassembled from its deltas.
    assert!(stdout.starts_with("Hello there!"), "{stdout}");
    assert!(stderr.contains("usage: prompt "), "{stderr}");

    // Non-streaming, prompt from stdin.
    let mut child = Command::new(PRISM)
        .env_clear()
        .env("PRISM_API_KEY", key)
        .env("PRISM_BASE_URL", &url)
        .args(["chat", "--model", "demo/openai", "--no-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"Say hello").unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());

    // An unknown model: non-zero exit and the gateway's message.
    let url3 = url.clone();
    let out = tokio::task::spawn_blocking(move || chat(&url3, key, &["--model", "no/such", "hi"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("404") && stderr.contains("no/such"), "{stderr}");

    // A wrong key: non-zero exit, and the key is not echoed.
    let out = tokio::task::spawn_blocking(move || {
        chat(&url, "sk-prism-wrong-secret", &["--model", "demo/openai", "hi"])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("sk-prism-wrong-secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_serves_native_formats_standalone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Child(
        Command::new(PRISM)
            .env_clear()
            .args(["simulate", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let body = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/messages"))
        .header("content-type", "application/json")
        .body(r#"{"model":"claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("event: message_start"), "{body}");
    assert!(body.contains("event: message_stop"), "{body}");
}

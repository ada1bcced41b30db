//! The `prism` binary end to end: `check-config` on the documented example, and the README's
//! `prism serve` (embedded default, no config, no provider key) answering the README's curl.

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

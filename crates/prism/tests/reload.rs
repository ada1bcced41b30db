//! Hot reload of `prism serve --config`: SIGHUP, or `--watch` noticing the file change, applies
//! a valid file to new requests; an invalid one keeps the running configuration and is counted.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prism_testkit::ChildGuard as Proc;

const PRISM: &str = env!("CARGO_BIN_EXE_prism");
const KEY: &str = "sk-reload-test-key";

fn config(sim: &str, models: &[&str]) -> String {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\n[[keys]]\nname = \"k\"\nkey = \"{KEY}\"\n\
         [providers.sim]\nkind = \"openai\"\nbase_url = \"{sim}\"\n"
    );
    for m in models {
        text.push_str(&format!(
            "[[models]]\nname = \"{m}\"\ndeployments = [{{ provider = \"sim\", model = \"gpt-4o-mini\" }}]\n"
        ));
    }
    text
}

fn file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("prism-reload-{}-{name}.toml", std::process::id()))
}

fn gateway(path: &Path, watch: bool) -> (Proc, String) {
    let mut cmd = Command::new(PRISM);
    cmd.env_clear().env("RUST_LOG", "warn").arg("serve").arg("--config").arg(path);
    if watch {
        cmd.arg("--watch");
    }
    Proc::spawn_with_url(cmd.stderr(Stdio::null()))
}

async fn models(url: &str) -> Vec<String> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

async fn wait_for_models(url: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = models(url).await;
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "models {now:?}, expected {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(url: &str, series: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_watch_reload_valid_files_and_keep_the_running_config_on_invalid_ones() {
    let mut sim_cmd = Command::new(PRISM);
    sim_cmd.args(["simulate", "--listen", "127.0.0.1:0"]);
    let (_sim, sim) = Proc::spawn_with_url(sim_cmd.stderr(Stdio::null()));

    let hup_path = file("hup");
    std::fs::write(&hup_path, config(&sim, &["one"])).unwrap();
    let (mut hup, hup_url) = gateway(&hup_path, false);
    assert_eq!(models(&hup_url).await, ["one"]);

    // SIGHUP applies a valid file…
    std::fs::write(&hup_path, config(&sim, &["one", "two"])).unwrap();
    hup.signal("-HUP");
    wait_for_models(&hup_url, &["one", "two"]).await;
    assert_eq!(metric(&hup_url, "prism_config_reloads_total{outcome=\"ok\"}").await, 1);

    // …and keeps the running configuration when the file is invalid.
    std::fs::write(&hup_path, config(&sim, &["three"]) + "\nunknown_key = 1\n").unwrap();
    hup.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&hup_url, "prism_config_reloads_total{outcome=\"invalid\"}").await == 0 {
        assert!(Instant::now() < deadline, "the invalid reload was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(models(&hup_url).await, ["one", "two"]);
    assert!(hup.0.try_wait().unwrap().is_none(), "an invalid file must not stop the gateway");

    // `--watch` reloads on its own when the file changes.
    let watch_path = file("watch");
    std::fs::write(&watch_path, config(&sim, &["one"])).unwrap();
    let (_watch, watch_url) = gateway(&watch_path, true);
    assert_eq!(models(&watch_url).await, ["one"]);
    std::fs::write(&watch_path, config(&sim, &["two"])).unwrap();
    wait_for_models(&watch_url, &["two"]).await;
    let resp = reqwest::Client::new()
        .post(format!("{watch_url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"model": "two", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let _ = std::fs::remove_file(&hup_path);
    let _ = std::fs::remove_file(&watch_path);
}

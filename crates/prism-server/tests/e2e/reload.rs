//! Hot reload: a new configuration applies to the requests that start after it, while a stream
//! already running finishes on the configuration it started with.

use std::time::Duration;

use prism_server::Config;
use prism_simulator::{Reply, Simulator};
use serde_json::json;

use crate::support::{Harness, KEY, Opts, Streamed, config_toml, error_body};

fn config(sim: &str, extra: &str) -> Config {
    let mut toml = config_toml(sim, &Opts::default());
    toml.push_str(extra);
    Config::from_toml(&toml, &|_| None).unwrap()
}

#[tokio::test]
async fn new_requests_see_the_new_config_and_open_streams_finish_on_theirs() {
    let sim = Simulator::start().await.unwrap();
    let base = sim.base_url();
    let h = Harness::with_config(sim, config(&base, "")).await;
    // A slow stream starts on the first configuration…
    h.sim.push_behavior(
        Reply::text("Project Falcon ships on Friday, as planned.")
            .delay(Duration::from_millis(40))
            .into(),
    );
    let mut open = h.chat("gpt", true, json!({})).await;
    assert_eq!(open.status(), 200);
    let first = open.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));

    // …and the second adds a model and an output guardrail that would cut that stream.
    let extra = r#"
[[models]]
name = "gpt-next"
deployments = [{ provider = "oa", model = "gpt-4o-mini" }]

[[guardrails.rules]]
name = "codename"
kind = "keywords"
words = ["Project Falcon"]
mode = "enforce"
stage = "output"
"#;
    h.server.reloader().reload(config(&base, extra)).unwrap();

    let mut rest = Vec::new();
    while let Some(chunk) = open.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "the open stream keeps its configuration: {rest}");
    assert!(rest.contains("Friday"), "{rest}");

    // New requests: the new model exists, and the new guardrail applies.
    let models: serde_json::Value = h
        .client
        .get(h.url("/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models["data"].as_array().unwrap().iter().any(|m| m["id"] == "gpt-next"), "{models}");
    let resp = h.chat("gpt-next", false, json!({})).await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    h.sim.push_behavior(Reply::text("Project Falcon ships on Friday.").into());
    let cut = Streamed::read(h.chat("gpt", true, json!({})).await).await;
    assert!(!cut.done, "the new guardrail ends the stream: {}", cut.raw);
    assert!(cut.error().is_some(), "{}", cut.raw);

    // Reloading back removes the model again.
    h.server.reloader().reload(config(&base, "")).unwrap();
    let (status, _, _) = error_body(h.chat("gpt-next", false, json!({})).await).await;
    assert_eq!(status, 404);
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("prism_config_reloads_total{outcome=\"ok\"} 2"), "{metrics}");
}

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

/// Reload under load: 200 streams open across a reload all finish, byte for byte the same
/// answer, on the deployment they started with; the next request takes the new route; a file
/// that fails validation changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_finish_on_the_old_routes_while_new_requests_take_the_new_ones() {
    const STREAMS: usize = 200;
    let sim = Simulator::start().await.unwrap();
    let base = sim.base_url();
    let h = Harness::with_config(sim, config(&base, "")).await;
    let text = "one two three four five six seven eight";
    for _ in 0..STREAMS {
        h.sim.push_behavior(Reply::text(text).delay(Duration::from_millis(150)).into());
    }
    let mut open = Vec::new();
    for _ in 0..STREAMS {
        let client = h.client.clone();
        let url = h.url("/v1/chat/completions");
        open.push(tokio::spawn(async move {
            let mut resp = client
                .post(url)
                .bearer_auth(KEY)
                .json(&json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            let provider = resp.headers()["x-prism-provider"].to_str().unwrap().to_owned();
            let mut raw = Vec::new();
            raw.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
            (resp, provider, raw)
        }));
    }
    let mut started = Vec::new();
    for task in open {
        started.push(task.await.unwrap());
    }
    // Every stream is open; now "gpt" moves to the Anthropic deployment.
    assert_eq!(
        h.server.metrics().active_streams(),
        STREAMS as i64,
        "all streams open at the reload"
    );
    let mut moved = config(&base, "");
    moved.models.iter_mut().find(|m| m.name == "gpt").unwrap().deployments =
        moved.model("claude").unwrap().deployments.clone();
    h.server.reloader().reload(moved).unwrap();

    let mut finished = Vec::new();
    for (mut resp, provider, mut raw) in started {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            raw.extend_from_slice(&chunk);
        }
        finished.push((provider, String::from_utf8(raw).unwrap()));
    }
    let normalize = |raw: &str| -> String {
        crate::support::parse_sse(raw)
            .into_iter()
            .map(|e| match e {
                crate::support::Sse::Data(d) if d != "[DONE]" => {
                    let mut v: serde_json::Value = serde_json::from_str(&d).unwrap();
                    v["id"] = json!("-");
                    v["created"] = json!(0);
                    v.to_string()
                }
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = normalize(&finished[0].1);
    for (provider, raw) in &finished {
        assert_eq!(provider, "oa", "the stream started on the OpenAI deployment");
        assert!(raw.ends_with("data: [DONE]\n\n"), "{raw}");
        assert_eq!(normalize(raw), first, "every stream carries the same answer");
    }
    assert!(first.contains("eight"), "{first}");

    let after = h.chat("gpt", false, json!({})).await;
    assert_eq!(after.headers()["x-prism-provider"], "an", "the next request takes the new route");
    after.bytes().await.unwrap();

    // A file that fails validation is never applied.
    let broken = Config::from_toml("listen = 12\n", &|_| None).unwrap_err();
    h.server.reloader().rejected(&broken);
    let still = h.chat("gpt", false, json!({})).await;
    assert_eq!(still.headers()["x-prism-provider"], "an");
    still.bytes().await.unwrap();
    let metrics = h.client.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("prism_config_reloads_total{outcome=\"invalid\"} 1"), "{metrics}");
}

//! The response cache end to end: the gateway in-process in front of the upstream simulator,
//! which counts the calls that got past the cache. The Redis tests start a real `redis-server`
//! on a free port when one is installed (see [`RedisServer::start`]).

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use prism_server::{
    Caller, Config, EmbeddedOptions, HookRejection, Hooks, OutputFilter, OutputFilterFactory,
    Server, ServerHandle,
};
use prism_simulator::{Behavior, Reply, Simulator};
use prism_testkit::{RedisServer, free_port};
use prism_types::{ChatCompletion, ChatRequest, ErrorObject};
use serde_json::{Value, json};

const KEY_A: &str = "sk-prism-cache-team-a";
const KEY_B: &str = "sk-prism-cache-team-b";

/// Two tenants, an OpenAI and an Anthropic upstream on the simulator, one model per cache
/// setting, no retries (so one failed request is one upstream call), and `cache` appended as
/// the `[cache]` section.
fn config_toml(sim: &str, cache: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"

[[keys]]
name = "team-a"
key = "{KEY_A}"

[[keys]]
name = "team-b"
key = "{KEY_B}"

[providers.oa]
kind = "openai"
base_url = "{sim}"
api_key = "sk-upstream-openai"

[providers.an]
kind = "anthropic"
base_url = "{sim}"
api_key = "sk-upstream-anthropic"

[[models]]
name = "gpt"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]

[[models]]
name = "claude"
deployments = [{{ provider = "an", model = "claude-sonnet-4-5" }}]

[[models]]
name = "short"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
cache = {{ enabled = true, ttl_secs = 1 }}

[[models]]
name = "uncached"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
cache = {{ enabled = false }}

[retries]
max_attempts = 1

{cache}
"#
    )
}

/// One gateway in front of a simulator.
struct Gateway {
    server: ServerHandle,
    client: reqwest::Client,
}

impl Gateway {
    async fn start(sim: &Simulator, cache: &str) -> Gateway {
        Gateway::start_with(sim, cache, Hooks::default()).await
    }

    async fn start_with(sim: &Simulator, cache: &str, hooks: Hooks) -> Gateway {
        let config = Config::from_toml(&config_toml(&sim.base_url(), cache), &|_| None).unwrap();
        Gateway::from_config(config, hooks).await
    }

    async fn from_config(mut config: Config, hooks: Hooks) -> Gateway {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind_with(config, hooks).await.unwrap().spawn();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Gateway { server, client }
    }

    async fn post(&self, key: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut req = self
            .client
            .post(format!("{}/v1/chat/completions", self.server.base_url()))
            .bearer_auth(key)
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Answer::read(req.send().await.unwrap()).await
    }

    /// A non-streaming request with the first key.
    async fn ask(&self, body: &Value) -> Answer {
        self.post(KEY_A, body, &[]).await
    }

    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.server.base_url());
        self.client.get(url).send().await.unwrap().text().await.unwrap()
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    async fn read(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        Answer { status, headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-prism-cache` header.
    fn cache(&self) -> &str {
        self.header("x-prism-cache").unwrap_or("(none)")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn content(&self) -> String {
        self.json()["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
    }
}

/// Queues one distinct upstream answer per text, so each upstream call can be told apart (the
/// simulator's default answer is the same bytes every time).
fn answers(sim: &Simulator, texts: &[&str]) {
    for text in texts {
        sim.push_behavior(Reply::text(text).into());
    }
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn streaming(model: &str, text: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]})
}

/// The value of one exact series line (`name{labels}`) in a metrics exposition.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .parse()
        .unwrap()
}

fn outcome(text: &str, backend: &str, outcome: &str) -> u64 {
    metric(
        text,
        &format!("prism_cache_requests_total{{backend=\"{backend}\",outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_request_is_served_from_the_cache() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;

    let first = gw.ask(&chat("gpt", "Say hello")).await;
    assert_eq!((first.status, first.cache()), (200, "miss"), "{}", first.body);
    assert_eq!(first.header("x-prism-attempts"), Some("1"));
    assert_eq!(first.header("x-prism-provider"), Some("oa"));
    let second = gw.ask(&chat("gpt", "Say hello")).await;
    assert_eq!((second.status, second.cache()), (200, "hit"));
    assert_eq!(second.body, first.body, "a hit returns the stored bytes, id included");
    assert_eq!(second.header("x-prism-attempts"), Some("0"));
    assert_eq!(second.header("x-prism-provider"), None);
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(sim.requests(), 1);

    // Field order, `stream: false` and transport-only fields do not change the key…
    let reordered = json!({
        "user": "someone-else",
        "stream": false,
        "messages": [{"content": "Say hello", "role": "user"}],
        "model": "gpt",
    });
    let third = gw.ask(&reordered).await;
    assert_eq!((third.cache(), third.body.as_str()), ("hit", first.body.as_str()));
    // …but a parameter that changes the answer does, and so does the model.
    let mut warmer = chat("gpt", "Say hello");
    warmer["temperature"] = json!(0.7);
    assert_eq!(gw.ask(&warmer).await.cache(), "miss");
    let claude = gw.ask(&chat("claude", "Say hello")).await;
    assert_eq!((claude.status, claude.cache()), (200, "miss"));
    assert_eq!(claude.json()["model"], "claude");
    assert_eq!(gw.ask(&chat("claude", "Say hello")).await.body, claude.body);
    assert_eq!(sim.requests(), 3);

    let text = gw.metrics().await;
    assert_eq!(outcome(&text, "memory", "hit"), 3);
    assert_eq!(outcome(&text, "memory", "miss"), 3);
    assert_eq!(outcome(&text, "memory", "coalesced"), 0);
    assert_eq!(metric(&text, "prism_cache_stores_total{backend=\"memory\"}"), 3);
    assert_eq!(metric(&text, "prism_cache_errors_total{backend=\"memory\"}"), 0);
    assert_eq!(
        metric(
            &text,
            "prism_requests_total{protocol=\"chat_completions\",model=\"gpt\",provider=\"cache\",status=\"200\"}"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_requests_bypass_the_cache_entirely() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;

    for n in 1..=2 {
        let s = gw.ask(&streaming("gpt", "Stream it")).await;
        assert_eq!(s.status, 200);
        assert!(s.body.ends_with("data: [DONE]\n\n"), "{}", s.body);
        assert_eq!(s.cache(), "bypass");
        assert_eq!(sim.requests(), n, "every stream goes upstream");
    }
    // Nothing was stored by the streams: the identical non-streaming request misses.
    let whole = gw.ask(&chat("gpt", "Stream it")).await;
    assert_eq!((whole.status, whole.cache()), (200, "miss"));
    assert_eq!(gw.ask(&chat("gpt", "Stream it")).await.cache(), "hit");
    assert_eq!(sim.requests(), 3);
    // And a stored answer is never replayed to a stream.
    let s = gw.ask(&streaming("gpt", "Stream it")).await;
    assert_eq!((s.status, s.cache()), (200, "bypass"));
    assert!(s.body.starts_with("data: "), "{}", s.body);
    assert_eq!(sim.requests(), 4);

    let text = gw.metrics().await;
    assert_eq!(outcome(&text, "memory", "bypass"), 0, "streams never reach the cache");
    assert_eq!(metric(&text, "prism_cache_stores_total{backend=\"memory\"}"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_share_entries_unless_configured() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;
    let body = chat("gpt", "Same question");
    answers(&sim, &["for team-a", "for team-b"]);
    let a = gw.post(KEY_A, &body, &[]).await;
    let b = gw.post(KEY_B, &body, &[]).await;
    assert_eq!((a.cache(), b.cache()), ("miss", "miss"));
    assert_eq!((a.content(), b.content()), ("for team-a".into(), "for team-b".into()));
    assert_eq!(gw.post(KEY_A, &body, &[]).await.body, a.body);
    assert_eq!(gw.post(KEY_B, &body, &[]).await.body, b.body);
    assert_eq!(sim.requests(), 2);

    // `namespace = "shared"`: one tenant's answer is the other's hit.
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]\nnamespace = \"shared\"").await;
    let a = gw.post(KEY_A, &body, &[]).await;
    let b = gw.post(KEY_B, &body, &[]).await;
    assert_eq!((a.cache(), b.cache()), ("miss", "hit"));
    assert_eq!(a.body, b.body);
    assert_eq!(sim.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_and_models_can_opt_out() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;
    let body = chat("short", "Expire me");
    answers(&sim, &["before", "after"]);
    let first = gw.ask(&body).await;
    assert_eq!(first.cache(), "miss");
    assert_eq!(gw.ask(&body).await.cache(), "hit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = gw.ask(&body).await;
    assert_eq!(after.cache(), "miss", "the 1 s TTL of this model has passed");
    assert_eq!((first.content(), after.content()), ("before".into(), "after".into()));
    assert_eq!(sim.requests(), 2);

    // `cache = { enabled = false }`: never looked up, never stored.
    let body = chat("uncached", "Not me");
    for _ in 0..2 {
        let answer = gw.ask(&body).await;
        assert_eq!((answer.status, answer.cache()), (200, "bypass"));
    }
    assert_eq!(sim.requests(), 4);
    assert_eq!(outcome(&gw.metrics().await, "memory", "bypass"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_no_cache_and_no_store() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;
    let body = chat("gpt", "Control me");
    answers(&sim, &["stored", "fresh", "unstored", "asked again", "again"]);
    let stored = gw.ask(&body).await;
    assert_eq!(stored.cache(), "miss");

    // no-cache: skips the lookup (the provider answers again) but refreshes the entry.
    let fresh = gw.post(KEY_A, &body, &[("cache-control", "no-cache")]).await;
    assert_eq!((fresh.status, fresh.cache()), (200, "bypass"));
    assert_eq!((stored.content(), fresh.content()), ("stored".into(), "fresh".into()));
    assert_eq!(sim.requests(), 2);
    let hit = gw.ask(&body).await;
    assert_eq!((hit.cache(), hit.body.as_str()), ("hit", fresh.body.as_str()));

    // no-store: neither looks up nor stores.
    let other = chat("gpt", "Do not keep this");
    let unstored = gw.post(KEY_A, &other, &[("cache-control", "No-Store")]).await;
    assert_eq!((unstored.status, unstored.cache()), (200, "bypass"));
    assert_eq!(gw.ask(&other).await.cache(), "miss", "no-store left nothing behind");
    // …and never serves an existing entry either.
    let again = gw.post(KEY_A, &body, &[("cache-control", "max-age=60, no-store")]).await;
    assert_eq!(again.cache(), "bypass");
    assert_eq!(again.content(), "again");
    assert_eq!(sim.requests(), 5);
    assert_eq!(gw.ask(&body).await.body, fresh.body, "no-store did not replace the entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_make_one_upstream_call() {
    let sim = Simulator::start().await.unwrap();
    let gw = Arc::new(Gateway::start(&sim, "[cache]").await);
    // A slow answer keeps the first request in flight while the other 49 arrive; if they were
    // not coalesced they would be answered at once by the simulator's default behaviour.
    sim.push_behavior(
        Reply::text("one answer for all").headers_delay(Duration::from_millis(300)).into(),
    );
    let body = chat("gpt", "Everyone asks this");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let gw = Arc::clone(&gw);
            let body = body.clone();
            tokio::spawn(async move { gw.ask(&body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(sim.requests(), 1, "one upstream call for 50 identical requests");
    assert!(answers.iter().all(|a| a.status == 200 && a.body == answers[0].body));
    assert_eq!(answers[0].content(), "one answer for all");
    let misses = answers.iter().filter(|a| a.cache() == "miss").count();
    let hits = answers.iter().filter(|a| a.cache() == "hit").count();
    assert_eq!((misses, hits), (1, 49));
    let text = gw.metrics().await;
    assert_eq!(outcome(&text, "memory", "miss"), 1);
    assert_eq!(outcome(&text, "memory", "coalesced") + outcome(&text, "memory", "hit"), 49);
    assert!(outcome(&text, "memory", "coalesced") > 0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_not_cached() {
    let sim = Simulator::start().await.unwrap();
    let gw = Gateway::start(&sim, "[cache]").await;
    let body = chat("gpt", "Fail first");
    sim.push_behavior(Behavior::status(500));
    let failed = gw.ask(&body).await;
    assert_eq!((failed.status, failed.cache()), (500, "miss"), "{}", failed.body);
    assert!(failed.json()["error"]["type"].is_string());
    let ok = gw.ask(&body).await;
    assert_eq!((ok.status, ok.cache()), (200, "miss"), "the error was not stored");
    let hit = gw.ask(&body).await;
    assert_eq!((hit.cache(), hit.body.as_str()), ("hit", ok.body.as_str()));
    assert_eq!(sim.requests(), 2);
    assert_eq!(metric(&gw.metrics().await, "prism_cache_stores_total{backend=\"memory\"}"), 1);
}

/// Blocks completions containing "forbidden" for everyone, and containing "internal" for
/// team-b: an output guardrail with rules per key.
struct Policy;

impl OutputFilterFactory for Policy {
    fn start(&self, _caller: Caller<'_>, _request: &ChatRequest) -> Option<Box<dyn OutputFilter>> {
        None
    }

    fn check_completion(
        &self,
        caller: Caller<'_>,
        _request: &ChatRequest,
        completion: &mut ChatCompletion,
        headers: &mut http::HeaderMap,
    ) -> Result<(), HookRejection> {
        let text = serde_json::to_string(&completion.choices).unwrap();
        let blocked = text.contains("forbidden")
            || (caller.key_name == "team-b" && text.contains("internal"));
        if blocked {
            return Err(HookRejection {
                status: 403,
                error: ErrorObject::new("guardrail_error", "response blocked")
                    .with_code("content_blocked"),
            });
        }
        headers.insert("x-policy-checked", http::HeaderValue::from_static("yes"));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_completions_are_not_cached_and_hits_are_checked_per_caller() {
    let sim = Simulator::start().await.unwrap();
    let hooks = Hooks { output: Some(Arc::new(Policy)), ..Hooks::default() };
    let gw = Gateway::start_with(&sim, "[cache]", hooks).await;
    let body = chat("gpt", "Tell me");
    sim.push_behavior(Reply::text("this is forbidden").into());
    let blocked = gw.ask(&body).await;
    assert_eq!((blocked.status, blocked.cache()), (403, "miss"), "{}", blocked.body);
    assert_eq!(blocked.json()["error"]["code"], "content_blocked");
    let ok = gw.ask(&body).await;
    assert_eq!((ok.status, ok.cache()), (200, "miss"), "the blocked answer was not stored");
    assert_eq!(ok.header("x-policy-checked"), Some("yes"));
    let hit = gw.ask(&body).await;
    assert_eq!((hit.status, hit.cache()), (200, "hit"));
    assert_eq!(hit.header("x-policy-checked"), Some("yes"), "hits are checked too");
    assert_eq!(sim.requests(), 2);

    // A shared namespace: team-a's stored answer is checked against team-b's rules on a hit.
    let sim = Simulator::start().await.unwrap();
    let hooks = Hooks { output: Some(Arc::new(Policy)), ..Hooks::default() };
    let gw = Gateway::start_with(&sim, "[cache]\nnamespace = \"shared\"", hooks).await;
    sim.push_behavior(Reply::text("an internal note").into());
    let a = gw.post(KEY_A, &body, &[]).await;
    assert_eq!((a.status, a.cache()), (200, "miss"));
    let b = gw.post(KEY_B, &body, &[]).await;
    assert_eq!((b.status, b.cache()), (403, "hit"), "{}", b.body);
    assert_eq!(gw.post(KEY_A, &body, &[]).await.body, a.body);
    assert_eq!(sim.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_cache_never_fails_a_request() {
    // Redis on a port nobody listens on: every cache operation fails, every request succeeds.
    let port = free_port();
    let sim = Simulator::start().await.unwrap();
    let cache = format!(
        "[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"redis://127.0.0.1:{port}\"\n\
         connect_timeout_ms = 200\nreconnect_backoff_ms = 0"
    );
    let gw = Gateway::start(&sim, &cache).await;
    let body = chat("gpt", "No cache today");
    for n in 1..=3 {
        let answer = gw.ask(&body).await;
        assert_eq!((answer.status, answer.cache()), (200, "miss"), "{}", answer.body);
        assert_eq!(sim.requests(), n);
    }
    let text = gw.metrics().await;
    assert!(metric(&text, "prism_cache_errors_total{backend=\"redis\"}") >= 3, "{text}");
    assert_eq!(metric(&text, "prism_cache_stores_total{backend=\"redis\"}"), 0);
    assert_eq!(outcome(&text, "redis", "miss"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_sharing_redis_share_entries_and_survive_its_death() {
    let Some(mut redis) = RedisServer::start() else { return };
    let sim = Simulator::start().await.unwrap();
    let cache = format!(
        "[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"{}\"\nkey_prefix = \"prism-e2e:\"\n\
         timeout_ms = 500\nreconnect_backoff_ms = 100",
        redis.url()
    );
    let one = Gateway::start(&sim, &cache).await;
    let two = Gateway::start(&sim, &cache).await;

    let body = chat("gpt", "Shared across instances");
    let first = one.ask(&body).await;
    assert_eq!((first.status, first.cache()), (200, "miss"), "{}", first.body);
    let second = two.ask(&body).await;
    assert_eq!((second.status, second.cache()), (200, "hit"), "the other instance's entry");
    assert_eq!(second.body, first.body);
    assert_eq!(sim.requests(), 1);
    // Tenants stay apart in Redis too.
    assert_eq!(two.post(KEY_B, &body, &[]).await.cache(), "miss");
    assert_eq!(sim.requests(), 2);

    redis.kill();
    for (n, gw) in [(3, &one), (4, &two), (5, &one)] {
        let answer = gw.ask(&body).await;
        assert_eq!((answer.status, answer.cache()), (200, "miss"), "{}", answer.body);
        assert_eq!(sim.requests(), n);
    }
    for gw in [&one, &two] {
        let text = gw.metrics().await;
        assert!(metric(&text, "prism_cache_errors_total{backend=\"redis\"}") >= 1, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_caches_the_demo_models() {
    let sim = Simulator::start().await.unwrap();
    let base_url = sim.base_url();
    let config = Config::embedded(EmbeddedOptions {
        simulator_url: &base_url,
        dev_key: KEY_A,
        env: &|name| (name == "OPENAI_API_KEY").then(|| "sk-upstream-real".to_owned()),
    });
    let cache = config.cache.as_ref().expect("the embedded default has a cache");
    assert_eq!(cache.backend, prism_cache::CacheBackend::Memory);
    let real = config.model("openai/gpt-4o").expect("a real model from the environment");
    assert_eq!(real.cache.map(|c| c.enabled), Some(false), "real providers are not cached");
    let gw = Gateway::from_config(config, Hooks::default()).await;
    for model in ["demo/openai", "demo/anthropic", "demo/gemini", "demo/bedrock"] {
        let first = gw.ask(&chat(model, "Say hello")).await;
        assert_eq!((first.status, first.cache()), (200, "miss"), "{model}: {}", first.body);
        let second = gw.ask(&chat(model, "Say hello")).await;
        assert_eq!((second.cache(), second.body.as_str()), ("hit", first.body.as_str()));
    }
    assert_eq!(sim.requests(), 4);
}

#[test]
fn cache_config_is_validated_by_field() {
    let env =
        |name: &str| (name == "REDIS_URL").then(|| "redis://cache.internal:6380/2".to_owned());
    let base = config_toml("http://127.0.0.1:9", "");
    let load = |cache: &str| Config::from_toml(&config_toml("http://127.0.0.1:9", cache), &env);
    let err = |cache: &str| load(cache).unwrap_err().to_string();

    let config =
        load("[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"${REDIS_URL}\"").unwrap();
    assert_eq!(config.cache.as_ref().unwrap().redis.url, "redis://cache.internal:6380/2");
    let short = config.model("short").unwrap();
    assert_eq!(short.cache.and_then(|c| c.ttl_secs), Some(1));
    assert_eq!(config.model("gpt").unwrap().cache, None, "default TTL");
    let shown = format!(
        "{:?}",
        load("[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"redis://u:hunter2@h:1\"")
            .unwrap()
    );
    assert!(shown.contains("redis://***@h:1") && !shown.contains("hunter2"), "{shown}");

    assert_eq!(err("[cache]\nmax_entries = 0"), "cache.max_entries: must be at least 1");
    assert!(err("[cache]\nmax_entrys = 5").contains("unknown field `max_entrys`"));
    assert!(err("[cache]\nbackend = \"memcached\"").contains("memcached"));
    let msg = err("[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"http://x\"");
    assert!(msg.starts_with("cache.redis.url: must start with redis://"), "{msg}");
    let msg = err("[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"redis://h:notaport\"");
    assert!(msg.starts_with("cache.redis.url: "), "{msg}");
    let msg = Config::from_toml(
        &format!("{}\n[cache]", base.replace("ttl_secs = 1", "ttl_secs = 0")),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(msg.starts_with("models[2].cache.ttl_secs: must be between 1"), "{msg}");

    // A model's cache table without a [cache] section would silently do nothing.
    assert_eq!(
        Config::from_toml(&base, &env).unwrap_err().to_string(),
        "models[2].cache: caching is enabled for this model but there is no [cache] section"
    );
    let without = base.replace("cache = { enabled = true, ttl_secs = 1 }", "");
    let config = Config::from_toml(&without, &env).unwrap();
    assert!(config.cache.is_none(), "no [cache], no cache");
    assert_eq!(config.model("uncached").unwrap().cache.map(|c| c.enabled), Some(false));
}

#[test]
fn the_example_configuration_has_a_cache() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/prism.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let env = |name: &str| match name {
        "PRISM_LISTEN" | "AWS_SESSION_TOKEN" | "REDIS_URL" => None,
        "PRISM_BACKEND_KEY_SHA256" => Some("ab".repeat(32)),
        _ => Some(format!("test-value-of-{name}")),
    };
    let config = Config::from_toml(&text, &env).unwrap_or_else(|e| panic!("{e}"));
    let cache = config.cache.expect("the example shows [cache]");
    assert_eq!(cache.backend, prism_cache::CacheBackend::Memory);
    assert!(config.models.iter().any(|m| m.cache.is_some_and(|c| !c.enabled)));
    assert!(config.models.iter().any(|m| m.cache.is_some_and(|c| c.ttl_secs.is_some())));
}

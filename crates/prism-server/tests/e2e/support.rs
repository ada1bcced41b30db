//! Test harness: a simulator for every provider, the gateway in-process on an ephemeral port in
//! front of it, and helpers to send requests and read SSE responses.

use std::time::Duration;

use prism_server::{Config, Hooks, Server, ServerHandle};
use prism_simulator::Simulator;
use serde_json::{Value, json};

pub(crate) const KEY: &str = "sk-prism-test-full";
pub(crate) const LIMITED_KEY: &str = "sk-prism-test-limited";
/// Provider credentials in the test config: none of them may ever reach a client.
pub(crate) const UPSTREAM_SECRETS: [&str; 5] = [
    "sk-upstream-openai-secret",
    "sk-ant-upstream-secret",
    "gemini-upstream-secret",
    "vertex-upstream-token",
    "bedrock-upstream-secret",
];

/// Knobs a test may turn; the defaults keep every test fast.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) first_token_ms: u64,
    pub(crate) idle_ms: u64,
    pub(crate) total_ms: u64,
    pub(crate) keepalive_ms: u64,
    pub(crate) shutdown_grace_ms: u64,
    pub(crate) max_body_bytes: u64,
    pub(crate) max_attempts: u32,
    pub(crate) max_concurrent_requests: u64,
    pub(crate) usage_on_finish: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            first_token_ms: 3000,
            idle_ms: 3000,
            total_ms: 10_000,
            keepalive_ms: 15_000,
            shutdown_grace_ms: 3000,
            max_body_bytes: 1 << 20,
            max_attempts: 2,
            max_concurrent_requests: 1024,
            usage_on_finish: true,
        }
    }
}

pub(crate) fn config_toml(sim: &str, o: &Opts) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
usage_on_finish = {usage_on_finish}

[[keys]]
name = "full"
key = "{KEY}"
models = ["*"]

[[keys]]
name = "limited"
key_sha256 = "{limited_sha}"
models = ["gpt"]

[providers.oa]
kind = "openai"
base_url = "{sim}"
api_key = "sk-upstream-openai-secret"

[providers.oar]
kind = "openai"
base_url = "{sim}"
api_key = "sk-upstream-openai-secret"
responses_api = true

[providers.an]
kind = "anthropic"
base_url = "{sim}"
api_key = "sk-ant-upstream-secret"

[providers.ge]
kind = "gemini"
base_url = "{sim}"
api_key = "gemini-upstream-secret"

[providers.vx]
kind = "vertex"
base_url = "{sim}"
region = "us-central1"
project = "test-project"
access_token = "vertex-upstream-token"

[providers.br]
kind = "bedrock"
base_url = "{sim}"
region = "us-east-1"
access_key_id = "AKIDTESTUPSTREAM"
secret_access_key = "bedrock-upstream-secret"

[providers.dead]
kind = "openai"
base_url = "http://127.0.0.1:1"

[[models]]
name = "dead-then-gpt"
deployments = [
  {{ provider = "dead", model = "gpt-4o-mini" }},
  {{ provider = "oa", model = "gpt-4o-mini" }},
]

[[models]]
name = "gpt"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]

[[models]]
name = "gpt-responses"
deployments = [{{ provider = "oar", model = "gpt-4o-mini" }}]

[[models]]
name = "claude"
deployments = [{{ provider = "an", model = "claude-sonnet-4-5" }}]

[[models]]
name = "gemini"
deployments = [{{ provider = "ge", model = "gemini-2.5-flash" }}]

[[models]]
name = "vertex"
deployments = [{{ provider = "vx", model = "gemini-2.5-flash" }}]

[[models]]
name = "bedrock"
deployments = [{{ provider = "br", model = "anthropic.claude-sonnet-4-5-v1:0" }}]

[[models]]
name = "bedrock-invoke"
deployments = [{{ provider = "br", model = "anthropic.claude-sonnet-4-5-v1:0", bedrock_invoke = true }}]

[[models]]
name = "fallback"
deployments = [
  {{ provider = "an", model = "claude-sonnet-4-5" }},
  {{ provider = "oa", model = "gpt-4o-mini" }},
]

[[models]]
name = "ttft-fallback"
deployments = [
  {{ provider = "an", model = "claude-sonnet-4-5", ttft_deadline_ms = 200 }},
  {{ provider = "oa", model = "gpt-4o-mini" }},
]

[timeouts]
connect_ms = 1000
first_token_ms = {first_token_ms}
idle_ms = {idle_ms}
total_ms = {total_ms}
keepalive_ms = {keepalive_ms}
shutdown_grace_ms = {shutdown_grace_ms}

[limits]
max_body_bytes = {max_body_bytes}
max_concurrent_requests = {max_concurrent_requests}

[retries]
max_attempts = {max_attempts}
backoff_base_ms = 10
backoff_max_ms = 40
max_retry_after_ms = 1500
"#,
        usage_on_finish = o.usage_on_finish,
        limited_sha = sha256_hex(LIMITED_KEY),
        first_token_ms = o.first_token_ms,
        idle_ms = o.idle_ms,
        total_ms = o.total_ms,
        keepalive_ms = o.keepalive_ms,
        shutdown_grace_ms = o.shutdown_grace_ms,
        max_body_bytes = o.max_body_bytes,
        max_concurrent_requests = o.max_concurrent_requests,
        max_attempts = o.max_attempts,
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub(crate) struct Harness {
    pub(crate) sim: Simulator,
    pub(crate) server: ServerHandle,
    pub(crate) client: reqwest::Client,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        Harness::start_with(Opts::default()).await
    }

    pub(crate) async fn start_with(opts: Opts) -> Harness {
        Harness::start_full(opts, Hooks::default()).await
    }

    pub(crate) async fn start_full(opts: Opts, hooks: Hooks) -> Harness {
        let sim = Simulator::start().await.unwrap();
        let config = Config::from_toml(&config_toml(&sim.base_url(), &opts), &|_| None).unwrap();
        let server = Server::bind_with(config, hooks).await.unwrap().spawn();
        Harness { sim, server, client: client() }
    }

    /// A harness over an arbitrary config (its `listen` is replaced by an ephemeral port).
    pub(crate) async fn with_config(sim: Simulator, mut config: Config) -> Harness {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(config).await.unwrap().spawn();
        Harness { sim, server, client: client() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// POSTs a chat request with the full key; `extra` is merged into the body.
    pub(crate) async fn chat(&self, model: &str, stream: bool, extra: Value) -> reqwest::Response {
        self.chat_with_key(KEY, model, stream, extra).await
    }

    pub(crate) async fn chat_with_key(
        &self,
        key: &str,
        model: &str,
        stream: bool,
        extra: Value,
    ) -> reqwest::Response {
        let mut body = json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "Say hello"}],
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// One item of an SSE response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sse {
    Data(String),
    Comment(String),
}

/// Splits a complete SSE body into events (the gateway writes `\n` line endings only).
pub(crate) fn parse_sse(text: &str) -> Vec<Sse> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(d) = line.strip_prefix("data: ") {
                data.push(d);
            } else if let Some(c) = line.strip_prefix(':') {
                out.push(Sse::Comment(c.trim().to_owned()));
            } else {
                panic!("unexpected SSE line {line:?} in {text:?}");
            }
        }
        if !data.is_empty() {
            out.push(Sse::Data(data.join("\n")));
        }
    }
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "the body must end at an event boundary: {text:?}"
    );
    out
}

/// What a streamed response came to.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) raw: String,
    pub(crate) events: Vec<Sse>,
    /// Parsed JSON of every data event except `[DONE]`.
    pub(crate) chunks: Vec<Value>,
    pub(crate) done: bool,
}

impl Streamed {
    pub(crate) async fn read(resp: reqwest::Response) -> Streamed {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.text().await.unwrap();
        let events = parse_sse(&raw);
        let mut chunks = Vec::new();
        let mut done = false;
        for (i, e) in events.iter().enumerate() {
            if let Sse::Data(d) = e {
                if d == "[DONE]" {
                    assert_eq!(i, events.len() - 1, "[DONE] must be the last event");
                    done = true;
                } else {
                    chunks.push(
                        serde_json::from_str(d).unwrap_or_else(|e| panic!("bad JSON {d:?}: {e}")),
                    );
                }
            }
        }
        Streamed { status, headers, raw, events, chunks, done }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The concatenated `delta.content` of choice 0.
    pub(crate) fn content(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| c["choices"].as_array())
            .flat_map(|choices| choices.iter())
            .filter(|c| c["index"] == 0)
            .filter_map(|c| c["delta"]["content"].as_str())
            .collect()
    }

    /// The `error` object of the final event, when the stream ended with one.
    pub(crate) fn error(&self) -> Option<&Value> {
        self.chunks.last().and_then(|c| c.get("error"))
    }

    pub(crate) fn finish_reasons(&self) -> Vec<String> {
        self.chunks
            .iter()
            .filter_map(|c| c["choices"].as_array())
            .flat_map(|choices| choices.iter())
            .filter_map(|c| c["finish_reason"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Reads an error response and checks the OpenAI error shape.
pub(crate) async fn error_body(
    resp: reqwest::Response,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    let err = &body["error"];
    assert!(err["message"].is_string(), "{body}");
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "param and code must be present: {body}"
    );
    for secret in UPSTREAM_SECRETS.iter().chain([&KEY, &LIMITED_KEY]) {
        assert!(!text.contains(secret), "secret in error body: {text}");
    }
    (status, headers, body)
}

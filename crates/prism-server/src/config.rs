//! Configuration: the `prism.toml` file with `${ENV_VAR}` interpolation, its validation into a
//! resolved [`Config`], and the embedded default used when no file is given.
//!
//! Every error names the field at fault (`providers.anthropic.api_key: …`) and never echoes a
//! secret value.

mod embedded;
mod raw;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prism_cache::{CacheBackend, CacheConfig, CacheError, ModelCacheConfig};
use prism_ledger::{FailureMode, LimitSpec, Pricing, SinkConfig};
use prism_providers::{Credentials, Deployment, ProviderKind, Secret};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::guardrails::GuardrailPolicy;
pub use embedded::{
    BARE_MODELS, DEMO_MODELS, EmbeddedOptions, demo_provider_label, generate_dev_key,
};

/// The default listen address, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A looked-up environment variable; tests pass a map instead of touching the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`EnvLookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A configuration problem, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape (unknown keys, wrong types).
    #[error("{message}")]
    Parse {
        /// The TOML parser's description, with line and column.
        message: String,
    },
    /// A value is missing or wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `models[0].deployments[1].provider`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A `${VAR}` reference names an unset environment variable.
    #[error("{field}: environment variable {var} is not set")]
    MissingEnv {
        /// Dotted path of the field.
        field: String,
        /// The variable.
        var: String,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), message: message.into() }
    }
}

/// The resolved, validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Client keys.
    pub keys: Vec<ClientKey>,
    /// Public models, in file order.
    pub models: Vec<ModelRoute>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Size and concurrency limits.
    pub limits: Limits,
    /// Retry and back-off policy.
    pub retries: RetryPolicy,
    /// When the client did not ask for `stream_options.include_usage`, put the usage on the chunk
    /// that carries `finish_reason`.
    pub usage_on_finish: bool,
    /// The response cache (`[cache]`); `None` when the section is absent.
    pub cache: Option<CacheConfig>,
    /// Guardrail rules (`[guardrails]`, and each model's and key's `guardrails`), compiled.
    pub guardrails: GuardrailPolicy,
    /// The usage ledger (`[usage]`): limit counters and record sinks.
    pub usage: UsageSettings,
    /// Prices by upstream model: the shipped table with `[pricing]` on top.
    pub pricing: Pricing,
    /// OpenTelemetry export (`[telemetry]`, or the standard `OTEL_*` variables).
    pub telemetry: TelemetryConfig,
}

/// `[telemetry]`, resolved. Export is on when an endpoint is set, in the file or as
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The OTLP collector, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318`
    /// (HTTP, the `/v1/traces` and `/v1/metrics` paths are appended). `None`: no export.
    pub endpoint: Option<String>,
    /// How to speak OTLP.
    pub protocol: OtlpProtocol,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Put prompts and completions on the request spans (off by default).
    pub capture_content: bool,
    /// How often metrics are exported.
    pub export_interval: Duration,
}

impl TelemetryConfig {
    /// The `OTEL_*` environment (endpoint, protocol, service name), no file.
    pub fn from_env(env: EnvLookup<'_>) -> Self {
        let nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        TelemetryConfig {
            endpoint: nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"),
            protocol: match nonempty("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
                Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
                _ => OtlpProtocol::Grpc,
            },
            service_name: nonempty("OTEL_SERVICE_NAME").unwrap_or_else(|| "prism".to_owned()),
            capture_content: false,
            export_interval: Duration::from_secs(10),
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc` (port 4317 by convention).
    Grpc,
    /// `http/protobuf` (port 4318 by convention).
    HttpProtobuf,
}

/// `[usage]`, resolved.
#[derive(Debug, Clone)]
pub struct UsageSettings {
    /// Where the limit counters live.
    pub counters: Counters,
    /// What admission does when the counters cannot be reached.
    pub failure_mode: FailureMode,
    /// Where usage records go (none by default; the in-memory totals are always kept).
    pub sinks: SinkConfig,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings {
            counters: Counters::Memory,
            failure_mode: FailureMode::default(),
            sinks: SinkConfig { queue_capacity: DEFAULT_USAGE_QUEUE, ..SinkConfig::default() },
        }
    }
}

/// Records each usage sink may hold while it is slow or down.
const DEFAULT_USAGE_QUEUE: usize = 10_000;

/// Where the limit counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counters {
    /// In this process: limits hold per instance.
    Memory,
    /// In Redis: limits hold across every instance sharing it.
    Redis(prism_cache::RedisConfig),
}

/// One client key: who it is and which models it may use. The key itself is kept only as its
/// SHA-256 digest.
#[derive(Clone)]
pub struct ClientKey {
    /// A label for logs (never the key).
    pub name: String,
    digest: [u8; 32],
    /// The models this key may use.
    pub models: ModelAccess,
    /// This key's limits over all models.
    pub limits: Option<LimitSpec>,
    /// This key's limits on single models, by public model name.
    pub model_limits: BTreeMap<String, LimitSpec>,
    /// May read `/v1/usage`.
    pub admin: bool,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey").field("name", &self.name).field("models", &self.models).finish()
    }
}

impl ClientKey {
    /// A key from its plain text (hashed at once).
    pub fn from_plain(name: impl Into<String>, key: &str, models: ModelAccess) -> Self {
        ClientKey {
            name: name.into(),
            digest: sha256(key.as_bytes()),
            models,
            limits: None,
            model_limits: BTreeMap::new(),
            admin: false,
        }
    }

    /// Whether this key may use the public model `model`.
    pub fn allows(&self, model: &str) -> bool {
        match &self.models {
            ModelAccess::All => true,
            ModelAccess::Only(names) => names.iter().any(|n| n == model),
        }
    }
}

/// The models a key may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelAccess {
    /// `["*"]`: every configured model.
    All,
    /// Only these public names.
    Only(Vec<String>),
}

/// A public model name and the deployments that serve it, in fallback order.
#[derive(Debug, Clone)]
pub struct ModelRoute {
    /// The name clients send as `model`.
    pub name: String,
    /// Deployments, tried in order.
    pub deployments: Vec<RouteTarget>,
    /// This model's cache settings; `None` caches it with `cache.default_ttl_secs` whenever
    /// [`Config::cache`] is set.
    pub cache: Option<ModelCacheConfig>,
    /// This model's limits over all keys.
    pub limits: Option<LimitSpec>,
}

/// One deployment of a public model.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    /// The provider's name in the config (a low-cardinality label for headers and metrics).
    pub provider: String,
    /// What the translators need to build and read the upstream request.
    pub deployment: Deployment,
    /// Time-to-first-token deadline for this deployment; the global default applies when unset.
    pub ttft_deadline: Option<Duration>,
}

/// Timeouts, all in the file as milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect to an upstream.
    pub connect: Duration,
    /// Default time-to-first-token deadline per attempt.
    pub first_token: Duration,
    /// Longest upstream silence once streaming.
    pub idle: Duration,
    /// Longest a whole request may take.
    pub total: Duration,
    /// Interval of keep-alive comments while the upstream is silent.
    pub keepalive: Duration,
    /// How long a shutdown waits for open streams.
    pub shutdown_grace: Duration,
    /// Longest a client may take to send a request's headers (slowloris); then the connection
    /// closes. Applied when the listener starts (a reload does not change it).
    pub header_read: Duration,
    /// Longest a client may take to send a request body; then a 408.
    pub request_body: Duration,
    /// Longest a response write may wait on a client that does not read; then the connection
    /// closes and its upstream with it. Applied when the listener starts.
    pub client_write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(600),
            keepalive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
            header_read: Duration::from_secs(30),
            request_body: Duration::from_secs(60),
            client_write: Duration::from_secs(30),
        }
    }
}

/// The listen backlog unless configured: Linux's default `somaxconn` since 5.4, where tokio's
/// default (1024) refuses connections when thousands of clients connect at once.
const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// Size and concurrency limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body; larger is a 413.
    pub max_body_bytes: usize,
    /// Largest upstream body read for a non-streaming request.
    pub max_response_bytes: usize,
    /// Chat completion requests (streams included) served at once; more get a 503. 0 = no limit.
    pub max_concurrent_requests: usize,
    /// Model requests one client key may have in flight in this process, so one tenant cannot
    /// take every slot; more get a 429. 0 = no limit.
    pub max_concurrent_per_key: usize,
    /// Connections the kernel queues before the gateway accepts them (`listen(2)`'s backlog,
    /// capped by `net.core.somaxconn`), so a burst of new clients is not refused or left waiting
    /// on SYN retransmits. Applied when the listener starts.
    pub listen_backlog: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            max_concurrent_requests: 4096,
            max_concurrent_per_key: 0,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

/// Retries within one deployment, before falling back to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per deployment (1 = no retry).
    pub max_attempts: u32,
    /// First back-off; it doubles per retry, with jitter.
    pub backoff_base: Duration,
    /// Largest back-off.
    pub backoff_max: Duration,
    /// Longest upstream `retry-after` the gateway waits for; a longer one moves on to the next
    /// deployment at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 2,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Reads and validates a configuration file, interpolating from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or field at fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_toml(&text, &process_env)
    }

    /// Parses and validates configuration text.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field at fault.
    pub fn from_toml(text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse { message: e.to_string() })?;
        resolve(raw, env)
    }

    /// The route of a public model.
    pub fn model(&self, name: &str) -> Option<&ModelRoute> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The client key matching `presented`, compared in constant time against every key.
    pub fn authenticate(&self, presented: &str) -> Option<&ClientKey> {
        let digest = sha256(presented.as_bytes());
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        found
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Expands `${VAR}` and `${VAR:-default}` in `value`; `$${` is a literal `${`.
fn interpolate(value: &str, field: &str, env: EnvLookup<'_>) -> Result<String, ConfigError> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                ConfigError::invalid(field, "unterminated ${…} reference (add the closing brace)")
            })?;
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(ConfigError::invalid(
                    field,
                    format!("invalid variable name {name:?} in ${{…}}"),
                ));
            }
            match env(name).filter(|v| !v.is_empty() || default.is_none()) {
                Some(v) => out.push_str(&v),
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        return Err(ConfigError::MissingEnv {
                            field: field.to_owned(),
                            var: name.to_owned(),
                        });
                    }
                },
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Interpolates an optional string field; an empty result counts as absent.
fn opt(
    value: Option<&str>,
    field: &str,
    env: EnvLookup<'_>,
) -> Result<Option<String>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = interpolate(v, field, env)?;
            Ok(if v.is_empty() { None } else { Some(v) })
        }
    }
}

fn ms(value: u64, field: &str, min: u64) -> Result<Duration, ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(field, format!("must be at least {min}")));
    }
    Ok(Duration::from_millis(value))
}

fn resolve(raw: raw::RawConfig, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let listen_text = interpolate(raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN), "listen", env)?;
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        ConfigError::invalid(
            "listen",
            format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
        )
    })?;

    let timeouts = resolve_timeouts(&raw.timeouts)?;
    let limits = resolve_limits(&raw.limits)?;
    let retries = resolve_retries(&raw.retries)?;
    let cache = resolve_cache(raw.cache.as_ref(), env)?;

    let mut providers = BTreeMap::new();
    for (name, p) in &raw.providers {
        providers.insert(name.as_str(), resolve_provider(name, p, env)?);
    }

    let mut models = Vec::with_capacity(raw.models.len());
    let mut seen = HashSet::new();
    for (i, m) in raw.models.iter().enumerate() {
        let field = format!("models[{i}]");
        let name = interpolate(&m.name, &format!("{field}.name"), env)?;
        if name.is_empty() {
            return Err(ConfigError::invalid(format!("{field}.name"), "must not be empty"));
        }
        if !seen.insert(name.clone()) {
            return Err(ConfigError::invalid(
                format!("{field}.name"),
                format!("duplicate model {name:?}"),
            ));
        }
        if m.deployments.is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}.deployments"),
                "needs at least one deployment",
            ));
        }
        let mut deployments = Vec::with_capacity(m.deployments.len());
        for (j, d) in m.deployments.iter().enumerate() {
            let dfield = format!("{field}.deployments[{j}]");
            let provider = providers.get(d.provider.as_str()).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{dfield}.provider"),
                    format!("no provider named {:?} under [providers]", d.provider),
                )
            })?;
            let upstream = interpolate(&d.model, &format!("{dfield}.model"), env)?;
            if upstream.is_empty() {
                return Err(ConfigError::invalid(format!("{dfield}.model"), "must not be empty"));
            }
            let mut deployment =
                Deployment::new(provider.kind, provider.base_url.clone(), upstream);
            deployment.credentials = provider.credentials.clone();
            deployment.region = provider.region.clone();
            deployment.project = provider.project.clone();
            deployment.supports_stream_usage = provider.stream_usage;
            deployment.supports_responses = provider.responses_api;
            deployment.default_max_tokens = d.max_tokens.unwrap_or(provider.default_max_tokens);
            if deployment.default_max_tokens == 0 {
                return Err(ConfigError::invalid(
                    format!("{dfield}.max_tokens"),
                    "must be at least 1",
                ));
            }
            if let Some(invoke) = d.bedrock_invoke {
                if provider.kind != ProviderKind::Bedrock {
                    return Err(ConfigError::invalid(
                        format!("{dfield}.bedrock_invoke"),
                        "only applies to bedrock providers",
                    ));
                }
                deployment.bedrock_invoke = invoke;
            }
            let ttft_deadline = match d.ttft_deadline_ms {
                Some(v) => Some(ms(v, &format!("{dfield}.ttft_deadline_ms"), 1)?),
                None => None,
            };
            deployments.push(RouteTarget {
                provider: d.provider.clone(),
                deployment,
                ttft_deadline,
            });
        }
        let model_cache = resolve_model_cache(m.cache, &field, cache.is_some())?;
        let limits = resolve_limit_spec(m.limits.as_ref(), &format!("{field}.limits"))?;
        models.push(ModelRoute { name, deployments, cache: model_cache, limits });
    }

    let mut keys = Vec::with_capacity(raw.keys.len());
    let mut key_names = HashSet::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let field = format!("keys[{i}]");
        if k.name.is_empty() {
            return Err(ConfigError::invalid(format!("{field}.name"), "must not be empty"));
        }
        if !key_names.insert(k.name.clone()) {
            return Err(ConfigError::invalid(
                format!("{field}.name"),
                format!("duplicate key name {:?}", k.name),
            ));
        }
        let digest = match (&k.key, &k.key_sha256) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    field,
                    "set either `key` or `key_sha256`, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    field,
                    "needs `key_sha256` (or `key` for development)",
                ));
            }
            (Some(plain), None) => {
                let plain = interpolate(plain, &format!("{field}.key"), env)?;
                if plain.len() < 8 {
                    return Err(ConfigError::invalid(
                        format!("{field}.key"),
                        "must be at least 8 characters",
                    ));
                }
                sha256(plain.as_bytes())
            }
            (None, Some(hex_digest)) => {
                let text = interpolate(hex_digest, &format!("{field}.key_sha256"), env)?;
                let mut digest = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut digest).map_err(|_| {
                    ConfigError::invalid(
                        format!("{field}.key_sha256"),
                        "must be 64 hex digits (the SHA-256 of the key, e.g. `printf %s \"$KEY\" | sha256sum`)",
                    )
                })?;
                digest
            }
        };
        let models_allowed = match &k.models {
            None => ModelAccess::All,
            Some(list) if list.iter().any(|m| m == "*") => {
                if list.len() > 1 {
                    return Err(ConfigError::invalid(
                        format!("{field}.models"),
                        "\"*\" already allows every model; list nothing else with it",
                    ));
                }
                ModelAccess::All
            }
            Some(list) => {
                for (j, m) in list.iter().enumerate() {
                    if !seen.contains(m) {
                        return Err(ConfigError::invalid(
                            format!("{field}.models[{j}]"),
                            format!("no model named {m:?} under [[models]]"),
                        ));
                    }
                }
                ModelAccess::Only(list.clone())
            }
        };
        let limits = resolve_limit_spec(k.limits.as_ref(), &format!("{field}.limits"))?;
        let mut model_limits = BTreeMap::new();
        for (model, spec) in &k.model_limits {
            let mfield = format!("{field}.model_limits.{model:?}");
            if !seen.contains(model) {
                return Err(ConfigError::invalid(mfield, "no model of this name under [[models]]"));
            }
            if let Some(spec) = resolve_limit_spec(Some(spec), &mfield)? {
                model_limits.insert(model.clone(), spec);
            }
        }
        keys.push(ClientKey {
            name: k.name.clone(),
            digest,
            models: models_allowed,
            limits,
            model_limits,
            admin: k.admin,
        });
    }
    if keys.is_empty() {
        return Err(ConfigError::invalid("keys", "at least one [[keys]] entry is required"));
    }
    let guardrails = GuardrailPolicy::resolve(
        &raw.guardrails,
        models.iter().zip(&raw.models).map(|(m, r)| (m.name.as_str(), r.guardrails.as_slice())),
        raw.keys.iter().map(|k| (k.name.as_str(), k.guardrails.as_slice())),
    )
    .map_err(|e| ConfigError::Invalid { field: e.field, message: e.message })?;

    let usage = resolve_usage(&raw.usage, cache.as_ref(), env)?;
    let telemetry = resolve_telemetry(&raw.telemetry, env)?;
    let pricing = Pricing::with_defaults(&raw.pricing).map_err(|model| {
        ConfigError::invalid(
            format!("pricing.{model:?}"),
            "prices are US dollars per million tokens: numbers, 0 or more",
        )
    })?;

    Ok(Config {
        listen,
        keys,
        models,
        timeouts,
        limits,
        retries,
        usage_on_finish: raw.usage_on_finish.unwrap_or(true),
        cache,
        guardrails,
        usage,
        pricing,
        telemetry,
    })
}

/// `[telemetry]` over the `OTEL_*` environment: the file wins where it says something.
fn resolve_telemetry(
    raw: &raw::RawTelemetry,
    env: EnvLookup<'_>,
) -> Result<TelemetryConfig, ConfigError> {
    let mut t = TelemetryConfig::from_env(env);
    if let Some(endpoint) = &raw.endpoint {
        let endpoint = interpolate(endpoint, "telemetry.endpoint", env)?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "telemetry.endpoint",
                "must be an http:// or https:// URL of an OTLP collector",
            ));
        }
        t.endpoint = Some(endpoint);
    }
    if let Some(protocol) = &raw.protocol {
        t.protocol = match protocol.as_str() {
            "grpc" => OtlpProtocol::Grpc,
            "http/protobuf" => OtlpProtocol::HttpProtobuf,
            _ => {
                return Err(ConfigError::invalid(
                    "telemetry.protocol",
                    "must be \"grpc\" or \"http/protobuf\"",
                ));
            }
        };
    }
    if let Some(name) = &raw.service_name {
        t.service_name = interpolate(name, "telemetry.service_name", env)?;
    }
    t.capture_content = raw.capture_content.unwrap_or(false);
    if let Some(ms_value) = raw.export_interval_ms {
        t.export_interval = ms(ms_value, "telemetry.export_interval_ms", 10)?;
    }
    Ok(t)
}

/// A `limits` table: checked, and `None` when it limits nothing.
fn resolve_limit_spec(
    spec: Option<&LimitSpec>,
    field: &str,
) -> Result<Option<LimitSpec>, ConfigError> {
    let Some(spec) = spec else { return Ok(None) };
    spec.validate(field).map_err(|(field, message)| ConfigError::invalid(field, message))?;
    Ok((!spec.is_empty()).then(|| spec.clone()))
}

/// `[usage]`: the counters' Redis (its own, or the cache's with a `usage:` prefix), the sinks.
fn resolve_usage(
    raw: &raw::RawUsage,
    cache: Option<&CacheConfig>,
    env: EnvLookup<'_>,
) -> Result<UsageSettings, ConfigError> {
    let counters = match raw.counters.unwrap_or(raw::RawCounters::Memory) {
        raw::RawCounters::Memory => {
            if raw.redis.is_some() {
                return Err(ConfigError::invalid(
                    "usage.redis",
                    "set usage.counters = \"redis\" to use it (the counters are in memory)",
                ));
            }
            Counters::Memory
        }
        raw::RawCounters::Redis => {
            let mut redis = match (&raw.redis, cache) {
                (Some(own), _) => own.clone(),
                (None, Some(c)) if c.backend == CacheBackend::Redis => {
                    let mut shared = c.redis.clone();
                    shared.key_prefix.push_str("usage:");
                    shared
                }
                _ => {
                    return Err(ConfigError::invalid(
                        "usage.counters",
                        "\"redis\" needs a [usage.redis] table (or a Redis [cache] to share)",
                    ));
                }
            };
            redis.url = interpolate(&redis.url, "usage.redis.url", env)?;
            redis.key_prefix = interpolate(&redis.key_prefix, "usage.redis.key_prefix", env)?;
            prism_cache::RedisStore::new(&redis).map_err(|e| match e {
                CacheError::InvalidConfig { field, reason } => {
                    ConfigError::invalid(field.replacen("cache.", "usage.", 1), reason)
                }
                other => ConfigError::invalid("usage.redis", other.to_string()),
            })?;
            Counters::Redis(redis)
        }
    };
    let queue_capacity = match raw.queue_capacity {
        None => DEFAULT_USAGE_QUEUE,
        Some(n @ 1..=1_000_000) => n as usize,
        Some(_) => {
            return Err(ConfigError::invalid(
                "usage.queue_capacity",
                "must be between 1 and 1000000",
            ));
        }
    };
    let jsonl = match &raw.jsonl {
        None => None,
        Some(j) => {
            let path = interpolate(&j.path, "usage.jsonl.path", env)?;
            if path.is_empty() {
                return Err(ConfigError::invalid(
                    "usage.jsonl.path",
                    "must not be empty (- is stdout)",
                ));
            }
            Some(prism_ledger::JsonlConfig { path })
        }
    };
    let postgres = match &raw.postgres {
        None => None,
        Some(p) => {
            let mut pg = p.clone();
            pg.url = interpolate(&pg.url, "usage.postgres.url", env)?;
            pg.validate().map_err(|(field, message)| {
                ConfigError::invalid(format!("usage.postgres.{field}"), message)
            })?;
            Some(pg)
        }
    };
    Ok(UsageSettings {
        counters,
        failure_mode: raw.failure_mode.unwrap_or_default(),
        sinks: SinkConfig { jsonl, postgres, queue_capacity },
    })
}

/// `[cache]`: interpolates the Redis URL and key prefix, then checks every bound (and that the
/// Redis URL parses, without connecting).
fn resolve_cache(
    raw: Option<&CacheConfig>,
    env: EnvLookup<'_>,
) -> Result<Option<CacheConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut cache = raw.clone();
    cache.redis.url = interpolate(&cache.redis.url, "cache.redis.url", env)?;
    cache.redis.key_prefix = interpolate(&cache.redis.key_prefix, "cache.redis.key_prefix", env)?;
    cache.validate().map_err(cache_config_error)?;
    if cache.backend == CacheBackend::Redis {
        prism_cache::RedisStore::new(&cache.redis).map_err(cache_config_error)?;
    }
    Ok(Some(cache))
}

/// A model's `cache` table. Turning caching on for a model without a `[cache]` section is an
/// error rather than a silent no-op.
fn resolve_model_cache(
    raw: Option<ModelCacheConfig>,
    field: &str,
    cache_configured: bool,
) -> Result<Option<ModelCacheConfig>, ConfigError> {
    let Some(model) = raw else { return Ok(None) };
    if model.enabled && !cache_configured {
        return Err(ConfigError::invalid(
            format!("{field}.cache"),
            "caching is enabled for this model but there is no [cache] section",
        ));
    }
    if model.validate().is_err() {
        return Err(ConfigError::invalid(
            format!("{field}.cache.ttl_secs"),
            "must be between 1 and 31536000 (one year); disable caching with enabled = false",
        ));
    }
    Ok(Some(model))
}

fn cache_config_error(e: CacheError) -> ConfigError {
    match e {
        CacheError::InvalidConfig { field, reason } => ConfigError::invalid(field, reason),
        other => ConfigError::invalid("cache", other.to_string()),
    }
}

/// A provider, resolved: everything deployments copy from it.
struct ResolvedProvider {
    kind: ProviderKind,
    base_url: String,
    credentials: Credentials,
    region: Option<String>,
    project: Option<String>,
    default_max_tokens: u64,
    stream_usage: bool,
    responses_api: bool,
}

fn resolve_provider(
    name: &str,
    p: &raw::RawProvider,
    env: EnvLookup<'_>,
) -> Result<ResolvedProvider, ConfigError> {
    let field = format!("providers.{name}");
    let f = |key: &str| format!("{field}.{key}");
    let kind = match p.kind {
        raw::RawKind::Openai => ProviderKind::OpenAi,
        raw::RawKind::Anthropic => ProviderKind::Anthropic,
        raw::RawKind::Gemini => ProviderKind::Gemini,
        raw::RawKind::Vertex => ProviderKind::Vertex,
        raw::RawKind::Bedrock => ProviderKind::Bedrock,
    };
    let kind_name = kind.as_str();
    let not_for =
        |key: &str| ConfigError::invalid(f(key), format!("not used by kind {kind_name:?}"));

    let api_key = opt(p.api_key.as_deref(), &f("api_key"), env)?;
    let access_token = opt(p.access_token.as_deref(), &f("access_token"), env)?;
    let mut region = opt(p.region.as_deref(), &f("region"), env)?;
    let project = opt(p.project.as_deref(), &f("project"), env)?;
    let access_key_id = opt(p.access_key_id.as_deref(), &f("access_key_id"), env)?;
    let secret_access_key = opt(p.secret_access_key.as_deref(), &f("secret_access_key"), env)?;
    let session_token = opt(p.session_token.as_deref(), &f("session_token"), env)?;
    let base_url = opt(p.base_url.as_deref(), &f("base_url"), env)?;

    if kind != ProviderKind::Bedrock {
        for (key, set) in [
            ("access_key_id", p.access_key_id.is_some()),
            ("secret_access_key", p.secret_access_key.is_some()),
            ("session_token", p.session_token.is_some()),
        ] {
            if set {
                return Err(not_for(key));
            }
        }
    }
    if kind != ProviderKind::Vertex {
        if p.project.is_some() {
            return Err(not_for("project"));
        }
        if p.access_token.is_some() {
            return Err(not_for("access_token"));
        }
    }
    if !matches!(kind, ProviderKind::Vertex | ProviderKind::Bedrock) && p.region.is_some() {
        return Err(not_for("region"));
    }
    if kind != ProviderKind::OpenAi && p.stream_usage.is_some() {
        return Err(not_for("stream_usage"));
    }
    if kind != ProviderKind::OpenAi && p.responses_api.is_some() {
        return Err(not_for("responses_api"));
    }
    if kind == ProviderKind::Vertex && p.api_key.is_some() {
        return Err(ConfigError::invalid(f("api_key"), "vertex authenticates with `access_token`"));
    }

    let credentials = match kind {
        ProviderKind::OpenAi | ProviderKind::Anthropic | ProviderKind::Gemini => {
            api_key.map_or(Credentials::None, |k| Credentials::ApiKey(Secret::new(k)))
        }
        ProviderKind::Vertex => {
            access_token.map_or(Credentials::None, |t| Credentials::Bearer(Secret::new(t)))
        }
        ProviderKind::Bedrock => {
            region = region.or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
            resolve_aws_credentials(
                &field,
                api_key,
                access_key_id,
                secret_access_key,
                session_token,
                env,
            )?
        }
    };

    let base_url = match (base_url, kind) {
        (Some(url), _) => url,
        (None, ProviderKind::OpenAi) => "https://api.openai.com".to_owned(),
        (None, ProviderKind::Anthropic) => "https://api.anthropic.com".to_owned(),
        (None, ProviderKind::Gemini) => "https://generativelanguage.googleapis.com".to_owned(),
        (None, ProviderKind::Vertex) => {
            let location = region.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    f("region"),
                    "vertex needs the Google Cloud location (e.g. \"us-central1\")",
                )
            })?;
            if location == "global" {
                "https://aiplatform.googleapis.com".to_owned()
            } else {
                format!("https://{location}-aiplatform.googleapis.com")
            }
        }
        (None, ProviderKind::Bedrock) => {
            let region = region.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    f("region"),
                    "bedrock needs a region (set it here, or AWS_REGION in the environment)",
                )
            })?;
            format!("https://bedrock-runtime.{region}.amazonaws.com")
        }
    };
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(ConfigError::invalid(f("base_url"), "must start with http:// or https://"));
    }
    if reqwest::Url::parse(&base_url).is_err() {
        return Err(ConfigError::invalid(f("base_url"), "is not a valid URL"));
    }
    if kind == ProviderKind::Vertex && project.is_none() {
        return Err(ConfigError::invalid(f("project"), "vertex needs the Google Cloud project id"));
    }
    if kind == ProviderKind::Vertex && region.is_none() {
        return Err(ConfigError::invalid(
            f("region"),
            "vertex needs the Google Cloud location (e.g. \"us-central1\")",
        ));
    }
    if kind == ProviderKind::Bedrock && region.is_none() {
        return Err(ConfigError::invalid(
            f("region"),
            "bedrock needs a region for signing (set it here, or AWS_REGION in the environment)",
        ));
    }
    let default_max_tokens = p.default_max_tokens.unwrap_or(4096);
    if default_max_tokens == 0 {
        return Err(ConfigError::invalid(f("default_max_tokens"), "must be at least 1"));
    }
    // OpenAI itself serves the Responses API; an OpenAI-compatible server has to say so.
    let responses_api = p.responses_api.unwrap_or_else(|| is_openai_host(&base_url));
    Ok(ResolvedProvider {
        kind,
        base_url,
        credentials,
        region,
        project,
        default_max_tokens,
        stream_usage: p.stream_usage.unwrap_or(true),
        responses_api,
    })
}

/// Whether a base URL is OpenAI's own API.
fn is_openai_host(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host == "api.openai.com"
}

/// Bedrock credentials: a Bedrock API key (bearer), or SigV4 keys from the file, or from the
/// standard AWS environment variables.
fn resolve_aws_credentials(
    field: &str,
    api_key: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    env: EnvLookup<'_>,
) -> Result<Credentials, ConfigError> {
    if let Some(key) = api_key {
        if access_key_id.is_some() || secret_access_key.is_some() {
            return Err(ConfigError::invalid(
                format!("{field}.api_key"),
                "set either the Bedrock API key or access_key_id/secret_access_key, not both",
            ));
        }
        return Ok(Credentials::Bearer(Secret::new(key)));
    }
    match (access_key_id, secret_access_key) {
        (Some(id), Some(secret)) => Ok(Credentials::Aws {
            access_key_id: Secret::new(id),
            secret_access_key: Secret::new(secret),
            session_token: session_token.map(Secret::new),
        }),
        (Some(_), None) => Err(ConfigError::invalid(
            format!("{field}.secret_access_key"),
            "is required with access_key_id",
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            format!("{field}.access_key_id"),
            "is required with secret_access_key",
        )),
        (None, None) => Ok(aws_env_credentials(env).unwrap_or(Credentials::None)),
    }
}

/// AWS credentials from the standard environment variables: a Bedrock API key
/// (`AWS_BEARER_TOKEN_BEDROCK`) first, then `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
/// (+ `AWS_SESSION_TOKEN`).
pub fn aws_env_credentials(env: EnvLookup<'_>) -> Option<Credentials> {
    let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(token) = nonempty("AWS_BEARER_TOKEN_BEDROCK") {
        return Some(Credentials::Bearer(Secret::new(token)));
    }
    match (nonempty("AWS_ACCESS_KEY_ID"), nonempty("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(Credentials::Aws {
            access_key_id: Secret::new(id),
            secret_access_key: Secret::new(secret),
            session_token: nonempty("AWS_SESSION_TOKEN").map(Secret::new),
        }),
        _ => None,
    }
}

fn resolve_timeouts(t: &raw::RawTimeouts) -> Result<Timeouts, ConfigError> {
    let d = Timeouts::default();
    let get = |v: Option<u64>, default: Duration, key: &str| match v {
        Some(v) => ms(v, &format!("timeouts.{key}"), 1),
        None => Ok(default),
    };
    let out = Timeouts {
        connect: get(t.connect_ms, d.connect, "connect_ms")?,
        first_token: get(t.first_token_ms, d.first_token, "first_token_ms")?,
        idle: get(t.idle_ms, d.idle, "idle_ms")?,
        total: get(t.total_ms, d.total, "total_ms")?,
        keepalive: get(t.keepalive_ms, d.keepalive, "keepalive_ms")?,
        shutdown_grace: match t.shutdown_grace_ms {
            Some(v) => Duration::from_millis(v),
            None => d.shutdown_grace,
        },
        header_read: get(t.header_read_ms, d.header_read, "header_read_ms")?,
        request_body: get(t.request_body_ms, d.request_body, "request_body_ms")?,
        client_write: get(t.client_write_ms, d.client_write, "client_write_ms")?,
    };
    if out.total < out.first_token {
        return Err(ConfigError::invalid(
            "timeouts.total_ms",
            "must be at least timeouts.first_token_ms",
        ));
    }
    Ok(out)
}

fn resolve_limits(l: &raw::RawLimits) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let size = |v: Option<u64>, default: usize, key: &str| -> Result<usize, ConfigError> {
        match v {
            None => Ok(default),
            Some(0) => Err(ConfigError::invalid(format!("limits.{key}"), "must be at least 1")),
            Some(v) => usize::try_from(v)
                .map_err(|_| ConfigError::invalid(format!("limits.{key}"), "is too large")),
        }
    };
    Ok(Limits {
        max_body_bytes: size(l.max_body_bytes, d.max_body_bytes, "max_body_bytes")?,
        max_response_bytes: size(l.max_response_bytes, d.max_response_bytes, "max_response_bytes")?,
        max_concurrent_requests: match l.max_concurrent_requests {
            None => d.max_concurrent_requests,
            Some(v) => usize::try_from(v).map_err(|_| {
                ConfigError::invalid("limits.max_concurrent_requests", "is too large")
            })?,
        },
        max_concurrent_per_key: match l.max_concurrent_per_key {
            None => d.max_concurrent_per_key,
            Some(v) => usize::try_from(v).map_err(|_| {
                ConfigError::invalid("limits.max_concurrent_per_key", "is too large")
            })?,
        },
        listen_backlog: match l.listen_backlog {
            None => d.listen_backlog,
            Some(v @ 1..=65535) => v as u32,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "limits.listen_backlog",
                    "must be between 1 and 65535",
                ));
            }
        },
    })
}

fn resolve_retries(r: &raw::RawRetries) -> Result<RetryPolicy, ConfigError> {
    let d = RetryPolicy::default();
    let max_attempts = r.max_attempts.unwrap_or(d.max_attempts);
    if !(1..=10).contains(&max_attempts) {
        return Err(ConfigError::invalid("retries.max_attempts", "must be between 1 and 10"));
    }
    let out = RetryPolicy {
        max_attempts,
        backoff_base: r.backoff_base_ms.map_or(d.backoff_base, Duration::from_millis),
        backoff_max: r.backoff_max_ms.map_or(d.backoff_max, Duration::from_millis),
        max_retry_after: r.max_retry_after_ms.map_or(d.max_retry_after, Duration::from_millis),
    };
    if out.backoff_max < out.backoff_base {
        return Err(ConfigError::invalid(
            "retries.backoff_max_ms",
            "must be at least retries.backoff_base_ms",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    const BASE: &str = r#"
        [[keys]]
        name = "app"
        key = "sk-prism-test-key"
        models = ["*"]

        [providers.oa]
        kind = "openai"
        base_url = "http://127.0.0.1:9"
        api_key = "${OPENAI_API_KEY}"

        [[models]]
        name = "m"
        deployments = [{ provider = "oa", model = "gpt-x" }]
    "#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml(text, &env_of(env))
    }

    fn err(text: &str, env: &[(&str, &str)]) -> String {
        load(text, env).unwrap_err().to_string()
    }

    #[test]
    fn minimal_config_resolves_with_defaults() {
        let c = load(BASE, &[("OPENAI_API_KEY", "sk-upstream-secret")]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.usage_on_finish);
        assert_eq!(c.timeouts, Timeouts::default());
        let d = &c.models[0].deployments[0];
        assert_eq!(d.deployment.upstream_model, "gpt-x");
        assert_eq!(
            d.deployment.credentials,
            Credentials::ApiKey(Secret::new("sk-upstream-secret"))
        );
        assert!(c.authenticate("sk-prism-test-key").is_some());
        assert!(c.authenticate("sk-prism-test-kez").is_none());
        assert!(!format!("{c:?}").contains("sk-upstream-secret"), "Debug must not print secrets");
        assert!(!format!("{c:?}").contains("sk-prism-test-key"));
    }

    #[test]
    fn listen_backlog_defaults_to_4096_and_is_bounded() {
        let env = [("OPENAI_API_KEY", "k")];
        assert_eq!(load(BASE, &env).unwrap().limits.listen_backlog, 4096);
        let set = load(&format!("{BASE}\n[limits]\nlisten_backlog = 16384\n"), &env).unwrap();
        assert_eq!(set.limits.listen_backlog, 16384);
        for bad in ["0", "65536"] {
            let msg = err(&format!("{BASE}\n[limits]\nlisten_backlog = {bad}\n"), &env);
            assert_eq!(msg, "limits.listen_backlog: must be between 1 and 65535", "{bad}");
        }
    }

    #[test]
    fn missing_env_var_is_named_with_its_field() {
        assert_eq!(
            err(BASE, &[]),
            "providers.oa.api_key: environment variable OPENAI_API_KEY is not set"
        );
    }

    #[test]
    fn interpolation_forms() {
        let env = env_of(&[("A", "x"), ("EMPTY", "")]);
        assert_eq!(interpolate("a${A}b", "f", &env).unwrap(), "axb");
        assert_eq!(interpolate("${NOPE:-d}", "f", &env).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY:-d}", "f", &env).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY}", "f", &env).unwrap(), "");
        assert_eq!(interpolate("$${A} $5", "f", &env).unwrap(), "${A} $5");
        assert_eq!(
            interpolate("${A", "f", &env).unwrap_err().to_string(),
            "f: unterminated ${…} reference (add the closing brace)"
        );
        assert!(interpolate("${1A}", "f", &env).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let text = format!("{BASE}\n[tracing]\nenabled = true\n");
        let msg = err(&text, &[("OPENAI_API_KEY", "k")]);
        assert!(msg.contains("unknown field `tracing`"), "{msg}");
        let text = format!("{BASE}\n[telemetry]\nenabled = true\n");
        let msg = err(&text, &[("OPENAI_API_KEY", "k")]);
        assert!(msg.contains("unknown field `enabled`"), "{msg}");
        let text = format!("{BASE}\n[guardrails]\nenabled = true\n");
        let msg = err(&text, &[("OPENAI_API_KEY", "k")]);
        assert!(msg.contains("unknown field `enabled`"), "{msg}");
        let text = BASE.replace("kind = \"openai\"", "kind = \"openai\"\napi_kee = \"x\"");
        let msg = err(&text, &[("OPENAI_API_KEY", "k")]);
        assert!(msg.contains("unknown field `api_kee`"), "{msg}");
    }

    #[test]
    fn telemetry_from_the_file_over_the_otel_environment() {
        let env = [("OPENAI_API_KEY", "k"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")];
        let c = load(BASE, &env).unwrap();
        assert_eq!(c.telemetry.endpoint.as_deref(), Some("http://env:4317"));
        assert_eq!(c.telemetry.protocol, OtlpProtocol::Grpc);
        assert!(!c.telemetry.capture_content);
        let text = format!(
            "{BASE}\n[telemetry]\nendpoint = \"http://file:4318\"\nprotocol = \"http/protobuf\"\nservice_name = \"gw\"\n"
        );
        let c = load(&text, &env).unwrap();
        assert_eq!(c.telemetry.endpoint.as_deref(), Some("http://file:4318"));
        assert_eq!(
            (c.telemetry.protocol, c.telemetry.service_name.as_str()),
            (OtlpProtocol::HttpProtobuf, "gw")
        );
        let bad = format!("{BASE}\n[telemetry]\nprotocol = \"udp\"\n");
        assert!(err(&bad, &env).contains("telemetry.protocol"));
        let bad = format!("{BASE}\n[telemetry]\nendpoint = \"collector:4317\"\n");
        assert!(err(&bad, &env).contains("telemetry.endpoint"));
        assert_eq!(load(BASE, &[("OPENAI_API_KEY", "k")]).unwrap().telemetry.endpoint, None);
    }

    #[test]
    fn field_errors_name_the_field() {
        let e = [("OPENAI_API_KEY", "k")];
        let cases: &[(&str, &str, &str)] = &[
            (
                "provider = \"oa\"",
                "provider = \"nope\"",
                "models[0].deployments[0].provider: no provider named \"nope\" under [providers]",
            ),
            (
                "models = [\"*\"]",
                "models = [\"other\"]",
                "keys[0].models[0]: no model named \"other\" under [[models]]",
            ),
            (
                "key = \"sk-prism-test-key\"",
                "key_sha256 = \"abc\"",
                "keys[0].key_sha256: must be 64 hex digits",
            ),
            (
                "kind = \"openai\"",
                "kind = \"openai\"\nregion = \"x\"",
                "providers.oa.region: not used by kind \"openai\"",
            ),
            (
                "base_url = \"http://127.0.0.1:9\"",
                "base_url = \"ftp://x\"",
                "providers.oa.base_url: must start with http:// or https://",
            ),
        ];
        for (from, to, want) in cases {
            let msg = err(&BASE.replace(from, to), &e);
            assert!(msg.starts_with(want), "{msg:?} should start with {want:?}");
        }
        let msg = err(&format!("listen = \"nope\"\n{BASE}"), &e);
        assert!(msg.starts_with("listen: \"nope\" is not an address"), "{msg}");
        let msg = err(&format!("[timeouts]\nidle_ms = 0\n{BASE}"), &e);
        assert_eq!(msg, "timeouts.idle_ms: must be at least 1");
        let msg = err(&format!("[retries]\nmax_attempts = 0\n{BASE}"), &e);
        assert_eq!(msg, "retries.max_attempts: must be between 1 and 10");
    }

    #[test]
    fn key_sha256_matches_the_plain_key() {
        let digest = hex::encode(sha256(b"sk-prism-hashed"));
        let text =
            BASE.replace("key = \"sk-prism-test-key\"", &format!("key_sha256 = \"{digest}\""));
        let c = load(&text, &[("OPENAI_API_KEY", "k")]).unwrap();
        assert_eq!(c.authenticate("sk-prism-hashed").map(|k| k.name.as_str()), Some("app"));
        assert!(c.authenticate("sk-prism-test-key").is_none());
    }

    #[test]
    fn bedrock_base_url_and_credentials_from_env() {
        let text = r#"
            [[keys]]
            name = "a"
            key = "sk-prism-aaaaaaaa"
            [providers.br]
            kind = "bedrock"
            [[models]]
            name = "m"
            deployments = [{ provider = "br", model = "anthropic.claude", bedrock_invoke = true }]
        "#;
        assert_eq!(
            err(text, &[]),
            "providers.br.region: bedrock needs a region (set it here, or AWS_REGION in the environment)"
        );
        let c = load(
            text,
            &[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ],
        )
        .unwrap();
        let d = &c.models[0].deployments[0].deployment;
        assert_eq!(d.base_url, "https://bedrock-runtime.eu-west-1.amazonaws.com");
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert!(d.bedrock_invoke);
        assert!(matches!(d.credentials, Credentials::Aws { .. }));
        let c = load(text, &[("AWS_REGION", "us-east-1"), ("AWS_BEARER_TOKEN_BEDROCK", "tok")])
            .unwrap();
        assert_eq!(
            c.models[0].deployments[0].deployment.credentials,
            Credentials::Bearer(Secret::new("tok"))
        );
    }

    #[test]
    fn the_responses_lane_is_on_for_openai_itself_and_opt_in_for_compatible_servers() {
        let config = |provider: &str| {
            format!(
                r#"
                [[keys]]
                name = "a"
                key = "sk-prism-aaaaaaaa"
                [providers.p]
                {provider}
                [[models]]
                name = "m"
                deployments = [{{ provider = "p", model = "x" }}]
                "#
            )
        };
        let lane = |provider: &str| {
            load(&config(provider), &[]).unwrap().models[0].deployments[0]
                .deployment
                .supports_responses
        };
        assert!(lane(
            r#"kind = "openai"
                api_key = "k""#
        ));
        assert!(!lane(
            r#"kind = "openai"
                api_key = "k"
                base_url = "http://vllm.internal:8000""#
        ));
        assert!(lane(
            r#"kind = "openai"
                api_key = "k"
                base_url = "http://127.0.0.1:9"
                responses_api = true"#
        ));
        let text = config(
            r#"kind = "anthropic"
                api_key = "k"
                responses_api = true"#,
        );
        assert!(err(&text, &[]).contains("responses_api"), "{}", err(&text, &[]));
    }

    #[test]
    fn key_model_allow_list() {
        let text = BASE.replace("models = [\"*\"]", "models = [\"m\"]");
        let c = load(&text, &[("OPENAI_API_KEY", "k")]).unwrap();
        let key = c.authenticate("sk-prism-test-key").unwrap();
        assert!(key.allows("m"));
        assert!(!key.allows("other"));
    }
}

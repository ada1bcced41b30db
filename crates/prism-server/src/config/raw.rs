//! The file's shape, exactly as written: every table rejects unknown keys, so a typo (or a section
//! this version does not know yet) is an error naming the key, never silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) usage_on_finish: Option<bool>,
    #[serde(default)]
    pub(super) keys: Vec<RawKey>,
    #[serde(default)]
    pub(super) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(super) models: Vec<RawModel>,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) retries: RawRetries,
    /// `[guardrails]`: the global rules (`[[guardrails.rules]]`).
    #[serde(default)]
    pub(super) guardrails: prism_guardrails::GuardrailsConfig,
    /// `[cache]`: absent means no response cache.
    pub(super) cache: Option<prism_cache::CacheConfig>,
    /// `[usage]`: where limit counters live and where usage records go.
    #[serde(default)]
    pub(super) usage: RawUsage,
    /// `[pricing."<upstream model>"]`: USD per million tokens, over the shipped table.
    #[serde(default)]
    pub(super) pricing: BTreeMap<String, prism_ledger::Price>,
    /// `[telemetry]`: OpenTelemetry export.
    #[serde(default)]
    pub(super) telemetry: RawTelemetry,
}

/// `[telemetry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    pub(super) endpoint: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) service_name: Option<String>,
    pub(super) capture_content: Option<bool>,
    pub(super) export_interval_ms: Option<u64>,
}

/// `[usage]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUsage {
    /// `memory` (this instance) or `redis` (shared by every instance).
    pub(super) counters: Option<RawCounters>,
    pub(super) failure_mode: Option<prism_ledger::FailureMode>,
    /// The Redis of the counters; defaults to `[cache.redis]` with the prefix `prism:usage:`.
    pub(super) redis: Option<prism_cache::RedisConfig>,
    pub(super) queue_capacity: Option<u64>,
    pub(super) jsonl: Option<prism_ledger::JsonlConfig>,
    pub(super) postgres: Option<prism_ledger::PostgresConfig>,
}

/// `usage.counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawCounters {
    Memory,
    Redis,
}

/// `[[keys]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) name: String,
    pub(super) key: Option<String>,
    pub(super) key_sha256: Option<String>,
    pub(super) models: Option<Vec<String>>,
    /// Guardrail rules added for requests with this key.
    #[serde(default)]
    pub(super) guardrails: Vec<prism_guardrails::RuleConfig>,
    /// This key's limits over all models.
    pub(super) limits: Option<prism_ledger::LimitSpec>,
    /// This key's limits on one model, by public model name.
    #[serde(default)]
    pub(super) model_limits: BTreeMap<String, prism_ledger::LimitSpec>,
    /// May read `/v1/usage`.
    #[serde(default)]
    pub(super) admin: bool,
}

/// `kind` of a provider.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Openai,
    Anthropic,
    Gemini,
    Vertex,
    Bedrock,
}

/// `[providers.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: RawKind,
    pub(super) base_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) access_token: Option<String>,
    pub(super) region: Option<String>,
    pub(super) project: Option<String>,
    pub(super) access_key_id: Option<String>,
    pub(super) secret_access_key: Option<String>,
    pub(super) session_token: Option<String>,
    pub(super) default_max_tokens: Option<u64>,
    pub(super) stream_usage: Option<bool>,
    pub(super) responses_api: Option<bool>,
}

/// `[[models]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) name: String,
    #[serde(default)]
    pub(super) deployments: Vec<RawDeployment>,
    /// Guardrail rules added for requests to this model.
    #[serde(default)]
    pub(super) guardrails: Vec<prism_guardrails::RuleConfig>,
    /// `cache = { enabled = true, ttl_secs = 60 }`.
    pub(super) cache: Option<prism_cache::ModelCacheConfig>,
    /// This model's limits over all keys.
    pub(super) limits: Option<prism_ledger::LimitSpec>,
}

/// One entry of `deployments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) ttft_deadline_ms: Option<u64>,
    pub(super) max_tokens: Option<u64>,
    pub(super) bedrock_invoke: Option<bool>,
}

/// `[timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) connect_ms: Option<u64>,
    pub(super) first_token_ms: Option<u64>,
    pub(super) idle_ms: Option<u64>,
    pub(super) total_ms: Option<u64>,
    pub(super) keepalive_ms: Option<u64>,
    pub(super) shutdown_grace_ms: Option<u64>,
    pub(super) header_read_ms: Option<u64>,
    pub(super) request_body_ms: Option<u64>,
    pub(super) client_write_ms: Option<u64>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_body_bytes: Option<u64>,
    pub(super) max_response_bytes: Option<u64>,
    pub(super) max_concurrent_requests: Option<u64>,
    pub(super) max_concurrent_per_key: Option<u64>,
    pub(super) listen_backlog: Option<u64>,
}

/// `[retries]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetries {
    pub(super) max_attempts: Option<u32>,
    pub(super) backoff_base_ms: Option<u64>,
    pub(super) backoff_max_ms: Option<u64>,
    pub(super) max_retry_after_ms: Option<u64>,
}

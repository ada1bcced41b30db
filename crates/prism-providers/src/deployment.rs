//! Where a request goes: provider kind, base URL, upstream model, credentials, options.

use std::fmt;
use std::time::SystemTime;

/// The wire protocol family of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI, Azure OpenAI's `/openai/v1`, or any OpenAI-compatible server.
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Gemini API (`generativelanguage.googleapis.com`).
    Gemini,
    /// Vertex AI Gemini (`{location}-aiplatform.googleapis.com`).
    Vertex,
    /// AWS Bedrock (Converse / InvokeModel).
    Bedrock,
}

impl ProviderKind {
    /// Low-cardinality label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Bedrock => "bedrock",
        }
    }
}

/// A secret string (API key, token, AWS secret). `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call only where it goes onto the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the gateway authenticates to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials (local simulators, keyless OpenAI-compatible servers).
    #[default]
    None,
    /// A provider API key, sent in the provider's own header
    /// (`authorization: Bearer` for OpenAI, `x-api-key` for Anthropic, `x-goog-api-key` for Gemini).
    ApiKey(Secret),
    /// A bearer token (Vertex access token, Bedrock API key).
    Bearer(Secret),
    /// AWS SigV4 credentials.
    Aws {
        /// Access key id (not secret, but kept out of logs anyway).
        access_key_id: Secret,
        /// Secret access key.
        secret_access_key: Secret,
        /// Session token for temporary credentials.
        session_token: Option<Secret>,
    },
}

/// One place a public model can be served from.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The provider's wire protocol.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// The model id the provider knows.
    pub upstream_model: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// `max_tokens` to send when the client gave none (Anthropic and Bedrock require one).
    pub default_max_tokens: u64,
    /// AWS region (Bedrock) or Google Cloud location (Vertex).
    pub region: Option<String>,
    /// Google Cloud project (Vertex).
    pub project: Option<String>,
    /// Bedrock: use InvokeModelWithResponseStream with the Anthropic body instead of Converse.
    pub bedrock_invoke: bool,
    /// Whether the upstream accepts `stream_options.include_usage` (OpenAI-compatible servers
    /// that reject unknown fields set this to false).
    pub supports_stream_usage: bool,
    /// OpenAI-compatible: whether the upstream serves `POST /v1/responses`, so Responses clients
    /// get its own bytes through the same-protocol lane (see [`crate::native`]).
    pub supports_responses: bool,
}

impl Deployment {
    /// A deployment with defaults for everything but kind, URL and model.
    pub fn new(
        kind: ProviderKind,
        base_url: impl Into<String>,
        upstream_model: impl Into<String>,
    ) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Deployment {
            kind,
            base_url,
            upstream_model: upstream_model.into(),
            credentials: Credentials::None,
            default_max_tokens: 4096,
            region: None,
            project: None,
            bedrock_invoke: false,
            supports_stream_usage: true,
            supports_responses: true,
        }
    }
}

/// Per-call inputs to request building that are not part of the client request.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Build a streaming request.
    pub stream: bool,
    /// Ask the upstream for usage even when the client did not (where the provider supports it).
    pub request_usage: bool,
    /// The signing time for SigV4; passed in so that builders stay clock-free and testable.
    pub now: SystemTime,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { stream: true, request_usage: true, now: SystemTime::UNIX_EPOCH }
    }
}

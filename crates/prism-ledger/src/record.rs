//! The usage record: one per request, whatever its protocol or ending.

use prism_types::Usage;
use serde::{Deserialize, Serialize};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered in full (a stream that reached its clean end).
    Completed,
    /// The client left before the answer was complete.
    ClientGone,
    /// The upstream failed (before or after the first byte).
    UpstreamError,
    /// A guardrail refused the input or cut the output.
    Guardrail,
    /// A first-token, idle or total timeout.
    Timeout,
    /// Refused by a rate limit, concurrency limit or budget.
    RateLimited,
    /// Refused before any upstream call for another reason (unknown model, bad request, …).
    Rejected,
}

impl Outcome {
    /// The snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::ClientGone => "client_gone",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Guardrail => "guardrail",
            Outcome::Timeout => "timeout",
            Outcome::RateLimited => "rate_limited",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Token counts of one request. `input` includes `cached_input` and `cache_write`;
/// `output` includes `reasoning` (the OpenAI convention, which the gateway's canonical usage
/// follows for every provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Tokens {
    /// From the upstream's usage in canonical form.
    pub fn from_usage(usage: &Usage) -> Self {
        let cached_input =
            usage.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
        let reasoning =
            usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0);
        let cache_write = usage
            .extra
            .get("cache_creation_input_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Tokens {
            input: usage.prompt_tokens,
            cached_input,
            cache_write,
            output: usage.completion_tokens,
            reasoning,
        }
    }

    /// Input plus output: what a tokens-per-minute limit counts.
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

/// The estimate used when a stream ends before the upstream reported usage: about four bytes
/// of streamed text (content, reasoning, tool-call names and arguments) per token, rounded up.
/// The same rule of thumb as the input estimate; a tokenizer would be exact for one model
/// family only.
pub fn estimate_output_tokens(streamed_text_bytes: u64) -> u64 {
    streamed_text_bytes.div_ceil(4)
}

/// One request's usage record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The gateway's `x-request-id`.
    pub request_id: String,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The client key's configured name (never the key).
    pub key: String,
    /// The public model name.
    pub model: String,
    /// The upstream model id of the deployment that answered, when one did.
    pub deployment: Option<String>,
    /// The configured provider name that answered (`cache` for a cache hit).
    pub provider: Option<String>,
    /// `chat_completions`, `messages` or `responses`.
    pub protocol: String,
    pub stream: bool,
    pub tokens: Tokens,
    /// US dollars, from the `[pricing]` table; 0 for a model without a price.
    pub cost_usd: f64,
    /// Whether the tokens are the gateway's estimate (the stream ended before the upstream's
    /// usage arrived) rather than the upstream's figures.
    pub estimated: bool,
    /// Time to the first content, when there was one.
    pub ttft_ms: Option<u64>,
    pub duration_ms: u64,
    /// Upstream calls made (0 for a cache hit or a refusal).
    pub attempts: u32,
    pub outcome: Outcome,
    /// The HTTP status the client got.
    pub status: u16,
}

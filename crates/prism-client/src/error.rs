//! The client's typed errors.

use std::fmt;

/// An error object returned by the server, before or during a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status, when the error came as an HTTP response (absent for mid-stream error events).
    pub status: Option<u16>,
    /// The OpenAI error `type`, e.g. `invalid_request_error`, `guardrail_error`.
    pub kind: Option<String>,
    /// The machine-readable `code`, e.g. `model_not_found`, `content_blocked`.
    pub code: Option<String>,
    /// The request field at fault.
    pub param: Option<String>,
    /// The human-readable message.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        if let Some(kind) = &self.kind {
            write!(f, "{kind}")?;
            if let Some(code) = &self.code {
                write!(f, "/{code}")?;
            }
            write!(f, ": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status and an OpenAI error body.
    #[error("api error: {0}")]
    Api(ApiError),
    /// The server sent an error event in the middle of a stream (e.g. a guardrail ended it, or
    /// the upstream failed). The stream is over.
    #[error("stream error: {0}")]
    Stream(ApiError),
    /// The stream ended without `data: [DONE]`: the answer is incomplete.
    #[error("stream ended before [DONE]: the response is truncated")]
    Truncated,
    /// Connecting, sending or reading failed.
    #[error("transport error: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A response body or event was not the expected JSON.
    #[error("could not decode {what}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The event stream's framing broke its limits.
    #[error("event stream framing: {0}")]
    Sse(#[source] prism_sse::DecodeError),
    /// The client is misconfigured (e.g. no API key in the environment).
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the same request may succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.status.is_some_and(retryable_status),
            Error::Transport(_) => true,
            _ => false,
        }
    }
}

/// Statuses worth retrying: timeouts, conflicts, rate limits and server errors.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504)
}

/// Parses an OpenAI error body; falls back to the raw text for non-JSON bodies.
pub(crate) fn api_error_from_body(status: Option<u16>, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: prism_types::ErrorObject,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => ApiError {
            status,
            kind: Some(error.kind),
            code: error.code,
            param: error.param,
            message: error.message,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(500).collect();
            ApiError {
                status,
                kind: None,
                code: None,
                param: None,
                message: if text.is_empty() { "empty error body".to_owned() } else { text },
            }
        }
    }
}

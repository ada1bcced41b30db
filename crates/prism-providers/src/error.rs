//! Errors of request building, stream translation, and upstream failures.

use prism_types::ErrorObject;

/// An upstream failure, already mapped to what the client should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// HTTP status to answer the client with (when headers have not gone yet).
    pub status: u16,
    /// The OpenAI-shaped error object.
    pub error: ErrorObject,
    /// Whether another attempt (retry or fallback) may succeed.
    pub retryable: bool,
    /// The upstream's `retry-after`, in seconds.
    pub retry_after_secs: Option<u64>,
}

impl ProviderError {
    /// An error with `status`; retryable when the status is 408, 409, 429 or 5xx.
    pub fn new(status: u16, error: ErrorObject) -> Self {
        let retryable = matches!(status, 408 | 409 | 429) || status >= 500;
        ProviderError { status, error, retryable, retry_after_secs: None }
    }

    /// The default OpenAI `type` and `code` for an HTTP status, for upstreams whose body says nothing useful.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let (kind, code) = match status {
            400 | 422 => ("invalid_request_error", None),
            401 => ("authentication_error", Some("invalid_api_key")),
            403 => ("permission_error", None),
            404 => ("not_found_error", Some("model_not_found")),
            408 | 504 => ("timeout_error", Some("timeout")),
            413 => ("invalid_request_error", Some("request_too_large")),
            429 => ("rate_limit_error", Some("rate_limit_exceeded")),
            503 | 529 => ("server_error", Some("overloaded")),
            _ => ("server_error", None),
        };
        let mut error = ErrorObject::new(kind, message);
        error.code = code.map(str::to_owned);
        // 529 is Anthropic's "overloaded"; clients know 503.
        let status = if status == 529 { 503 } else { status };
        ProviderError::new(status, error)
    }
}

/// Everything that can go wrong between an OpenAI request and OpenAI chunks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// The client request cannot be expressed for this provider.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// The request field at fault.
        param: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// The upstream sent a payload that is not valid JSON of the expected shape.
    #[error("{provider} sent invalid JSON in a {context}")]
    InvalidJson {
        /// Provider label.
        provider: &'static str,
        /// Which event or body.
        context: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The upstream's events arrived in an order its protocol does not allow.
    #[error("{provider} sent {event} while {state}")]
    UnexpectedEvent {
        /// Provider label.
        provider: &'static str,
        /// The offending event.
        event: String,
        /// The translator's state.
        state: &'static str,
    },
    /// The upstream reported an error (an error event mid-stream, or an error in a 2xx body).
    #[error("upstream error: {}", .0.error.message)]
    Upstream(ProviderError),
    /// The upstream stream ended without its terminal event.
    #[error("{provider} stream ended before its terminal event")]
    Truncated {
        /// Provider label.
        provider: &'static str,
    },
    /// The upstream's framing was broken (SSE limits, event-stream CRC or length).
    #[error("{provider} framing error: {message}")]
    Framing {
        /// Provider label.
        provider: &'static str,
        /// What was wrong.
        message: String,
    },
    /// Request signing failed.
    #[error("request signing failed: {0}")]
    Signing(String),
}

impl TranslateError {
    /// The HTTP status and OpenAI error object to show the client for this failure.
    ///
    /// Messages never include payload text from the upstream beyond its own error message.
    pub fn to_provider_error(&self) -> ProviderError {
        match self {
            TranslateError::InvalidRequest { param, message } => {
                let mut error = ErrorObject::new("invalid_request_error", message.clone());
                error.param = param.clone();
                ProviderError { status: 400, error, retryable: false, retry_after_secs: None }
            }
            TranslateError::Upstream(err) => err.clone(),
            TranslateError::Truncated { provider } => ProviderError::new(
                502,
                ErrorObject::new(
                    "upstream_error",
                    format!("the {provider} stream ended before it was complete"),
                )
                .with_code("upstream_truncated"),
            ),
            TranslateError::Signing(_) => ProviderError {
                status: 500,
                error: ErrorObject::new("server_error", "could not sign the upstream request")
                    .with_code("signing_failed"),
                retryable: false,
                retry_after_secs: None,
            },
            other => ProviderError::new(
                502,
                ErrorObject::new("upstream_error", other.to_string())
                    .with_code("bad_upstream_response"),
            ),
        }
    }
}

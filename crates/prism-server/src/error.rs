//! `GatewayError`: every way a request can fail, with its HTTP status, its OpenAI error object and
//! a low-cardinality metric label. Before the response head is sent an error is a JSON response;
//! after, it is one final SSE event.

use std::time::Duration;

use prism_providers::ProviderError;
use prism_types::ErrorObject;

/// A failed request, as the client will see it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The body is not JSON, or a parameter is invalid.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// The request field at fault.
        param: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// No key, or a key the gateway does not know.
    #[error("missing or invalid api key")]
    Unauthorized,
    /// The key may not use this model.
    #[error("key {key} may not use model {model}")]
    Forbidden {
        /// The key's configured name.
        key: String,
        /// The public model asked for.
        model: String,
    },
    /// No configured model has this name.
    #[error("unknown model {model}")]
    ModelNotFound {
        /// The name asked for.
        model: String,
    },
    /// The body is over the configured limit.
    #[error("request body over {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client did not send its request body within `timeouts.request_body_ms`.
    #[error("request body not received in time")]
    RequestTimeout,
    /// The request line's target is longer than the gateway reads.
    #[error("URI too long")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's headers are larger than the gateway reads.
    #[error("request headers too large")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No such route.
    #[error("no route for {path}")]
    RouteNotFound {
        /// The path asked for.
        path: String,
    },
    /// The route exists, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the route accepts, for the `allow` header.
        allow: &'static str,
    },
    /// Too many requests in flight, or the server is shutting down.
    #[error("server busy")]
    Overloaded,
    /// An upstream failure, already mapped by the provider's translator.
    #[error("upstream error: {}", .0.error.message)]
    Upstream(ProviderError),
    /// An upstream could not be reached.
    #[error("upstream connection failed")]
    UpstreamConnect,
    /// An upstream took too long.
    #[error("upstream timed out ({stage})")]
    UpstreamTimeout {
        /// Which deadline: `first_token`, `idle`, `total`.
        stage: &'static str,
    },
    /// A gateway hook (input check, output filter) refused the request or the output.
    #[error("rejected: {}", .error.message)]
    Rejected {
        /// The status to answer with.
        status: u16,
        /// The error to show.
        error: ErrorObject,
    },
    /// Over a rate limit, concurrency limit or spend budget of the usage ledger.
    #[error("limited: {message}")]
    Limited {
        /// Which limit, for the client (never another tenant's figures).
        message: String,
        /// OpenAI's error type: `requests`, `tokens` or `insufficient_quota`.
        kind: &'static str,
        /// `rate_limit_exceeded` or `insufficient_quota`.
        code: &'static str,
        /// When trying again can succeed; `None` when it cannot (a request over the limit).
        retry_after: Option<Duration>,
        /// The ledger's label of the limit (`tpm`, `daily_budget`, …).
        label: &'static str,
    },
    /// The limit counters are unreachable and the ledger fails closed.
    #[error("limit counters unavailable")]
    LimitsUnavailable,
    /// An endpoint that needs an admin key.
    #[error("admin key required")]
    AdminOnly,
    /// A bug or an impossible state; details are in the log, not in the response.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// A 400 naming `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        GatewayError::InvalidRequest { param: Some(param.into()), message: message.into() }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::InvalidRequest { .. } => 400,
            GatewayError::Unauthorized => 401,
            GatewayError::Forbidden { .. } | GatewayError::AdminOnly => 403,
            GatewayError::Limited { .. } => 429,
            GatewayError::LimitsUnavailable => 503,
            GatewayError::ModelNotFound { .. } | GatewayError::RouteNotFound { .. } => 404,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::PayloadTooLarge { .. } => 413,
            GatewayError::RequestTimeout => 408,
            GatewayError::UriTooLong { .. } => 414,
            GatewayError::HeadersTooLarge { .. } => 431,
            GatewayError::Overloaded => 503,
            GatewayError::Upstream(e) => e.status,
            GatewayError::UpstreamConnect => 502,
            GatewayError::UpstreamTimeout { .. } => 504,
            GatewayError::Rejected { status, .. } => *status,
            GatewayError::Internal => 500,
        }
    }

    /// The OpenAI error object shown to the client. Never contains a secret.
    pub fn to_error_object(&self) -> ErrorObject {
        match self {
            GatewayError::InvalidRequest { param, message } => {
                let mut e = ErrorObject::new("invalid_request_error", message.clone());
                e.param = param.clone();
                e
            }
            GatewayError::Unauthorized => ErrorObject::new(
                "authentication_error",
                "missing or invalid API key: send `Authorization: Bearer <key>`",
            )
            .with_code("invalid_api_key"),
            GatewayError::Forbidden { model, .. } => {
                ErrorObject::new("permission_error", format!("this API key may not use the model {model:?}"))
                    .with_param("model")
                    .with_code("model_not_allowed")
            }
            GatewayError::ModelNotFound { model } => ErrorObject::new(
                "invalid_request_error",
                format!("the model {model:?} does not exist (GET /v1/models lists the models you may use)"),
            )
            .with_param("model")
            .with_code("model_not_found"),
            GatewayError::PayloadTooLarge { limit } => {
                ErrorObject::new("invalid_request_error", format!("the request body is larger than {limit} bytes"))
                    .with_code("request_too_large")
            }
            GatewayError::UriTooLong { limit } => {
                ErrorObject::new("invalid_request_error", format!("the request URI is longer than {limit} bytes"))
                    .with_code("uri_too_long")
            }
            GatewayError::HeadersTooLarge { limit } => ErrorObject::new(
                "invalid_request_error",
                format!("the request headers are larger than {limit} bytes"),
            )
            .with_code("headers_too_large"),
            GatewayError::RequestTimeout => {
                ErrorObject::new("invalid_request_error", "the request body did not arrive in time")
                    .with_code("request_timeout")
            }
            GatewayError::RouteNotFound { path } => {
                ErrorObject::new("invalid_request_error", format!("unknown route {path:?}")).with_code("not_found")
            }
            GatewayError::MethodNotAllowed { allow } => ErrorObject::new(
                "invalid_request_error",
                format!("method not allowed on this route (allowed: {allow})"),
            )
            .with_code("method_not_allowed"),
            GatewayError::Overloaded => {
                ErrorObject::new("server_error", "the gateway is busy; retry shortly").with_code("overloaded")
            }
            GatewayError::Upstream(e) => e.error.clone(),
            GatewayError::UpstreamConnect => {
                ErrorObject::new("server_error", "could not connect to the upstream provider")
                    .with_code("upstream_connect_failed")
            }
            GatewayError::UpstreamTimeout { stage } => {
                let message = match *stage {
                    "first_token" => "the upstream provider did not start answering in time",
                    "idle" => "the upstream provider stopped sending data",
                    _ => "the request took longer than the gateway's total timeout",
                };
                ErrorObject::new("timeout_error", message).with_code("timeout")
            }
            GatewayError::Rejected { error, .. } => error.clone(),
            GatewayError::Limited { message, kind, code, .. } => {
                ErrorObject::new(*kind, message.clone()).with_code(*code)
            }
            GatewayError::LimitsUnavailable => ErrorObject::new(
                "server_error",
                "the gateway cannot check this key's limits right now; retry shortly",
            )
            .with_code("limits_unavailable"),
            GatewayError::AdminOnly => {
                ErrorObject::new("permission_error", "this endpoint needs an admin key")
                    .with_code("admin_key_required")
            }
            GatewayError::Internal => ErrorObject::new("server_error", "internal gateway error"),
        }
    }

    /// `retry-after` to send with the error, when there is one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GatewayError::Upstream(e) => e.retry_after_secs.map(Duration::from_secs),
            GatewayError::Overloaded | GatewayError::LimitsUnavailable => {
                Some(Duration::from_secs(1))
            }
            GatewayError::Limited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A low-cardinality label for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest { .. } => "invalid_request",
            GatewayError::Unauthorized => "unauthorized",
            GatewayError::Forbidden { .. } => "forbidden",
            GatewayError::ModelNotFound { .. } => "model_not_found",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::RequestTimeout => "request_timeout",
            GatewayError::UriTooLong { .. } => "uri_too_long",
            GatewayError::HeadersTooLarge { .. } => "headers_too_large",
            GatewayError::RouteNotFound { .. } => "route_not_found",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::Overloaded => "overloaded",
            GatewayError::Upstream(e) => match e.status {
                429 => "upstream_rate_limited",
                400..=499 => "upstream_client_error",
                _ => "upstream_server_error",
            },
            GatewayError::UpstreamConnect => "upstream_connect",
            GatewayError::UpstreamTimeout { stage } => match *stage {
                "first_token" => "timeout_first_token",
                "idle" => "timeout_idle",
                _ => "timeout_total",
            },
            GatewayError::Rejected { .. } => "rejected",
            GatewayError::Limited { label, .. } => label,
            GatewayError::LimitsUnavailable => "limits_unavailable",
            GatewayError::AdminOnly => "admin_only",
            GatewayError::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        let cases = [
            (GatewayError::invalid("messages", "missing"), 400, "invalid_request_error"),
            (GatewayError::Unauthorized, 401, "authentication_error"),
            (
                GatewayError::Forbidden { key: "k".into(), model: "m".into() },
                403,
                "permission_error",
            ),
            (GatewayError::ModelNotFound { model: "m".into() }, 404, "invalid_request_error"),
            (GatewayError::PayloadTooLarge { limit: 1 }, 413, "invalid_request_error"),
            (GatewayError::UpstreamConnect, 502, "server_error"),
            (GatewayError::UpstreamTimeout { stage: "first_token" }, 504, "timeout_error"),
        ];
        for (err, status, kind) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.to_error_object().kind, kind, "{err}");
        }
        assert_eq!(GatewayError::invalid("n", "x").to_error_object().param.as_deref(), Some("n"));
        assert!(
            !GatewayError::Forbidden { key: "secret-name".into(), model: "m".into() }
                .to_error_object()
                .message
                .contains("secret-name")
        );
    }
}

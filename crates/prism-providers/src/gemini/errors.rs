//! Google `google.rpc.Status` errors → OpenAI errors, for HTTP error bodies, `error` payloads
//! inside a stream and raw JSON error tails appended to a 200 stream.

use prism_types::ErrorObject;
use serde_json::Value;

use super::wire::{ErrorEnvelope, RpcStatus};
use crate::ProviderError;

/// Maps a non-2xx Gemini / Vertex response.
///
/// | `error.status` | HTTP | OpenAI `type` / `code` |
/// |---|---|---|
/// | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` | 400 | `invalid_request_error` (`context_length_exceeded` when the prompt is too long) |
/// | `INVALID_ARGUMENT` with reason `API_KEY_INVALID`, `UNAUTHENTICATED` | 401 | `authentication_error` / `invalid_api_key` |
/// | `PERMISSION_DENIED` | 403 | `permission_error` |
/// | `NOT_FOUND` | 404 | `not_found_error` / `model_not_found` |
/// | `ABORTED`, `ALREADY_EXISTS` | 409 | `server_error` / `conflict` |
/// | `RESOURCE_EXHAUSTED` | 429 | `rate_limit_error` / `rate_limit_exceeded`, `retry-after` from `RetryInfo.retryDelay` |
/// | `CANCELLED`, `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | 500 | `server_error` |
/// | `UNIMPLEMENTED` | 501 | `server_error` |
/// | `UNAVAILABLE` | 503 | `server_error` / `overloaded` |
/// | `DEADLINE_EXCEEDED` | 504 | `timeout_error` / `timeout` |
/// | absent or unknown | from the HTTP status | see [`ProviderError::from_status`] |
pub(crate) fn map_error(status: u16, body: &[u8]) -> ProviderError {
    match parse_error_body(body) {
        Some(rpc) => map_status(status, &rpc),
        None => ProviderError::from_status(status, format!("upstream returned HTTP {status}")),
    }
}

/// The `google.rpc.Status` in a body: `{"error": …}`, or that object wrapped in a JSON array
/// (some streaming error bodies are).
pub(crate) fn parse_error_body(body: &[u8]) -> Option<RpcStatus> {
    // Serde would also read a struct from a JSON array (positionally), so dispatch on the shape.
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'{' {
        return serde_json::from_slice::<ErrorEnvelope>(body).ok().map(|env| env.error);
    }
    let values: Vec<Value> = serde_json::from_slice(body).ok()?;
    values
        .into_iter()
        .find_map(|v| v.get("error").cloned())
        .and_then(|e| serde_json::from_value::<RpcStatus>(e).ok())
}

/// Maps an RPC status; `http_status` is used when the status names nothing known (it is the
/// HTTP status for error responses, and `error.code` for errors inside a 200 stream).
pub(crate) fn map_status(http_status: u16, rpc: &RpcStatus) -> ProviderError {
    let message = rpc
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "upstream error".to_owned());
    let code = rpc.code.filter(|c| (400..600).contains(c)).unwrap_or(http_status);
    let reason = error_reason(rpc);
    let (status, kind, oa_code) = match rpc.status.as_deref() {
        Some("INVALID_ARGUMENT") if reason.as_deref() == Some("API_KEY_INVALID") => {
            (401, "authentication_error", Some("invalid_api_key"))
        }
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
            let too_long = is_context_length(&message);
            (400, "invalid_request_error", too_long.then_some("context_length_exceeded"))
        }
        Some("UNAUTHENTICATED") => (401, "authentication_error", Some("invalid_api_key")),
        Some("PERMISSION_DENIED") => (403, "permission_error", None),
        Some("NOT_FOUND") => (404, "not_found_error", Some("model_not_found")),
        Some("ABORTED" | "ALREADY_EXISTS") => (409, "server_error", Some("conflict")),
        Some("RESOURCE_EXHAUSTED") => (429, "rate_limit_error", Some("rate_limit_exceeded")),
        Some("CANCELLED" | "INTERNAL" | "UNKNOWN" | "DATA_LOSS") => (500, "server_error", None),
        Some("UNIMPLEMENTED") => (501, "server_error", None),
        Some("UNAVAILABLE") => (503, "server_error", Some("overloaded")),
        Some("DEADLINE_EXCEEDED") => (504, "timeout_error", Some("timeout")),
        _ => {
            let mut err = ProviderError::from_status(code, message);
            err.retry_after_secs = retry_delay(rpc);
            return err;
        }
    };
    let mut error = ErrorObject::new(kind, message);
    error.code = oa_code.map(str::to_owned);
    let mut err = ProviderError::new(status, error);
    err.retry_after_secs = retry_delay(rpc);
    err
}

/// `RetryInfo.retryDelay` (a protobuf Duration such as `"34.4s"`), rounded up to whole seconds.
pub(crate) fn retry_delay(rpc: &RpcStatus) -> Option<u64> {
    rpc.details.iter().find_map(|d| {
        let kind = d.get("@type")?.as_str()?;
        if !kind.ends_with("google.rpc.RetryInfo") {
            return None;
        }
        let secs: f64 = d.get("retryDelay")?.as_str()?.strip_suffix('s')?.parse().ok()?;
        (secs.is_finite() && secs >= 0.0).then(|| secs.ceil().min(86_400.0) as u64)
    })
}

/// `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
fn error_reason(rpc: &RpcStatus) -> Option<String> {
    rpc.details.iter().find_map(|d| {
        let kind = d.get("@type")?.as_str()?;
        kind.ends_with("google.rpc.ErrorInfo")
            .then(|| d.get("reason")?.as_str().map(str::to_owned))?
    })
}

fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exceeds the maximum number of tokens")
        || (m.contains("input token count") && m.contains("exceeds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: &str, message: &str) -> Vec<u8> {
        format!(r#"{{"error":{{"code":0,"message":"{message}","status":"{status}"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn status_table() {
        let cases: &[(&str, u16, &str, Option<&str>, bool)] = &[
            ("INVALID_ARGUMENT", 400, "invalid_request_error", None, false),
            ("FAILED_PRECONDITION", 400, "invalid_request_error", None, false),
            ("UNAUTHENTICATED", 401, "authentication_error", Some("invalid_api_key"), false),
            ("PERMISSION_DENIED", 403, "permission_error", None, false),
            ("NOT_FOUND", 404, "not_found_error", Some("model_not_found"), false),
            ("RESOURCE_EXHAUSTED", 429, "rate_limit_error", Some("rate_limit_exceeded"), true),
            ("INTERNAL", 500, "server_error", None, true),
            ("UNKNOWN", 500, "server_error", None, true),
            ("UNAVAILABLE", 503, "server_error", Some("overloaded"), true),
            ("DEADLINE_EXCEEDED", 504, "timeout_error", Some("timeout"), true),
        ];
        for &(status, http, kind, code, retryable) in cases {
            let err = map_error(418, &body(status, "m"));
            assert_eq!(err.status, http, "{status}");
            assert_eq!(err.error.kind, kind, "{status}");
            assert_eq!(err.error.code.as_deref(), code, "{status}");
            assert_eq!(err.retryable, retryable, "{status}");
            assert_eq!(err.error.message, "m");
        }
    }

    #[test]
    fn rate_limit_carries_retry_delay() {
        let body = br#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
                       {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}}"#;
        let err = map_error(429, body);
        assert_eq!((err.status, err.retry_after_secs, err.retryable), (429, Some(35), true));
        assert_eq!(err.error.message, "You exceeded your current quota.");
    }

    #[test]
    fn api_key_invalid_is_an_authentication_error() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let err = map_error(400, body);
        assert_eq!((err.status, err.error.kind.as_str()), (401, "authentication_error"));
    }

    #[test]
    fn context_length_array_bodies_and_unparseable_bodies() {
        let err = map_error(
            400,
            &body(
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
        );
        assert_eq!(err.error.code.as_deref(), Some("context_length_exceeded"));
        let wrapped = br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#;
        let err = map_error(500, wrapped);
        assert_eq!((err.status, err.error.message.as_str()), (503, "The model is overloaded."));
        let err = map_error(502, b"<html>bad gateway</html>");
        assert_eq!(
            (err.status, err.error.kind.as_str(), err.retryable),
            (502, "server_error", true)
        );
        // No status: the code decides.
        let err = map_error(200, br#"{"error":{"code":429,"message":"slow down"}}"#);
        assert_eq!(err.status, 429);
    }
}

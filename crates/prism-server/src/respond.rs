//! The last stage of a non-streamed answer, and of every error before the first byte: the
//! response in the client protocol's own shape (Chat Completions, Messages or Responses), with
//! the gateway's headers (`x-prism-attempts`, `x-prism-provider`, `retry-after`, `allow`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use prism_ingress::{EncodeContext, Protocol};
use prism_types::ChatCompletion;
use serde::Serialize;

use crate::body::ResponseBody;
use crate::error::GatewayError;

/// Metric label for requests that never reached a configured model or provider.
pub(crate) const NO_LABEL: &str = "-";

/// A JSON response (for the gateway's own endpoints: models, health).
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    match prism_types::json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            error(Protocol::ChatCompletions, &GatewayError::Internal)
        }
    }
}

fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The error response for `e` in `protocol`'s shape, with `retry-after`, `allow` and
/// `www-authenticate` where they apply.
pub(crate) fn error(protocol: Protocol, e: &GatewayError) -> Response<ResponseBody> {
    let (status, body) = prism_ingress::error_response(protocol, e.status(), &e.to_error_object());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = json_bytes(status, body);
    // How the request ended, for its usage record (read by `usage::Ticket::finish_response`).
    resp.extensions_mut().insert(crate::usage::outcome_of(e));
    if let Some(after) = e.retry_after() {
        // Whole seconds, rounded up: retrying a little late is fine, early is refused again.
        let secs = after.as_millis().div_ceil(1_000).max(1);
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
    }
    if let GatewayError::MethodNotAllowed { allow } = e {
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if matches!(e, GatewayError::Unauthorized) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// A `200` with a completion in the client's protocol. `chat_body` is the serialised canonical
/// `chat.completion` (what the cache stores); other protocols re-encode it.
pub(crate) fn completion(
    protocol: Protocol,
    chat_body: Bytes,
    ctx: &EncodeContext,
    hook_headers: HeaderMap,
) -> Response<ResponseBody> {
    let body = match protocol {
        Protocol::ChatCompletions => chat_body,
        other => match serde_json::from_slice::<ChatCompletion>(&chat_body) {
            Ok(completion) => {
                Bytes::from(prism_ingress::encode_completion(other, &completion, ctx))
            }
            Err(e) => {
                tracing::error!(error = %e, "a completion body is not a chat.completion");
                return error(protocol, &GatewayError::Internal);
            }
        },
    };
    let mut resp = json_bytes(StatusCode::OK, body);
    resp.headers_mut().extend(hook_headers);
    resp
}

/// A `200` with a same-protocol lane's answer, as the upstream gave it (model rewritten).
pub(crate) fn native(body: Bytes, hook_headers: HeaderMap) -> Response<ResponseBody> {
    let body = match prism_types::json::escape_separators(&body) {
        std::borrow::Cow::Borrowed(_) => body,
        std::borrow::Cow::Owned(escaped) => Bytes::from(escaped),
    };
    let mut resp = json_bytes(StatusCode::OK, body);
    resp.headers_mut().extend(hook_headers);
    resp
}

/// The canonical completion as JSON; `None` (logged) if it cannot be serialised, which the
/// types rule out.
pub(crate) fn serialize(completion: &ChatCompletion) -> Option<Bytes> {
    match prism_types::json::to_vec(completion) {
        Ok(json) => Some(Bytes::from(json)),
        Err(e) => {
            tracing::error!(error = %e, "completion serialisation failed");
            None
        }
    }
}

/// `x-prism-attempts` and `x-prism-provider` (when an upstream answered).
pub(crate) fn set_attempts(
    resp: &mut Response<ResponseBody>,
    attempts: u32,
    provider: Option<&str>,
) {
    resp.headers_mut().insert("x-prism-attempts", HeaderValue::from(attempts));
    if let Some(provider) = provider
        && let Ok(value) = HeaderValue::from_str(provider)
    {
        resp.headers_mut().insert("x-prism-provider", value);
    }
}

/// The head of a committed stream.
pub(crate) fn stream_head(resp: &mut Response<ResponseBody>, hook_headers: HeaderMap) {
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.extend(hook_headers);
}

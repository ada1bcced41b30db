//! Stage 1, ingress decode: authenticate the caller (`Authorization: Bearer` or, as Anthropic
//! clients send it, `x-api-key`), read the body within the configured limit, and decode it from
//! the client's protocol into the canonical request.

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use prism_ingress::{Decoded, IngressError, Protocol};

use crate::config::ClientKey;
use crate::error::GatewayError;
use crate::state::AppState;

/// A decoded request, with what the later stages need of the original.
#[derive(Debug)]
pub(crate) struct Inbound<'s> {
    pub(crate) key: &'s ClientKey,
    pub(crate) decoded: Decoded,
    /// The client's own body, for a pass-through lane.
    pub(crate) body: Bytes,
    pub(crate) headers: HeaderMap,
}

/// Authenticates, reads and decodes one model request.
pub(crate) async fn decode<'s>(
    state: &'s AppState,
    protocol: Protocol,
    req: http::Request<Incoming>,
) -> Result<Inbound<'s>, GatewayError> {
    let (parts, body) = req.into_parts();
    let key = authenticate(state, &parts.headers)?;
    let body = read_body(state, &parts.headers, body).await?;
    let decoded = decode_body(protocol, &body)?;
    Ok(Inbound { key, decoded, body, headers: parts.headers })
}

/// Decodes a body of `protocol`.
pub(crate) fn decode_body(protocol: Protocol, body: &[u8]) -> Result<Decoded, GatewayError> {
    let decoded = match protocol {
        Protocol::ChatCompletions => prism_ingress::chat::decode_request(body),
        Protocol::Messages => prism_ingress::messages::decode_request(body),
        Protocol::Responses => prism_ingress::responses::decode_request(body),
    };
    decoded.map_err(invalid)
}

/// The 400 for a decoding error.
pub(crate) fn invalid(e: IngressError) -> GatewayError {
    GatewayError::InvalidRequest { param: e.param, message: e.message }
}

/// Reads the whole body, refusing more than `limits.max_body_bytes` (declared or actual) and a
/// body slower than `timeouts.request_body` (a client trickling bytes would hold its connection).
pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Bytes, GatewayError> {
    let limit = state.config.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let read = tokio::time::timeout(
        state.config.timeouts.request_body,
        Limited::new(body, limit).collect(),
    );
    let Ok(read) = read.await else {
        return Err(GatewayError::RequestTimeout);
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        // The client went away or sent a broken body; nobody will read an answer.
        Err(_) => Err(GatewayError::invalid("body", "the request body could not be read")),
    }
}

/// The key from `Authorization: Bearer <key>`, or from `x-api-key` (Anthropic's header).
pub(crate) fn authenticate<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a ClientKey, GatewayError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| GatewayError::Unauthorized)?;
        let (scheme, key) = value.trim().split_once(' ').ok_or(GatewayError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(GatewayError::Unauthorized);
        }
        return state.config.authenticate(key.trim()).ok_or(GatewayError::Unauthorized);
    }
    let key =
        headers.get("x-api-key").and_then(|v| v.to_str().ok()).ok_or(GatewayError::Unauthorized)?;
    state.config.authenticate(key.trim()).ok_or(GatewayError::Unauthorized)
}

//! Request dispatch: one tracing span and one `x-request-id` per request, and the routes. The
//! model endpoints (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`) all go through the
//! one `pipeline`; the rest are answered here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{HeaderValue, Method, Response, StatusCode, header};
use hyper::body::Incoming;
use prism_ingress::Protocol;
use serde::Serialize;
use tracing::Instrument as _;

use crate::body::ResponseBody;
use crate::error::GatewayError;
use crate::respond::{self, json_response};
use crate::state::AppState;
use crate::{ingress, pipeline, report, tokens};

/// Routes one request and stamps its `x-request-id`.
pub(crate) async fn handle(
    state: Arc<AppState>,
    req: http::Request<Incoming>,
) -> Response<ResponseBody> {
    let request_id = format!("req_{}", uuid::Uuid::new_v4().simple());
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        model = tracing::field::Empty,
        // OpenTelemetry: renamed `chat {model}` once the model is known (GenAI conventions).
        otel.kind = "server",
    );
    crate::telemetry::continue_trace(&span, req.headers());
    let mut resp = dispatch(&state, req, &span, &request_id).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", value);
    }
    resp
}

async fn dispatch(
    state: &Arc<AppState>,
    req: http::Request<Incoming>,
    span: &tracing::Span,
    request_id: &str,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    if let Some(e) = oversized(&req) {
        return respond::error(protocol_of(path), &e);
    }
    let (allow, route) = match path {
        "/v1/chat/completions" | "/chat/completions" => {
            ("POST", Route::Model(Protocol::ChatCompletions))
        }
        "/v1/messages" | "/messages" => ("POST", Route::Model(Protocol::Messages)),
        "/v1/messages/count_tokens" | "/messages/count_tokens" => ("POST", Route::CountTokens),
        "/v1/responses" | "/responses" => ("POST", Route::Model(Protocol::Responses)),
        "/v1/models" | "/models" => ("GET", Route::Models),
        "/health" | "/healthz" => ("GET", Route::Health),
        "/ready" | "/readyz" => ("GET", Route::Ready),
        "/metrics" => ("GET", Route::Metrics),
        "/v1/usage" => ("GET", Route::Usage),
        _ => {
            let e = GatewayError::RouteNotFound { path: truncate(path, 200) };
            return respond::error(protocol_of(path), &e);
        }
    };
    let method_ok = match allow {
        "POST" => req.method() == Method::POST,
        _ => req.method() == Method::GET || req.method() == Method::HEAD,
    };
    if !method_ok {
        return respond::error(protocol_of(path), &GatewayError::MethodNotAllowed { allow });
    }
    match route {
        Route::Model(protocol) => pipeline::serve(state, protocol, req, span, request_id).await,
        Route::CountTokens => tokens::count(state, req).await,
        Route::Models => models(state, &req),
        Route::Usage => report::usage(state, &req).await,
        Route::Health => json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Route::Ready => {
            if state.shutting_down.load(Ordering::Relaxed) {
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "status": "shutting_down" }),
                )
            } else {
                json_response(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
            }
        }
        Route::Metrics => {
            let mut text = state.metrics.render();
            if let Some(cache) = &state.hooks.cache {
                cache.render_metrics(&mut text);
            }
            let mut resp = Response::new(ResponseBody::full(text));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
    }
}

/// Longest request target served; real API paths are short, so a longer one is abuse or a bug.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section served (hyper refuses past its own, larger, read buffer with a bare
/// 431; below it the client gets its protocol's error body).
const MAX_HEADER_BYTES: usize = 64 * 1024;

fn oversized(req: &http::Request<Incoming>) -> Option<GatewayError> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(GatewayError::UriTooLong { limit: MAX_URI_BYTES });
    }
    // Name, value and the ": " and CRLF around them, as on the wire.
    let header_bytes: usize =
        req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    (header_bytes > MAX_HEADER_BYTES)
        .then_some(GatewayError::HeadersTooLarge { limit: MAX_HEADER_BYTES })
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Model(Protocol),
    CountTokens,
    Models,
    Health,
    Ready,
    Metrics,
    Usage,
}

/// `GET /v1/models`: the configured public models this key may use, in the OpenAI list shape.
fn models(state: &AppState, req: &http::Request<Incoming>) -> Response<ResponseBody> {
    let key = match ingress::authenticate(state, req.headers()) {
        Ok(key) => key,
        Err(e) => return respond::error(Protocol::ChatCompletions, &e),
    };
    let data: Vec<ModelEntry<'_>> = state
        .config
        .models
        .iter()
        .filter(|m| key.allows(&m.name))
        .map(|m| ModelEntry { id: &m.name, object: "model", created: 0, owned_by: "prism" })
        .collect();
    json_response(StatusCode::OK, &ModelList { object: "list", data })
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelEntry<'a>>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The protocol whose error shape a path's errors take (Anthropic clients parse only theirs).
fn protocol_of(path: &str) -> Protocol {
    if path.starts_with("/v1/messages") || path.starts_with("/messages") {
        Protocol::Messages
    } else {
        Protocol::ChatCompletions
    }
}

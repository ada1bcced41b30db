//! Shared state and request dispatch: one tracing span and one `x-request-id` per request, the
//! routes, and the JSON helpers every route answers with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Method, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::body::ResponseBody;
use crate::chat;
use crate::config::Config;
use crate::error::GatewayError;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::upstream::UpstreamClient;

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) upstream: UpstreamClient,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) hooks: Hooks,
    /// Bounds concurrent chat requests; `None` when unlimited.
    pub(crate) limiter: Option<Arc<Semaphore>>,
    /// Set when shutdown starts: `/ready` answers 503 so load balancers stop sending traffic.
    pub(crate) shutting_down: AtomicBool,
}

impl AppState {
    pub(crate) fn new(config: Config, upstream: UpstreamClient, hooks: Hooks) -> Self {
        let limit = config.limits.max_concurrent_requests;
        let metrics = Arc::new(Metrics::default());
        let hooks = crate::guardrails::install(&config.guardrails, hooks, &metrics);
        AppState {
            limiter: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            config,
            upstream,
            metrics,
            hooks,
            shutting_down: AtomicBool::new(false),
        }
    }
}

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
    );
    let mut resp = dispatch(&state, req, &span).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", value);
    }
    resp
}

async fn dispatch(
    state: &Arc<AppState>,
    req: http::Request<Incoming>,
    span: &tracing::Span,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    let (allow, route) = match path {
        "/v1/chat/completions" | "/chat/completions" => ("POST", Route::Chat),
        "/v1/models" | "/models" => ("GET", Route::Models),
        "/health" | "/healthz" => ("GET", Route::Health),
        "/ready" | "/readyz" => ("GET", Route::Ready),
        "/metrics" => ("GET", Route::Metrics),
        _ => return error_response(&GatewayError::RouteNotFound { path: truncate(path, 200) }),
    };
    let method_ok = match allow {
        "POST" => req.method() == Method::POST,
        _ => req.method() == Method::GET || req.method() == Method::HEAD,
    };
    if !method_ok {
        return error_response(&GatewayError::MethodNotAllowed { allow });
    }
    match route {
        Route::Chat => chat::chat_completions(state, req, span).await,
        Route::Models => models(state, &req),
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

#[derive(Debug, Clone, Copy)]
enum Route {
    Chat,
    Models,
    Health,
    Ready,
    Metrics,
}

/// `GET /v1/models`: the configured public models this key may use, in the OpenAI list shape.
fn models(state: &AppState, req: &http::Request<Incoming>) -> Response<ResponseBody> {
    let key = match chat::authenticate(state, req.headers()) {
        Ok(key) => key,
        Err(e) => return error_response(&e),
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

/// A JSON response.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut resp = Response::new(ResponseBody::full(bytes));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            let mut resp = Response::new(ResponseBody::full(&b"{\"error\":{\"message\":\"internal gateway error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}"[..]));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

/// The OpenAI-shaped error response for `e`, with `retry-after` and `allow` where they apply.
pub(crate) fn error_response(e: &GatewayError) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = json_response(status, &e.to_error_object().into_body());
    if let Some(after) = e.retry_after() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    if let GatewayError::MethodNotAllowed { allow } = e {
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if matches!(e, GatewayError::Unauthorized) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

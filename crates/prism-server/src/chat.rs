//! `POST /v1/chat/completions`: auth, body limit, parsing and validation (400s name the field),
//! model lookup and allow-list, the input hook, then the attempt loop; a served stream commits
//! here (status and headers) and continues in `SseBody`; a non-streaming request goes through
//! the response cache when one is installed.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use prism_providers::StreamContext;
use prism_types::{ChatCompletion, ChatRequest, Message};
use serde::Deserialize as _;
use serde_json::{Map, Value};
use tokio::time::Instant;
use tracing::Span;

use crate::app::{AppState, error_response};
use crate::body::ResponseBody;
use crate::cache;
use crate::config::ClientKey;
use crate::error::GatewayError;
use crate::hooks::Caller;
use crate::sse_body::{SseBody, StreamMeta};
use crate::upstream::{self, Answer, Exchange, Unserved};

/// Metric label for requests that never reached a configured model or provider.
const NO_LABEL: &str = "-";

/// Handles one chat completion request.
pub(crate) async fn chat_completions(
    state: &Arc<AppState>,
    req: http::Request<Incoming>,
    span: &Span,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let key = match authenticate(state, &parts.headers) {
        Ok(key) => key,
        Err(e) => return reject(state, NO_LABEL, &e),
    };
    let permit = match &state.limiter {
        None => None,
        Some(sem) => match Arc::clone(sem).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return reject(state, NO_LABEL, &GatewayError::Overloaded),
        },
    };
    let limit = state.config.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return reject(state, NO_LABEL, &GatewayError::PayloadTooLarge { limit });
    }
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return reject(state, NO_LABEL, &GatewayError::PayloadTooLarge { limit });
        }
        Err(_) => {
            // The client went away or sent a broken body; nobody will read an answer.
            let e = GatewayError::invalid("body", "the request body could not be read");
            return reject(state, NO_LABEL, &e);
        }
    };
    let request = match parse(&bytes) {
        Ok(request) => request,
        Err(e) => return reject(state, NO_LABEL, &e),
    };
    let Some(route) = state.config.model(&request.model) else {
        return reject(
            state,
            NO_LABEL,
            &GatewayError::ModelNotFound { model: request.model.clone() },
        );
    };
    let model = route.name.as_str();
    span.record("model", model);
    if !key.allows(model) {
        let e = GatewayError::Forbidden { key: key.name.clone(), model: model.to_owned() };
        return reject(state, model, &e);
    }
    let caller = Caller { key_name: &key.name };
    // Headers the hooks add for the client (guardrail warnings); empty, and free, without them.
    let mut hook_headers = HeaderMap::new();
    if let Some(check) = &state.hooks.input
        && let Err(rejection) = check.check(caller, &request, &mut hook_headers)
    {
        let e = GatewayError::Rejected { status: rejection.status, error: rejection.error };
        return reject(state, model, &e);
    }

    let stream = request.is_stream();
    let created =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let ctx = StreamContext {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created,
        model: model.to_owned(),
        include_usage: request.include_usage(),
        usage_on_finish: state.config.usage_on_finish,
    };
    let total_deadline = started + state.config.timeouts.total;
    let ex = Exchange { request: &request, route, ctx, stream, total_deadline };
    if !stream {
        // The cache wraps the whole non-streaming path; streams never touch it.
        return match &state.hooks.cache {
            Some(cache) => {
                cache::serve(state, cache.as_ref(), &ex, caller, &parts.headers, hook_headers).await
            }
            None => match complete(state, &ex, caller, &mut hook_headers).await {
                Ok(done) => {
                    completion_response(done.body, done.attempts, Some(done.provider), hook_headers)
                }
                Err(resp) => resp,
            },
        };
    }
    let served = match upstream::serve(state, &ex).await {
        Ok(served) => served,
        Err(unserved) => {
            let mut resp = unserved_response(state, model, &unserved);
            cache::mark_bypass(state, &mut resp);
            return resp;
        }
    };
    let provider = served.target.provider.as_str();
    state.metrics.request(model, provider, 200);
    tracing::info!(attempts = served.attempts, provider, stream, "upstream answered");
    let Answer::Stream(primed) = served.answer else {
        tracing::error!(provider, "a streaming request was answered with a whole completion");
        return error_response(&GatewayError::Internal);
    };
    state.metrics.ttft(model, provider, primed.first_content_at.saturating_duration_since(started));
    let filter = state.hooks.output.as_ref().and_then(|f| f.start(caller, &request));
    let meta = StreamMeta {
        state: Arc::clone(state),
        model: model.to_owned(),
        provider: provider.to_owned(),
        started,
        total_deadline,
        span: span.clone(),
        permit,
        credentials: served.target.deployment.credentials.clone(),
    };
    let body = SseBody::new(*primed, filter, meta);
    let mut resp = Response::new(ResponseBody::sse(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.extend(hook_headers);
    set_attempts(&mut resp, served.attempts, provider);
    cache::mark_bypass(state, &mut resp);
    resp
}

/// A non-streaming answer that passed the output checks, ready to send or store.
pub(crate) struct Completed<'r> {
    /// The serialized `chat.completion`.
    pub(crate) body: Bytes,
    /// Upstream attempts it took.
    pub(crate) attempts: u32,
    /// The configured provider that answered.
    pub(crate) provider: &'r str,
}

/// The non-streaming pipeline after the input check: the upstream call (retries, fallback), then
/// the output checks, which may add to `hook_headers`. `Err` is the response to send instead.
pub(crate) async fn complete<'r>(
    state: &AppState,
    ex: &Exchange<'r>,
    caller: Caller<'_>,
    hook_headers: &mut HeaderMap,
) -> Result<Completed<'r>, Response<ResponseBody>> {
    let model = ex.route.name.as_str();
    let served =
        upstream::serve(state, ex).await.map_err(|u| unserved_response(state, model, &u))?;
    let provider = served.target.provider.as_str();
    state.metrics.request(model, provider, 200);
    tracing::info!(attempts = served.attempts, provider, stream = false, "upstream answered");
    let Answer::Completion(mut completion) = served.answer else {
        tracing::error!(provider, "a non-streaming request was answered with a stream");
        return Err(error_response(&GatewayError::Internal));
    };
    if let Some(usage) = &completion.usage {
        state.metrics.tokens(model, provider, usage.prompt_tokens, usage.completion_tokens);
    }
    if let Some(output) = &state.hooks.output
        && let Err(rejection) =
            output.check_completion(caller, ex.request, &mut completion, hook_headers)
    {
        let e = GatewayError::Rejected { status: rejection.status, error: rejection.error };
        let mut resp = error_response(&e);
        set_attempts(&mut resp, served.attempts, provider);
        return Err(resp);
    }
    let body = serialize(&completion).ok_or_else(|| error_response(&GatewayError::Internal))?;
    Ok(Completed { body, attempts: served.attempts, provider })
}

/// A completion served from the cache: no upstream call (`x-prism-attempts: 0`), and the output
/// checks run again for this caller, since the entry may have been stored under other rules
/// (a shared namespace, or another key's identical request in flight).
pub(crate) fn cached_completion(
    state: &AppState,
    ex: &Exchange<'_>,
    caller: Caller<'_>,
    body: Bytes,
    mut hook_headers: HeaderMap,
) -> Response<ResponseBody> {
    let model = ex.route.name.as_str();
    let mut body = body;
    if let Some(output) = &state.hooks.output {
        let Ok(stored) = serde_json::from_slice::<ChatCompletion>(&body) else {
            tracing::error!("a cached entry is not a chat.completion; not serving it");
            return reject(state, model, &GatewayError::Internal);
        };
        let mut completion = stored.clone();
        if let Err(rejection) =
            output.check_completion(caller, ex.request, &mut completion, &mut hook_headers)
        {
            let e = GatewayError::Rejected { status: rejection.status, error: rejection.error };
            return reject(state, model, &e);
        }
        if completion != stored {
            let Some(edited) = serialize(&completion) else {
                return error_response(&GatewayError::Internal);
            };
            body = edited;
        }
    }
    state.metrics.request(model, "cache", 200);
    completion_response(body, 0, None, hook_headers)
}

/// A `200` with a serialized `chat.completion`.
pub(crate) fn completion_response(
    body: Bytes,
    attempts: u32,
    provider: Option<&str>,
    hook_headers: HeaderMap,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.extend(hook_headers);
    match provider {
        Some(provider) => set_attempts(&mut resp, attempts, provider),
        None => {
            resp.headers_mut().insert("x-prism-attempts", HeaderValue::from(attempts));
        }
    }
    resp
}

/// The completion as JSON; `None` (logged) if it cannot be serialised, which the types rule out.
fn serialize(completion: &ChatCompletion) -> Option<Bytes> {
    match serde_json::to_vec(completion) {
        Ok(json) => Some(Bytes::from(json)),
        Err(e) => {
            tracing::error!(error = %e, "completion serialisation failed");
            None
        }
    }
}

/// The error response when no deployment could serve the request.
fn unserved_response(
    state: &AppState,
    model: &str,
    unserved: &Unserved<'_>,
) -> Response<ResponseBody> {
    let provider = unserved.target.provider.as_str();
    state.metrics.request(model, provider, unserved.error.status());
    tracing::warn!(
        status = unserved.error.status(),
        error = unserved.error.metric_label(),
        attempts = unserved.attempts,
        provider,
        "no deployment could serve the request"
    );
    let mut resp = error_response(&unserved.error);
    set_attempts(&mut resp, unserved.attempts, provider);
    resp
}

fn reject(state: &AppState, model: &str, e: &GatewayError) -> Response<ResponseBody> {
    state.metrics.request(model, NO_LABEL, e.status());
    tracing::info!(status = e.status(), error = e.metric_label(), "request rejected");
    error_response(e)
}

fn set_header(resp: &mut Response<ResponseBody>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, value);
    }
}

fn set_attempts(resp: &mut Response<ResponseBody>, attempts: u32, provider: &str) {
    resp.headers_mut().insert("x-prism-attempts", HeaderValue::from(attempts));
    set_header(resp, "x-prism-provider", provider);
}

/// The key from `Authorization: Bearer <key>`.
pub(crate) fn authenticate<'a>(
    state: &'a AppState,
    headers: &http::HeaderMap,
) -> Result<&'a ClientKey, GatewayError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(GatewayError::Unauthorized)?;
    let (scheme, key) = value.trim().split_once(' ').ok_or(GatewayError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(GatewayError::Unauthorized);
    }
    state.config.authenticate(key.trim()).ok_or(GatewayError::Unauthorized)
}

/// Parses and validates the body. On a parse failure, works out which field is at fault.
pub(crate) fn parse(bytes: &[u8]) -> Result<ChatRequest, GatewayError> {
    let request: ChatRequest = match serde_json::from_slice(bytes) {
        Ok(request) => request,
        Err(e) => return Err(explain(bytes, &e)),
    };
    validate(&request)?;
    Ok(request)
}

/// Finds the field behind a deserialisation error by checking each top-level field on its own.
/// Only runs on the error path.
fn explain(bytes: &[u8], err: &serde_json::Error) -> GatewayError {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            return GatewayError::InvalidRequest {
                param: None,
                message: format!("the body is not valid JSON: {e}"),
            };
        }
    };
    let Value::Object(map) = value else {
        return GatewayError::InvalidRequest {
            param: None,
            message: "the body must be a JSON object".to_owned(),
        };
    };
    for required in ["model", "messages"] {
        if !map.contains_key(required) {
            return GatewayError::invalid(required, format!("missing required field `{required}`"));
        }
    }
    let mut probe = Map::new();
    probe.insert("model".to_owned(), Value::String("probe".to_owned()));
    probe.insert("messages".to_owned(), Value::Array(Vec::new()));
    for (field, value) in &map {
        if field == "messages" {
            let Value::Array(messages) = value else {
                return GatewayError::invalid(
                    "messages",
                    "`messages` must be an array of messages",
                );
            };
            for (i, message) in messages.iter().enumerate() {
                if let Err(e) = Message::deserialize(message) {
                    return GatewayError::invalid(
                        format!("messages[{i}]"),
                        format!("invalid message: {e}"),
                    );
                }
            }
            continue;
        }
        let mut one = probe.clone();
        one.insert(field.clone(), value.clone());
        if let Err(e) = ChatRequest::deserialize(Value::Object(one)) {
            return GatewayError::invalid(field.clone(), format!("invalid `{field}`: {e}"));
        }
    }
    GatewayError::InvalidRequest { param: None, message: format!("invalid request: {err}") }
}

/// Range checks OpenAI applies, so a bad value is a 400 here rather than an upstream error.
fn validate(req: &ChatRequest) -> Result<(), GatewayError> {
    if req.model.is_empty() {
        return Err(GatewayError::invalid("model", "`model` must not be empty"));
    }
    if req.messages.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let range = |param: &str, value: Option<f64>, lo: f64, hi: f64| match value {
        Some(v) if !(lo..=hi).contains(&v) => Err(GatewayError::invalid(
            param,
            format!("`{param}` must be between {lo} and {hi}, got {v}"),
        )),
        _ => Ok(()),
    };
    range("temperature", req.temperature, 0.0, 2.0)?;
    range("top_p", req.top_p, 0.0, 1.0)?;
    range("presence_penalty", req.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", req.frequency_penalty, -2.0, 2.0)?;
    if let Some(n) = req.n
        && !(1..=128).contains(&n)
    {
        return Err(GatewayError::invalid("n", format!("`n` must be between 1 and 128, got {n}")));
    }
    for (param, value) in
        [("max_tokens", req.max_tokens), ("max_completion_tokens", req.max_completion_tokens)]
    {
        if value == Some(0) {
            return Err(GatewayError::invalid(param, format!("`{param}` must be at least 1")));
        }
    }
    if let Some(top) = req.top_logprobs
        && top > 20
    {
        return Err(GatewayError::invalid(
            "top_logprobs",
            format!("`top_logprobs` must be between 0 and 20, got {top}"),
        ));
    }
    if let Some(stop) = &req.stop
        && stop.to_vec().len() > 4
    {
        return Err(GatewayError::invalid("stop", "`stop` takes at most 4 sequences"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(body: &str) -> (Option<String>, String) {
        match parse(body.as_bytes()).unwrap_err() {
            GatewayError::InvalidRequest { param, message } => (param, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_the_field() {
        let ok = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(parse(ok.as_bytes()).is_ok());
        assert_eq!(param("{nope").0, None);
        assert!(param("{nope").1.starts_with("the body is not valid JSON"));
        assert_eq!(param("[1]").1, "the body must be a JSON object");
        assert_eq!(param(r#"{"model":"m"}"#).0.as_deref(), Some("messages"));
        assert_eq!(param(r#"{"messages":[]}"#).0.as_deref(), Some("model"));
        assert_eq!(param(r#"{"model":"m","messages":[]}"#).0.as_deref(), Some("messages"));
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"nobody","content":"x"}]}"#).0.as_deref(),
            Some("messages[0]")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":"two"}"#)
                .0
                .as_deref(),
            Some("n")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#).0.as_deref(),
            Some("n")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":129}"#)
                .0
                .as_deref(),
            Some("n")
        );
        let (p, m) =
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}"#);
        assert_eq!(p.as_deref(), Some("temperature"));
        assert_eq!(m, "`temperature` must be between 0 and 2, got 2.5");
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":-1}"#)
                .0
                .as_deref(),
            Some("top_p")
        );
        assert_eq!(
            param(r#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#).0.as_deref(),
            Some("model")
        );
    }
}

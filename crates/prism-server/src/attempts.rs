//! Stage 5, attempts: one attempt against one deployment (streaming attempts read until the
//! first real content, so a failure is still an HTTP error), and the retry and fallback loop
//! across a model's deployments. Nothing here runs after the first byte went to the client; that
//! is `stream`'s part.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body::Body as _;
use prism_providers::native::NativeRequest;
use prism_providers::{
    BuildOptions, ByteTranslator, Credentials, OutChunk, ProviderError, StreamContext,
    StreamSummary, TranslateError,
};
use prism_types::{ChatChunk, ChatCompletion, ChatRequest, ErrorObject};
use rand::Rng;
use tokio::time::{Instant, timeout_at};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::{ModelRoute, RetryPolicy, RouteTarget};
use crate::error::GatewayError;
use crate::state::AppState;
use crate::telemetry::{self, ClientTrace};

/// Largest upstream error body read (the rest is not needed to map the error).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Role-only chunks held before the first content; past this the stream commits anyway, so a
/// misbehaving upstream cannot grow the held list without bound.
const MAX_HELD_CHUNKS: usize = 64;

/// What one request needs from the attempt loop.
#[derive(Debug)]
pub(crate) struct Exchange<'a> {
    pub(crate) request: &'a ChatRequest,
    pub(crate) route: &'a ModelRoute,
    pub(crate) ctx: StreamContext,
    pub(crate) stream: bool,
    /// When the whole request must be over.
    pub(crate) total_deadline: Instant,
    /// The same-protocol lane, for a client that speaks a provider's own protocol.
    pub(crate) native: Option<Native<'a>>,
    /// The client's trace headers, for the upstream request.
    pub(crate) client_trace: ClientTrace,
    /// When the request arrived, for the gateway's own added latency.
    pub(crate) started: Instant,
    /// Set once the first upstream request went out.
    pub(crate) sent: std::sync::atomic::AtomicBool,
}

/// A request that a deployment speaking the client's protocol gets as the client sent it.
#[derive(Debug)]
pub(crate) struct Native<'a> {
    pub(crate) request: NativeRequest<'a>,
    /// Whether the lane may be taken: no output check needs the canonical answer.
    pub(crate) allowed: bool,
    /// Set when only the lane can serve the request (features a translation cannot carry):
    /// deployments without it answer this error.
    pub(crate) required: Option<GatewayError>,
}

/// A streaming attempt that produced its first real content: the response may now commit.
pub(crate) struct Primed {
    /// The rest of the upstream body.
    pub(crate) body: reqwest::Body,
    pub(crate) translator: Box<dyn ByteTranslator>,
    /// Chunks produced so far (role chunk, first content), not yet sent.
    pub(crate) held: Vec<OutChunk>,
    /// Set when the upstream already ended cleanly (the closing chunks are in `held`).
    pub(crate) finished: Option<StreamSummary>,
    pub(crate) upstream_bytes: u64,
    /// When the first real content arrived.
    pub(crate) first_content_at: Instant,
    /// The chunks carry the upstream's own events (a same-protocol lane).
    pub(crate) native: bool,
}

impl std::fmt::Debug for Primed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primed")
            .field("held", &self.held.len())
            .field("finished", &self.finished)
            .finish()
    }
}

/// The answer of a successful attempt.
#[derive(Debug)]
pub(crate) enum Answer {
    Stream(Box<Primed>),
    Completion(Box<ChatCompletion>),
    /// A same-protocol lane's whole answer, already in the client's protocol.
    Native(Bytes),
}

/// A request the loop served.
#[derive(Debug)]
pub(crate) struct Served<'r> {
    pub(crate) answer: Answer,
    pub(crate) target: &'r RouteTarget,
    pub(crate) attempts: u32,
}

/// A request no deployment could serve.
#[derive(Debug)]
pub(crate) struct Unserved<'r> {
    pub(crate) error: GatewayError,
    /// The last deployment tried.
    pub(crate) target: &'r RouteTarget,
    pub(crate) attempts: u32,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Try the same deployment again (after a back-off).
    Retry,
    /// Move on to the next deployment at once.
    Fallback,
    /// Give up: the failure is the client's (a bad request) or the time is up.
    Stop,
}

/// One failed attempt.
#[derive(Debug)]
struct Failure {
    error: GatewayError,
    next: Next,
    retry_after: Option<Duration>,
    /// Metric label of the failure kind.
    kind: &'static str,
}

impl Failure {
    fn new(error: GatewayError, next: Next, kind: &'static str) -> Self {
        Failure { error, next, retry_after: None, kind }
    }

    /// An upstream error, mapped by the provider's translator. Upstream 401/403 mean the
    /// gateway's own credentials are wrong: the client cannot fix that, so it becomes a 502
    /// (and its message, which may echo part of a key, is replaced).
    fn provider(mut err: ProviderError, credentials: &Credentials) -> Self {
        let auth_code = err.error.code.as_deref() == Some("upstream_authentication_failed");
        if matches!(err.status, 401 | 403) || auth_code {
            let error = ErrorObject::new(
                "upstream_error",
                format!(
                    "the upstream provider refused the gateway's credentials (HTTP {})",
                    err.status
                ),
            )
            .with_code("upstream_authentication_failed");
            let err =
                ProviderError { status: 502, error, retryable: false, retry_after_secs: None };
            return Failure::new(GatewayError::Upstream(err), Next::Fallback, "upstream_auth");
        }
        redact(&mut err.error.message, credentials);
        let retry_after = err.retry_after_secs.map(Duration::from_secs);
        let (next, kind) = if err.retryable {
            let kind = match err.status {
                429 => "rate_limited",
                s if s >= 500 => "server_error",
                _ => "retryable",
            };
            (Next::Retry, kind)
        } else if err.status == 404 {
            // The deployment's upstream model does not exist: a configuration fault of this
            // deployment only.
            (Next::Fallback, "not_found")
        } else {
            (Next::Stop, "client_error")
        };
        Failure { error: GatewayError::Upstream(err), next, retry_after, kind }
    }

    fn translate(err: &TranslateError, credentials: &Credentials) -> Self {
        Failure::provider(err.to_provider_error(), credentials)
    }

    fn transport(err: &reqwest::Error) -> Self {
        tracing::debug!(error = %err.without_url_ref(), "upstream transport error");
        if err.is_timeout() || err.is_connect() {
            Failure::new(GatewayError::UpstreamConnect, Next::Retry, "connect")
        } else {
            Failure::new(GatewayError::UpstreamConnect, Next::Retry, "transport")
        }
    }

    /// The upstream answered, then its body failed (a cut, a reset, broken chunked framing)
    /// before anything reached the client: retryable like a transport error, but not reported as
    /// a failure to connect.
    fn body(err: &reqwest::Error) -> Self {
        tracing::debug!(error = %err.without_url_ref(), "upstream body failed");
        let err = ProviderError::new(
            502,
            ErrorObject::new(
                "upstream_error",
                "the connection to the upstream provider failed before the answer was complete",
            )
            .with_code("upstream_connection_lost"),
        );
        Failure::new(GatewayError::Upstream(err), Next::Retry, "transport")
    }

    /// A deadline passed: the first-token deadline moves on to the next deployment, the total
    /// deadline ends the request.
    fn timeout(total_deadline: Instant) -> Self {
        if Instant::now() >= total_deadline {
            Failure::new(
                GatewayError::UpstreamTimeout { stage: "total" },
                Next::Stop,
                "timeout_total",
            )
        } else {
            Failure::new(
                GatewayError::UpstreamTimeout { stage: "first_token" },
                Next::Fallback,
                "timeout_first_token",
            )
        }
    }
}

/// `reqwest::Error::without_url` by reference: URLs may carry project ids or keys in queries.
trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "<upstream>");
        }
        text
    }
}

/// Removes any credential value from an upstream message before a client or log sees it.
pub(crate) fn redact(message: &mut String, credentials: &Credentials) {
    let secrets: [Option<&str>; 3] = match credentials {
        Credentials::None => [None, None, None],
        Credentials::ApiKey(s) | Credentials::Bearer(s) => [Some(s.expose()), None, None],
        Credentials::Aws { access_key_id, secret_access_key, session_token } => [
            Some(access_key_id.expose()),
            Some(secret_access_key.expose()),
            session_token.as_ref().map(|t| t.expose()),
        ],
    };
    for secret in secrets.into_iter().flatten() {
        if secret.len() >= 4 && message.contains(secret) {
            *message = message.replace(secret, "[redacted]");
        }
    }
}

/// Serves `ex` from the route's deployments in order: each is tried up to
/// `retries.max_attempts` times (retryable failures only, with jittered back-off honouring
/// `retry-after`), then the next one takes over.
pub(crate) async fn serve<'r>(
    state: &AppState,
    ex: &Exchange<'r>,
) -> Result<Served<'r>, Unserved<'r>> {
    let policy = &state.config.retries;
    let mut attempts = 0u32;
    let mut last: Option<(GatewayError, &'r RouteTarget)> = None;
    'deployments: for (index, target) in ex.route.deployments.iter().enumerate() {
        if index > 0 {
            state.metrics.fallback(&ex.route.name);
            tracing::info!(provider = %target.provider, "falling back to the next deployment");
        }
        for try_index in 0..policy.max_attempts {
            if try_index > 0 {
                state.metrics.retry(&target.provider);
            }
            attempts += 1;
            let deployment = &target.deployment;
            // One span per upstream call, child of the request's: retries and fallbacks show.
            let span = tracing::info_span!(
                "upstream",
                otel.name = %format_args!("chat {}", deployment.upstream_model),
                otel.kind = "client",
                provider = %target.provider,
                attempt = attempts,
            );
            span.set_attribute("gen_ai.operation.name", "chat");
            span.set_attribute("gen_ai.provider.name", telemetry::provider_name(deployment.kind));
            span.set_attribute("gen_ai.request.model", deployment.upstream_model.clone());
            span.set_attribute(
                "server.address",
                telemetry::host_of(&deployment.base_url).to_owned(),
            );
            let result = attempt(state, ex, target, &span).instrument(span.clone()).await;
            let failure = match result {
                Ok(answer) => return Ok(Served { answer, target, attempts }),
                Err(failure) => {
                    telemetry::fail(&span, failure.kind);
                    failure
                }
            };
            state.metrics.upstream_error(&target.provider, failure.kind);
            tracing::warn!(
                provider = %target.provider,
                attempt = attempts,
                kind = failure.kind,
                status = failure.error.status(),
                "upstream attempt failed"
            );
            let next = failure.next;
            let retry_after = failure.retry_after;
            last = Some((failure.error, target));
            match next {
                Next::Stop => break 'deployments,
                Next::Fallback => continue 'deployments,
                Next::Retry if try_index + 1 < policy.max_attempts => {
                    let Some(wait) = backoff(policy, try_index, retry_after) else {
                        continue 'deployments;
                    };
                    if Instant::now() + wait >= ex.total_deadline {
                        break 'deployments;
                    }
                    tokio::time::sleep(wait).await;
                }
                Next::Retry => {}
            }
        }
    }
    let (error, target) = match last {
        Some(last) => last,
        // A route always has a deployment (validated) and max_attempts >= 1, so some attempt ran.
        None => (GatewayError::Internal, &ex.route.deployments[0]),
    };
    Err(Unserved { error, target, attempts })
}

/// The back-off before retry number `try_index + 1`: the upstream's `retry-after` when it sent
/// one (`None` when that is longer than the gateway waits), else exponential with equal jitter.
fn backoff(
    policy: &RetryPolicy,
    try_index: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if let Some(wait) = retry_after {
        return (wait <= policy.max_retry_after).then_some(wait);
    }
    let exp = policy.backoff_base.saturating_mul(1u32 << try_index.min(16)).min(policy.backoff_max);
    let half = exp / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    Some(half + Duration::from_millis(jitter))
}

async fn attempt(
    state: &AppState,
    ex: &Exchange<'_>,
    target: &RouteTarget,
    span: &tracing::Span,
) -> Result<Answer, Failure> {
    let deployment = &target.deployment;
    let native = ex
        .native
        .as_ref()
        .filter(|n| n.allowed && n.request.api.serves(deployment))
        .map(|n| n.request);
    if native.is_none()
        && let Some(required) = ex.native.as_ref().and_then(|n| n.required.clone())
    {
        return Err(Failure::new(required, Next::Fallback, "unsupported_request"));
    }
    let opts = BuildOptions { stream: ex.stream, request_usage: true, now: SystemTime::now() };
    let built = match &native {
        Some(native) => prism_providers::native::build_request(native, deployment, &opts),
        None => prism_providers::build_request(ex.request, deployment, &opts),
    };
    let request = built.map_err(|e| {
        let mut f = Failure::translate(&e, &deployment.credentials);
        if matches!(e, TranslateError::InvalidRequest { .. }) {
            // This provider cannot express the request; another deployment may.
            f.next = Next::Fallback;
            f.kind = "unsupported_request";
        }
        f
    })?;
    let mut request =
        reqwest::Request::try_from(request.map(reqwest::Body::from)).map_err(|e| {
            tracing::error!(error = %e.without_url_ref(), "translator built an unusable request");
            Failure::new(GatewayError::Internal, Next::Fallback, "bad_request_build")
        })?;
    telemetry::inject(span, request.headers_mut(), &ex.client_trace);
    if !ex.sent.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // Prism's own time before the upstream hears of the request: decode, admission,
        // checks, translation (not retries, which are the upstream's doing).
        let latency = ex.started.elapsed();
        state.metrics.added_latency(&ex.route.name, &target.provider, "before_upstream", latency);
    }
    let deadline = if ex.stream {
        let ttft = target.ttft_deadline.unwrap_or(state.config.timeouts.first_token);
        (Instant::now() + ttft).min(ex.total_deadline)
    } else {
        ex.total_deadline
    };
    let response = match timeout_at(deadline, state.upstream.http.execute(request)).await {
        Err(_) => return Err(Failure::timeout(ex.total_deadline)),
        Ok(Err(e)) => return Err(Failure::transport(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_redirection() {
        // Redirects are not followed (one could carry the credentials elsewhere), and this
        // deployment would redirect again: a bad gateway, and on to the next deployment.
        let err = ProviderError::new(
            502,
            ErrorObject::new(
                "upstream_error",
                format!("the upstream answered with a redirect (HTTP {})", status.as_u16()),
            )
            .with_code("upstream_redirect"),
        );
        return Err(Failure::new(GatewayError::Upstream(err), Next::Fallback, "redirect"));
    }
    if !status.is_success() {
        let retry_after = retry_after_secs(response.headers());
        let body = read_limited(response, MAX_ERROR_BODY, deadline, true).await.unwrap_or_default();
        let err = prism_providers::map_error_response(
            deployment.kind,
            status.as_u16(),
            &body,
            retry_after,
        );
        return Err(Failure::provider(err, &deployment.credentials));
    }
    if ex.stream {
        let translator = match &native {
            Some(n) => prism_providers::native::relay(n.api, deployment, ex.ctx.clone()),
            None => prism_providers::stream_translator(deployment, ex.ctx.clone()),
        };
        let body = http::Response::from(response).into_body();
        prime(body, translator, deadline, ex.total_deadline, &deployment.credentials).await.map(
            |mut p| {
                p.native = native.is_some();
                Answer::Stream(Box::new(p))
            },
        )
    } else {
        let limit = state.config.limits.max_response_bytes;
        let body = match read_limited(response, limit, deadline, false).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) => {
                let err = ProviderError::new(
                    502,
                    ErrorObject::new(
                        "upstream_error",
                        format!("the upstream response is larger than {limit} bytes"),
                    )
                    .with_code("upstream_response_too_large"),
                );
                return Err(Failure {
                    next: Next::Stop,
                    ..Failure::provider(err, &Credentials::None)
                });
            }
            Err(ReadError::Timeout) => return Err(Failure::timeout(ex.total_deadline)),
            Err(ReadError::Transport(e)) => return Err(Failure::body(&e)),
        };
        if let Some(n) = &native {
            return Ok(Answer::Native(prism_providers::native::rewrite_response(
                n.api,
                &body,
                &ex.ctx.model,
            )));
        }
        prism_providers::translate_response(deployment, &ex.ctx, &body)
            .map(|c| Answer::Completion(Box::new(c)))
            .map_err(|e| Failure::translate(&e, &deployment.credentials))
    }
}

/// Reads upstream bytes until the translator produced real content (or the stream ended), all
/// before `deadline`. Until then a failure is still an ordinary, retryable HTTP error.
async fn prime(
    mut body: reqwest::Body,
    mut translator: Box<dyn ByteTranslator>,
    deadline: Instant,
    total_deadline: Instant,
    credentials: &Credentials,
) -> Result<Primed, Failure> {
    let mut held: Vec<OutChunk> = Vec::new();
    let mut upstream_bytes = 0u64;
    loop {
        let frame =
            match timeout_at(deadline, poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))).await {
                Err(_) => return Err(Failure::timeout(total_deadline)),
                Ok(frame) => frame,
            };
        let data: Bytes = match frame {
            None => {
                let mut out = Vec::new();
                return match translator.finish(&mut out) {
                    Ok(summary) => {
                        held.append(&mut out);
                        Ok(Primed {
                            body,
                            translator,
                            held,
                            finished: Some(summary),
                            upstream_bytes,
                            first_content_at: Instant::now(),
                            native: false,
                        })
                    }
                    Err(e) => Err(Failure::translate(&e, credentials)),
                };
            }
            Some(Err(e)) => return Err(Failure::body(&e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        upstream_bytes += data.len() as u64;
        let before = held.len();
        translator.feed(&data, &mut held).map_err(|e| Failure::translate(&e, credentials))?;
        let real = held[before..].iter().any(|c| is_substantive(&c.chunk));
        if real || translator.is_done() || held.len() >= MAX_HELD_CHUNKS {
            return Ok(Primed {
                body,
                translator,
                held,
                finished: None,
                upstream_bytes,
                first_content_at: Instant::now(),
                native: false,
            });
        }
    }
}

/// Whether a chunk carries more than the opening role delta: text, reasoning, a refusal, a tool
/// call, a finish reason or usage.
pub(crate) fn is_substantive(chunk: &ChatChunk) -> bool {
    chunk.usage.is_some()
        || chunk.choices.iter().any(|c| {
            let d = &c.delta;
            c.finish_reason.is_some()
                || d.content.as_deref().is_some_and(|s| !s.is_empty())
                || d.reasoning_content.as_deref().is_some_and(|s| !s.is_empty())
                || d.refusal.as_deref().is_some_and(|s| !s.is_empty())
                || d.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
        })
}

/// `retry-after` in whole seconds (delta-seconds form; fractions round up), or `retry-after-ms`.
fn retry_after_secs(headers: &http::HeaderMap) -> Option<u64> {
    if let Some(secs) = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(secs.ceil() as u64);
    }
    let ms =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok())?.trim().parse::<u64>().ok()?;
    Some(ms.div_ceil(1000))
}

#[derive(Debug)]
enum ReadError {
    TooLarge,
    Timeout,
    Transport(reqwest::Error),
}

/// Reads a whole body, at most `limit` bytes (or truncated at `limit` when `truncate`).
async fn read_limited(
    response: reqwest::Response,
    limit: usize,
    deadline: Instant,
    truncate: bool,
) -> Result<Vec<u8>, ReadError> {
    let mut body = http::Response::from(response).into_body();
    let mut out = Vec::new();
    let read = async {
        while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.map_err(ReadError::Transport)?;
            let Ok(data) = frame.into_data() else { continue };
            if out.len() + data.len() > limit {
                if truncate {
                    out.extend_from_slice(&data[..limit - out.len()]);
                    return Ok(());
                }
                return Err(ReadError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
        Ok(())
    };
    match timeout_at(deadline, read).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use prism_providers::Secret;
    use prism_types::Delta;

    use super::*;

    #[test]
    fn role_chunk_is_not_substantive() {
        let role = ChatChunk::new("c", 1, "m")
            .with_delta(0, Delta { content: Some(String::new()), ..Delta::role() });
        assert!(!is_substantive(&role));
        assert!(is_substantive(&ChatChunk::new("c", 1, "m").with_delta(0, Delta::content("x"))));
        assert!(is_substantive(
            &ChatChunk::new("c", 1, "m").with_finish(0, prism_types::FinishReason::Stop)
        ));
        assert!(!is_substantive(&ChatChunk::new("c", 1, "m")));
    }

    #[test]
    fn backoff_honours_retry_after_up_to_the_limit() {
        let p = RetryPolicy::default();
        assert_eq!(backoff(&p, 0, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(backoff(&p, 0, Some(Duration::from_secs(60))), None);
        for i in 0..8 {
            let d = backoff(&p, i, None).unwrap();
            assert!(d <= p.backoff_max, "{d:?}");
            let exp = p.backoff_base.saturating_mul(1 << i).min(p.backoff_max);
            assert!(d >= exp / 2, "{d:?} < {:?}", exp / 2);
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after_secs(&h), None);
        h.insert("retry-after-ms", http::HeaderValue::from_static("1500"));
        assert_eq!(retry_after_secs(&h), Some(2));
        h.insert("retry-after", http::HeaderValue::from_static("3"));
        assert_eq!(retry_after_secs(&h), Some(3));
    }

    #[test]
    fn upstream_auth_failures_hide_the_message_and_secrets_are_redacted() {
        let creds = Credentials::ApiKey(Secret::new("sk-upstream-abcdef"));
        let err = ProviderError::from_status(401, "Incorrect API key provided: sk-upstream-abcdef");
        let f = Failure::provider(err, &creds);
        assert_eq!(f.error.status(), 502);
        assert!(!f.error.to_error_object().message.contains("sk-upstream"));
        let err = ProviderError::from_status(500, "boom sk-upstream-abcdef boom");
        let f = Failure::provider(err, &creds);
        assert_eq!(f.error.to_error_object().message, "boom [redacted] boom");
        assert_eq!(f.next, Next::Retry);
    }
}

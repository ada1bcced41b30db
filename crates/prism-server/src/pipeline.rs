//! One model request, top to bottom, whatever protocol it arrived in:
//! ingress decode → admission → input checks → cache (non-streaming) → attempts → stream or
//! completion checks → the answer in the client's protocol. Each stage is its own module and
//! calls only the stages below it; this one only sequences them and keeps the books (metrics,
//! logs, the headers every answer carries).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use hyper::body::Incoming;
use prism_cache::CACHE_STATUS_HEADER;
use prism_ingress::{EncodeContext, Protocol};
use prism_providers::StreamContext;
use prism_providers::native::{NativeApi, NativeRequest};
use prism_types::{ChatCompletion, Usage};
use tokio::time::Instant;
use tracing::Span;

use crate::admission::{self, Admitted, Slot};
use crate::attempts::{self, Answer, Exchange, Native, Unserved};
use crate::body::ResponseBody;
use crate::cache;
use crate::checks;
use crate::config::ModelRoute;
use crate::error::GatewayError;
use crate::hooks::{CacheRequest, Caller, Compute};
use crate::ingress::{self, Inbound};
use crate::respond::{self, NO_LABEL};
use crate::state::AppState;
use crate::stream::{SseBody, StreamMeta};
use crate::telemetry::{self, ClientTrace};
use crate::usage::{self, Answered, RequestFacts, Ticket};

/// Serves one model request of `protocol`.
pub(crate) async fn serve(
    state: &Arc<AppState>,
    protocol: Protocol,
    req: http::Request<Incoming>,
    span: &Span,
    request_id: &str,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let books = Books { state, protocol };
    let inbound = match ingress::decode(state, protocol, req).await {
        Ok(inbound) => inbound,
        Err(e) => return books.reject(NO_LABEL, &e),
    };
    let request = &inbound.decoded.request;
    let Admitted { route, permit } = match admission::admit(state, inbound.key, &request.model) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let label = refused.route.map_or(NO_LABEL, |r| r.name.as_str());
            return books.reject(label, &refused.error);
        }
    };
    let model = route.name.as_str();
    span.record("model", model);
    // The usage ledger: limits and budgets, then one usage record however the request ends.
    let trace_id = usage::trace_id(header_str(&inbound.headers, "traceparent"));
    telemetry::request_attributes(span, model, request, state.config.telemetry.capture_content);
    let facts = RequestFacts {
        request_id,
        protocol,
        key: inbound.key,
        route,
        request,
        started,
        trace_id,
        span,
    };
    let mut ticket = match usage::admit(state, &facts).await {
        Ok(ticket) => Some(ticket),
        Err((e, rate_headers)) => {
            let mut resp = books.reject(model, &e);
            usage::set_rate_headers(&mut resp, &rate_headers);
            return resp;
        }
    };
    let mut resp = answer(state, books, &inbound, route, permit, span, started, &mut ticket).await;
    // A whole answer (or an error): the stream, when there is one, took its ticket.
    if let Some(mut ticket) = ticket.take() {
        ticket.finish_response(&mut resp);
    }
    resp
}

/// An admitted request from the input checks to its answer. A stream takes `ticket` with it.
#[allow(clippy::too_many_arguments)] // the request's parts, borrowed from `serve`
async fn answer(
    state: &Arc<AppState>,
    books: Books<'_>,
    inbound: &Inbound<'_>,
    route: &ModelRoute,
    permit: Option<Slot>,
    span: &Span,
    started: Instant,
    ticket: &mut Option<Ticket>,
) -> Response<ResponseBody> {
    let protocol = books.protocol;
    let Inbound { key, decoded, headers, .. } = inbound;
    let request = &decoded.request;
    let model = route.name.as_str();
    let caller = Caller { key_name: &key.name };
    // Headers the hooks add for the client (guardrail warnings); empty, and free, without them.
    let mut hook_headers = HeaderMap::new();
    if let Err(e) = checks::input(state, caller, request, &mut hook_headers) {
        return books.reject(model, &e);
    }

    let stream = request.is_stream();
    let created =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let uuid = uuid::Uuid::new_v4().simple();
    let ctx = StreamContext {
        id: format!("chatcmpl-{uuid}"),
        created,
        model: model.to_owned(),
        include_usage: request.include_usage(),
        usage_on_finish: state.config.usage_on_finish,
    };
    let encode = EncodeContext {
        id: match protocol {
            Protocol::ChatCompletions => ctx.id.clone(),
            Protocol::Messages => format!("msg_{uuid}"),
            Protocol::Responses => format!("resp_{uuid}"),
        },
        created,
        model: model.to_owned(),
    };
    let total_deadline = started + state.config.timeouts.total;
    // Streams get their output filter now: a stream it watches cannot take a same-protocol lane.
    let filter = if stream {
        state.hooks.output.as_ref().and_then(|f| f.start(caller, request))
    } else {
        None
    };
    let required = decoded.native_only.clone().map(ingress::invalid);
    let native = native_api(protocol).map(|api| Native {
        request: NativeRequest {
            api,
            body: &inbound.body,
            anthropic_version: header_str(headers, "anthropic-version"),
            anthropic_beta: header_str(headers, "anthropic-beta"),
        },
        // A whole answer takes the lane only when neither the output checks nor the cache
        // need the canonical completion; a request only the lane can serve skips the cache.
        allowed: if stream {
            filter.is_none()
        } else {
            state.hooks.output.is_none() && (state.hooks.cache.is_none() || required.is_some())
        },
        required: required.clone(),
    });
    if let Some(required) = &required
        && !native.as_ref().is_some_and(|n| n.allowed)
    {
        // Only a same-protocol upstream could honour this request, and output checks are on.
        return books.reject(model, required);
    }
    let lane_only = native.as_ref().is_some_and(|n| n.required.is_some());
    let client_trace = ClientTrace::from_headers(headers);
    let ex = Exchange {
        request,
        route,
        ctx,
        stream,
        total_deadline,
        native,
        client_trace,
        started,
        sent: std::sync::atomic::AtomicBool::new(false),
    };

    if !stream {
        let cache = state.hooks.cache.as_ref().filter(|_| !lane_only);
        let resp = match cache {
            Some(cache) => {
                books.cached(&ex, caller, &encode, headers, hook_headers, cache.as_ref()).await
            }
            None => match books.complete(&ex, caller, &mut hook_headers).await {
                Ok(done) => {
                    let answered = done.answered();
                    let mut resp = if done.native {
                        respond::native(done.body, hook_headers)
                    } else {
                        respond::completion(protocol, done.body, &encode, hook_headers)
                    };
                    respond::set_attempts(&mut resp, done.attempts, Some(done.provider));
                    resp.extensions_mut().insert(answered);
                    resp
                }
                Err(resp) => resp,
            },
        };
        drop(permit);
        return resp;
    }

    let served = match attempts::serve(state, &ex).await {
        Ok(served) => served,
        Err(unserved) => {
            let mut resp = books.unserved(model, &unserved);
            cache::mark_bypass(state, &mut resp);
            return resp;
        }
    };
    let provider = served.target.provider.as_str();
    state.metrics.request(protocol.as_str(), model, provider, 200);
    tracing::info!(attempts = served.attempts, provider, stream, "upstream answered");
    let Answer::Stream(primed) = served.answer else {
        tracing::error!(provider, "a streaming request was answered with a whole completion");
        return respond::error(protocol, &GatewayError::Internal);
    };
    telemetry::answered_by(span, &served.target.deployment, &encode.id);
    let ttft = primed.first_content_at.saturating_duration_since(started);
    state.metrics.ttft(model, provider, ttft);
    let ticket = ticket.take();
    // The estimate admission already counted (Messages' `message_start` announces it).
    let input_estimate = ticket.as_ref().map_or_else(
        || prism_ingress::messages::estimate_input_tokens(ex.request),
        Ticket::input_estimate,
    );
    let rate_headers = ticket.as_ref().map(|t| *t.rate_headers()).unwrap_or_default();
    let meta = StreamMeta {
        state: Arc::clone(state),
        model: model.to_owned(),
        provider: provider.to_owned(),
        upstream_model: served.target.deployment.upstream_model.clone(),
        provider_kind: telemetry::provider_name(served.target.deployment.kind),
        started,
        total_deadline,
        span: span.clone(),
        permit,
        credentials: served.target.deployment.credentials.clone(),
        ticket,
        ttft,
        attempts: served.attempts,
    };
    let encoder: Box<dyn prism_ingress::StreamEncoder> = if primed.native {
        prism_ingress::native::encoder(protocol)
    } else if protocol == Protocol::Messages {
        // Claude Code's context accounting reads `message_start`'s input tokens; upstreams that
        // report usage only at the end would make it 0 there, so announce the estimate.
        Box::new(
            prism_ingress::messages::MessagesEncoder::new(encode).with_input_tokens(input_estimate),
        )
    } else {
        prism_ingress::stream_encoder(protocol, encode)
    };
    let body = SseBody::new(*primed, encoder, filter, meta);
    let mut resp = Response::new(ResponseBody::sse(body));
    respond::stream_head(&mut resp, hook_headers);
    respond::set_attempts(&mut resp, served.attempts, Some(provider));
    usage::set_rate_headers(&mut resp, &rate_headers);
    cache::mark_bypass(state, &mut resp);
    resp
}

/// A non-streaming answer that passed the output checks, ready to send or store.
struct Completed<'r> {
    /// The serialised canonical `chat.completion`.
    body: Bytes,
    attempts: u32,
    /// The configured provider that answered.
    provider: &'r str,
    /// The deployment's upstream model id (the price list's key).
    upstream_model: &'r str,
    /// The upstream's usage, for the ledger.
    usage: Option<Usage>,
    /// `body` is a same-protocol lane's answer, already in the client's protocol.
    native: bool,
    provider_kind: &'static str,
    finish_reasons: Vec<String>,
    /// The answer, for the span, only with content capture on.
    output: Option<String>,
}

impl Completed<'_> {
    fn answered(&self) -> Answered {
        Answered {
            provider: self.provider.to_owned(),
            provider_kind: Some(self.provider_kind),
            upstream_model: Some(self.upstream_model.to_owned()),
            usage: self.usage.clone(),
            attempts: self.attempts,
            finish_reasons: self.finish_reasons.clone(),
            output: self.output.clone(),
        }
    }
}

/// The bookkeeping every answer shares: its metrics and log lines, in the client's protocol.
#[derive(Clone, Copy)]
struct Books<'s> {
    state: &'s AppState,
    protocol: Protocol,
}

impl<'s> Books<'s> {
    fn reject(&self, model: &str, e: &GatewayError) -> Response<ResponseBody> {
        self.state.metrics.request(self.protocol.as_str(), model, NO_LABEL, e.status());
        tracing::info!(status = e.status(), error = e.metric_label(), "request rejected");
        respond::error(self.protocol, e)
    }

    /// The error response when no deployment could serve the request.
    fn unserved(&self, model: &str, unserved: &Unserved<'_>) -> Response<ResponseBody> {
        let provider = unserved.target.provider.as_str();
        let status = unserved.error.status();
        self.state.metrics.request(self.protocol.as_str(), model, provider, status);
        tracing::warn!(
            status,
            error = unserved.error.metric_label(),
            attempts = unserved.attempts,
            provider,
            "no deployment could serve the request"
        );
        let mut resp = respond::error(self.protocol, &unserved.error);
        respond::set_attempts(&mut resp, unserved.attempts, Some(provider));
        resp.extensions_mut().insert(Answered {
            provider: provider.to_owned(),
            provider_kind: Some(telemetry::provider_name(unserved.target.deployment.kind)),
            upstream_model: Some(unserved.target.deployment.upstream_model.clone()),
            attempts: unserved.attempts,
            ..Answered::default()
        });
        resp
    }

    /// The non-streaming path after the input check: the upstream call (retries, fallback),
    /// then the output checks, which may add to `hook_headers`. `Err` is the response to send.
    async fn complete<'r>(
        &self,
        ex: &Exchange<'r>,
        caller: Caller<'_>,
        hook_headers: &mut HeaderMap,
    ) -> Result<Completed<'r>, Response<ResponseBody>> {
        let state = self.state;
        let model = ex.route.name.as_str();
        let served = attempts::serve(state, ex).await.map_err(|u| self.unserved(model, &u))?;
        let provider = served.target.provider.as_str();
        let upstream_model = served.target.deployment.upstream_model.as_str();
        let provider_kind = telemetry::provider_name(served.target.deployment.kind);
        let capture = state.config.telemetry.capture_content;
        let span = Span::current();
        state.metrics.request(self.protocol.as_str(), model, provider, 200);
        tracing::info!(attempts = served.attempts, provider, stream = false, "upstream answered");
        let mut completion = match served.answer {
            Answer::Completion(completion) => completion,
            Answer::Native(body) => {
                let usage = ex
                    .native
                    .as_ref()
                    .and_then(|n| prism_providers::native::response_usage(n.request.api, &body));
                telemetry::answered_by(&span, &served.target.deployment, &ex.ctx.id);
                let output = capture.then(|| String::from_utf8_lossy(&body).into_owned());
                return Ok(Completed {
                    body,
                    attempts: served.attempts,
                    provider,
                    upstream_model,
                    usage,
                    native: true,
                    provider_kind,
                    finish_reasons: Vec::new(),
                    output,
                });
            }
            Answer::Stream(_) => {
                tracing::error!(provider, "a non-streaming request was answered with a stream");
                return Err(respond::error(self.protocol, &GatewayError::Internal));
            }
        };
        if let Some(usage) = &completion.usage {
            state.metrics.tokens(model, provider, usage.prompt_tokens, usage.completion_tokens);
        }
        telemetry::answered_by(&span, &served.target.deployment, &completion.id);
        let finish_reasons: Vec<String> = completion
            .choices
            .iter()
            .filter_map(|c| c.finish_reason.map(|r| r.as_str().to_owned()))
            .collect();
        if let Err(e) = checks::completion(state, caller, ex.request, &mut completion, hook_headers)
        {
            let mut resp = respond::error(self.protocol, &e);
            respond::set_attempts(&mut resp, served.attempts, Some(provider));
            // The upstream generated (and bills) the refused completion.
            resp.extensions_mut().insert(Answered {
                provider: provider.to_owned(),
                provider_kind: Some(provider_kind),
                upstream_model: Some(upstream_model.to_owned()),
                usage: completion.usage.clone(),
                attempts: served.attempts,
                finish_reasons,
                output: None,
            });
            return Err(resp);
        }
        let body = respond::serialize(&completion)
            .ok_or_else(|| respond::error(self.protocol, &GatewayError::Internal))?;
        let output =
            capture.then(|| serde_json::to_string(&completion.choices).unwrap_or_default());
        Ok(Completed {
            body,
            attempts: served.attempts,
            provider,
            upstream_model,
            usage: completion.usage.clone(),
            native: false,
            provider_kind,
            finish_reasons,
            output,
        })
    }

    /// The non-streaming path through the cache: the upstream call and the output checks run
    /// inside the cache's `Compute`, so a hit (or a coalesced request) skips both and only a
    /// completion that passed the checks is stored. A hit is checked again for this caller.
    /// Every response gets `x-prism-cache`.
    async fn cached(
        &self,
        ex: &Exchange<'_>,
        caller: Caller<'_>,
        encode: &EncodeContext,
        request_headers: &HeaderMap,
        mut hook_headers: HeaderMap,
        cache: &dyn crate::hooks::CompletionCache,
    ) -> Response<ResponseBody> {
        let cache_control = cache::cache_control(request_headers);
        // Set by the compute when this request called the provider itself.
        let mut origin: Option<Answered> = None;
        let compute: Compute<'_> = Box::pin(async {
            let done = self.complete(ex, caller, &mut hook_headers).await?;
            origin = Some(done.answered());
            Ok((done.body, true))
        });
        let request = CacheRequest {
            caller,
            request: ex.request,
            model_cache: ex.route.cache.as_ref(),
            cache_control: cache_control.as_deref(),
        };
        let served = cache.serve(request, compute).await;
        let mut resp = match (served.result, origin) {
            (Err(resp), _) => resp,
            (Ok(body), Some(answered)) => {
                let mut resp = respond::completion(self.protocol, body, encode, hook_headers);
                respond::set_attempts(&mut resp, answered.attempts, Some(&answered.provider));
                resp.extensions_mut().insert(answered);
                resp
            }
            (Ok(body), None) => {
                let mut resp = self.serve_cached(ex, caller, encode, body, hook_headers);
                // No upstream call: nothing is billed.
                let cache_hit = Answered { provider: "cache".into(), ..Answered::default() };
                resp.extensions_mut().insert(cache_hit);
                resp
            }
        };
        resp.headers_mut()
            .insert(CACHE_STATUS_HEADER, HeaderValue::from_static(served.outcome.as_str()));
        resp
    }

    /// A completion served from the cache: no upstream call (`x-prism-attempts: 0`), and the
    /// output checks run again for this caller.
    fn serve_cached(
        &self,
        ex: &Exchange<'_>,
        caller: Caller<'_>,
        encode: &EncodeContext,
        body: Bytes,
        mut hook_headers: HeaderMap,
    ) -> Response<ResponseBody> {
        let state = self.state;
        let model = ex.route.name.as_str();
        let mut body = body;
        if state.hooks.output.is_some() {
            let Ok(stored) = serde_json::from_slice::<ChatCompletion>(&body) else {
                tracing::error!("a cached entry is not a chat.completion; not serving it");
                return self.reject(model, &GatewayError::Internal);
            };
            let mut completion = stored.clone();
            if let Err(e) =
                checks::completion(state, caller, ex.request, &mut completion, &mut hook_headers)
            {
                return self.reject(model, &e);
            }
            if completion != stored {
                let Some(edited) = respond::serialize(&completion) else {
                    return respond::error(self.protocol, &GatewayError::Internal);
                };
                body = edited;
            }
        }
        state.metrics.request(self.protocol.as_str(), model, "cache", 200);
        let mut resp = respond::completion(self.protocol, body, encode, hook_headers);
        respond::set_attempts(&mut resp, 0, None);
        resp
    }
}

/// The native protocol of a client protocol, when a provider speaks it.
fn native_api(protocol: Protocol) -> Option<NativeApi> {
    match protocol {
        Protocol::ChatCompletions => None,
        Protocol::Messages => Some(NativeApi::AnthropicMessages),
        Protocol::Responses => Some(NativeApi::OpenAiResponses),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

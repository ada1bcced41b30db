//! The running simulator: accept loop, per-connection hyper tasks, behaviour queues, request
//! history, connection counting, and the handler that answers each request.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::body::{Pacing, SimBody, Tail};
use crate::route::{Route, route};
use crate::{
    Behavior, Provider, RecordedRequest, RenderOptions, Reply, SimConfig, Wire, demo_reply,
    fixtures, render,
};

/// Rendered events of the default behaviour kept at most; the cache is cleared when it is full
/// (keys vary only by wire, streaming, model and include_usage, so this is never reached in
/// practice).
const CACHE_LIMIT: usize = 256;

/// A running simulated upstream on `127.0.0.1:<ephemeral port>` (or [`SimConfig::addr`]).
///
/// Dropping it stops accepting and closes every connection (as [`Simulator::shutdown`] does,
/// without waiting).
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    /// The global FIFO, then one FIFO per provider (indexed by `Provider::index`).
    queues: Mutex<Queues>,
    pub(crate) requests: AtomicUsize,
    open: AtomicUsize,
    history: Mutex<VecDeque<RecordedRequest>>,
    /// Rendered default-behaviour answers by (wire, stream, options).
    cache: Mutex<HashMap<CacheKey, Arc<[Bytes]>>>,
}

#[derive(Debug, Default)]
struct Queues {
    global: VecDeque<Behavior>,
    per_provider: [VecDeque<Behavior>; 4],
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    wire: Wire,
    /// 0 non-streaming body, 1 SSE/event-stream events, 2 Gemini JSON-array stream.
    shape: u8,
    opts: RenderOptions,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain pushes and pops).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Simulator {
    /// Starts a simulator with the default configuration: [`Behavior::Demo`] for every request
    /// that finds the queues empty, on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the listening socket cannot be bound.
    pub async fn start() -> std::io::Result<Simulator> {
        Self::start_with(SimConfig::default()).await
    }

    /// Starts a simulator with `config`.
    ///
    /// # Errors
    /// When the listening socket cannot be bound.
    pub async fn start_with(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = listen(config.addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            queues: Mutex::new(Queues::default()),
            requests: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            history: Mutex::new(VecDeque::new()),
            cache: Mutex::new(HashMap::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        Ok(Simulator { addr, shared, stop, accept })
    }

    /// The base URL to configure as a provider's endpoint: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far (all of them, routed or not, including ones still hanging).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The most recent requests, oldest first (at most [`SimConfig::history`]).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.history).iter().cloned().collect()
    }

    /// The most recent request, if any was recorded.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.history).back().cloned()
    }

    /// Forgets the recorded requests (the [`requests`](Self::requests) count is kept).
    pub fn clear_recorded(&self) {
        lock(&self.shared.history).clear();
    }

    /// TCP connections currently open (accepted and not yet closed by either side; idle
    /// keep-alive connections in a client's pool count too). A test can
    /// assert that the gateway dropped its upstream connection after its client went away, with
    /// [`wait_open_connections_at_most`](Self::wait_open_connections_at_most).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Waits until at most `n` connections are open, up to `timeout`; returns whether that
    /// happened.
    pub async fn wait_open_connections_at_most(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.open_connections() <= n {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Queues `behavior` for the next request that finds no behaviour queued for its own
    /// provider (FIFO). When every queue is empty, [`SimConfig::default_behavior`] answers.
    pub fn push_behavior(&self, behavior: Behavior) {
        lock(&self.shared.queues).global.push_back(behavior);
    }

    /// Queues `behavior` for the next request to `provider`'s endpoints (FIFO). A request takes
    /// from its provider's queue first, then from the global queue of
    /// [`push_behavior`](Self::push_behavior): useful when one simulator serves a fallback chain.
    pub fn push_behavior_for(&self, provider: Provider, behavior: Behavior) {
        lock(&self.shared.queues).per_provider[provider.index()].push_back(behavior);
    }

    /// Behaviours still queued (all queues).
    pub fn queued(&self) -> usize {
        let queues = lock(&self.shared.queues);
        queues.global.len() + queues.per_provider.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Drops every queued behaviour.
    pub fn clear_behaviors(&self) {
        let mut queues = lock(&self.shared.queues);
        queues.global.clear();
        queues.per_provider.iter_mut().for_each(VecDeque::clear);
    }

    /// Stops accepting, closes every connection (streams in flight are cut), and waits up to one
    /// second for the connection tasks to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
        // The listener closes when the aborted accept task is dropped, which this waits for.
        let _ = (&mut self.accept).await;
        self.wait_open_connections_at_most(0, Duration::from_secs(1)).await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
    }
}

/// Decrements the open-connection count when a connection task ends, however it ends.
pub(crate) struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A listener whose backlog holds a benchmark's burst of thousands of connects, so a dropped SYN
/// (retried a second later) never shows up as upstream latency. `TcpListener::bind` fixes 1024.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(Arc::clone(&shared));
        if shared.config.raw_http {
            tokio::spawn(crate::raw::serve(stream, Arc::clone(&shared), stop.clone(), guard));
        } else {
            tokio::spawn(serve_connection(stream, Arc::clone(&shared), stop.clone(), guard));
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    guard: OpenGuard,
) {
    // Each event must leave as soon as it is written, so pacing is real on the wire.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    drop(guard);
}

/// The request fields the simulator reads from a JSON body.
#[derive(serde::Deserialize, Default)]
struct Probe {
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// What a request is answered with.
pub(crate) enum Answer {
    /// A response hyper (or the raw server) frames.
    Response(Response<SimBody>),
    /// A [`Behavior::Fault`]: bytes written as they are, by the raw server only.
    Script(crate::raw::Script),
}

/// The message of the `500` a hyper-served simulator answers a [`Behavior::Fault`] with.
const FAULT_NEEDS_RAW: &str =
    "Behavior::Fault needs a simulator started with SimConfig::with_raw_http(true)";

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<SimBody>, Infallible> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, incoming) = req.into_parts();
    let body = match Limited::new(incoming, shared.config.max_body_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            let too_large = err.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            Err(if too_large { 413 } else { 400 })
        }
    };
    Ok(match answer(&shared, &parts, body).await {
        Answer::Response(response) => response,
        Answer::Script(_) => plain_error(500, FAULT_NEEDS_RAW),
    })
}

/// Answers a request whose body was read (`Err` holds the status when it could not be: `413`
/// over the limit, `400` otherwise). The caller counted it in `requests`.
pub(crate) async fn answer(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Result<Bytes, u16>,
) -> Answer {
    let route = route(&parts.method, parts.uri.path(), parts.uri.query());
    let body = match body {
        Ok(body) => body,
        Err(status) => {
            return Answer::Response(match &route {
                Some(route) => error_response(route.wire, status, "", None),
                None => plain_error(status, "request body could not be read"),
            });
        }
    };
    // Every provider's request body is JSON; `None` marks one that is not.
    let probe = match &route {
        Some(_) => serde_json::from_slice::<Probe>(&body).ok(),
        None => Some(Probe::default()),
    };
    let stream = route
        .as_ref()
        .map(|r| r.stream.unwrap_or_else(|| probe.as_ref().and_then(|p| p.stream) == Some(true)))
        .unwrap_or(false);
    let model = route
        .as_ref()
        .and_then(|r| r.model.clone())
        .or_else(|| probe.as_ref().and_then(|p| p.model.clone()));
    let include_usage = probe
        .as_ref()
        .and_then(|p| p.stream_options.as_ref())
        .and_then(|o| o.include_usage)
        .unwrap_or(false);

    if shared.config.history > 0 {
        let recorded = RecordedRequest {
            method: parts.method.clone(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: parts.headers.clone(),
            body: body.clone(),
            wire: route.as_ref().map(|r| r.wire),
            stream,
            model: model.clone(),
        };
        let mut history = lock(&shared.history);
        while history.len() >= shared.config.history {
            history.pop_front();
        }
        history.push_back(recorded);
    }

    let Some(route) = route else {
        let message = format!("no simulated endpoint for {} {}", parts.method, parts.uri.path());
        return Answer::Response(plain_error(404, &message));
    };
    if probe.is_none() {
        let message = "The request body is not valid JSON.";
        return Answer::Response(error_response(route.wire, 400, message, None));
    }
    let ctx = Ctx {
        route,
        stream,
        opts: RenderOptions { model: model.unwrap_or_default(), include_usage },
        body,
    };
    let queued = {
        let mut queues = lock(&shared.queues);
        let provider = ctx.route.wire.provider();
        queues.per_provider[provider.index()].pop_front().or_else(|| queues.global.pop_front())
    };
    let (behavior, cacheable) = match &queued {
        Some(behavior) => (behavior, false),
        None => (&shared.config.default_behavior, true),
    };
    if let Behavior::Fault { reply, fault } = behavior {
        return crate::fault::answer(shared, &ctx, reply, fault).await;
    }
    Answer::Response(respond(shared, &ctx, behavior, cacheable).await)
}

/// Everything about a request that shapes its answer.
pub(crate) struct Ctx {
    pub(crate) route: Route,
    pub(crate) stream: bool,
    pub(crate) opts: RenderOptions,
    /// The request body, for behaviours that answer according to it (the demo's tool calls).
    body: Bytes,
}

impl Ctx {
    fn shape(&self) -> u8 {
        match (self.stream, self.route.sse) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => 2,
        }
    }
}

async fn respond(
    shared: &Shared,
    ctx: &Ctx,
    behavior: &Behavior,
    cacheable: bool,
) -> Response<SimBody> {
    let wire = ctx.route.wire;
    match behavior {
        Behavior::Demo => {
            let provider = wire.provider();
            let delay = shared.config.demo_delay;
            if let Some((name, arguments)) = crate::demo_tool::demo_tool_call(&ctx.body) {
                let reply = Reply::tool_call(&name, &arguments).usage(24, 12).delay(delay);
                // Not cacheable: the render cache is keyed by wire and shape, not by tool name.
                return reply_response(shared, ctx, &reply, false).await;
            }
            if ctx.stream
                && ctx.route.sse
                && let Some(bytes) = fixtures::demo_fixture(wire)
            {
                let events = split_events(wire, Bytes::from_static(bytes), !delay.is_zero());
                let len = events.len();
                let body = SimBody::events(events, len, Tail::End, Pacing::between(delay));
                return ok_response(wire, true, body);
            }
            let reply = demo_reply(provider).delay(delay);
            reply_response(shared, ctx, &reply, cacheable).await
        }
        Behavior::Reply(reply) => reply_response(shared, ctx, reply, cacheable).await,
        Behavior::Replay { body, content_type, delay } => {
            let events = split_events(wire, body.clone(), !delay.is_zero());
            let len = events.len();
            let mut response =
                Response::new(SimBody::events(events, len, Tail::End, Pacing::between(*delay)));
            set(&mut response, CONTENT_TYPE, content_type);
            response
        }
        Behavior::Status { status, body, retry_after } => {
            if body.is_empty() {
                error_response(wire, *status, "", *retry_after)
            } else {
                let mut response = error_response(wire, *status, body, *retry_after);
                *response.body_mut() = SimBody::full(Bytes::from(body.clone()));
                response
            }
        }
        Behavior::Hang => std::future::pending().await,
        Behavior::Stall { reply, events } => {
            partial_response(shared, ctx, reply, *events, Tail::Stall, false).await
        }
        Behavior::CutAfter { reply, events } => {
            partial_response(shared, ctx, reply, *events, Tail::Abort, false).await
        }
        Behavior::EndAfter { reply, events } => {
            partial_response(shared, ctx, reply, *events, Tail::End, false).await
        }
        Behavior::ErrorMidstream { reply, events } => {
            partial_response(shared, ctx, reply, *events, Tail::End, true).await
        }
        // Answered by `answer` before it gets here.
        Behavior::Fault { .. } => plain_error(500, FAULT_NEEDS_RAW),
    }
}

/// The rendered answer to `ctx` for `reply`: the stream events, or the whole body as one item.
pub(crate) fn rendered(shared: &Shared, ctx: &Ctx, reply: &Reply, cacheable: bool) -> Arc<[Bytes]> {
    let render = || -> Arc<[Bytes]> {
        let wire = ctx.route.wire;
        match ctx.shape() {
            0 => Arc::from([render::render_body(wire, reply, &ctx.opts)]),
            1 => render::render_stream(wire, reply, &ctx.opts).into(),
            _ => render::gemini_json_array(reply, &ctx.opts).into(),
        }
    };
    if !cacheable {
        return render();
    }
    let key = CacheKey { wire: ctx.route.wire, shape: ctx.shape(), opts: ctx.opts.clone() };
    if let Some(hit) = lock(&shared.cache).get(&key) {
        return Arc::clone(hit);
    }
    let events = render();
    let mut cache = lock(&shared.cache);
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&events));
    events
}

async fn reply_response(
    shared: &Shared,
    ctx: &Ctx,
    reply: &Reply,
    cacheable: bool,
) -> Response<SimBody> {
    let events = rendered(shared, ctx, reply, cacheable);
    let wire = ctx.route.wire;
    if ctx.stream {
        sleep(reply.headers_delay).await;
        let len = events.len();
        let body = SimBody::events(events, len, Tail::End, Pacing::of(reply));
        ok_response(wire, ctx.route.sse, body)
    } else {
        sleep(reply.headers_delay + reply.first_delay).await;
        let body = events.first().cloned().unwrap_or_default();
        ok_response(wire, false, SimBody::full(body))
    }
}

/// The first `n` events of `reply`, then the provider's in-band error if `in_band_error`, then
/// `tail`. A non-streaming request gets the first half of the body (or the error's JSON).
async fn partial_response(
    shared: &Shared,
    ctx: &Ctx,
    reply: &Reply,
    n: usize,
    tail: Tail,
    in_band_error: bool,
) -> Response<SimBody> {
    let wire = ctx.route.wire;
    let events = rendered(shared, ctx, reply, false);
    sleep(reply.headers_delay).await;
    if !ctx.stream {
        sleep(reply.first_delay).await;
        if in_band_error {
            let json = Bytes::from_static(render::midstream_error_json(wire).as_bytes());
            return ok_response(wire, false, SimBody::full(json));
        }
        let whole = events.first().cloned().unwrap_or_default();
        let half = whole.slice(..whole.len() / 2);
        let body = SimBody::events(Arc::from([half]), 1, tail, Pacing::NONE);
        let mut response = ok_response(wire, false, body);
        // Without a length the cut is visible as an unterminated chunked body.
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        return response;
    }
    let n = n.min(events.len());
    let mut list: Vec<Bytes> = events[..n].to_vec();
    if in_band_error {
        list.push(render::render_midstream_error(wire, &ctx.opts, n));
    }
    let len = list.len();
    let body = SimBody::events(list.into(), len, tail, Pacing::of(reply));
    ok_response(wire, ctx.route.sse, body)
}

async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

fn set(response: &mut Response<SimBody>, name: HeaderName, value: &'static str) {
    response.headers_mut().insert(name, HeaderValue::from_static(value));
}

/// A `200` with the provider's headers: the stream content type when `native_stream` (an SSE or
/// event-stream body), else `application/json`.
pub(crate) fn ok_response(wire: Wire, native_stream: bool, body: SimBody) -> Response<SimBody> {
    let mut response = Response::new(body);
    if native_stream {
        set(&mut response, CONTENT_TYPE, wire.stream_content_type());
        if wire.is_eventstream() {
            if wire == Wire::BedrockInvoke {
                let name = HeaderName::from_static("x-amzn-bedrock-content-type");
                set(&mut response, name, "application/json");
            }
        } else {
            set(&mut response, CACHE_CONTROL, "no-cache");
        }
    } else {
        set(&mut response, CONTENT_TYPE, "application/json");
    }
    provider_headers(&mut response, wire);
    response
}

fn provider_headers(response: &mut Response<SimBody>, wire: Wire) {
    match wire {
        Wire::OpenAi | Wire::OpenAiResponses => {
            set(response, HeaderName::from_static("x-request-id"), "req_sim0001");
        }
        Wire::Anthropic => set(response, HeaderName::from_static("request-id"), "req_sim0001"),
        Wire::Gemini => {}
        Wire::BedrockConverse | Wire::BedrockInvoke => set(
            response,
            HeaderName::from_static("x-amzn-requestid"),
            "00000000-0000-4000-8000-000000000001",
        ),
    }
}

/// An error status with the provider's native body (`message` empty: a stock message).
fn error_response(
    wire: Wire,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> Response<SimBody> {
    let (body, extra) = render::render_error(wire, status, message, retry_after);
    let mut response = Response::new(SimBody::full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    set(&mut response, CONTENT_TYPE, "application/json");
    provider_headers(&mut response, wire);
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    if let Some(secs) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// An error outside any provider's endpoints.
pub(crate) fn plain_error(status: u16, message: &str) -> Response<SimBody> {
    let body = format!(r#"{{"error":{}}}"#, render::json_str(message));
    let mut response = Response::new(SimBody::full(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
    set(&mut response, CONTENT_TYPE, "application/json");
    response
}

/// Cuts a replayed body into events when it is to be paced (SSE blank lines, or event-stream
/// message lengths); otherwise keeps it whole.
fn split_events(wire: Wire, body: Bytes, paced: bool) -> Arc<[Bytes]> {
    if !paced {
        return Arc::from([body]);
    }
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let cut = if wire.is_eventstream() {
            crate::eventstream::message_len(&rest)
        } else {
            sse_event_end(&rest)
        };
        let cut = cut.unwrap_or(rest.len());
        out.push(rest.split_to(cut));
    }
    out.into()
}

/// The end (exclusive) of the first SSE event in `buf`: after its blank line.
fn sse_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        let line_end = match buf[i] {
            b'\n' => Some(i + 1),
            b'\r' if buf.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' => Some(i + 1),
            _ => None,
        };
        if let Some(next) = line_end {
            match buf.get(next) {
                Some(b'\n') => return Some(next + 1),
                Some(b'\r') if buf.get(next + 1) == Some(&b'\n') => return Some(next + 2),
                Some(b'\r') => return Some(next + 1),
                _ => {}
            }
            i = next;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_at_blank_lines() {
        let body = Bytes::from_static(b"data: a\n\nevent: x\ndata: b\r\n\r\ndata: c\r\rtail");
        let events = split_events(Wire::OpenAi, body, true);
        let events: Vec<&[u8]> = events.iter().map(|b| b.as_ref()).collect();
        assert_eq!(
            events,
            [&b"data: a\n\n"[..], b"event: x\ndata: b\r\n\r\n", b"data: c\r\r", b"tail"]
        );
    }

    #[test]
    fn eventstream_splits_at_message_lengths() {
        let a = crate::eventstream::event("messageStart", "{}");
        let b = crate::eventstream::event("messageStop", "{}");
        let body = Bytes::from([a.as_ref(), b.as_ref()].concat());
        let events = split_events(Wire::BedrockConverse, body, true);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], a);
        assert_eq!(events[1], b);
    }
}

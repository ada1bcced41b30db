//! An upstream simulator that speaks each provider's real native wire format (OpenAI, Anthropic,
//! Gemini/Vertex, Bedrock Converse and InvokeModel) on a local port, for the gateway's end-to-end
//! tests, the demo mode of `prism serve`, and `cargo xtask bench gateway`.
//!
//! # Endpoints
//!
//! Routing is by path (any host, any auth; every request is answered as its path says):
//!
//! | path | wire | streaming when |
//! |---|---|---|
//! | `POST …/chat/completions` | [`Wire::OpenAi`] | body `"stream": true` |
//! | `POST …/responses` | [`Wire::OpenAiResponses`] | body `"stream": true` |
//! | `POST /v1/messages` | [`Wire::Anthropic`] | body `"stream": true` |
//! | `POST …/models/{model}:streamGenerateContent` (`?alt=sse` for SSE, else a JSON array) | [`Wire::Gemini`] | always |
//! | `POST …/models/{model}:generateContent` (Gemini API `/v1beta/…` or Vertex `/v1/projects/…/publishers/google/…`) | [`Wire::Gemini`] | never |
//! | `POST …/publishers/anthropic/models/{model}:streamRawPredict` / `:rawPredict` | [`Wire::Anthropic`] | by path |
//! | `POST /model/{model-id}/converse-stream` / `/converse` | [`Wire::BedrockConverse`] | by path |
//! | `POST /model/{model-id}/invoke-with-response-stream` / `/invoke` | [`Wire::BedrockInvoke`] | by path |
//!
//! Anything else gets a `404` with a JSON body naming the path; a body that is not JSON gets a
//! `400` in the provider's own error shape; a body over [`SimConfig::max_body_bytes`] a `413`.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use prism_simulator::{Behavior, Reply, Simulator};
//!
//! let sim = Simulator::start().await?;
//! // Point a provider's base URL at `sim.base_url()`; then script the next answers:
//! sim.push_behavior(Behavior::status_retry_after(429, 1));
//! sim.push_behavior(Reply::text("Hello there").delay(Duration::from_millis(20)).into());
//! // … drive the gateway …
//! assert_eq!(sim.requests(), 2);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Faults
//!
//! [`Behavior::Fault`] breaks an answer in one of the ways a real upstream (or what sits in
//! front of it) breaks, each rendered in the called provider's own format where the fault is in
//! the content:
//!
//! | [`Fault`] | what the client of the simulator sees |
//! |---|---|
//! | [`CutInEvent`](Fault::CutInEvent) | events, then part of the next one inside an unfinished chunk, then a FIN (on Bedrock: inside an event-stream frame) |
//! | [`CutInUtf8`](Fault::CutInUtf8) | the same, cut inside a UTF-8 multi-byte sequence |
//! | [`Garbage`](Fault::Garbage) | events, then binary garbage, then a clean end |
//! | [`InvalidJson`](Fault::InvalidJson) | a well-framed event whose JSON is cut short |
//! | [`Oversized`](Fault::Oversized) | one valid event (or SSE line) of any size, e.g. 10 MB |
//! | [`BadCrc`](Fault::BadCrc) | Bedrock: a frame with a wrong message CRC |
//! | [`FrameTooLong`](Fault::FrameTooLong) | Bedrock: a prelude announcing a huge frame, then silence |
//! | [`BadChunkSize`](Fault::BadChunkSize) | a chunk-size line that is not hexadecimal |
//! | [`Drip`](Fault::Drip) | the rest of the answer one byte per interval |
//! | [`HoldOpen`](Fault::HoldOpen) | the whole stream, terminal event included, and a body that never ends |
//! | [`Html`](Fault::Html) | a `200` `text/html` error page |
//! | [`Redirect`](Fault::Redirect) | a `302` with `location` |
//! | [`Reset`](Fault::Reset) | a TCP reset after the head or after some events |
//!
//! Stalls are [`Behavior::Stall`] and clean early ends [`Behavior::EndAfter`].
//!
//! hyper cannot write most of these (a malformed chunk, a cut inside a chunk, a reset), so a
//! fault is a script of raw bytes that only a simulator started with
//! [`SimConfig::with_raw_http`] serves. That simulator reads each HTTP/1.1 request itself
//! (`content-length` or chunked bodies, keep-alive) and answers every behaviour, faults or not,
//! on the same connections; while it writes a response it keeps reading, so a client that goes
//! away closes the connection at once (a held-open answer included), and
//! [`Simulator::open_connections`] counts its connections as it counts hyper's. The default,
//! hyper-served simulator (HTTP/1.1 and HTTP/2, what the benchmark uses) is unchanged and
//! answers a fault with a `500` saying it needs raw HTTP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use prism_simulator::{Behavior, Fault, Reply, SimConfig, Simulator};
//!
//! let sim = Simulator::start_with(SimConfig::default().with_raw_http(true)).await?;
//! sim.push_behavior(Behavior::fault(Reply::text("Hello there"), Fault::Reset { events: 2 }));
//! # Ok(()) }
//! ```
//!
//! # Cost
//!
//! Replies from the default behaviour are rendered once per (wire, streaming, model,
//! include_usage) and then served as shared [`Bytes`], so an answer costs no per-event
//! allocation; with no delays, hyper may write several events per syscall. Scripted behaviours
//! are rendered per request.

mod body;
mod demo_tool;
mod eventstream;
mod fault;
mod fixtures;
mod raw;
mod render;
mod reply;
mod route;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

pub use fault::Fault;
pub use fixtures::demo_fixture;
pub use render::{
    Provider, RenderOptions, Wire, render_body, render_error, render_midstream_error, render_stream,
};
pub use reply::{Behavior, Finish, Reply, ToolCall};
pub use server::Simulator;

/// How a [`Simulator`] behaves when nothing is queued, and its limits.
///
/// Build it with [`SimConfig::default`] and the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// The behaviour for requests that find the queues empty. Default: [`Behavior::Demo`].
    pub default_behavior: Behavior,
    /// How many recent requests [`Simulator::recorded`] keeps (0 records nothing, which the
    /// benchmark uses to save the copies). Default: 256.
    pub history: usize,
    /// The largest request body accepted; bigger ones get a `413`. Default: 32 MiB.
    pub max_body_bytes: usize,
    /// The pause between events of [`Behavior::Demo`] streams, so a human watching `prism serve`
    /// sees tokens arrive. Default: zero.
    pub demo_delay: Duration,
    /// The address to listen on. Default: `127.0.0.1:0` (an ephemeral port).
    pub addr: SocketAddr,
    /// Serve connections with the simulator's own HTTP/1.1 code instead of hyper, which
    /// [`Behavior::Fault`] needs (see [Faults](crate#faults)). Default: `false`.
    pub raw_http: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            default_behavior: Behavior::Demo,
            history: 256,
            max_body_bytes: 32 << 20,
            demo_delay: Duration::ZERO,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            raw_http: false,
        }
    }
}

impl SimConfig {
    /// Sets the default behaviour.
    #[must_use]
    pub fn with_default(mut self, behavior: impl Into<Behavior>) -> Self {
        self.default_behavior = behavior.into();
        self
    }

    /// Sets how many requests are recorded.
    #[must_use]
    pub fn with_history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// Sets the request body limit.
    #[must_use]
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Sets the pause between demo events.
    #[must_use]
    pub fn with_demo_delay(mut self, delay: Duration) -> Self {
        self.demo_delay = delay;
        self
    }

    /// Sets the listen address.
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serves connections with the simulator's own HTTP/1.1 code (for [`Behavior::Fault`]).
    #[must_use]
    pub fn with_raw_http(mut self, on: bool) -> Self {
        self.raw_http = on;
        self
    }
}

/// One request the simulator received, as it arrived.
///
/// Its `Debug` output redacts credential headers (`authorization`, `x-api-key`,
/// `x-goog-api-key`, `x-amz-security-token`) and a `key=` query parameter; the fields themselves
/// hold the real values so tests can assert what the gateway sent.
#[derive(Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: http::Method,
    /// The path and query, e.g. `/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`.
    pub path_and_query: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// The wire the path selected, `None` for an unknown path.
    pub wire: Option<Wire>,
    /// Whether the request asked for a stream (by path or by the body's `stream` field).
    pub stream: bool,
    /// The model named by the path or the body (percent-decoded for Bedrock), if any.
    pub model: Option<String>,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or_default()
    }

    /// A header's value, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

const SECRET_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "x-goog-api-key", "x-amz-security-token"];

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                    "<redacted>"
                } else {
                    value.to_str().unwrap_or("<binary>")
                };
                (name.as_str(), shown)
            })
            .collect();
        let path = match self.path_and_query.split_once('?') {
            Some((path, query)) if query.split('&').any(|kv| kv.starts_with("key=")) => {
                format!("{path}?<query redacted>")
            }
            _ => self.path_and_query.clone(),
        };
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path_and_query", &path)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("wire", &self.wire)
            .field("stream", &self.stream)
            .field("model", &self.model)
            .finish()
    }
}

/// The demo answer for `provider`: a friendly fixed text in word deltas, zero delays.
pub fn demo_reply(provider: Provider) -> Reply {
    Reply::text(&format!(
        "Hello! This is Prism's demo upstream speaking {}'s native wire format. Your request \
         went through the real decoder and translator.",
        provider.display_name()
    ))
    .usage(12, 24)
}

//! Client protocols at Prism's front door. Each ingress decodes its client's request into the
//! canonical [`ChatRequest`] and encodes the canonical chunk stream (OpenAI
//! `chat.completion.chunk`s, as the provider translators emit them) back into the client's own
//! events: Chat Completions, the Anthropic Messages API and the OpenAI Responses API.
//!
//! Pure code like the provider translators: no sockets, no clock, no randomness. Ids and
//! timestamps come in through [`EncodeContext`], so the same input always gives the same bytes
//! and every encoder can be golden-tested and split-tested.

pub mod chat;
mod error;
pub mod messages;
pub mod native;
pub mod responses;

pub use error::IngressError;

use bytes::BytesMut;
use prism_types::{ChatChunk, ChatCompletion, ChatRequest, ErrorObject};

/// The client protocol a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages` (Anthropic).
    Messages,
    /// `POST /v1/responses` (OpenAI).
    Responses,
}

impl Protocol {
    /// The label used in metrics, logs and spans.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::ChatCompletions => "chat_completions",
            Protocol::Messages => "messages",
            Protocol::Responses => "responses",
        }
    }
}

/// A decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The canonical request: `stream` as the client asked and, when streaming,
    /// `stream_options.include_usage` on (every ingress but Chat reports usage at the end).
    pub request: ChatRequest,
    /// Set when the request uses something only an upstream of the client's own protocol can
    /// honour (Anthropic server tools, OpenAI built-in tools…): the server serves it through a
    /// pass-through lane to such an upstream, or answers this 400.
    pub native_only: Option<IngressError>,
}

/// What an encoder needs to know about the response it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeContext {
    /// The response id in the client protocol's own form (`chatcmpl-…`, `msg_…`, `resp_…`).
    pub id: String,
    /// Unix seconds when the request arrived.
    pub created: u64,
    /// The public model name the client asked for.
    pub model: String,
}

/// Encodes one canonical chunk stream into a client protocol's streamed events.
///
/// The server calls [`StreamEncoder::chunk`] for every chunk in order, then exactly one of
/// [`StreamEncoder::finish`] (the upstream ended cleanly) or [`StreamEncoder::fail`] (anything
/// else, after the response head went out). Every call appends whole events to `out`; nothing is
/// written after `finish` or `fail`.
pub trait StreamEncoder: Send {
    /// Encodes one chunk. `raw` is the upstream's own JSON for this chunk when the upstream
    /// speaks Chat Completions (the chat ingress writes it as is; the others ignore it).
    fn chunk(&mut self, chunk: &ChatChunk, raw: Option<&[u8]>, out: &mut BytesMut);

    /// The clean end: closes open blocks or items and writes the protocol's terminal events.
    fn finish(&mut self, out: &mut BytesMut);

    /// A failure after the response head went out: the protocol's one error event (and, for
    /// Responses, `response.failed`). The stream ends after it.
    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut);

    /// A keep-alive while the upstream is quiet (an SSE comment, or the protocol's own `ping`).
    fn keepalive(&mut self, out: &mut BytesMut) {
        prism_sse::write_comment(out, "keep-alive");
    }
}

/// A non-streaming answer in the client protocol's own shape.
pub fn encode_completion(
    protocol: Protocol,
    completion: &ChatCompletion,
    ctx: &EncodeContext,
) -> Vec<u8> {
    match protocol {
        Protocol::ChatCompletions => chat::encode_completion(completion),
        Protocol::Messages => messages::encode_completion(completion, ctx),
        Protocol::Responses => responses::encode_completion(completion, ctx),
    }
}

/// A stream encoder for `protocol`.
pub fn stream_encoder(protocol: Protocol, ctx: EncodeContext) -> Box<dyn StreamEncoder> {
    match protocol {
        Protocol::ChatCompletions => Box::new(chat::ChatEncoder::new()),
        Protocol::Messages => Box::new(messages::MessagesEncoder::new(ctx)),
        Protocol::Responses => Box::new(responses::ResponsesEncoder::new(ctx)),
    }
}

/// An error response before the first byte, in the client protocol's own shape: the HTTP status
/// to send (Messages maps some, e.g. an overloaded gateway is Anthropic's 529) and the body.
/// `error` is the gateway's OpenAI-shaped error and `status` the status it would have on Chat
/// Completions.
pub fn error_response(protocol: Protocol, status: u16, error: &ErrorObject) -> (u16, Vec<u8>) {
    match protocol {
        Protocol::ChatCompletions => (status, chat::error_body(error)),
        Protocol::Messages => messages::error_response(status, error),
        Protocol::Responses => responses::error_response(status, error),
    }
}

//! Anthropic Messages wire types: stream events (borrowed from the event's bytes where possible),
//! whole messages, usage and the error envelope. Every type ignores unknown fields.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One stream event, flattened so that a single pass over the JSON fills it without buffering.
///
/// Which fields are set depends on `kind` (the payload's `type`): `message` for `message_start`,
/// `index` + `content_block` for `content_block_start`, `index` + `delta` for
/// `content_block_delta`, `delta` + `usage` for `message_delta`, `error` for `error`.
#[derive(Debug, Deserialize)]
pub(crate) struct Event<'a> {
    /// The event type, e.g. `content_block_delta`.
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    /// The content block index (block events).
    #[serde(default)]
    pub(crate) index: Option<u64>,
    /// A block delta, or the message delta of `message_delta`.
    #[serde(default, borrow)]
    pub(crate) delta: Option<EventDelta<'a>>,
    /// The opening block of `content_block_start`.
    #[serde(default, borrow)]
    pub(crate) content_block: Option<&'a RawValue>,
    /// The message envelope of `message_start`.
    #[serde(default, borrow)]
    pub(crate) message: Option<&'a RawValue>,
    /// Cumulative usage of `message_delta`.
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
    /// The error of an `error` event.
    #[serde(default)]
    pub(crate) error: Option<WireError>,
}

/// The `delta` of `content_block_delta` and of `message_delta`, flattened.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventDelta<'a> {
    /// `text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`, `citations_delta`,
    /// … (absent in `message_delta`).
    #[serde(rename = "type", default, borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    /// `text_delta`.
    #[serde(default, borrow)]
    pub(crate) text: Option<Cow<'a, str>>,
    /// `input_json_delta`.
    #[serde(default, borrow)]
    pub(crate) partial_json: Option<Cow<'a, str>>,
    /// `thinking_delta`.
    #[serde(default, borrow)]
    pub(crate) thinking: Option<Cow<'a, str>>,
    /// `signature_delta`: the signature of the open thinking block.
    #[serde(default, borrow)]
    pub(crate) signature: Option<Cow<'a, str>>,
    /// `message_delta`: why the message stopped.
    #[serde(default, borrow)]
    pub(crate) stop_reason: Option<Cow<'a, str>>,
}

/// A content block: in `content_block_start` and in a whole message's `content`.
#[derive(Debug, Deserialize)]
pub(crate) struct Block {
    /// `text`, `tool_use`, `thinking`, `redacted_thinking`, `server_tool_use`, …
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `text`.
    #[serde(default)]
    pub(crate) text: Option<String>,
    /// `thinking`.
    #[serde(default)]
    pub(crate) thinking: Option<String>,
    /// `thinking`: the signature (`""` at stream start; it follows as `signature_delta`).
    #[serde(default)]
    pub(crate) signature: Option<String>,
    /// `redacted_thinking`: the opaque encrypted thinking.
    #[serde(default)]
    pub(crate) data: Option<String>,
    /// `tool_use`: the call id.
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// `tool_use`: the tool name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// `tool_use`: the input object (`{}` at stream start).
    #[serde(default)]
    pub(crate) input: Option<Box<RawValue>>,
}

/// `message_start.message` and a whole non-streaming message.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    /// `msg_…`.
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// The content blocks (empty at stream start).
    #[serde(default)]
    pub(crate) content: Vec<Block>,
    /// Why generation stopped (`null` at stream start).
    #[serde(default)]
    pub(crate) stop_reason: Option<String>,
    /// Usage so far.
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
}

/// Anthropic usage. Every field is optional: `message_delta` repeats only some of them, and a
/// value that is present replaces the earlier one (the numbers are cumulative).
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
pub(crate) struct WireUsage {
    /// Uncached input tokens.
    #[serde(default)]
    pub(crate) input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub(crate) cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub(crate) cache_read_input_tokens: Option<u64>,
    /// Output tokens, thinking included.
    #[serde(default)]
    pub(crate) output_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites every field `newer` carries.
    pub(crate) fn merge(&mut self, newer: &WireUsage) {
        let fields = [
            (&mut self.input_tokens, newer.input_tokens),
            (&mut self.cache_creation_input_tokens, newer.cache_creation_input_tokens),
            (&mut self.cache_read_input_tokens, newer.cache_read_input_tokens),
            (&mut self.output_tokens, newer.output_tokens),
        ];
        for (field, value) in fields {
            if value.is_some() {
                *field = value;
            }
        }
    }
}

/// The inner object of an Anthropic error, in `error` events and in error bodies.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WireError {
    /// `overloaded_error`, `rate_limit_error`, …
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    /// Human-readable description.
    #[serde(default)]
    pub(crate) message: String,
}

/// A whole error body: `{"type":"error","error":{…},"request_id":…}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    /// The error.
    pub(crate) error: WireError,
}

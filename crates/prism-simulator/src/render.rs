//! Pure renderers: a [`Reply`] as each provider's native stream events and non-streaming body,
//! and each provider's error bodies. No I/O; the server caches what these produce.

mod anthropic;
mod bedrock;
mod gemini;
mod openai;
mod responses;

use bytes::{Bytes, BytesMut};

use crate::Reply;

/// A provider wire dialect: which native format a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wire {
    /// OpenAI Chat Completions (`POST …/chat/completions`): SSE `data:` chunks and `[DONE]`.
    OpenAi,
    /// OpenAI Responses (`POST …/responses`): `response.*` SSE events with `event:` lines, ending
    /// in `response.completed`.
    OpenAiResponses,
    /// Anthropic Messages (`POST /v1/messages`, Vertex `:streamRawPredict`): SSE with `event:`.
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse` (Gemini API and Vertex AI).
    Gemini,
    /// Bedrock Converse (`/converse`) and ConverseStream (`/converse-stream`, AWS event-stream).
    BedrockConverse,
    /// Bedrock InvokeModel (`/invoke`) and InvokeModelWithResponseStream
    /// (`/invoke-with-response-stream`): Anthropic events base64-wrapped in `chunk` frames.
    BedrockInvoke,
}

impl Wire {
    /// Every wire, for tests that loop over them.
    pub const ALL: [Wire; 6] = [
        Wire::OpenAi,
        Wire::OpenAiResponses,
        Wire::Anthropic,
        Wire::Gemini,
        Wire::BedrockConverse,
        Wire::BedrockInvoke,
    ];

    /// The provider family this wire belongs to.
    pub fn provider(self) -> Provider {
        match self {
            Wire::OpenAi | Wire::OpenAiResponses => Provider::OpenAi,
            Wire::Anthropic => Provider::Anthropic,
            Wire::Gemini => Provider::Gemini,
            Wire::BedrockConverse | Wire::BedrockInvoke => Provider::Bedrock,
        }
    }

    /// The `content-type` of a streaming response on this wire.
    pub fn stream_content_type(self) -> &'static str {
        match self {
            Wire::OpenAi | Wire::OpenAiResponses | Wire::Anthropic | Wire::Gemini => {
                "text/event-stream"
            }
            Wire::BedrockConverse | Wire::BedrockInvoke => "application/vnd.amazon.eventstream",
        }
    }

    /// Whether streams on this wire are AWS event-stream frames rather than SSE.
    pub fn is_eventstream(self) -> bool {
        matches!(self, Wire::BedrockConverse | Wire::BedrockInvoke)
    }
}

/// A provider family, for per-provider behaviour queues and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI.
    OpenAi,
    /// Anthropic (direct or on Vertex AI).
    Anthropic,
    /// Google Gemini (Gemini API or Vertex AI).
    Gemini,
    /// AWS Bedrock (Converse or InvokeModel).
    Bedrock,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 4] =
        [Provider::OpenAi, Provider::Anthropic, Provider::Gemini, Provider::Bedrock];

    /// A lowercase name: `openai`, `anthropic`, `gemini`, `bedrock` (the fixture directory name).
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Bedrock => "bedrock",
        }
    }

    /// The name people write: `OpenAI`, `Anthropic`, `Gemini`, `Bedrock`.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::OpenAi => "OpenAI",
            Provider::Anthropic => "Anthropic",
            Provider::Gemini => "Gemini",
            Provider::Bedrock => "Bedrock",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Provider::OpenAi => 0,
            Provider::Anthropic => 1,
            Provider::Gemini => 2,
            Provider::Bedrock => 3,
        }
    }
}

/// Request-dependent details of a rendering.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RenderOptions {
    /// The model name echoed in the response (OpenAI `model`, Anthropic `message.model`, Gemini
    /// `modelVersion`; Bedrock responses carry no model). Empty renders as `"sim-model"`.
    pub model: String,
    /// OpenAI only: the request had `stream_options.include_usage = true`, so every chunk carries
    /// `"usage":null` and a final `choices: []` chunk carries the usage.
    pub include_usage: bool,
}

impl RenderOptions {
    /// Options echoing `model`, without `include_usage`.
    pub fn new(model: impl Into<String>) -> Self {
        Self { model: model.into(), include_usage: false }
    }

    /// Sets `include_usage`.
    #[must_use]
    pub fn include_usage(mut self, on: bool) -> Self {
        self.include_usage = on;
        self
    }

    pub(crate) fn model(&self) -> &str {
        if self.model.is_empty() { "sim-model" } else { &self.model }
    }
}

/// Renders `reply` as the native stream of `wire`, one element per event, each element exactly
/// the bytes of that event on the wire (an SSE event with its blank line, or one AWS event-stream
/// message), ending with the provider's terminal event (`data: [DONE]`, `message_stop`, the chunk
/// with `finishReason`, `metadata`).
///
/// Fixed values make the output deterministic: OpenAI id `chatcmpl-sim0001` and `created`
/// 1735689600, Anthropic id `msg_sim0001` (`msg_bdrk_sim0001` on Bedrock), Gemini `responseId`
/// `sim0001`, tool call ids `call_sim_<i>` / `toolu_sim_<i>` / `tooluse_sim_<i>`.
pub fn render_stream(wire: Wire, reply: &Reply, opts: &RenderOptions) -> Vec<Bytes> {
    match wire {
        Wire::OpenAi => openai::stream(reply, opts),
        Wire::OpenAiResponses => responses::stream(reply, opts),
        Wire::Anthropic => anthropic::stream(reply, opts, anthropic::Flavor::Direct)
            .into_iter()
            .map(|e| sse_event(Some(e.name), &e.data))
            .collect(),
        Wire::Gemini => gemini::stream_json(reply, opts).iter().map(|j| gemini::sse(j)).collect(),
        Wire::BedrockConverse => bedrock::converse_stream(reply),
        Wire::BedrockInvoke => bedrock::invoke_stream(reply, opts),
    }
}

/// Gemini's `streamGenerateContent` without `alt=sse`: one JSON array streamed element by
/// element (`[` + first, `,\r\n` + next …, `]` on the last).
pub(crate) fn gemini_json_array(reply: &Reply, opts: &RenderOptions) -> Vec<Bytes> {
    let items = gemini::stream_json(reply, opts);
    let n = items.len();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut out = String::with_capacity(item.len() + 4);
            out.push_str(if i == 0 { "[" } else { ",\r\n" });
            out.push_str(&item);
            if i + 1 == n {
                out.push(']');
            }
            Bytes::from(out)
        })
        .collect()
}

/// Renders `reply` as the native non-streaming JSON body of `wire`.
pub fn render_body(wire: Wire, reply: &Reply, opts: &RenderOptions) -> Bytes {
    match wire {
        Wire::OpenAi => openai::body(reply, opts),
        Wire::OpenAiResponses => responses::body(reply, opts),
        Wire::Anthropic => anthropic::body(reply, opts, anthropic::Flavor::Direct),
        Wire::Gemini => gemini::body(reply, opts),
        Wire::BedrockConverse => bedrock::converse_body(reply),
        Wire::BedrockInvoke => anthropic::body(reply, opts, anthropic::Flavor::Bedrock),
    }
}

/// The provider's native HTTP error body for `status`, with `message` (empty: a stock message
/// for that status), plus any extra headers the provider sends with it (Bedrock's
/// `x-amzn-errortype`). `retry_after` adds Gemini's `RetryInfo` detail.
pub fn render_error(
    wire: Wire,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> (Bytes, Vec<(&'static str, String)>) {
    let message = if message.is_empty() { stock_message(status) } else { message };
    match wire {
        Wire::OpenAi | Wire::OpenAiResponses => (openai::error_body(status, message), Vec::new()),
        Wire::Anthropic => (anthropic::error_body(status, message), Vec::new()),
        Wire::Gemini => (gemini::error_body(status, message, retry_after), Vec::new()),
        Wire::BedrockConverse | Wire::BedrockInvoke => {
            let (body, error_type) = bedrock::error_body(status, message);
            (body, vec![("x-amzn-errortype", error_type)])
        }
    }
}

/// The provider's native in-band stream error, as one event's bytes (see
/// [`Behavior::ErrorMidstream`](crate::Behavior::ErrorMidstream)), for a stream that has sent
/// `events_sent` events (Responses numbers its events; the others ignore it). For Responses the
/// element holds two events: `error`, then `response.failed`.
pub fn render_midstream_error(wire: Wire, opts: &RenderOptions, events_sent: usize) -> Bytes {
    match wire {
        Wire::OpenAi => sse_event(None, openai::MIDSTREAM_ERROR),
        Wire::OpenAiResponses => responses::midstream_error(opts, events_sent as u64),
        Wire::Anthropic => sse_event(Some("error"), anthropic::MIDSTREAM_ERROR),
        Wire::Gemini => gemini::sse(gemini::MIDSTREAM_ERROR),
        Wire::BedrockConverse | Wire::BedrockInvoke => bedrock::midstream_exception(),
    }
}

/// The JSON body of the in-band error, for a non-streaming request under
/// [`Behavior::ErrorMidstream`](crate::Behavior::ErrorMidstream).
pub(crate) fn midstream_error_json(wire: Wire) -> &'static str {
    match wire {
        Wire::OpenAi => openai::MIDSTREAM_ERROR,
        Wire::OpenAiResponses => responses::MIDSTREAM_ERROR_JSON,
        Wire::Anthropic | Wire::BedrockInvoke => anthropic::MIDSTREAM_ERROR,
        Wire::Gemini => gemini::MIDSTREAM_ERROR,
        Wire::BedrockConverse => bedrock::MIDSTREAM_ERROR,
    }
}

fn stock_message(status: u16) -> &'static str {
    match status {
        400 => "Invalid request (simulated).",
        401 => "Invalid authentication credentials (simulated).",
        402 => "Your credit balance is too low (simulated).",
        403 => "Permission denied (simulated).",
        404 => "The requested model was not found (simulated).",
        408 | 504 => "The request timed out (simulated).",
        413 => "Request too large (simulated).",
        429 => "Rate limit exceeded, please retry later (simulated).",
        503 | 529 => "The model is overloaded, please retry later (simulated).",
        _ => "Internal server error (simulated).",
    }
}

/// One SSE event through the workspace encoder: an optional `event:` line, the `data:` line(s),
/// a blank line.
pub(crate) fn sse_event(event: Option<&'static str>, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    let event_ref = prism_sse::EventRef { event, data, id: None, retry: None };
    if prism_sse::write_event(&mut out, &event_ref).is_err() {
        // Only a line break in the event name fails, and the names here are constants.
        prism_sse::write_data(&mut out, data.as_bytes());
    }
    out.freeze()
}

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// The tool arguments as a JSON object text: verbatim when they parse as an object, else `{}`.
pub(crate) fn args_object(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value @ serde_json::Value::Object(_)) => value.to_string(),
        _ => "{}".to_owned(),
    }
}

/// Splits tool arguments into the fragments a streaming provider sends: two halves cut on a
/// character boundary near the middle (one fragment when too short to cut).
pub(crate) fn arg_fragments(arguments: &str) -> Vec<&str> {
    if arguments.chars().count() < 2 {
        return vec![arguments];
    }
    let mut mid = arguments.len() / 2;
    while !arguments.is_char_boundary(mid) {
        mid += 1;
    }
    vec![&arguments[..mid], &arguments[mid..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&json_str("x\"\n\u{7}y")).unwrap();
        assert_eq!(parsed, "x\"\n\u{7}y");
    }

    #[test]
    fn fragments_rejoin() {
        for args in ["", "{", "{}", r#"{"city":"Pärïs"}"#, "ééé"] {
            let frags = arg_fragments(args);
            assert_eq!(frags.concat(), args);
            assert!(frags.len() == 1 || frags.iter().all(|f| !f.is_empty()));
        }
    }

    #[test]
    fn args_object_keeps_objects_only() {
        assert_eq!(args_object(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(args_object("[1]"), "{}");
        assert_eq!(args_object("not json"), "{}");
    }
}

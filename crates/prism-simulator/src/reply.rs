//! What a simulated upstream answers: the content of a reply ([`Reply`]) and the scripted
//! behaviours around it ([`Behavior`]).

use std::time::Duration;

use bytes::Bytes;

use crate::Fault;

/// How the simulated model ended its turn, rendered in each provider's own vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Finish {
    /// A natural end: OpenAI `stop`, Anthropic/Bedrock `end_turn`, Gemini `STOP`.
    #[default]
    Stop,
    /// The token limit: OpenAI `length`, Anthropic/Bedrock `max_tokens`, Gemini `MAX_TOKENS`.
    Length,
    /// The turn ends with tool calls: OpenAI `tool_calls`, Anthropic/Bedrock `tool_use`, Gemini
    /// `STOP` (Gemini has no separate reason for it).
    ToolCalls,
}

/// One tool call the simulated model makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolCall {
    /// The function name.
    pub name: String,
    /// The arguments as JSON text. Streams carry it in two fragments (split near the middle, on a
    /// character boundary) where the provider streams arguments; Gemini carries it parsed, whole
    /// (an argument text that is not a JSON object becomes `{}` there).
    pub arguments: String,
}

impl ToolCall {
    /// A tool call of `name` with `arguments` (JSON text).
    pub fn new(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { name: name.into(), arguments: arguments.into() }
    }
}

/// The content and pacing of one simulated model answer.
///
/// The same `Reply` renders in every provider's native format (see [`render_stream`] and
/// [`render_body`]), so a test can queue one reply and check the gateway's OpenAI output against
/// [`Reply::text_content`] whatever the upstream provider.
///
/// Pacing (streaming only; a non-streaming answer waits `headers_delay + first_delay` and ignores
/// `delay`):
/// - `headers_delay`: before the response head (status line and headers) is sent;
/// - `first_delay`: after the head, before the first event of the body;
/// - `delay`: before each later event.
///
/// With all three zero, events are produced as fast as the socket takes them and hyper may
/// coalesce several events into one write (the cheapest upstream); set `flush_each_event` to hand
/// each event to the socket in its own write even then (what real providers do: the reader then
/// sees about one event per read). With a non-zero `delay` every event is written and flushed on
/// its own (`TCP_NODELAY` is set), so the gaps are real on the wire.
///
/// [`render_stream`]: crate::render_stream
/// [`render_body`]: crate::render_body
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Reply {
    /// Text deltas, in order; each becomes one content event (empty strings are skipped).
    pub deltas: Vec<String>,
    /// Tool calls made after the text, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Input tokens reported in usage.
    pub prompt_tokens: u64,
    /// Output tokens reported in usage.
    pub completion_tokens: u64,
    /// The finish reason.
    pub finish: Finish,
    /// Delay before the response head.
    pub headers_delay: Duration,
    /// Delay after the head, before the first body event.
    pub first_delay: Duration,
    /// Delay before each later body event.
    pub delay: Duration,
    /// Write each event on its own even when there is no delay.
    pub flush_each_event: bool,
}

impl Reply {
    /// A reply whose text is `text`, split into word deltas (each word keeps the whitespace that
    /// follows it, so the deltas concatenate back to `text`). Usage: 10 prompt tokens and one
    /// completion token per delta.
    pub fn text(text: &str) -> Self {
        let deltas = split_words(text);
        let completion_tokens = deltas.len() as u64;
        Self { deltas, prompt_tokens: 10, completion_tokens, ..Self::default() }
    }

    /// A reply of `n` deterministic deltas (`"w0 "`, `"w1 "`, …), the shape benchmarks use.
    /// Usage: 10 prompt tokens and `n` completion tokens.
    pub fn with_n_deltas(n: usize) -> Self {
        let deltas = (0..n).map(|i| format!("w{i} ")).collect();
        Self { deltas, prompt_tokens: 10, completion_tokens: n as u64, ..Self::default() }
    }

    /// A reply that makes one tool call (no text) and finishes with [`Finish::ToolCalls`].
    pub fn tool_call(name: &str, arguments: &str) -> Self {
        Self {
            tool_calls: vec![ToolCall::new(name, arguments)],
            prompt_tokens: 10,
            completion_tokens: 5,
            finish: Finish::ToolCalls,
            ..Self::default()
        }
    }

    /// Sets the delay between events.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the delay after the head, before the first event.
    #[must_use]
    pub fn first_delay(mut self, delay: Duration) -> Self {
        self.first_delay = delay;
        self
    }

    /// Sets the delay before the response head.
    #[must_use]
    pub fn headers_delay(mut self, delay: Duration) -> Self {
        self.headers_delay = delay;
        self
    }

    /// Writes each event on its own even without delays.
    #[must_use]
    pub fn flush_each_event(mut self, on: bool) -> Self {
        self.flush_each_event = on;
        self
    }

    /// Sets the finish reason.
    #[must_use]
    pub fn finish(mut self, finish: Finish) -> Self {
        self.finish = finish;
        self
    }

    /// Sets the usage counts.
    #[must_use]
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.prompt_tokens = prompt_tokens;
        self.completion_tokens = completion_tokens;
        self
    }

    /// Adds a tool call after the text (the finish reason is left as it is).
    #[must_use]
    pub fn with_tool_call(mut self, name: &str, arguments: &str) -> Self {
        self.tool_calls.push(ToolCall::new(name, arguments));
        self
    }

    /// The whole answer text: the deltas concatenated. This is what a client of the gateway must
    /// receive as `content`, whatever the provider.
    pub fn text_content(&self) -> String {
        self.deltas.concat()
    }

    /// The deltas that are rendered (the non-empty ones).
    pub(crate) fn visible_deltas(&self) -> impl Iterator<Item = &str> {
        self.deltas.iter().map(String::as_str).filter(|d| !d.is_empty())
    }
}

/// Splits `text` into words, each keeping its trailing whitespace; leading whitespace goes with
/// the first word.
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = true;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else {
            if in_space && i > start && !text[start..i].trim().is_empty() {
                out.push(text[start..i].to_owned());
                start = i;
            }
            in_space = false;
        }
    }
    if start < text.len() {
        out.push(text[start..].to_owned());
    }
    out
}

/// What the simulator does with one request.
///
/// Queue behaviours with [`Simulator::push_behavior`](crate::Simulator::push_behavior) (FIFO, one
/// per request); the configured default ([`SimConfig::default_behavior`](crate::SimConfig)) answers
/// when the queue is empty. Every behaviour answers in the native format of the provider whose
/// endpoint was called, streaming or not as the request asked.
///
/// Event counts (`events` fields) count items of [`render_stream`](crate::render_stream)'s output
/// for that provider: for OpenAI the first event is the role chunk; for Anthropic it is
/// `message_start`; for Bedrock Converse it is `messageStart`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behavior {
    /// The demo answer: when streaming, the provider's `fixtures/<provider>/text_basic` upstream
    /// bytes if the crate was built with them, else a rendered friendly demo text (see
    /// [`demo_reply`](crate::demo_reply)); non-streaming requests always get the rendered demo
    /// text. Works for any request content.
    Demo,
    /// Answer with `Reply` in the provider's native format.
    Reply(Reply),
    /// Serve raw bytes as a `200` body with `content_type`, e.g. a recorded fixture. With a
    /// non-zero `delay`, the body is cut at event boundaries (SSE blank lines, or AWS event-stream
    /// message lengths) and the parts are written `delay` apart; with zero it goes out whole.
    Replay {
        /// The body bytes.
        body: Bytes,
        /// The `content-type` header.
        content_type: &'static str,
        /// The delay between events (zero: one write).
        delay: Duration,
    },
    /// An HTTP error status. An empty `body` is replaced by the provider's own error body for
    /// that status (OpenAI `{"error":{…}}`, Anthropic `{"type":"error",…}`, Gemini
    /// `google.rpc.Status`, Bedrock `{"message"}` plus `x-amzn-errortype`). `retry_after` sets a
    /// `retry-after` header in seconds (and Gemini's `RetryInfo` detail).
    Status {
        /// The HTTP status (e.g. 400, 429, 500, 503, 529).
        status: u16,
        /// The body; empty for the provider's native error body.
        body: String,
        /// The `retry-after` header, in seconds.
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer (no head, no body) until the client goes away or the
    /// simulator shuts down: for TTFT deadlines and connect/read timeouts.
    Hang,
    /// Send the head and the first `events` events of the stream, then never send anything more:
    /// for idle timeouts and keep-alives. With `events == 0` only the head goes out. A
    /// non-streaming request gets the head and the first half of its JSON body, then silence.
    Stall {
        /// The reply whose first events are sent.
        reply: Reply,
        /// How many events are sent before going silent.
        events: usize,
    },
    /// Stream the first `events` events, then abort the connection without the terminal event
    /// (the HTTP body is cut: a chunked body lacks its last chunk, so the client sees an
    /// incomplete body). A non-streaming request gets the head and the first half of its JSON
    /// body, then the cut.
    CutAfter {
        /// The reply whose first events are sent.
        reply: Reply,
        /// How many events are sent before the cut.
        events: usize,
    },
    /// Stream the first `events` events, then end the HTTP body cleanly without the provider's
    /// terminal event (no `[DONE]`, no `message_stop`, …): an upstream that "ends early". A
    /// non-streaming request gets a complete HTTP response holding the first half of its JSON
    /// body.
    EndAfter {
        /// The reply whose first events are sent.
        reply: Reply,
        /// How many events are sent before the clean end.
        events: usize,
    },
    /// Stream the first `events` events, then the provider's native in-band error and a clean
    /// end of the body: Anthropic `event: error` with `overloaded_error`; OpenAI
    /// `data: {"error":{…}}`; Gemini `data: {"error":{"code":503,…,"status":"UNAVAILABLE"}}`;
    /// Bedrock an exception frame (`:exception-type: serviceUnavailableException`). A
    /// non-streaming request gets a 200 whose JSON body is the error object.
    ErrorMidstream {
        /// The reply whose first events are sent.
        reply: Reply,
        /// How many events are sent before the error.
        events: usize,
    },
    /// Answer with `reply` broken by `fault`, byte for byte (HTTP framing included): see
    /// [`Fault`] for what each fault sends. Needs a simulator started with
    /// [`SimConfig::with_raw_http`](crate::SimConfig::with_raw_http); a hyper-served one answers
    /// `500`.
    Fault {
        /// The reply whose events are sent around the fault.
        reply: Reply,
        /// What goes wrong.
        fault: Fault,
    },
}

impl Behavior {
    /// [`Behavior::Status`] with the provider's native error body and no `retry-after`.
    pub fn status(status: u16) -> Self {
        Self::Status { status, body: String::new(), retry_after: None }
    }

    /// [`Behavior::Status`] with the provider's native error body and a `retry-after` header.
    pub fn status_retry_after(status: u16, retry_after_secs: u64) -> Self {
        Self::Status { status, body: String::new(), retry_after: Some(retry_after_secs) }
    }

    /// [`Behavior::Fault`] of `reply`.
    pub fn fault(reply: Reply, fault: Fault) -> Self {
        Self::Fault { reply, fault }
    }

    /// [`Behavior::Replay`] with no delay.
    pub fn replay(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        Self::Replay { body: body.into(), content_type, delay: Duration::ZERO }
    }
}

impl From<Reply> for Behavior {
    fn from(reply: Reply) -> Self {
        Self::Reply(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_into_words_that_concatenate_back() {
        for text in ["Hello world, how are you?", "  lead", "trail  ", "", "one", "a\nb  c"] {
            let reply = Reply::text(text);
            assert_eq!(reply.text_content(), text);
        }
        assert_eq!(Reply::text("Hello big world").deltas, ["Hello ", "big ", "world"]);
    }

    #[test]
    fn n_deltas() {
        let reply = Reply::with_n_deltas(3);
        assert_eq!(reply.text_content(), "w0 w1 w2 ");
        assert_eq!(reply.completion_tokens, 3);
    }
}

//! Checks every answer as it streams in: a direct stream must be byte-identical to what the
//! simulator renders, a stream through Prism must carry exactly the reply's text in OpenAI chunks
//! and end with `[DONE]`. The same sinks count content chunks and time the first one.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use memchr::memmem;
use prism_simulator::{RenderOptions, Reply, Wire, render_body, render_stream};
use serde::Deserialize;

use crate::http::{Head, Sink};
use crate::soak_check::{Protocol, StreamCheck};

/// Largest SSE event the checker buffers; a bigger one is a failure (bounded memory).
const MAX_EVENT: usize = 1 << 20;
/// Largest non-streaming body kept for checking.
const MAX_BODY: usize = 4 << 20;

/// Why an answer was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Wrong {
    /// Not a 200.
    Status(u16),
    /// Bytes or text differ from what the upstream sent.
    Mismatch,
    /// The answer ended before all of it arrived (no `[DONE]`, short text, short body).
    Truncated,
    /// An error event or error body.
    ErrorEvent,
    /// Not the expected shape (bad JSON, an event after `[DONE]`, an oversized event).
    Malformed,
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wrong::Status(s) => write!(f, "status {s}"),
            Wrong::Mismatch => f.write_str("content mismatch"),
            Wrong::Truncated => f.write_str("truncated"),
            Wrong::ErrorEvent => f.write_str("error event"),
            Wrong::Malformed => f.write_str("malformed"),
        }
    }
}

/// A native stream as the simulator sends it, with where each content event ends.
#[derive(Debug)]
pub(crate) struct ExpectedStream {
    bytes: Vec<u8>,
    /// End offset (exclusive) of each event that carries one delta, in order.
    content_ends: Vec<usize>,
}

impl ExpectedStream {
    /// What the simulator sends on `wire` for `reply` to a request naming model `model`.
    ///
    /// # Errors
    /// When the rendering does not carry each delta in its own event (the benchmark's replies
    /// always do; anything else would make the chunk count meaningless).
    pub(crate) fn new(wire: Wire, reply: &Reply, model: &str) -> anyhow::Result<Self> {
        let events = render_stream(wire, reply, &RenderOptions::new(model));
        let mut bytes = Vec::new();
        let mut content_ends = Vec::with_capacity(reply.deltas.len());
        let mut deltas = reply.deltas.iter().filter(|d| !d.is_empty()).peekable();
        for event in &events {
            bytes.extend_from_slice(event);
            if let Some(delta) = deltas.peek()
                && memmem::find(event, delta.as_bytes()).is_some()
            {
                content_ends.push(bytes.len());
                deltas.next();
            }
        }
        anyhow::ensure!(deltas.next().is_none(), "{wire:?}: a delta is not in its own event");
        Ok(ExpectedStream { bytes, content_ends })
    }

    #[cfg(test)]
    fn content_events(&self) -> usize {
        self.content_ends.len()
    }
}

/// The non-streaming body the simulator sends.
pub(crate) fn expected_body(wire: Wire, reply: &Reply, model: &str) -> Vec<u8> {
    render_body(wire, reply, &RenderOptions::new(model)).to_vec()
}

/// What a checker saw of one answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// Content chunks (events carrying a non-empty delta) received.
    pub(crate) chunks: u64,
    /// When the first of them arrived.
    pub(crate) first_content: Option<Instant>,
    /// The first problem found, if any.
    pub(crate) wrong: Option<Wrong>,
    pub(crate) cache_hit: bool,
}

/// The checker of one answer.
pub(crate) trait Check: Sink {
    /// The verdict so far; `ended` says whether the HTTP response ended.
    fn seen(&self, ended: bool) -> Seen;
}

/// A direct stream: byte-for-byte equal to the simulator's rendering.
#[derive(Debug)]
pub(crate) struct DirectStream {
    expected: Arc<ExpectedStream>,
    pos: usize,
    next_content: usize,
    first_content: Option<Instant>,
    wrong: Option<Wrong>,
}

impl DirectStream {
    pub(crate) fn new(expected: Arc<ExpectedStream>) -> Self {
        DirectStream { expected, pos: 0, next_content: 0, first_content: None, wrong: None }
    }
}

impl Sink for DirectStream {
    fn head(&mut self, head: &Head) {
        if head.status != 200 {
            self.wrong.get_or_insert(Wrong::Status(head.status));
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        if self.wrong.is_some() {
            return;
        }
        let end = self.pos + bytes.len();
        if self.expected.bytes.get(self.pos..end) != Some(bytes) {
            self.wrong = Some(Wrong::Mismatch);
            return;
        }
        self.pos = end;
        let ends = &self.expected.content_ends;
        while self.next_content < ends.len() && ends[self.next_content] <= end {
            self.next_content += 1;
            self.first_content.get_or_insert_with(Instant::now);
        }
    }
}

impl Check for DirectStream {
    fn seen(&self, ended: bool) -> Seen {
        let complete = self.pos == self.expected.bytes.len();
        let wrong = self.wrong.or((ended && !complete).then_some(Wrong::Truncated));
        Seen {
            chunks: self.next_content as u64,
            first_content: self.first_content,
            wrong,
            cache_hit: false,
        }
    }
}

/// A stream through Prism's Anthropic Messages or OpenAI Responses ingress (W6): the reply's
/// deltas (`w0 `, `w1 `, …), each once and in order, then the protocol's success terminal.
/// The soak's checker reads the protocol; this adds the first content's time and the verdict.
#[derive(Debug)]
pub(crate) struct IngressStream {
    inner: StreamCheck,
    deltas: u64,
    first_content: Option<Instant>,
}

impl IngressStream {
    pub(crate) fn new(protocol: Protocol, deltas: u64) -> Self {
        IngressStream { inner: StreamCheck::new(protocol), deltas, first_content: None }
    }
}

impl Sink for IngressStream {
    fn head(&mut self, head: &Head) {
        self.inner.head(head);
    }

    fn data(&mut self, bytes: &[u8]) {
        self.inner.data(bytes);
        if self.first_content.is_none() && self.inner.content_events() > 0 {
            self.first_content = Some(Instant::now());
        }
    }
}

impl Check for IngressStream {
    fn seen(&self, ended: bool) -> Seen {
        let seen = self.inner.seen(ended);
        let wrong = if seen.status != 200 && seen.status != 0 {
            Some(Wrong::Status(seen.status))
        } else if !seen.errors.is_empty() {
            Some(Wrong::ErrorEvent)
        } else if seen.lost + seen.duplicated + seen.corrupted > 0 {
            Some(Wrong::Mismatch)
        } else if seen.after_end > 0 {
            Some(Wrong::Malformed)
        } else if ended && (!seen.done || seen.next != self.deltas) {
            Some(Wrong::Truncated)
        } else {
            None
        };
        Seen {
            chunks: seen.content_events,
            first_content: self.first_content,
            wrong,
            cache_hit: false,
        }
    }
}

/// A stream through Prism: OpenAI `chat.completion.chunk` events whose `delta.content`s
/// concatenate to the reply's text, then `data: [DONE]`.
///
/// The content is found with a byte search for `"content":"` (in a JSON text that sequence can
/// only be a key: a quote inside a string is escaped); the first event of each stream, events
/// without that key and contents with escapes are parsed in full, so the fast path never decides
/// alone what a shape means.
#[derive(Debug)]
pub(crate) struct OpenAiStream {
    text: Arc<str>,
    pending: Vec<u8>,
    text_pos: usize,
    chunks: u64,
    events: u64,
    done: bool,
    first_content: Option<Instant>,
    wrong: Option<Wrong>,
}

impl OpenAiStream {
    pub(crate) fn new(text: Arc<str>) -> Self {
        OpenAiStream {
            text,
            pending: Vec::with_capacity(512),
            text_pos: 0,
            chunks: 0,
            events: 0,
            done: false,
            first_content: None,
            wrong: None,
        }
    }

    fn event(&mut self, event: &[u8]) -> Result<(), Wrong> {
        let mut data: Option<Vec<u8>> = None;
        let mut single: Option<&[u8]> = None;
        for line in event.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(value) = line.strip_prefix(b"data:") else { continue };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match (&mut data, single) {
                (None, None) => single = Some(value),
                (None, Some(first)) => {
                    let mut joined = first.to_vec();
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                    data = Some(joined);
                }
                (Some(joined), _) => {
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                }
            }
        }
        // Comments (keep-alives) and events without data carry nothing.
        let payload = match (&data, single) {
            (Some(joined), _) => joined.as_slice(),
            (None, Some(value)) => value,
            (None, None) => return Ok(()),
        };
        if self.done {
            return Err(Wrong::Malformed);
        }
        if payload == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        self.events += 1;
        let fast = if self.events > 1 { fast_content(payload) } else { None };
        let content = match fast {
            Some(content) => std::borrow::Cow::Borrowed(content),
            None => parse_chunk(payload)?.map(std::borrow::Cow::Owned).unwrap_or_default(),
        };
        if content.is_empty() {
            return Ok(());
        }
        let rest = &self.text.as_bytes()[self.text_pos..];
        if !rest.starts_with(content.as_bytes()) {
            return Err(Wrong::Mismatch);
        }
        self.text_pos += content.len();
        self.chunks += 1;
        self.first_content.get_or_insert_with(Instant::now);
        Ok(())
    }
}

/// `delta.content` by byte search, when present and free of escapes.
fn fast_content(payload: &[u8]) -> Option<&str> {
    static KEY: &[u8] = br#""content":""#;
    let start = memmem::find(payload, KEY)? + KEY.len();
    let len = memchr::memchr2(b'"', b'\\', &payload[start..])?;
    if payload[start + len] != b'"' {
        return None;
    }
    std::str::from_utf8(&payload[start..start + len]).ok()
}

#[derive(Deserialize)]
struct ChunkProbe {
    object: Option<String>,
    choices: Option<Vec<ChoiceProbe>>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
pub(crate) struct ChoiceProbe {
    pub(crate) delta: Option<DeltaProbe>,
}

#[derive(Deserialize)]
pub(crate) struct DeltaProbe {
    pub(crate) content: Option<String>,
}

/// A whole chunk parsed: its content (if any), or why it is not a chunk.
fn parse_chunk(payload: &[u8]) -> Result<Option<String>, Wrong> {
    let chunk: ChunkProbe = serde_json::from_slice(payload).map_err(|_| Wrong::Malformed)?;
    if chunk.error.is_some() {
        return Err(Wrong::ErrorEvent);
    }
    if chunk.object.as_deref() != Some("chat.completion.chunk") {
        return Err(Wrong::Malformed);
    }
    let choices = chunk.choices.ok_or(Wrong::Malformed)?;
    if choices.len() > 1 {
        return Err(Wrong::Malformed);
    }
    Ok(choices.into_iter().next().and_then(|c| c.delta).and_then(|d| d.content))
}

impl Sink for OpenAiStream {
    fn head(&mut self, head: &Head) {
        if head.status != 200 {
            self.wrong.get_or_insert(Wrong::Status(head.status));
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        if self.wrong.is_some() {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut consumed = 0;
        while let Some(end) = memmem::find(&self.pending[consumed..], b"\n\n") {
            let event = std::mem::take(&mut self.pending);
            let result = self.event(&event[consumed..consumed + end]);
            self.pending = event;
            consumed += end + 2;
            if let Err(wrong) = result {
                self.wrong = Some(wrong);
                return;
            }
        }
        self.pending.drain(..consumed);
        if self.pending.len() > MAX_EVENT {
            self.wrong = Some(Wrong::Malformed);
        }
    }
}

impl Check for OpenAiStream {
    fn seen(&self, ended: bool) -> Seen {
        let complete = self.done && self.text_pos == self.text.len();
        let wrong = self.wrong.or((ended && !complete).then_some(Wrong::Truncated));
        Seen { chunks: self.chunks, first_content: self.first_content, wrong, cache_hit: false }
    }
}

/// A non-streaming answer: collected, then compared when the response ended.
#[derive(Debug)]
pub(crate) struct Body {
    want: BodyWant,
    body: Vec<u8>,
    status: u16,
    cache_hit: bool,
    overflow: bool,
}

/// What a non-streaming body must be.
#[derive(Debug, Clone)]
pub(crate) enum BodyWant {
    /// Exactly these bytes (the simulator's native body).
    Bytes(Arc<[u8]>),
    /// An OpenAI `chat.completion` whose one message has this content.
    Completion(Arc<str>),
}

impl Body {
    pub(crate) fn new(want: BodyWant) -> Self {
        Body { want, body: Vec::new(), status: 0, cache_hit: false, overflow: false }
    }
}

impl Sink for Body {
    fn head(&mut self, head: &Head) {
        self.status = head.status;
        self.cache_hit = head.cache_hit;
    }

    fn data(&mut self, bytes: &[u8]) {
        if self.body.len() + bytes.len() > MAX_BODY {
            self.overflow = true;
            return;
        }
        self.body.extend_from_slice(bytes);
    }
}

#[derive(Deserialize)]
struct CompletionProbe {
    object: String,
    choices: Vec<CompletionChoice>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
}

#[derive(Deserialize)]
struct CompletionMessage {
    content: Option<String>,
}

impl Body {
    fn verdict(&self) -> Option<Wrong> {
        if self.status != 200 {
            return Some(Wrong::Status(self.status));
        }
        if self.overflow {
            return Some(Wrong::Malformed);
        }
        match &self.want {
            BodyWant::Bytes(want) if **want == *self.body => None,
            BodyWant::Bytes(want) if want.starts_with(&self.body) => Some(Wrong::Truncated),
            BodyWant::Bytes(_) => Some(Wrong::Mismatch),
            BodyWant::Completion(text) => {
                match serde_json::from_slice::<CompletionProbe>(&self.body) {
                    Err(_) => Some(Wrong::Malformed),
                    Ok(c) if c.object != "chat.completion" || c.choices.len() != 1 => {
                        Some(Wrong::Malformed)
                    }
                    Ok(c) if c.choices[0].message.content.as_deref() == Some(&**text) => None,
                    Ok(_) => Some(Wrong::Mismatch),
                }
            }
        }
    }
}

impl Check for Body {
    fn seen(&self, ended: bool) -> Seen {
        let wrong = if ended { self.verdict() } else { Some(Wrong::Truncated) };
        Seen { chunks: 0, first_content: None, wrong, cache_hit: self.cache_hit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_head() -> Head {
        Head::with_status(200)
    }

    fn feed(check: &mut impl Check, bytes: &[u8], split: usize) {
        check.head(&ok_head());
        for piece in bytes.chunks(split.max(1)) {
            check.data(piece);
        }
    }

    #[test]
    fn expected_streams_locate_every_delta() {
        let reply = Reply::with_n_deltas(5);
        for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Gemini, Wire::BedrockConverse] {
            let expected = ExpectedStream::new(wire, &reply, "m").unwrap();
            assert_eq!(expected.content_events(), 5, "{wire:?}");
            assert!(expected.content_ends.windows(2).all(|w| w[0] < w[1]));
            // Gemini's last delta rides on its terminal chunk; the others end with an event of their own.
            let last = *expected.content_ends.last().unwrap();
            assert_eq!(last == expected.bytes.len(), wire == Wire::Gemini, "{wire:?}");
        }
    }

    #[test]
    fn direct_streams_must_match_byte_for_byte() {
        let reply = Reply::with_n_deltas(4);
        let expected = Arc::new(ExpectedStream::new(Wire::Anthropic, &reply, "m").unwrap());
        let whole = expected.bytes.clone();
        for split in [1, 7, 100, whole.len()] {
            let mut check = DirectStream::new(Arc::clone(&expected));
            feed(&mut check, &whole, split);
            let seen = check.seen(true);
            assert_eq!((seen.chunks, seen.wrong), (4, None), "split {split}");
            assert!(seen.first_content.is_some());
        }
        let mut cut = DirectStream::new(Arc::clone(&expected));
        feed(&mut cut, &whole[..whole.len() - 3], 50);
        assert_eq!(cut.seen(true).wrong, Some(Wrong::Truncated));
        assert_eq!(cut.seen(false).wrong, None, "a stream cut by the harness is not wrong");
        let mut altered = whole.clone();
        let at = memmem::find(&altered, b"w2 ").unwrap();
        altered[at + 1] = b'9';
        let mut bad = DirectStream::new(expected);
        feed(&mut bad, &altered, 64);
        let seen = bad.seen(true);
        assert_eq!(seen.wrong, Some(Wrong::Mismatch));
        assert_eq!(seen.chunks, 2, "chunks before the mismatch still count");
    }

    fn chunk(content: Option<&str>) -> String {
        let delta = match content {
            Some(text) => format!(r#"{{"content":{}}}"#, serde_json::to_string(text).unwrap()),
            None => "{}".to_owned(),
        };
        format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"b\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}\n\n"
        )
    }

    fn gateway_stream(deltas: &[&str], done: bool) -> String {
        let mut out = String::from(
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"b\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        );
        out.push_str(": keep-alive\n\n");
        for d in deltas {
            out.push_str(&chunk(Some(d)));
        }
        out.push_str(&chunk(None));
        if done {
            out.push_str("data: [DONE]\n\n");
        }
        out
    }

    #[test]
    fn gateway_streams_check_text_and_done_at_every_split() {
        let text: Arc<str> = Arc::from("w0 w1 \"q\" w3 ");
        let stream = gateway_stream(&["w0 ", "w1 ", "\"q\" ", "w3 "], true);
        for split in 1..40 {
            let mut check = OpenAiStream::new(Arc::clone(&text));
            feed(&mut check, stream.as_bytes(), split);
            let seen = check.seen(true);
            assert_eq!((seen.chunks, seen.wrong), (4, None), "split {split}");
        }
    }

    #[test]
    fn gateway_stream_failures_are_named() {
        let text: Arc<str> = Arc::from("w0 w1 ");
        let verdict = |stream: &str| {
            let mut check = OpenAiStream::new(Arc::clone(&text));
            feed(&mut check, stream.as_bytes(), 13);
            check.seen(true).wrong
        };
        assert_eq!(verdict(&gateway_stream(&["w0 ", "w1 "], false)), Some(Wrong::Truncated));
        assert_eq!(verdict(&gateway_stream(&["w0 "], true)), Some(Wrong::Truncated));
        assert_eq!(verdict(&gateway_stream(&["w0 ", "w2 "], true)), Some(Wrong::Mismatch));
        assert_eq!(verdict(&gateway_stream(&["w0 ", "w0 "], true)), Some(Wrong::Mismatch));
        let mut error = gateway_stream(&["w0 "], false);
        error.push_str("data: {\"error\":{\"message\":\"upstream failed\"}}\n\n");
        assert_eq!(verdict(&error), Some(Wrong::ErrorEvent));
        let mut after = gateway_stream(&["w0 ", "w1 "], true);
        after.push_str(&chunk(Some("x")));
        assert_eq!(verdict(&after), Some(Wrong::Malformed));
        assert_eq!(verdict("data: {not json}\n\n"), Some(Wrong::Malformed));
    }

    #[test]
    fn bodies_compare_exactly_or_by_completion_text() {
        let reply = Reply::with_n_deltas(3);
        let want: Arc<[u8]> = expected_body(Wire::OpenAi, &reply, "m").into();
        let mut exact = Body::new(BodyWant::Bytes(Arc::clone(&want)));
        feed(&mut exact, &want, 10);
        assert_eq!(exact.seen(true).wrong, None);
        let mut short = Body::new(BodyWant::Bytes(Arc::clone(&want)));
        feed(&mut short, &want[..want.len() - 1], 10);
        assert_eq!(short.seen(true).wrong, Some(Wrong::Truncated));

        let text: Arc<str> = Arc::from(reply.text_content());
        let mut completion = Body::new(BodyWant::Completion(Arc::clone(&text)));
        feed(&mut completion, &want, 7);
        assert_eq!(
            completion.seen(true).wrong,
            None,
            "the simulator's OpenAI body is a completion"
        );
        let mut other = Body::new(BodyWant::Completion(Arc::from("nope")));
        feed(&mut other, &want, 7);
        assert_eq!(other.seen(true).wrong, Some(Wrong::Mismatch));
        let mut failed = Body::new(BodyWant::Completion(text));
        failed.head(&Head::with_status(502));
        assert_eq!(failed.seen(true).wrong, Some(Wrong::Status(502)));
    }
}

//! The soak's per-stream checker: reads a streamed answer in any of the three client protocols
//! (Chat Completions, Anthropic Messages, OpenAI Responses), follows the reply's deltas
//! (`"w0 "`, `"w1 "`, …) in order and counts lost, duplicated and corrupted ones, error events
//! (by kind) and the terminal event.

use std::sync::Arc;

use memchr::memmem;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::http::{Head, Sink};
use crate::verify::ChoiceProbe;

/// Largest SSE event buffered; a bigger one counts as corrupted.
const MAX_EVENT: usize = 1 << 20;

/// The client protocol a stream is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Protocol {
    /// `POST /v1/chat/completions`: `data: {chunk}` … `data: [DONE]`.
    Chat,
    /// `POST /v1/messages`: `content_block_delta` … `message_stop`.
    Messages,
    /// `POST /v1/responses`: `response.output_text.delta` … `response.completed`.
    Responses,
}

/// What one stream carried, as far as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamSeen {
    /// The HTTP status (0 before the head).
    pub(crate) status: u16,
    /// Deltas received in order (the next expected index).
    pub(crate) next: u64,
    /// Deltas skipped over (a later index arrived first).
    pub(crate) lost: u64,
    /// Deltas received again (an earlier index arrived after a later one).
    pub(crate) duplicated: u64,
    /// Content that is not a delta of the reply, or an unreadable event.
    pub(crate) corrupted: u64,
    /// Content events (events that carried text).
    pub(crate) content_events: u64,
    /// The kinds (`type/code`) of the error events, in order.
    pub(crate) errors: Vec<String>,
    /// The protocol's success terminal (`[DONE]`, `message_stop`, `response.completed`).
    pub(crate) done: bool,
    /// Events that came after the terminal or after an error's end (`response.failed` is the
    /// one allowed event after a Responses error).
    pub(crate) after_end: u64,
}

/// The sink of one streamed answer.
#[derive(Debug)]
pub(crate) struct StreamCheck {
    protocol: Protocol,
    pending: Vec<u8>,
    /// Text not yet split into whole deltas.
    text: String,
    seen: StreamSeen,
    failed_seen: bool,
    /// Notified once `stop_after` content events arrived (a client that leaves mid-stream).
    stop_after: Option<(u64, Arc<Notify>)>,
}

impl StreamCheck {
    pub(crate) fn new(protocol: Protocol) -> Self {
        StreamCheck {
            protocol,
            pending: Vec::with_capacity(512),
            text: String::new(),
            seen: StreamSeen::default(),
            failed_seen: false,
            stop_after: None,
        }
    }

    /// Notifies `notify` once `n` content events arrived.
    pub(crate) fn stop_after(mut self, n: u64, notify: Arc<Notify>) -> Self {
        self.stop_after = Some((n, notify));
        self
    }

    /// The verdict so far; `ended` says whether the HTTP response ended (a partial delta left
    /// at the end of an ended response is corrupted).
    pub(crate) fn seen(&self, ended: bool) -> StreamSeen {
        let mut seen = self.seen.clone();
        if ended && (!self.text.is_empty() || !self.pending.iter().all(u8::is_ascii_whitespace)) {
            seen.corrupted += 1;
        }
        seen
    }

    /// Content events so far (cheaper than [`seen`](Self::seen), which clones the errors).
    pub(crate) fn content_events(&self) -> u64 {
        self.seen.content_events
    }

    fn ended(&self) -> bool {
        self.seen.done || !self.seen.errors.is_empty()
    }

    fn event(&mut self, event: &[u8]) {
        let mut data: Vec<u8> = Vec::new();
        let mut any = false;
        for line in event.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(value) = line.strip_prefix(b"data:") else { continue };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if any {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
            any = true;
        }
        // Comments (keep-alives) and events without data carry nothing.
        if !any {
            return;
        }
        if self.protocol == Protocol::Chat && data == b"[DONE]" {
            if self.ended() {
                self.seen.after_end += 1;
            }
            self.seen.done = true;
            return;
        }
        let Ok(probe) = serde_json::from_slice::<Probe>(&data) else {
            self.seen.corrupted += 1;
            return;
        };
        match self.classify(probe) {
            Item::Text(text) => {
                if self.ended() {
                    self.seen.after_end += 1;
                    return;
                }
                if !text.is_empty() {
                    self.seen.content_events += 1;
                    self.text.push_str(&text);
                    self.split_deltas();
                    if let Some((n, notify)) = &self.stop_after
                        && self.seen.content_events >= *n
                    {
                        notify.notify_one();
                    }
                }
            }
            Item::Error(kind) => {
                if self.seen.done {
                    self.seen.after_end += 1;
                }
                self.seen.errors.push(kind);
            }
            Item::Done => {
                if self.ended() {
                    self.seen.after_end += 1;
                }
                self.seen.done = true;
            }
            Item::Failed => {
                // The one event a Responses stream sends after its `error`.
                if self.seen.errors.is_empty() || self.failed_seen || self.seen.done {
                    self.seen.after_end += 1;
                }
                self.failed_seen = true;
            }
            Item::Other => {
                if self.ended() {
                    self.seen.after_end += 1;
                }
            }
        }
    }

    fn classify(&self, probe: Probe) -> Item {
        if let Some(error) = &probe.error
            && !error.is_null()
        {
            return Item::Error(error_kind(error, probe.code.as_ref()));
        }
        match self.protocol {
            Protocol::Chat => {
                let content = probe
                    .choices
                    .and_then(|c| c.into_iter().next())
                    .and_then(|c| c.delta)
                    .and_then(|d| d.content);
                Item::Text(content.unwrap_or_default())
            }
            Protocol::Messages => match probe.kind.as_deref() {
                Some("content_block_delta") => {
                    let text = probe
                        .delta
                        .as_ref()
                        .filter(|d| d.get("type").and_then(Value::as_str) == Some("text_delta"))
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Item::Text(text.to_owned())
                }
                Some("message_stop") => Item::Done,
                Some("error") => Item::Error("error/-".to_owned()),
                _ => Item::Other,
            },
            Protocol::Responses => match probe.kind.as_deref() {
                Some("response.output_text.delta") => Item::Text(
                    probe.delta.as_ref().and_then(Value::as_str).unwrap_or_default().to_owned(),
                ),
                Some("response.completed") => Item::Done,
                Some("response.failed") => Item::Failed,
                Some("error") => Item::Error(format!("-/{}", code_text(probe.code.as_ref()))),
                _ => Item::Other,
            },
        }
    }

    /// Moves whole deltas (`w<digits> `) from the text into the counts.
    fn split_deltas(&mut self) {
        let mut consumed = 0;
        while let Some(space) = self.text[consumed..].find(' ') {
            let token = &self.text[consumed..consumed + space];
            consumed += space + 1;
            match token.strip_prefix('w').and_then(|d| d.parse::<u64>().ok()) {
                Some(k) if k == self.seen.next => self.seen.next += 1,
                Some(k) if k < self.seen.next => self.seen.duplicated += 1,
                Some(k) => {
                    self.seen.lost += k - self.seen.next;
                    self.seen.next = k + 1;
                }
                None => self.seen.corrupted += 1,
            }
        }
        self.text.drain(..consumed);
        if self.text.len() > 32 {
            self.seen.corrupted += 1;
            self.text.clear();
        }
    }
}

enum Item {
    Text(String),
    Error(String),
    Done,
    Failed,
    Other,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: Option<String>,
    choices: Option<Vec<ChoiceProbe>>,
    delta: Option<Value>,
    error: Option<Value>,
    code: Option<Value>,
}

/// `type/code` of an error object (`{"type":…,"code":…}` or a string).
fn error_kind(error: &Value, outer_code: Option<&Value>) -> String {
    match error {
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("-");
            let code = map.get("code").or(outer_code);
            format!("{kind}/{}", code_text(code))
        }
        Value::String(s) => format!("{s}/{}", code_text(outer_code)),
        _ => "-/-".to_owned(),
    }
}

fn code_text(code: Option<&Value>) -> String {
    match code {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".to_owned(),
    }
}

impl Sink for StreamCheck {
    fn head(&mut self, head: &Head) {
        self.seen.status = head.status;
    }

    fn data(&mut self, bytes: &[u8]) {
        if self.seen.status != 200 {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut consumed = 0;
        loop {
            let rest = &self.pending[consumed..];
            let Some(end) = memmem::find(rest, b"\n\n") else { break };
            let event = rest[..end].to_vec();
            consumed += end + 2;
            self.event(&event);
        }
        self.pending.drain(..consumed);
        if self.pending.len() > MAX_EVENT {
            self.seen.corrupted += 1;
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(protocol: Protocol, wire: &str, split: usize) -> StreamSeen {
        let mut check = StreamCheck::new(protocol);
        check.head(&Head::with_status(200));
        for piece in wire.as_bytes().chunks(split.max(1)) {
            check.data(piece);
        }
        check.seen(true)
    }

    fn chat(deltas: &[&str], tail: &str) -> String {
        let mut out = String::from(
            "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n: keep-alive\n\n",
        );
        for d in deltas {
            out.push_str(&format!(
                "data: {{\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{d}\"}}}}]}}\n\n"
            ));
        }
        out.push_str(tail);
        out
    }

    #[test]
    fn a_complete_chat_stream_is_counted_at_every_split() {
        let wire = chat(&["w0 ", "w1 w2 ", "w", "3 "], "data: [DONE]\n\n");
        for split in 1..50 {
            let seen = run(Protocol::Chat, &wire, split);
            assert_eq!((seen.next, seen.lost, seen.duplicated, seen.corrupted), (4, 0, 0, 0));
            assert!(seen.done && seen.errors.is_empty() && seen.after_end == 0);
            assert_eq!(seen.content_events, 4);
        }
    }

    #[test]
    fn lost_duplicated_and_corrupted_deltas_are_counted() {
        let seen = run(Protocol::Chat, &chat(&["w0 ", "w3 ", "w1 ", "x ", "w4 "], ""), 7);
        assert_eq!((seen.next, seen.lost, seen.duplicated, seen.corrupted), (5, 2, 1, 1));
        assert!(!seen.done);
        let partial = run(Protocol::Chat, &chat(&["w0 ", "w1"], ""), 7);
        assert_eq!((partial.next, partial.corrupted), (1, 1), "a cut delta is corrupted");
    }

    #[test]
    fn chat_errors_have_a_kind_and_nothing_may_follow() {
        let tail = "data: {\"error\":{\"message\":\"x\",\"type\":\"timeout_error\",\"code\":\"timeout\"}}\n\n";
        let seen = run(Protocol::Chat, &chat(&["w0 ", "w1 "], tail), 5);
        assert_eq!(seen.errors, ["timeout_error/timeout"]);
        assert_eq!((seen.next, seen.after_end, seen.done), (2, 0, false));
        let done_after = format!("{tail}data: [DONE]\n\n");
        assert_eq!(run(Protocol::Chat, &chat(&["w0 "], &done_after), 5).after_end, 1);
    }

    #[test]
    fn messages_and_responses_streams_are_read() {
        let messages = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"w0 \"}}\n\n\
            event: ping\ndata: {\"type\":\"ping\"}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"w1 \"}}\n\n\
            event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let seen = run(Protocol::Messages, messages, 11);
        assert_eq!((seen.next, seen.done, seen.corrupted), (2, true, 0));
        let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\n";
        assert_eq!(run(Protocol::Messages, error, 3).errors, ["api_error/-"]);

        let responses = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n\
            event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"w0 \"}\n\n\
            event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n";
        let seen = run(Protocol::Responses, responses, 9);
        assert_eq!((seen.next, seen.done), (1, true));
        let failed = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"w0 \"}\n\n\
            event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"x\",\"error\":{\"type\":\"server_error\",\"code\":\"server_error\"}}\n\n\
            event: response.failed\ndata: {\"type\":\"response.failed\"}\n\n";
        let seen = run(Protocol::Responses, failed, 9);
        assert_eq!(seen.errors, ["server_error/server_error"]);
        assert_eq!((seen.after_end, seen.done), (0, false));
    }

    #[test]
    fn a_leaving_client_is_notified_after_n_content_events() {
        let notify = Arc::new(Notify::new());
        let mut check = StreamCheck::new(Protocol::Chat).stop_after(2, Arc::clone(&notify));
        check.head(&Head::with_status(200));
        check.data(chat(&["w0 ", "w1 "], "").as_bytes());
        // The permit was stored: this returns at once.
        let waited = tokio_test_block(notify);
        assert!(waited);
    }

    fn tokio_test_block(notify: Arc<Notify>) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), notify.notified()).await.is_ok()
        })
    }
}

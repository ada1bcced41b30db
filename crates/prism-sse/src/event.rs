//! What the decoder produces: dispatched events, comments and (optionally) unknown lines.

use crate::Utf8Bytes;

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; `None` means the default type `"message"`. The decoder never produces
    /// `Some("")`: an empty `event:` value selects the default type, as the spec says.
    pub event: Option<Utf8Bytes>,
    /// The `data:` lines joined with `'\n'` (the spec's trailing `'\n'` removed).
    pub data: Utf8Bytes,
    /// The last-event-id buffer at dispatch time (`None` if no `id:` field was ever accepted).
    /// It carries over from earlier events, so it is not necessarily this event's own `id:`.
    pub id: Option<Utf8Bytes>,
    /// A valid `retry:` value seen in this event's block (the decoder also keeps the latest one,
    /// see [`Decoder::reconnection_time`](crate::Decoder::reconnection_time)).
    pub retry: Option<u64>,
}

impl Event {
    /// An event of the default type carrying `data`.
    pub fn new(data: impl Into<Utf8Bytes>) -> Self {
        Self { data: data.into(), ..Self::default() }
    }

    /// The event type: the `event:` field, or `"message"` when it is absent or empty.
    pub fn event_type(&self) -> &str {
        match &self.event {
            Some(event) if !event.is_empty() => event.as_str(),
            _ => "message",
        }
    }
}

/// One item of a decoded event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A dispatched event.
    Event(Event),
    /// A comment line (it starts with `':'`): the text after the colon with one leading space
    /// stripped. Servers send these as keep-alives, so they are surfaced rather than dropped.
    Comment(Utf8Bytes),
    /// Only with [`Decoder::emit_unknown_lines(true)`](crate::Decoder::emit_unknown_lines): a whole
    /// line (without its line ending) whose field name is not `data`, `event`, `id` or `retry`.
    /// Gemini can append a raw, non-SSE JSON error body to a 200 stream, and its translator needs
    /// to see it; the spec itself ignores such lines.
    Unknown(Utf8Bytes),
}

//! The incremental decoder: the WHATWG "event stream interpretation" over arbitrarily split input.
//! Lines are found on bytes and each complete line is converted to UTF-8 on its own, so a
//! multi-byte character, a BOM or a CRLF split across two reads changes nothing.

use std::fmt;

use bytes::{BufMut, BytesMut};
use memchr::{memchr, memchr2};

use crate::{Event, Frame, Utf8Bytes};

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Capacity reserved for the data buffer at a time. Dispatched events are slices of this buffer,
/// so one allocation serves many small events (and lives until the last of them is dropped).
const DATA_BLOCK: usize = 2 * 1024;

/// Why the decoder stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The event being read (its data so far plus the current line) exceeded the limit. A single
    /// line longer than the limit counts as such an event too.
    #[error("event exceeds the size limit of {limit} bytes")]
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

/// Incremental server-sent events decoder, free of I/O.
///
/// Push bytes in with [`feed`](Self::feed) (any size, split anywhere) and signal the end of the
/// stream with [`finish`](Self::finish). The rules are those of the WHATWG HTML standard's
/// "event stream interpretation": UTF-8 with invalid sequences replaced by U+FFFD, one leading
/// BOM stripped, lines ended by CR, LF or CRLF, the `data`, `event`, `id` and `retry` fields,
/// comment lines, dispatch on a blank line, and no event when the data buffer is empty.
///
/// Memory is bounded: the data buffer of the current event plus the line being read may not
/// exceed [`with_max_event_size`](Self::with_max_event_size) bytes (1 MiB by default). Past that,
/// `feed` fails with [`DecodeError::EventTooLarge`], drops what it buffered, and keeps failing
/// until [`finish`](Self::finish) resets it.
#[derive(Clone)]
pub struct Decoder {
    /// The limit on the data buffer plus the current line, in bytes.
    limit: usize,
    /// The start of a line whose ending has not arrived yet.
    line: Vec<u8>,
    /// How many bytes of a BOM have been seen at the start of the stream; `None` once past it.
    bom_seen: Option<usize>,
    /// The previous input ended with CR, so an LF starting the next input ends no further line.
    after_cr: bool,
    /// Set by `EventTooLarge`; `feed` keeps failing until `finish`.
    failed: bool,
    /// Bytes thrown away when the limit was hit, reported by `finish`.
    discarded: usize,
    fields: Fields,
}

/// The spec's per-stream buffers, separate from the line splitter so that a line can be borrowed
/// from `Decoder::line` while the fields are updated.
#[derive(Clone)]
struct Fields {
    emit_unknown: bool,
    /// The spec's data buffer: each `data` value followed by `'\n'`.
    data: BytesMut,
    /// The event type buffer (`None` = empty = "message").
    event_type: Option<Utf8Bytes>,
    /// The previous event type, reused when the next `event:` line repeats it (Anthropic names
    /// every event, mostly with the same few names) to save an allocation per event.
    type_cache: Option<Utf8Bytes>,
    /// The last event ID buffer.
    id_buffer: Option<Utf8Bytes>,
    /// The last event ID string, updated from the buffer at each dispatch.
    last_event_id: Option<Utf8Bytes>,
    /// A valid `retry` seen since the last blank line.
    retry_in_block: Option<u64>,
    /// The latest valid `retry` of the stream.
    reconnection_time: Option<u64>,
}

impl Decoder {
    /// The default limit on one event (data plus the line being read): 1 MiB.
    pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

    /// A decoder with the default limit.
    pub fn new() -> Self {
        Self::with_max_event_size(Self::DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder whose events (data plus the line being read) may be at most `limit` bytes.
    pub fn with_max_event_size(limit: usize) -> Self {
        Self {
            limit,
            line: Vec::new(),
            bom_seen: Some(0),
            after_cr: false,
            failed: false,
            discarded: 0,
            fields: Fields {
                emit_unknown: false,
                data: BytesMut::new(),
                event_type: None,
                type_cache: None,
                id_buffer: None,
                last_event_id: None,
                retry_in_block: None,
                reconnection_time: None,
            },
        }
    }

    /// Whether lines with an unknown field name are reported as [`Frame::Unknown`] (off by
    /// default: the spec ignores them).
    pub fn emit_unknown_lines(mut self, on: bool) -> Self {
        self.fields.emit_unknown = on;
        self
    }

    /// The configured limit in bytes.
    pub fn max_event_size(&self) -> usize {
        self.limit
    }

    /// Feeds the next piece of the byte stream (any size, split anywhere) and appends every frame
    /// it completes to `out`.
    ///
    /// On error, `out` still holds the frames completed before the offending line, and the
    /// decoder refuses further input until [`finish`](Self::finish).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        if self.failed {
            return Err(self.too_large());
        }
        let mut input = input;
        if let Some(mut seen) = self.bom_seen {
            while let Some(&expected) = BOM.get(seen) {
                match input.split_first() {
                    None => {
                        self.bom_seen = Some(seen);
                        return Ok(());
                    }
                    Some((&byte, rest)) if byte == expected => {
                        seen += 1;
                        input = rest;
                    }
                    Some(_) => {
                        // Not a BOM after all: what matched so far is ordinary content.
                        self.bom_seen = None;
                        self.feed_lines(BOM.get(..seen).unwrap_or_default(), out)?;
                        return self.feed_lines(input, out);
                    }
                }
            }
            self.bom_seen = None;
        }
        self.feed_lines(input, out)
    }

    /// Ends the stream. As the spec says, an event without its terminating blank line is dropped;
    /// returns how many bytes were dropped (of the unterminated line, the undispatched data
    /// buffer, and anything discarded after `EventTooLarge`), so 0 means a clean end.
    ///
    /// The decoder is then ready for a new stream (say, after a reconnection): the last event ID
    /// and the reconnection time are kept, everything else is reset.
    pub fn finish(&mut self) -> usize {
        self.take_partial_bom();
        let dropped = self.line.len() + self.fields.data.len() + self.discarded;
        self.reset();
        dropped
    }

    /// Like [`finish`](Self::finish), but when [`emit_unknown_lines`](Self::emit_unknown_lines)
    /// is on and the unterminated last line has an unknown field name, it is appended to `out` as
    /// [`Frame::Unknown`] instead of being dropped (and not counted). This is where a raw JSON
    /// error body that a server appended without a final newline shows up.
    pub fn finish_into(&mut self, out: &mut Vec<Frame>) -> usize {
        self.take_partial_bom();
        if self.fields.emit_unknown && !self.line.is_empty() && !is_known_line(&self.line) {
            out.push(Frame::Unknown(Utf8Bytes::copy_from_slice_lossy(&self.line)));
            self.line.clear();
        }
        self.finish()
    }

    /// Bytes buffered right now: the unterminated line plus the data buffer of the current event.
    /// Never more than [`max_event_size`](Self::max_event_size).
    pub fn buffered(&self) -> usize {
        self.line.len() + self.fields.data.len()
    }

    /// The last event ID string: the `id` in force at the latest dispatch ("" if none). A client
    /// sends it as `Last-Event-ID` when it reconnects.
    pub fn last_event_id(&self) -> &str {
        self.fields.last_event_id.as_ref().map_or("", Utf8Bytes::as_str)
    }

    /// The latest valid `retry:` value of the stream, in milliseconds.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.fields.reconnection_time
    }

    fn feed_lines(&mut self, mut input: &[u8], out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        if self.after_cr {
            let Some((&first, rest)) = input.split_first() else {
                return Ok(());
            };
            self.after_cr = false;
            if first == b'\n' {
                input = rest;
            }
        }
        if !self.line.is_empty() {
            let Some(end) = memchr2(b'\n', b'\r', input) else {
                self.check(self.line.len() + input.len())?;
                self.line.extend_from_slice(input);
                return Ok(());
            };
            self.check(self.line.len() + end)?;
            self.line.extend_from_slice(input.get(..end).unwrap_or_default());
            self.fields.process_line(&self.line, out);
            self.line.clear();
            input = self.after_line_end(input, end);
        }
        while let Some(end) = memchr2(b'\n', b'\r', input) {
            self.check(end)?;
            self.fields.process_line(input.get(..end).unwrap_or_default(), out);
            input = self.after_line_end(input, end);
        }
        if !input.is_empty() {
            self.check(input.len())?;
            self.line.extend_from_slice(input);
        }
        Ok(())
    }

    /// The rest of `input` after the line ending at `end` (CR, LF or CRLF).
    fn after_line_end<'a>(&mut self, input: &'a [u8], end: usize) -> &'a [u8] {
        let skip = match (input.get(end), input.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(b'\r'), None) => {
                self.after_cr = true;
                1
            }
            _ => 1,
        };
        input.get(end + skip..).unwrap_or_default()
    }

    /// Fails when the data buffer plus a line of `line_len` bytes would exceed the limit.
    fn check(&mut self, line_len: usize) -> Result<(), DecodeError> {
        if self.fields.data.len().saturating_add(line_len) <= self.limit {
            return Ok(());
        }
        self.failed = true;
        self.discarded = self.line.len() + self.fields.data.len();
        // Release the memory rather than keep a buffer of the limit's size around.
        self.line = Vec::new();
        self.fields.data = BytesMut::new();
        Err(self.too_large())
    }

    fn too_large(&self) -> DecodeError {
        DecodeError::EventTooLarge { limit: self.limit }
    }

    /// At the end of a stream that held only the start of a BOM, those bytes are the content of
    /// an unterminated line.
    fn take_partial_bom(&mut self) {
        if let Some(seen) = self.bom_seen.take() {
            self.line.extend_from_slice(BOM.get(..seen).unwrap_or_default());
        }
    }

    fn reset(&mut self) {
        self.line.clear();
        self.bom_seen = Some(0);
        self.after_cr = false;
        self.failed = false;
        self.discarded = 0;
        let fields = &mut self.fields;
        fields.data.clear();
        fields.event_type = None;
        fields.retry_in_block = None;
        // An `id:` whose event never completed does not count.
        fields.id_buffer.clone_from(&fields.last_event_id);
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Decoder {
    // Sizes only: the buffers hold payload text that has no place in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("max_event_size", &self.limit)
            .field("pending_line_len", &self.line.len())
            .field("pending_data_len", &self.fields.data.len())
            .field("failed", &self.failed)
            .field("emit_unknown_lines", &self.fields.emit_unknown)
            .field("reconnection_time", &self.fields.reconnection_time)
            .finish_non_exhaustive()
    }
}

impl Fields {
    fn process_line(&mut self, line: &[u8], out: &mut Vec<Frame>) {
        // Most lines of a model stream are `data: ...`; skip the colon search for them.
        if let Some(value) = line.strip_prefix(b"data:") {
            self.push_data(strip_space(value));
            return;
        }
        let Some((&first, after_first)) = line.split_first() else {
            self.dispatch(out);
            return;
        };
        if first == b':' {
            out.push(Frame::Comment(Utf8Bytes::copy_from_slice_lossy(strip_space(after_first))));
            return;
        }
        let (name, value) = split_field(line);
        match name {
            b"data" => self.push_data(value),
            b"event" => self.set_event_type(value),
            b"id" => {
                if memchr(0, value).is_none() {
                    self.id_buffer = Some(Utf8Bytes::copy_from_slice_lossy(value));
                }
            }
            b"retry" => {
                if let Some(millis) = parse_retry(value) {
                    self.retry_in_block = Some(millis);
                    self.reconnection_time = Some(millis);
                }
            }
            _ => {
                if self.emit_unknown {
                    out.push(Frame::Unknown(Utf8Bytes::copy_from_slice_lossy(line)));
                }
            }
        }
    }

    fn push_data(&mut self, value: &[u8]) {
        let needed = value.len() + 1;
        if self.data.capacity() - self.data.len() < needed {
            self.data.reserve(needed.max(DATA_BLOCK));
        }
        self.data.extend_from_slice(value);
        self.data.put_u8(b'\n');
    }

    fn set_event_type(&mut self, value: &[u8]) {
        if value.is_empty() {
            self.event_type = None;
            return;
        }
        if let Some(cached) = &self.type_cache
            && cached.as_bytes() == value
        {
            self.event_type = Some(cached.clone());
            return;
        }
        let event_type = Utf8Bytes::copy_from_slice_lossy(value);
        self.type_cache = Some(event_type.clone());
        self.event_type = Some(event_type);
    }

    fn dispatch(&mut self, out: &mut Vec<Frame>) {
        self.last_event_id.clone_from(&self.id_buffer);
        let retry = self.retry_in_block.take();
        let event = self.event_type.take();
        // An empty data buffer dispatches nothing; otherwise drop its trailing '\n'.
        let Some(len) = self.data.len().checked_sub(1) else {
            return;
        };
        let data = self.data.split_to(len).freeze();
        self.data.clear();
        out.push(Frame::Event(Event {
            event,
            data: Utf8Bytes::from_bytes_lossy(data),
            id: self.last_event_id.clone(),
            retry,
        }));
    }
}

/// Splits a non-comment line into field name and value (one leading space stripped); a line
/// without a colon is all name, with an empty value.
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b':', line) {
        Some(colon) => (
            line.get(..colon).unwrap_or_default(),
            strip_space(line.get(colon + 1..).unwrap_or_default()),
        ),
        None => (line, &[]),
    }
}

/// Whether a non-empty line is a comment or one of the four fields.
fn is_known_line(line: &[u8]) -> bool {
    line.first() == Some(&b':')
        || matches!(split_field(line).0, b"data" | b"event" | b"id" | b"retry")
}

fn strip_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

/// A `retry` value counts only when it is all ASCII digits; huge values saturate.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |millis, &digit| {
        millis.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

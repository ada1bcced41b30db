//! The encoder: writes events and comments into any `BufMut` so that a spec-conforming decoder
//! reads back exactly what was written (line breaks in data normalised to `'\n'`).

use bytes::BufMut;
use memchr::{memchr, memchr2};

use crate::Event;

/// The OpenAI end-of-stream sentinel event.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Why an event cannot be encoded. Nothing is written when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The event type contains CR or LF, which would end its line early.
    #[error("event type contains a line break")]
    LineBreakInEventType,
    /// The id contains CR or LF, which would end its line early.
    #[error("event id contains a line break")]
    LineBreakInId,
    /// The id contains NUL, which makes decoders ignore the whole `id` field.
    #[error("event id contains a NUL character")]
    NulInId,
}

/// An event to encode, borrowing its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The `event:` field; `None` (or empty) writes no such line, which means "message".
    pub event: Option<&'a str>,
    /// The data; every line break (CRLF, CR or LF) starts a new `data:` line.
    pub data: &'a str,
    /// The `id:` field; `Some("")` is written and resets the client's last event ID.
    pub id: Option<&'a str>,
    /// The `retry:` field in milliseconds.
    pub retry: Option<u64>,
}

impl<'a> EventRef<'a> {
    /// An event of the default type carrying `data`.
    pub fn new(data: &'a str) -> Self {
        Self { data, ..Self::default() }
    }
}

impl<'a> From<&'a Event> for EventRef<'a> {
    fn from(event: &'a Event) -> Self {
        Self {
            event: event.event.as_ref().map(|event| event.as_str()),
            data: event.data.as_str(),
            id: event.id.as_ref().map(|id| id.as_str()),
            retry: event.retry,
        }
    }
}

/// Writes one event that has only data: a `data:` line per line of `data` (split on CRLF, CR and
/// LF), then the blank line that dispatches it. Empty `data` still makes an event (`data: \n\n`).
pub fn write_data<B: BufMut>(buf: &mut B, data: &[u8]) {
    write_data_lines(buf, data);
    buf.put_u8(b'\n');
}

/// Writes the OpenAI end-of-stream sentinel, [`DONE`].
pub fn write_done<B: BufMut>(buf: &mut B) {
    buf.put_slice(DONE);
}

/// Writes one complete event: `event:`, `id:` and `retry:` lines when set, the data lines, and a
/// blank line. Fails, without writing anything, when the event type or id contain CR or LF, or
/// the id contains NUL.
pub fn write_event<B: BufMut>(buf: &mut B, event: &EventRef<'_>) -> Result<(), EncodeError> {
    let event_type = event.event.filter(|event| !event.is_empty());
    if let Some(event_type) = event_type
        && memchr2(b'\r', b'\n', event_type.as_bytes()).is_some()
    {
        return Err(EncodeError::LineBreakInEventType);
    }
    if let Some(id) = event.id {
        if memchr2(b'\r', b'\n', id.as_bytes()).is_some() {
            return Err(EncodeError::LineBreakInId);
        }
        if memchr(0, id.as_bytes()).is_some() {
            return Err(EncodeError::NulInId);
        }
    }
    if let Some(event_type) = event_type {
        write_line(buf, b"event:", event_type.as_bytes());
    }
    if let Some(id) = event.id {
        write_line(buf, b"id:", id.as_bytes());
    }
    if let Some(retry) = event.retry {
        write_line(buf, b"retry:", format_u64(retry, &mut [0; 20]));
    }
    write_data_lines(buf, event.data.as_bytes());
    buf.put_u8(b'\n');
    Ok(())
}

/// Writes `text` as comment lines (one per line of `text`, split on CRLF, CR and LF), then a
/// blank line.
///
/// A comment alone needs no blank line, but ending the block with one keeps the encoder's output
/// a sequence of self-contained blocks: the blank line is harmless because this encoder always
/// leaves the stream at an event boundary, where a blank line dispatches nothing (the data buffer
/// is empty), and it flushes the comment past line-buffering proxies and naive `\n\n`-splitting
/// clients. An empty `text` gives the minimal keep-alive `":\n\n"`.
pub fn write_comment<B: BufMut>(buf: &mut B, text: &str) {
    for_each_line(text.as_bytes(), |line| {
        if line.is_empty() {
            buf.put_slice(b":\n");
        } else {
            write_line(buf, b":", line);
        }
    });
    buf.put_u8(b'\n');
}

fn write_data_lines<B: BufMut>(buf: &mut B, data: &[u8]) {
    for_each_line(data, |line| write_line(buf, b"data:", line));
}

/// Writes `name`, a space (so that a value starting with a space survives the decoder stripping
/// one), the value and LF.
fn write_line<B: BufMut>(buf: &mut B, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_u8(b' ');
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

/// Calls `f` with each line of `text`; CRLF, CR and LF all end a line, and the part after the
/// last line break is a line too (possibly empty).
fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some(end) = memchr2(b'\n', b'\r', rest) {
        f(rest.get(..end).unwrap_or_default());
        let skip = if rest.get(end..end + 2) == Some(b"\r\n") { 2 } else { 1 };
        rest = rest.get(end + skip..).unwrap_or_default();
    }
    f(rest);
}

fn format_u64(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(digit) = digits.get_mut(start) {
            // `value % 10` is below 10, so the cast cannot truncate.
            *digit = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        for value in [0, 7, 10, 3000, u64::MAX] {
            assert_eq!(format_u64(value, &mut [0; 20]), value.to_string().as_bytes());
        }
    }
}

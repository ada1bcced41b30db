//! Scripted upstream faults ([`Fault`]): what each one sends, rendered in the called provider's
//! own format, as a byte-exact [`Script`] that the raw HTTP/1.1 server (`raw.rs`) writes.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::body::SimBody;
use crate::raw::{End, Op, Script};
use crate::server::{Answer, Ctx, Shared, ok_response, plain_error, rendered};
use crate::{Reply, Wire, eventstream, render};

/// A broken upstream answer, for a [`Behavior::Fault`](crate::Behavior::Fault).
///
/// Faults are served byte for byte, HTTP framing included, so they need a simulator started with
/// [`SimConfig::with_raw_http`](crate::SimConfig::with_raw_http); a hyper-served simulator
/// answers a fault with a `500` saying so.
///
/// Event counts (`events`) count items of [`render_stream`](crate::render_stream)'s output for the
/// called wire, as in [`Behavior`](crate::Behavior). Unless a variant says otherwise, streaming
/// answers are `200`s with the provider's stream headers and a chunked body (one HTTP chunk per
/// event), the reply's pacing is kept (`headers_delay` before the head, `first_delay` before the
/// first event, `delay` before each later event and before the fault itself), and the head says
/// `connection: close`: after the fault the simulator closes the connection (a FIN), unless the
/// variant resets it or holds it open. A non-streaming request gets the fault applied to its
/// whole JSON body (`events` is ignored there).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `events` whole events, then the first `bytes` bytes of the next event inside an HTTP chunk
    /// whose size line announces the whole event, then the connection closes: a cut inside a
    /// chunk and inside an event (on Bedrock, inside an event-stream frame; `bytes` under 12
    /// cuts its prelude). `bytes` is clamped to leave at least one byte of the event unsent;
    /// with no event left, the body just stops before its last chunk. Non-streaming: the first
    /// `bytes` bytes of the JSON body, then the cut.
    CutInEvent {
        /// Whole events sent before the cut one.
        events: usize,
        /// Bytes of the cut event that are sent.
        bytes: usize,
    },
    /// Like [`Fault::CutInEvent`], with the cut right after the first byte of a UTF-8 multi-byte
    /// sequence: in the first event from `events` on (or the non-streaming body) whose bytes hold
    /// one; without any, in the middle of event `events`. The reply's text must contain
    /// non-ASCII characters (Bedrock InvokeModel base64-encodes its events, so there the cut falls
    /// in the middle of the frame).
    CutInUtf8 {
        /// Events from which the first multi-byte sequence is looked for.
        events: usize,
    },
    /// `events` events, then `len` bytes of deterministic binary garbage (NULs, invalid UTF-8,
    /// line breaks) in one chunk, then a clean end of the body. Non-streaming: a `200`
    /// `application/json` body of `len` garbage bytes.
    Garbage {
        /// Events sent before the garbage.
        events: usize,
        /// Bytes of garbage.
        len: usize,
    },
    /// `events` events, then one well-framed event whose JSON payload is cut short (OpenAI
    /// `data: {"id":…,"choices":[{"delta":{"content":"oops`; Responses and Anthropic the same
    /// with their `event:` line; Gemini `data: {"candidates":[…`; Bedrock a frame with valid
    /// CRCs whose payload is truncated JSON), then the remaining events and a clean end, so
    /// only a decoder that skipped the bad event would finish. Non-streaming: a `200` whose body
    /// is the first half of the JSON (with its exact `content-length`).
    InvalidJson {
        /// Events sent before the invalid one.
        events: usize,
    },
    /// `events` events, then one valid content event whose text delta is `len` bytes of `x`
    /// (SSE: one `data:` line of that size; Bedrock: one frame with valid CRCs), then the
    /// remaining events and a clean end. Non-streaming: a valid body whose text is `len` bytes.
    Oversized {
        /// Events sent before the big one.
        events: usize,
        /// The size of the text delta.
        len: usize,
    },
    /// Event-stream wires (Bedrock) only: `events` events, then the next frame with a wrong
    /// message CRC, then the remaining frames and a clean end. Other wires, and non-streaming
    /// requests, get a `500` saying the fault does not apply.
    BadCrc {
        /// Frames sent before the corrupt one.
        events: usize,
    },
    /// Event-stream wires (Bedrock) only: `events` events, then the 12-byte prelude of a frame
    /// announcing `total_length` bytes (its prelude CRC valid, no headers), then nothing: the
    /// connection is held open until the client closes it. Other wires, and non-streaming
    /// requests, get a `500` saying the fault does not apply.
    FrameTooLong {
        /// Frames sent before the oversized one.
        events: usize,
        /// The frame length its prelude announces.
        total_length: u32,
    },
    /// `events` events, then a chunk whose size line is not hexadecimal (`zz`) carrying the next
    /// event, then the connection closes: a chunked-encoding error. Non-streaming: the same with
    /// the whole body.
    BadChunkSize {
        /// Events sent before the malformed chunk.
        events: usize,
    },
    /// `events` events, then the rest of the stream one byte per `interval`, each byte its own
    /// chunk, then a clean end. Non-streaming: the body (with its `content-length`) one byte per
    /// `interval`.
    Drip {
        /// Events sent at full speed first.
        events: usize,
        /// The pause before each byte.
        interval: Duration,
    },
    /// The whole stream, terminal event included, then the HTTP body never ends (no last chunk)
    /// and the connection stays open until the client closes it. Non-streaming: the whole body
    /// in one chunk, then the same.
    HoldOpen,
    /// A `200` with `content-type: text/html` and an HTML error page as its body (what a proxy
    /// in front of the provider might answer), streaming or not.
    Html,
    /// A `302 Found` with `location` and a short HTML body, streaming or not.
    Redirect {
        /// The `location` header.
        location: String,
    },
    /// `events` events, then a TCP reset (`SO_LINGER` 0, then close): with `events == 0` the
    /// reset follows the head. Non-streaming: the head, then the reset.
    Reset {
        /// Events sent before the reset.
        events: usize,
    },
}

/// The HTML page of [`Fault::Html`].
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response \
(simulated).</p></body></html>\n";

/// The answer to `ctx` under `fault` for `reply`.
pub(crate) async fn answer(shared: &Shared, ctx: &Ctx, reply: &Reply, fault: &Fault) -> Answer {
    let eventstream_only = matches!(fault, Fault::BadCrc { .. } | Fault::FrameTooLong { .. });
    if eventstream_only && !(ctx.stream && ctx.route.wire.is_eventstream()) {
        let message = format!("{fault:?} applies to event-stream (Bedrock streaming) answers only");
        return Answer::Response(plain_error(500, &message));
    }
    if !reply.headers_delay.is_zero() {
        tokio::time::sleep(reply.headers_delay).await;
    }
    let mut s = Writer::new(reply);
    if let Some(page) = page_fault(ctx, fault, &mut s) {
        return Answer::Script(page);
    }
    let events = rendered(shared, ctx, reply, false);
    let script = if ctx.stream {
        stream_script(shared, ctx, &events, fault, s)
    } else {
        let body = events.first().cloned().unwrap_or_default();
        body_script(shared, ctx, reply, body, fault, s)
    };
    Answer::Script(script)
}

/// [`Fault::Html`] and [`Fault::Redirect`], the same streaming or not.
fn page_fault(ctx: &Ctx, fault: &Fault, s: &mut Writer) -> Option<Script> {
    let (status, location, content_type, page) = match fault {
        Fault::Html => {
            (200, None, "text/html; charset=utf-8", Bytes::from_static(HTML_PAGE.as_bytes()))
        }
        Fault::Redirect { location } => {
            let page =
                format!("<html><body>Found: <a href=\"{location}\">{location}</a></body></html>\n");
            (302, Some(location.as_str()), "text/html", Bytes::from(page))
        }
        _ => return None,
    };
    s.head(head(ctx, false, status, Some(content_type), location, Some(page.len())));
    s.raw(page);
    Some(s.take(End::Close))
}

/// The script of a streaming answer.
fn stream_script(
    shared: &Shared,
    ctx: &Ctx,
    events: &[Bytes],
    fault: &Fault,
    mut s: Writer,
) -> Script {
    s.head(head(ctx, ctx.route.sse, 200, None, None, None));
    let first = |n: usize| n.min(events.len());
    match fault {
        Fault::CutInEvent { events: n, bytes } => {
            let n = first(*n);
            s.events(&events[..n]);
            if let Some(next) = events.get(n) {
                s.partial_chunk(next, (*bytes).min(next.len().saturating_sub(1)));
            }
            s.take(End::Close)
        }
        Fault::CutInUtf8 { events: n } => {
            let n = first(*n);
            let found =
                events[n..].iter().enumerate().find_map(|(i, e)| utf8_cut(e).map(|c| (n + i, c)));
            let (at, cut) = found.unwrap_or((n, events.get(n).map_or(0, |e| e.len() / 2)));
            s.events(&events[..at]);
            if let Some(event) = events.get(at) {
                s.partial_chunk(event, cut);
            }
            s.take(End::Close)
        }
        Fault::Garbage { events: n, len } => {
            s.events(&events[..first(*n)]);
            s.chunk(garbage(*len));
            s.last_chunk();
            s.take(End::Close)
        }
        Fault::InvalidJson { events: n } => {
            let n = first(*n);
            s.events(&events[..n]);
            s.chunk(invalid_event(ctx));
            s.events(&events[n..]);
            s.last_chunk();
            s.take(End::Close)
        }
        Fault::Oversized { events: n, len } => {
            let n = first(*n);
            s.events(&events[..n]);
            if let Some(event) = oversized_event(shared, ctx, *len) {
                s.chunk(event);
            }
            s.events(&events[n..]);
            s.last_chunk();
            s.take(End::Close)
        }
        Fault::BadCrc { events: n } => {
            let n = first(*n);
            s.events(&events[..n]);
            if let Some(next) = events.get(n) {
                let mut frame = BytesMut::from(next.as_ref());
                if let Some(last) = frame.last_mut() {
                    *last ^= 0xff;
                }
                s.chunk(frame.freeze());
                s.events(&events[n + 1..]);
            }
            s.last_chunk();
            s.take(End::Close)
        }
        Fault::FrameTooLong { events: n, total_length } => {
            s.events(&events[..first(*n)]);
            s.chunk(eventstream::prelude(*total_length, 0));
            s.take(End::Hold)
        }
        Fault::BadChunkSize { events: n } => {
            let n = first(*n);
            s.events(&events[..n]);
            let next = events.get(n).cloned().unwrap_or_default();
            s.pace();
            s.raw(malformed_chunk(&next));
            s.take(End::Close)
        }
        Fault::Drip { events: n, interval } => {
            let n = first(*n);
            s.events(&events[..n]);
            s.drip(Bytes::from(events[n..].concat()), *interval, true);
            s.last_chunk();
            s.take(End::Close)
        }
        Fault::HoldOpen => {
            s.events(events);
            s.take(End::Hold)
        }
        Fault::Reset { events: n } => {
            s.events(&events[..first(*n)]);
            s.pace();
            s.take(End::Reset)
        }
        // Answered by `page_fault` before any event is rendered.
        Fault::Html | Fault::Redirect { .. } => {
            s.last_chunk();
            s.take(End::Close)
        }
    }
}

/// The script of a non-streaming answer: the fault applied to the whole `body`.
fn body_script(
    shared: &Shared,
    ctx: &Ctx,
    reply: &Reply,
    body: Bytes,
    fault: &Fault,
    mut s: Writer,
) -> Script {
    let chunked = head(ctx, false, 200, None, None, None);
    let exact = |s: &mut Writer, bytes: Bytes| {
        s.head(head(ctx, false, 200, None, None, Some(bytes.len())));
        s.pace();
        s.raw(bytes);
    };
    match fault {
        Fault::CutInEvent { bytes, .. } => {
            s.head(chunked);
            s.partial_chunk(&body, (*bytes).min(body.len().saturating_sub(1)));
            s.take(End::Close)
        }
        Fault::CutInUtf8 { .. } => {
            s.head(chunked);
            s.partial_chunk(&body, utf8_cut(&body).unwrap_or(body.len() / 2));
            s.take(End::Close)
        }
        Fault::Garbage { len, .. } => {
            exact(&mut s, garbage(*len));
            s.take(End::Close)
        }
        Fault::InvalidJson { .. } => {
            exact(&mut s, body.slice(..body.len() / 2));
            s.take(End::Close)
        }
        Fault::Oversized { len, .. } => {
            let marked = Reply { deltas: vec![MARK.to_owned()], ..reply.clone() };
            let body = rendered(shared, ctx, &marked, false).first().cloned().unwrap_or_default();
            exact(&mut s, splice(&body, *len).unwrap_or(body));
            s.take(End::Close)
        }
        Fault::BadChunkSize { .. } => {
            s.head(chunked);
            s.pace();
            s.raw(malformed_chunk(&body));
            s.take(End::Close)
        }
        Fault::Drip { interval, .. } => {
            s.head(head(ctx, false, 200, None, None, Some(body.len())));
            s.drip(body, *interval, false);
            s.take(End::Close)
        }
        Fault::HoldOpen => {
            s.head(chunked);
            s.chunk(body);
            s.take(End::Hold)
        }
        Fault::Reset { .. } => {
            s.head(chunked);
            s.pace();
            s.take(End::Reset)
        }
        // Refused or answered before (`answer`, `page_fault`).
        Fault::BadCrc { .. }
        | Fault::FrameTooLong { .. }
        | Fault::Html
        | Fault::Redirect { .. } => {
            exact(&mut s, body);
            s.take(End::Close)
        }
    }
}

/// Builds a script: the HTTP head, then body steps paced as the reply asks.
struct Writer {
    ops: Vec<Op>,
    first_delay: Duration,
    delay: Duration,
    /// Body steps so far (for the pacing: `first_delay` before the first, `delay` after).
    steps: usize,
}

impl Writer {
    fn new(reply: &Reply) -> Self {
        Writer { ops: Vec::new(), first_delay: reply.first_delay, delay: reply.delay, steps: 0 }
    }

    fn head(&mut self, head: Bytes) {
        self.ops.push(Op::Write(head));
    }

    /// The pause before the next body step.
    fn pace(&mut self) {
        let wait = if self.steps == 0 { self.first_delay } else { self.delay };
        self.steps += 1;
        if !wait.is_zero() {
            self.ops.push(Op::Sleep(wait));
        }
    }

    /// Bytes as they are: no framing, no pause.
    fn raw(&mut self, bytes: Bytes) {
        self.ops.push(Op::Write(bytes));
    }

    /// One HTTP chunk holding `bytes`.
    fn chunk(&mut self, bytes: Bytes) {
        self.pace();
        let mut out = BytesMut::with_capacity(bytes.len() + 12);
        out.put_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
        out.put_slice(&bytes);
        out.put_slice(b"\r\n");
        self.ops.push(Op::Write(out.freeze()));
    }

    /// One chunk per event.
    fn events(&mut self, events: &[Bytes]) {
        for event in events {
            self.chunk(event.clone());
        }
    }

    /// A chunk whose size line announces all of `bytes`, of which only the first `sent` follow.
    fn partial_chunk(&mut self, bytes: &Bytes, sent: usize) {
        self.pace();
        let mut out = BytesMut::with_capacity(sent + 10);
        out.put_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
        out.put_slice(&bytes[..sent.min(bytes.len())]);
        self.ops.push(Op::Write(out.freeze()));
    }

    /// `bytes` one byte per `interval` (each in its own chunk when `chunked`).
    fn drip(&mut self, bytes: Bytes, interval: Duration, chunked: bool) {
        self.steps += 1;
        self.ops.push(Op::Drip { bytes, interval, chunked });
    }

    /// The last chunk: a clean end of a chunked body.
    fn last_chunk(&mut self) {
        self.ops.push(Op::Write(Bytes::from_static(b"0\r\n\r\n")));
    }

    fn take(&mut self, end: End) -> Script {
        Script { ops: std::mem::take(&mut self.ops), end }
    }
}

/// The response head: the provider's headers for this answer (a stream's content type when
/// `native_stream`, else JSON, or `content_type`), `location`, the framing (`content-length`
/// when `length`, else chunked) and `connection: close`.
fn head(
    ctx: &Ctx,
    native_stream: bool,
    status: u16,
    content_type: Option<&'static str>,
    location: Option<&str>,
    length: Option<usize>,
) -> Bytes {
    let response = ok_response(ctx.route.wire, native_stream, SimBody::full(Bytes::new()));
    let mut headers: HeaderMap = response.headers().clone();
    headers.remove(CONTENT_LENGTH);
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(LOCATION, location);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    crate::raw::head_bytes(status, &headers, length, true)
}

/// Stands for the text of an oversized event while it is rendered: the renderers walk text
/// character by character, which is slow for megabytes in a debug build, so the big text is
/// spliced in afterwards.
const MARK: &str = "PRISMOVERSIZEDMARK";

/// The content event of `ctx`'s wire whose text delta is `len` bytes of `x`.
fn oversized_event(shared: &Shared, ctx: &Ctx, len: usize) -> Option<Bytes> {
    let events = rendered(shared, ctx, &Reply::text(MARK), false);
    let wire = ctx.route.wire;
    if !wire.is_eventstream() {
        return events.iter().find_map(|e| splice(e, len));
    }
    let mut messages = Vec::new();
    let mut decoder = prism_providers::bedrock::eventstream::Decoder::new();
    for event in events.iter() {
        decoder.feed(event, &mut messages).ok()?;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    messages.iter().find_map(|message| {
        let payload = std::str::from_utf8(&message.payload).ok()?;
        if wire == Wire::BedrockConverse {
            let json = splice(payload.as_bytes(), len)?;
            let json = std::str::from_utf8(&json).ok()?;
            return Some(eventstream::event(message.str_header(":event-type")?, json));
        }
        // InvokeModel: the Anthropic event is base64 in `bytes`.
        let chunk: serde_json::Value = serde_json::from_str(payload).ok()?;
        let inner = base64::Engine::decode(&b64, chunk["bytes"].as_str()?).ok()?;
        let inner = splice(&inner, len)?;
        let json = format!(r#"{{"bytes":"{}"}}"#, base64::Engine::encode(&b64, &inner));
        Some(eventstream::event("chunk", &json))
    })
}

/// `bytes` with [`MARK`] replaced by `len` bytes of `x`, if it holds the mark.
fn splice(bytes: &[u8], len: usize) -> Option<Bytes> {
    let at = bytes.windows(MARK.len()).position(|w| w == MARK.as_bytes())?;
    let mut out = BytesMut::with_capacity(bytes.len() + len);
    out.put_slice(&bytes[..at]);
    out.resize(at + len, b'x');
    out.put_slice(&bytes[at + MARK.len()..]);
    Some(out.freeze())
}

/// Where to cut `bytes` inside a UTF-8 multi-byte sequence: right after its lead byte.
fn utf8_cut(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b >= 0xc0).map(|i| i + 1)
}

/// A chunk with a size line that is not hexadecimal, carrying `bytes`.
fn malformed_chunk(bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(bytes.len() + 8);
    out.put_slice(b"zz\r\n");
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// `len` deterministic bytes (xorshift64): NULs, bytes that are not UTF-8, line breaks.
fn garbage(len: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // A NUL, an invalid lead byte and a line break early on, whatever the length.
        out.push(match i {
            1 => 0x00,
            3 => 0xff,
            5 => b'\n',
            _ => (x >> 32) as u8,
        });
    }
    Bytes::from(out)
}

/// One well-framed event of `ctx`'s wire whose JSON payload is cut short.
fn invalid_event(ctx: &Ctx) -> Bytes {
    const TEXT: &str = r#""oops"#;
    match ctx.route.wire {
        Wire::OpenAi => render::sse_event(
            None,
            &format!(
                r#"{{"id":"chatcmpl-sim0001","choices":[{{"index":0,"delta":{{"content":{TEXT}"#
            ),
        ),
        Wire::OpenAiResponses => render::sse_event(
            Some("response.output_text.delta"),
            &format!(r#"{{"type":"response.output_text.delta","delta":{TEXT}"#),
        ),
        Wire::Anthropic => render::sse_event(
            Some("content_block_delta"),
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{TEXT}"#
            ),
        ),
        Wire::Gemini if !ctx.route.sse => Bytes::from(format!(
            ",\r\n{{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":{TEXT}"
        )),
        Wire::Gemini => render::sse_event(
            None,
            &format!(r#"{{"candidates":[{{"content":{{"parts":[{{"text":{TEXT}"#),
        ),
        Wire::BedrockConverse => eventstream::event(
            "contentBlockDelta",
            &format!(r#"{{"contentBlockIndex":0,"delta":{{"text":{TEXT}"#),
        ),
        Wire::BedrockInvoke => eventstream::event("chunk", r#"{"bytes":"eyJ0eXBlIjoi"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_cuts_fall_inside_a_sequence() {
        let text = "ab\u{e9}c";
        let cut = utf8_cut(text.as_bytes()).unwrap();
        assert_eq!(cut, 3);
        assert!(std::str::from_utf8(&text.as_bytes()[..cut]).is_err());
        assert_eq!(utf8_cut(b"ascii"), None);
    }

    #[test]
    fn garbage_is_deterministic_and_not_text() {
        let g = garbage(64);
        assert_eq!(g, garbage(64));
        assert!(std::str::from_utf8(&g).is_err());
        assert!(g.contains(&0) && g.contains(&b'\n'));
    }

    #[test]
    fn splice_replaces_the_mark() {
        let text = format!("a{MARK}b");
        assert_eq!(splice(text.as_bytes(), 3), Some(Bytes::from_static(b"axxxb")));
        assert_eq!(splice(b"no mark", 3), None);
    }

    #[test]
    fn malformed_chunks_have_a_non_hex_size() {
        assert_eq!(malformed_chunk(b"abc"), Bytes::from_static(b"zz\r\nabc\r\n"));
    }
}

//! The harness the fuzz targets share: a byte translator fed whole, split at a fuzzer-chosen
//! point and byte by byte must give the same outcome; structured inputs that wrap the fuzzer's
//! pieces into SSE events of a provider's shape; and a check that every stream encoder writes
//! whole SSE events for whatever chunks a translator produced.

use bytes::BytesMut;
use prism_ingress::{EncodeContext, Protocol, StreamEncoder};
use prism_providers::{ByteTranslator, OutChunk, StreamContext};
use prism_types::ErrorObject;

/// Inputs up to this length are also fed one byte at a time.
pub const BYTE_BY_BYTE_MAX: usize = 512;

/// Everything a translator run is judged on, in comparable form.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every chunk written as the client would get it (`raw` when present), then the chunk as
    /// parsed (a relay's `raw` and its `chunk` differ).
    pub chunks: Vec<u8>,
    /// The first `feed` error, debug-printed.
    pub feed_error: Option<String>,
    /// Whether the terminal event was seen after the last piece.
    pub done: bool,
    /// `finish`'s result (not called after a `feed` error), debug-printed.
    pub finish: Option<Result<String, String>>,
}

/// Feeds `pieces` in order, then finishes, as the server does.
pub fn run<'a>(
    mut translator: Box<dyn ByteTranslator>,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Outcome, Vec<OutChunk>) {
    let mut out = Vec::new();
    let mut feed_error = None;
    for piece in pieces {
        if let Err(e) = translator.feed(piece, &mut out) {
            feed_error = Some(format!("{e:?}"));
            break;
        }
    }
    let done = translator.is_done();
    let finish = feed_error.is_none().then(|| {
        translator.finish(&mut out).map(|s| format!("{s:?}")).map_err(|e| format!("{e:?}"))
    });
    let mut chunks = Vec::new();
    for chunk in &out {
        chunk.write_json(&mut chunks);
        chunks.push(b'\n');
        prism_types::json::extend(&mut chunks, &chunk.chunk);
        chunks.push(b'\n');
    }
    (Outcome { chunks, feed_error, done, finish }, out)
}

/// Checks split invariance of the translators `make` builds on `body`: whole, split at `at`,
/// and (for short bodies) byte by byte. Returns the chunks of the whole run and how it ended.
pub fn check_splits(
    make: &dyn Fn() -> Box<dyn ByteTranslator>,
    body: &[u8],
    at: usize,
) -> (Vec<OutChunk>, bool) {
    let (whole, chunks) = run(make(), [body]);
    let at = at % (body.len() + 1);
    let (head, tail) = body.split_at(at);
    let (split, _) = run(make(), [head, tail]);
    assert_eq!(split, whole, "split at {at} differs from whole");
    if body.len() <= BYTE_BY_BYTE_MAX {
        let (bytes, _) = run(make(), body.chunks(1));
        assert_eq!(bytes, whole, "byte by byte differs from whole");
    }
    let clean = whole.feed_error.is_none() && matches!(whole.finish, Some(Ok(_)));
    (chunks, clean)
}

/// A stream context; `flags` picks the usage policy.
pub fn context(flags: u8) -> StreamContext {
    StreamContext {
        include_usage: flags & 1 == 1,
        usage_on_finish: flags & 2 == 2,
        ..StreamContext::new("chatcmpl-fuzz", 1_700_000_000, "public-model")
    }
}

/// One event template: the SSE event name (if any) and its data, where `$S` becomes the piece as
/// a JSON string and `$N` a number chosen by the piece.
pub type Template = (Option<&'static str>, &'static str);

const NUMBERS: [&str; 8] =
    ["0", "1", "2", "-1", "4294967296", "1e400", "18446744073709551616", "0.5"];

/// Wraps the `0xff`-separated pieces of `input` into SSE events built from `templates`. A
/// piece's first byte picks the template (its top bit: the rest goes in verbatim instead of
/// through a template), the second the number and the line ending.
pub fn sse_events(templates: &[Template], input: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in input.split(|&b| b == 0xff) {
        let [selector, arg, rest @ ..] = piece else { continue };
        let eol: &[u8] = match arg >> 6 {
            0 | 1 => b"\n",
            2 => b"\r\n",
            _ => b"\r",
        };
        let (name, data) = if selector & 0x80 == 0x80 {
            (None, String::from_utf8_lossy(rest).into_owned())
        } else {
            let (name, template) = templates[usize::from(*selector) % templates.len()];
            let text = String::from_utf8_lossy(rest);
            let string = serde_json::Value::String(text.into_owned()).to_string();
            let number = NUMBERS[usize::from(arg & 7)];
            (name, template.replace("$S", &string).replace("$N", number))
        };
        if let Some(name) = name {
            body.extend_from_slice(b"event: ");
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(eol);
        }
        for line in data.split('\n') {
            body.extend_from_slice(b"data: ");
            body.extend_from_slice(line.as_bytes());
            body.extend_from_slice(eol);
        }
        body.extend_from_slice(eol);
    }
    body
}

/// The body a translator target feeds: `data` as it is, or (when `structured`) built by
/// [`sse_events`].
pub fn body(templates: &[Template], structured: bool, data: &[u8]) -> Vec<u8> {
    if structured { sse_events(templates, data) } else { data.to_vec() }
}

/// Splits a translator target's input into (mode, split point, data).
pub fn header(input: &[u8]) -> Option<(u8, usize, &[u8])> {
    let (&[mode, lo, hi], data) = input.split_first_chunk::<3>()?;
    Some((mode, usize::from(u16::from_le_bytes([lo, hi])), data))
}

/// Asserts that `bytes`, one encoder call's output, is a run of whole SSE events.
fn assert_whole_events(bytes: &[u8], what: &str) {
    let mut decoder = prism_sse::Decoder::with_max_event_size(usize::MAX);
    let mut frames = Vec::new();
    assert!(decoder.feed(bytes, &mut frames).is_ok(), "{what}: encoder output does not decode");
    let dropped = decoder.finish();
    assert_eq!(
        dropped,
        0,
        "{what}: encoder output ends mid-event: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// Feeds `chunks` to `encoder`, then `finish` (when the stream ended cleanly) or `fail`, and
/// checks that every call writes whole events.
pub fn check_encoder(
    mut encoder: Box<dyn StreamEncoder>,
    chunks: &[OutChunk],
    clean: bool,
    what: &str,
) {
    let mut out = BytesMut::new();
    for chunk in chunks {
        encoder.chunk(&chunk.chunk, chunk.raw.as_deref(), &mut out);
        assert_whole_events(&out.split(), what);
    }
    if clean {
        encoder.finish(&mut out);
    } else {
        encoder.fail(&ErrorObject::new("server_error", "upstream stream failed"), &mut out);
    }
    assert_whole_events(&out.split(), what);
}

/// Runs `chunks` through every translated-lane encoder.
pub fn check_encoders(chunks: &[OutChunk], clean: bool) {
    for protocol in [Protocol::ChatCompletions, Protocol::Messages, Protocol::Responses] {
        let ctx = EncodeContext {
            id: "fuzz".into(),
            created: 1_700_000_000,
            model: "public-model".into(),
        };
        check_encoder(
            prism_ingress::stream_encoder(protocol, ctx),
            chunks,
            clean,
            protocol.as_str(),
        );
    }
}

/// Runs a relay's `chunks` through the same-protocol lane's encoder.
pub fn check_native_encoder(protocol: Protocol, chunks: &[OutChunk], clean: bool) {
    check_encoder(prism_ingress::native::encoder(protocol), chunks, clean, "native");
}

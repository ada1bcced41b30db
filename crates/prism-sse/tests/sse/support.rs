//! Shared helpers: feeding a decoder in chosen pieces, frame constructors, and a reference model
//! that transcribes the spec's algorithm as plainly as possible (whole input, `String`s).

use prism_sse::{Decoder, Event, Frame};

/// Everything observable after decoding one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) frames: Vec<Frame>,
    /// Whether `feed` failed (frames then holds what came before the failure).
    pub(crate) failed: bool,
    /// What `finish_into` reported; only meaningful without a failure, so 0 after one.
    pub(crate) dropped: usize,
    pub(crate) last_event_id: String,
    pub(crate) reconnection_time: Option<u64>,
}

/// Feeds `pieces` in order, stopping at the first error, then finishes.
pub(crate) fn decode_pieces<'a>(
    mut decoder: Decoder,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let limit = decoder.max_event_size();
    let mut frames = Vec::new();
    let mut failed = false;
    for piece in pieces {
        if decoder.feed(piece, &mut frames).is_err() {
            failed = true;
            break;
        }
        assert!(decoder.buffered() <= limit, "buffered {} > limit {limit}", decoder.buffered());
    }
    let last_event_id = decoder.last_event_id().to_owned();
    let reconnection_time = decoder.reconnection_time();
    let dropped = if failed {
        decoder.finish();
        0
    } else {
        decoder.finish_into(&mut frames)
    };
    Outcome { frames, failed, dropped, last_event_id, reconnection_time }
}

pub(crate) fn decode_whole(decoder: Decoder, input: &[u8]) -> Outcome {
    decode_pieces(decoder, [input])
}

pub(crate) fn decode_bytewise(decoder: Decoder, input: &[u8]) -> Outcome {
    decode_pieces(decoder, input.chunks(1))
}

/// Feeds `input` cut at each position in `cuts` (any order, clamped to the input).
pub(crate) fn decode_cut(decoder: Decoder, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| cut.min(input.len())).collect();
    cuts.push(0);
    cuts.push(input.len());
    cuts.sort_unstable();
    decode_pieces(decoder, cuts.windows(2).map(|pair| &input[pair[0]..pair[1]]))
}

/// Decodes `input` whole, byte by byte, and cut in two at every position, and asserts all agree.
pub(crate) fn assert_split_invariant(make: impl Fn() -> Decoder, input: &[u8]) -> Outcome {
    let whole = decode_whole(make(), input);
    assert_eq!(decode_bytewise(make(), input), whole, "byte by byte differs for {input:?}");
    for cut in 0..=input.len() {
        assert_eq!(decode_cut(make(), input, &[cut]), whole, "cut at {cut} differs for {input:?}");
    }
    whole
}

pub(crate) fn ev(data: &str) -> Frame {
    Frame::Event(Event::new(data))
}

pub(crate) fn ev_full(
    event: Option<&str>,
    data: &str,
    id: Option<&str>,
    retry: Option<u64>,
) -> Frame {
    Frame::Event(Event {
        event: event.map(Into::into),
        data: data.into(),
        id: id.map(Into::into),
        retry,
    })
}

pub(crate) fn comment(text: &str) -> Frame {
    Frame::Comment(text.into())
}

pub(crate) fn unknown(line: &str) -> Frame {
    Frame::Unknown(line.into())
}

/// The spec's algorithm on the whole input: decode as UTF-8 (lossy), strip one leading BOM,
/// split into lines (CRLF, LF, CR), drop the unterminated rest, and interpret each line.
/// Returns the frames, the last event ID string and the reconnection time.
pub(crate) fn reference(input: &[u8], emit_unknown: bool) -> (Vec<Frame>, String, Option<u64>) {
    let decoded = String::from_utf8_lossy(input);
    let mut rest = decoded.strip_prefix('\u{feff}').unwrap_or(&decoded);
    let mut lines = Vec::new();
    while let Some(end) = rest.find(['\r', '\n']) {
        lines.push(&rest[..end]);
        let ending = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[end + ending..];
    }

    let mut frames = Vec::new();
    let mut data = String::new();
    let mut event_type = String::new();
    let mut id_buffer: Option<String> = None;
    let mut last_event_id: Option<String> = None;
    let mut block_retry = None;
    let mut reconnection_time = None;
    for line in lines {
        if line.is_empty() {
            last_event_id.clone_from(&id_buffer);
            let retry = block_retry.take();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            frames.push(Frame::Event(Event {
                event: (!event_type.is_empty()).then(|| event_type.as_str().into()),
                data: data.as_str().into(),
                id: last_event_id.as_deref().map(Into::into),
                retry,
            }));
            data.clear();
            event_type.clear();
            continue;
        }
        if let Some(text) = line.strip_prefix(':') {
            frames.push(comment(text.strip_prefix(' ').unwrap_or(text)));
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "event" => value.clone_into(&mut event_type),
            "id" => {
                if !value.contains('\0') {
                    id_buffer = Some(value.to_owned());
                }
            }
            "retry" => {
                if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
                    let millis = value.bytes().fold(0u64, |millis, digit| {
                        millis.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
                    });
                    block_retry = Some(millis);
                    reconnection_time = Some(millis);
                }
            }
            _ => {
                if emit_unknown {
                    frames.push(unknown(line));
                }
            }
        }
    }
    (frames, last_event_id.unwrap_or_default(), reconnection_time)
}

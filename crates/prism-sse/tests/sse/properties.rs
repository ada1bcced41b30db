//! Property tests: any split of any input decodes like the whole input and like feeding it byte
//! by byte, and the decoder agrees with the plain reference model of the spec.

use prism_sse::Decoder;
use proptest::prelude::*;
use proptest::sample::select;

use crate::support::{decode_bytewise, decode_cut, decode_whole, reference};

/// A line value: plain text, arbitrary unicode, or the characters the rules care about.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,8}",
        "[ :a]{0,4}",
        "\\PC{0,6}",
        Just("a\0b".to_owned()),
        Just("\u{feff}".to_owned()),
        "[0-9]{1,5}",
    ]
}

/// One line of a plausible event stream (without its line ending), or random bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        4 => value().prop_map(|value| format!("data: {value}")),
        1 => value().prop_map(|value| format!("data:{value}")),
        1 => Just("data".to_owned()),
        1 => value().prop_map(|value| format!("event: {value}")),
        1 => value().prop_map(|value| format!("id: {value}")),
        1 => value().prop_map(|value| format!("retry: {value}")),
        1 => value().prop_map(|value| format!(":{value}")),
        1 => value().prop_map(|value| format!("x-field: {value}")),
        1 => "[a-z{}\"]{1,6}",
        4 => Just(String::new()),
    ];
    prop_oneof![8 => text.prop_map(String::into_bytes), 1 => prop::collection::vec(any::<u8>(), 0..6)]
}

/// Lines joined with random line endings, maybe after a BOM, maybe ending mid-line.
fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    let ending = select(vec![&b"\n"[..], b"\r", b"\r\n"]);
    (any::<bool>(), prop::collection::vec((line(), ending), 0..24), line()).prop_map(
        |(bom, lines, tail)| {
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice(b"\xEF\xBB\xBF");
            }
            for (line, ending) in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(ending);
            }
            out.extend_from_slice(&tail);
            out
        },
    )
}

/// Random bytes, biased towards the bytes the decoder branches on.
fn noisy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = select(b"\r\n\r\n:: datventirydata\xEF\xBB\xBF\xFF\xC3\x00".to_vec());
    prop::collection::vec(prop_oneof![any::<u8>(), interesting], 0..256)
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => sse_stream(), 1 => noisy_bytes()]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..300, 0..10)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_decodes_like_the_whole(input in input(), cuts in cuts(), emit_unknown in any::<bool>()) {
        let make = || Decoder::new().emit_unknown_lines(emit_unknown);
        let whole = decode_whole(make(), &input);
        prop_assert_eq!(&decode_cut(make(), &input, &cuts), &whole);
        prop_assert_eq!(&decode_bytewise(make(), &input), &whole);
    }

    #[test]
    fn decoder_matches_the_reference_model(input in input(), emit_unknown in any::<bool>()) {
        let outcome = decode_whole(Decoder::new().emit_unknown_lines(emit_unknown), &input);
        let (mut frames, last_event_id, reconnection_time) = reference(&input, emit_unknown);
        if emit_unknown {
            // `finish_into` also reports an unterminated unknown last line.
            frames.extend(reference_tail(&input));
        }
        prop_assert!(!outcome.failed);
        prop_assert_eq!(outcome.frames, frames);
        prop_assert_eq!(outcome.last_event_id, last_event_id);
        prop_assert_eq!(outcome.reconnection_time, reconnection_time);
    }

    #[test]
    fn limits_are_split_invariant_and_bound_the_buffer(
        input in input(),
        cuts in cuts(),
        limit in 0usize..48,
    ) {
        // `decode_pieces` asserts `buffered() <= limit` after every piece.
        let make = || Decoder::with_max_event_size(limit).emit_unknown_lines(true);
        let whole = decode_whole(make(), &input);
        prop_assert_eq!(&decode_cut(make(), &input, &cuts), &whole);
        prop_assert_eq!(&decode_bytewise(make(), &input), &whole);
        // Below the limit, the limited decoder says exactly what an unlimited one says.
        if !whole.failed {
            prop_assert_eq!(&decode_whole(Decoder::new().emit_unknown_lines(true), &input), &whole);
        }
    }
}

/// The unterminated last line of `input` as the reference sees it, when it is an unknown line.
fn reference_tail(input: &[u8]) -> Option<prism_sse::Frame> {
    let decoded = String::from_utf8_lossy(input);
    let decoded = decoded.strip_prefix('\u{feff}').unwrap_or(&decoded);
    let tail = match decoded.rfind(['\r', '\n']) {
        Some(end) => &decoded[end + 1..],
        None => decoded,
    };
    let name = tail.split(':').next().unwrap_or_default();
    let known = tail.starts_with(':') || matches!(name, "data" | "event" | "id" | "retry");
    (!tail.is_empty() && !known).then(|| crate::support::unknown(tail))
}

//! Fuzz target `sse`: arbitrary bytes, split at an arbitrary point, must decode exactly like the
//! whole input, stay within the size limit, and every decoded event must re-encode losslessly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_sse::{Decoder, EventRef, Frame, write_event};

#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    failed: bool,
    dropped: Option<usize>,
    last_event_id: String,
    reconnection_time: Option<u64>,
}

fn decode<'a>(mut decoder: Decoder, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
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
    // What was dropped depends on where the offending line was cut, so compare it only on success.
    let dropped = decoder.finish_into(&mut frames);
    Outcome {
        frames,
        failed,
        dropped: (!failed).then_some(dropped),
        last_event_id,
        reconnection_time,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&[split_lo, split_hi, options], data)) = input.split_first_chunk::<3>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([split_lo, split_hi])) % (data.len() + 1);
    let emit_unknown = options & 1 == 1;
    let limit = if options & 2 == 2 {
        usize::from(options >> 2) * 4
    } else {
        Decoder::DEFAULT_MAX_EVENT_SIZE
    };
    let make = || Decoder::with_max_event_size(limit).emit_unknown_lines(emit_unknown);

    let whole = decode(make(), [data]);
    let (head, tail) = data.split_at(split);
    assert_eq!(decode(make(), [head, tail]), whole, "split at {split}");
    if data.len() <= 256 {
        assert_eq!(decode(make(), data.chunks(1)), whole, "byte by byte");
    }

    if whole.failed {
        return;
    }
    // Within the limit, the limit changes nothing.
    let unlimited = Decoder::with_max_event_size(usize::MAX).emit_unknown_lines(emit_unknown);
    assert_eq!(decode(unlimited, [data]), whole);

    // Every decoded event re-encodes into bytes that decode back to the same event.
    for frame in &whole.frames {
        let Frame::Event(event) = frame else { continue };
        let mut wire = Vec::new();
        if let Err(error) = write_event(&mut wire, &EventRef::from(event)) {
            panic!("decoded event cannot be encoded: {error}");
        }
        let again = decode(Decoder::with_max_event_size(usize::MAX), [wire.as_slice()]);
        assert_eq!(again.frames, vec![frame.clone()]);
    }
});

//! The size limit: where exactly it applies, that it fails instead of growing, and that the
//! decoder recovers after `finish`.

use prism_sse::{DecodeError, Decoder};

use crate::support::{comment, decode_pieces, decode_whole, ev};

fn too_large(result: Result<(), DecodeError>, limit: usize) {
    match result {
        Err(DecodeError::EventTooLarge { limit: reported }) => assert_eq!(reported, limit),
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
}

#[test]
fn the_limit_covers_data_plus_the_current_line() {
    // 16 bytes of line fit a limit of 16; 17 do not.
    let outcome = decode_whole(Decoder::with_max_event_size(16), b"data: 0123456789\n\n");
    assert_eq!(outcome.frames, vec![ev("0123456789")]);
    let outcome = decode_whole(Decoder::with_max_event_size(16), b"data: 0123456789a\n\n");
    assert!(outcome.failed);
    assert!(outcome.frames.is_empty());

    // Data lines accumulate: "aaaa\n" (5) + "data: bbbbbbbbbb" (16) = 21 > 20.
    let outcome =
        decode_whole(Decoder::with_max_event_size(20), b"data: aaaa\ndata: bbbbbbbbbb\n\n");
    assert!(outcome.failed);
    let outcome =
        decode_whole(Decoder::with_max_event_size(21), b"data: aaaa\ndata: bbbbbbbbbb\n\n");
    assert_eq!(outcome.frames, vec![ev("aaaa\nbbbbbbbbbb")]);
}

#[test]
fn the_limit_is_per_event() {
    let input = b"data: 0123456789\n\n".repeat(1000);
    let outcome = decode_whole(Decoder::with_max_event_size(16), &input);
    assert!(!outcome.failed);
    assert_eq!(outcome.frames.len(), 1000);
}

#[test]
fn any_long_line_counts() {
    for line in
        [&b": a long comment line"[..], b"event: a-long-event-type", b"x-unknown: something long"]
    {
        let mut input = line.to_vec();
        input.push(b'\n');
        assert!(decode_whole(Decoder::with_max_event_size(16), &input).failed, "{line:?}");
    }
}

#[test]
fn frames_before_the_offending_line_are_delivered() {
    let mut decoder = Decoder::with_max_event_size(32);
    let mut frames = Vec::new();
    let result = decoder
        .feed(b"data: ok\n\n: ping\ndata: this line is far too long to fit\n\n", &mut frames);
    too_large(result, 32);
    assert_eq!(frames, vec![ev("ok"), comment("ping")]);
}

#[test]
fn an_endless_line_fails_without_growing() {
    let limit = 1024;
    let mut decoder = Decoder::with_max_event_size(limit);
    let mut frames = Vec::new();
    let piece = [b'x'; 100];
    decoder.feed(b"data: ", &mut frames).unwrap();
    let mut fed = 6;
    let result = loop {
        let result = decoder.feed(&piece, &mut frames);
        if result.is_err() {
            break result;
        }
        fed += piece.len();
        assert!(decoder.buffered() <= limit);
        assert!(fed <= limit, "accepted {fed} bytes of one line");
    };
    too_large(result, limit);
    assert_eq!(fed, 1006, "fails with the piece that crosses the limit");
    assert_eq!(decoder.buffered(), 0, "the buffer is released");
    // It keeps refusing, without buffering anything.
    too_large(decoder.feed(b"\n\ndata: fine\n\n", &mut frames), limit);
    assert_eq!(decoder.buffered(), 0);
    assert!(frames.is_empty());

    // `finish` reports what was thrown away and makes the decoder usable again.
    assert_eq!(decoder.finish(), 1006);
    decoder.feed(b"data: fine\n\n", &mut frames).unwrap();
    assert_eq!(frames, vec![ev("fine")]);
}

#[test]
fn endless_data_lines_fail_without_growing() {
    let limit = 4096;
    let outcome = decode_pieces(
        Decoder::with_max_event_size(limit),
        std::iter::repeat_n(&b"data: 0123456789abcdef\n"[..], 10_000),
    );
    // `decode_pieces` asserts that `buffered()` never passes the limit.
    assert!(outcome.failed);
    assert!(outcome.frames.is_empty());
}

#[test]
fn the_default_limit_is_one_mebibyte() {
    assert_eq!(Decoder::DEFAULT_MAX_EVENT_SIZE, 1 << 20);
    assert_eq!(Decoder::new().max_event_size(), 1 << 20);
    assert_eq!(Decoder::default().max_event_size(), 1 << 20);

    let fits = format!("data: {}\n\n", "a".repeat((1 << 20) - 6));
    let outcome = decode_whole(Decoder::new(), fits.as_bytes());
    assert_eq!(outcome.frames.len(), 1);
    let too_big = format!("data: {}\n\n", "a".repeat((1 << 20) - 5));
    assert!(decode_whole(Decoder::new(), too_big.as_bytes()).failed);
}

#[test]
fn error_message() {
    let error = DecodeError::EventTooLarge { limit: 8 };
    assert_eq!(error.to_string(), "event exceeds the size limit of 8 bytes");
}

//! The `SseStream` adapter over futures streams of byte chunks.

use std::io;
use std::pin::pin;

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream::{self, StreamExt};
use prism_sse::{DecodeError, Decoder, Frame, SseStream, StreamError};

use crate::support::{comment, decode_whole, ev, ev_full, unknown};

type Item = Result<Frame, StreamError<io::Error>>;

fn chunks(pieces: &[&'static [u8]]) -> Vec<Result<Bytes, io::Error>> {
    pieces.iter().map(|piece| Ok(Bytes::from_static(piece))).collect()
}

fn collect(stream: SseStream<impl futures::Stream<Item = Result<Bytes, io::Error>>>) -> Vec<Item> {
    block_on(stream.collect())
}

fn frames(items: Vec<Item>) -> Result<Vec<Frame>, StreamError<io::Error>> {
    items.into_iter().collect()
}

#[test]
fn yields_the_frames_of_the_pieces() {
    let input: &[&[u8]] = &[b"event: a\r", b"\ndata: 1\r\n", b"\r\n: ping\n", b"data: 2\n", b"\n"];
    let items = collect(SseStream::new(stream::iter(chunks(input))));
    let expected = vec![ev_full(Some("a"), "1", None, None), comment("ping"), ev("2")];
    assert_eq!(frames(items).unwrap(), expected);
    assert_eq!(decode_whole(Decoder::new(), &input.concat()).frames, expected);
}

#[test]
fn works_with_a_stream_that_is_not_unpin() {
    // `then` with an async block makes the inner stream `!Unpin`.
    let inner =
        stream::iter(chunks(&[b"data: a\n", b"\ndata: b\n\n"])).then(|chunk| async move { chunk });
    let mut stream = pin!(SseStream::new(inner));
    let mut seen = Vec::new();
    while let Some(item) = block_on(stream.next()) {
        seen.push(item.unwrap());
    }
    assert_eq!(seen, vec![ev("a"), ev("b")]);
    assert_eq!(stream.truncated(), 0);
}

#[test]
fn accepts_any_byte_container() {
    let inner = stream::iter(vec![Ok::<_, io::Error>(b"data: ".to_vec()), Ok(b"x\n\n".to_vec())]);
    let items: Vec<_> = block_on(SseStream::new(inner).collect());
    assert_eq!(items.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![ev("x")]);
}

#[test]
fn a_transport_error_is_yielded_once_then_the_stream_ends() {
    let inner = stream::iter(vec![
        Ok(Bytes::from_static(b"data: a\n\ndata: partial")),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
        Ok(Bytes::from_static(b"\n\ndata: b\n\n")),
    ]);
    let items = collect(SseStream::new(inner));
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &ev("a"));
    match &items[1] {
        Err(StreamError::Transport(error)) => {
            assert_eq!(error.kind(), io::ErrorKind::ConnectionReset)
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[test]
fn a_decode_error_comes_after_the_frames_before_it() {
    let inner =
        stream::iter(chunks(&[b"data: a\n\ndata: far too long for the limit\n\ndata: b\n\n"]));
    let items = collect(SseStream::with_decoder(inner, Decoder::with_max_event_size(16)));
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), &ev("a"));
    assert!(matches!(items[1], Err(StreamError::Decode(DecodeError::EventTooLarge { limit: 16 }))));
    assert_eq!(
        items[1].as_ref().unwrap_err().to_string(),
        "event exceeds the size limit of 16 bytes"
    );
}

#[test]
fn transport_error_message_keeps_the_source() {
    let error: StreamError<io::Error> = StreamError::Transport(io::Error::other("boom"));
    assert_eq!(error.to_string(), "transport error");
    assert_eq!(std::error::Error::source(&error).unwrap().to_string(), "boom");
}

#[test]
fn an_unterminated_event_is_dropped_and_counted() {
    let mut stream =
        SseStream::new(stream::iter(chunks(&[b"id: 1\ndata: a\n\nid: 2\n", b"data: b"])));
    let mut seen = Vec::new();
    while let Some(item) = block_on(stream.next()) {
        seen.push(item.unwrap());
    }
    assert_eq!(seen, vec![ev_full(None, "a", Some("1"), None)]);
    assert_eq!(stream.truncated(), "data: b".len());
    assert_eq!(stream.decoder().last_event_id(), "1");
    assert!(block_on(stream.next()).is_none(), "stays ended");
}

#[test]
fn a_raw_json_error_tail_reaches_the_translator() {
    // Gemini can append a non-SSE JSON error body to a 200 stream and close the connection.
    let inner = stream::iter(chunks(&[
        b"data: {\"candidates\":[]}\r\n\r\n",
        b"{\n  \"error\": {\n    \"code\": 503,\n",
        b"    \"status\": \"UNAVAILABLE\"\n  }\n}",
    ]));
    let decoder = Decoder::new().emit_unknown_lines(true);
    let mut stream = SseStream::with_decoder(inner, decoder);
    let mut seen = Vec::new();
    while let Some(item) = block_on(stream.next()) {
        seen.push(item.unwrap());
    }
    assert_eq!(
        seen,
        vec![
            ev("{\"candidates\":[]}"),
            unknown("{"),
            unknown("  \"error\": {"),
            unknown("    \"code\": 503,"),
            unknown("    \"status\": \"UNAVAILABLE\""),
            unknown("  }"),
            unknown("}"),
        ]
    );
    assert_eq!(stream.truncated(), 0);
}

#[test]
fn an_empty_stream_yields_nothing() {
    assert!(collect(SseStream::new(stream::iter(chunks(&[])))).is_empty());
    assert!(collect(SseStream::new(stream::iter(chunks(&[b"", b""])))).is_empty());
}

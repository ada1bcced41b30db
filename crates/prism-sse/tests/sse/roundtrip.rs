//! The encoder: exact bytes for the common cases, refusals, and encode→decode round trips for
//! arbitrary events, comments and data.

use bytes::BytesMut;
use prism_sse::{
    DONE, Decoder, EncodeError, Event, EventRef, Frame, write_comment, write_data, write_done,
    write_event,
};
use proptest::prelude::*;

use crate::support::{comment, decode_cut, decode_whole, ev, ev_full};

fn encode_event(event: &EventRef<'_>) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::new();
    write_event(&mut buf, event)?;
    Ok(buf)
}

#[test]
fn exact_bytes() {
    let mut buf = Vec::new();
    write_data(&mut buf, b"{\"a\":1}");
    assert_eq!(buf, b"data: {\"a\":1}\n\n");

    buf.clear();
    write_data(&mut buf, b"a\r\nb\rc\nd\n");
    assert_eq!(buf, b"data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");

    buf.clear();
    write_data(&mut buf, b"");
    assert_eq!(buf, b"data: \n\n");

    buf.clear();
    write_comment(&mut buf, "");
    assert_eq!(buf, b":\n\n");

    buf.clear();
    write_comment(&mut buf, "keep-alive");
    assert_eq!(buf, b": keep-alive\n\n");

    buf.clear();
    write_comment(&mut buf, "a\r\n\nb");
    assert_eq!(buf, b": a\n:\n: b\n\n");

    let event = EventRef {
        event: Some("content_block_delta"),
        data: "x\ny",
        id: Some("7"),
        retry: Some(250),
    };
    assert_eq!(
        encode_event(&event).unwrap(),
        b"event: content_block_delta\nid: 7\nretry: 250\ndata: x\ndata: y\n\n"
    );
    assert_eq!(encode_event(&EventRef::new("hi")).unwrap(), b"data: hi\n\n");
    // An empty event type is the default type: no line for it.
    assert_eq!(
        encode_event(&EventRef { event: Some(""), ..EventRef::new("hi") }).unwrap(),
        b"data: hi\n\n"
    );
    // An empty id is written: it resets the client's last event ID.
    assert_eq!(
        encode_event(&EventRef { id: Some(""), ..EventRef::new("hi") }).unwrap(),
        b"id: \ndata: hi\n\n"
    );

    buf.clear();
    write_done(&mut buf);
    assert_eq!(buf, DONE);
    assert_eq!(decode_whole(Decoder::new(), DONE).frames, vec![ev("[DONE]")]);
}

#[test]
fn writes_into_bytes_mut() {
    let mut buf = BytesMut::new();
    write_data(&mut buf, b"x");
    write_event(&mut buf, &EventRef { event: Some("e"), ..EventRef::new("y") }).unwrap();
    write_comment(&mut buf, "c");
    assert_eq!(&buf[..], b"data: x\n\nevent: e\ndata: y\n\n: c\n\n");
}

#[test]
fn refuses_fields_that_would_break_the_framing() {
    let cases = [
        (EventRef { event: Some("a\nb"), ..EventRef::new("x") }, "LineBreakInEventType"),
        (EventRef { event: Some("a\r"), ..EventRef::new("x") }, "LineBreakInEventType"),
        (EventRef { id: Some("1\n2"), ..EventRef::new("x") }, "LineBreakInId"),
        (EventRef { id: Some("\r"), ..EventRef::new("x") }, "LineBreakInId"),
        (EventRef { id: Some("a\0"), ..EventRef::new("x") }, "NulInId"),
    ];
    for (event, expected) in cases {
        let mut buf = b"untouched".to_vec();
        let error = write_event(&mut buf, &event).unwrap_err();
        assert_eq!(format!("{error:?}"), expected);
        assert_eq!(buf, b"untouched", "nothing may be written on error");
    }
    assert_eq!(EncodeError::NulInId.to_string(), "event id contains a NUL character");
}

#[test]
fn event_ref_borrows_a_decoded_event() {
    let event = Event {
        event: Some("delta".into()),
        data: "a\nb".into(),
        id: Some("3".into()),
        retry: Some(5),
    };
    let wire = encode_event(&EventRef::from(&event)).unwrap();
    assert_eq!(decode_whole(Decoder::new(), &wire).frames, vec![Frame::Event(event)]);
}

/// Text without CR and LF (and without NUL when `nul` is false).
fn single_line(nul: bool) -> impl Strategy<Value = String> {
    any::<String>().prop_map(move |text| {
        text.chars().filter(|&c| c != '\r' && c != '\n' && (nul || c != '\0')).collect()
    })
}

/// Text with plenty of line breaks of every kind.
fn multi_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![any::<String>(), Just("\n".into()), Just("\r".into()), Just("\r\n".into())],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn normalise_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[derive(Debug, Clone)]
enum Item {
    Event { event: Option<String>, data: String, id: Option<String>, retry: Option<u64> },
    Data(String),
    Comment(String),
    Done,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => (
            proptest::option::of(single_line(true)),
            multi_line(),
            proptest::option::of(single_line(false)),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(event, data, id, retry)| Item::Event { event, data, id, retry }),
        1 => multi_line().prop_map(Item::Data),
        1 => multi_line().prop_map(Item::Comment),
        1 => Just(Item::Done),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_event_round_trips(
        event in proptest::option::of(single_line(true)),
        data in multi_line(),
        id in proptest::option::of(single_line(false)),
        retry in proptest::option::of(any::<u64>()),
    ) {
        let event_ref = EventRef { event: event.as_deref(), data: &data, id: id.as_deref(), retry };
        let wire = encode_event(&event_ref).unwrap();
        let outcome = decode_whole(Decoder::new(), &wire);
        let expected = ev_full(
            event.as_deref().filter(|event| !event.is_empty()),
            &normalise_line_breaks(&data),
            id.as_deref(),
            retry,
        );
        prop_assert_eq!(outcome.frames, vec![expected]);
        prop_assert_eq!(outcome.dropped, 0);
    }

    #[test]
    fn a_stream_of_items_round_trips(items in prop::collection::vec(item(), 0..12), cuts in prop::collection::vec(0usize..4096, 0..6)) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        let mut last_id: Option<String> = None;
        for item in &items {
            match item {
                Item::Event { event, data, id, retry } => {
                    let event_ref = EventRef { event: event.as_deref(), data, id: id.as_deref(), retry: *retry };
                    write_event(&mut wire, &event_ref).unwrap();
                    if id.is_some() {
                        last_id.clone_from(id);
                    }
                    expected.push(ev_full(
                        event.as_deref().filter(|event| !event.is_empty()),
                        &normalise_line_breaks(data),
                        last_id.as_deref(),
                        *retry,
                    ));
                }
                Item::Data(data) => {
                    write_data(&mut wire, data.as_bytes());
                    expected.push(ev_full(None, &normalise_line_breaks(data), last_id.as_deref(), None));
                }
                Item::Comment(text) => {
                    write_comment(&mut wire, text);
                    expected.extend(normalise_line_breaks(text).split('\n').map(comment));
                }
                Item::Done => {
                    write_done(&mut wire);
                    expected.push(ev_full(None, "[DONE]", last_id.as_deref(), None));
                }
            }
        }
        let outcome = decode_cut(Decoder::new(), &wire, &cuts);
        prop_assert_eq!(outcome.frames, expected);
        prop_assert_eq!(outcome.dropped, 0);
        prop_assert_eq!(outcome.last_event_id, last_id.unwrap_or_default());
    }

    #[test]
    fn write_data_takes_any_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut wire = Vec::new();
        write_data(&mut wire, &data);
        let text = normalise_line_breaks(&String::from_utf8_lossy(&data));
        prop_assert_eq!(decode_whole(Decoder::new(), &wire).frames, vec![ev(&text)]);
    }
}

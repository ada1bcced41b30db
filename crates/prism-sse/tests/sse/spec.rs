//! The spec's rules as a table. Every case is written with LF line endings and run three times
//! (LF, CR, CRLF), each time whole, byte by byte, and cut in two at every position.

use prism_sse::{Decoder, Frame};

use crate::support::{
    Outcome, assert_split_invariant, comment, decode_pieces, ev, ev_full, unknown,
};

struct Case {
    name: &'static str,
    input: &'static [u8],
    frames: Vec<Frame>,
    /// What `finish` reports.
    dropped: usize,
    last_event_id: &'static str,
    reconnection_time: Option<u64>,
    /// Whether the decoder reports unknown lines.
    emit_unknown: bool,
}

fn case(name: &'static str, input: &'static [u8], frames: Vec<Frame>) -> Case {
    Case {
        name,
        input,
        frames,
        dropped: 0,
        last_event_id: "",
        reconnection_time: None,
        emit_unknown: false,
    }
}

impl Case {
    fn dropped(mut self, dropped: usize) -> Self {
        self.dropped = dropped;
        self
    }
    fn last_event_id(mut self, id: &'static str) -> Self {
        self.last_event_id = id;
        self
    }
    fn reconnection_time(mut self, millis: u64) -> Self {
        self.reconnection_time = Some(millis);
        self
    }
    fn emit_unknown(mut self) -> Self {
        self.emit_unknown = true;
        self
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("one data line", b"data: hello\n\n", vec![ev("hello")]),
        case("no space after the colon", b"data:hello\n\n", vec![ev("hello")]),
        case("only one space is stripped", b"data:  hello\n\n", vec![ev(" hello")]),
        case("a tab is not stripped", b"data:\thello\n\n", vec![ev("\thello")]),
        case("colon inside the value", b"data: a:b: c\n\n", vec![ev("a:b: c")]),
        case(
            "data lines are joined with LF",
            b"data: a\ndata: b\ndata: c\n\n",
            vec![ev("a\nb\nc")],
        ),
        case("field without colon has an empty value", b"data\n\n", vec![ev("")]),
        case("data with an empty value", b"data:\n\n", vec![ev("")]),
        case("empty lines inside data", b"data: a\ndata\ndata:\ndata: b\n\n", vec![ev("a\n\n\nb")]),
        case("only the last LF is removed", b"data: a\ndata:\n\n", vec![ev("a\n")]),
        case(
            "NUL and unicode in data",
            b"data: a\0b \xF0\x9F\x8E\x89\n\n",
            vec![ev("a\0b \u{1F389}")],
        ),
        case("event type", b"event: add\ndata: x\n\n", vec![ev_full(Some("add"), "x", None, None)]),
        case("empty event type means message", b"event:\ndata: x\n\n", vec![ev("x")]),
        case(
            "the last event line wins",
            b"event: a\nevent: b\ndata: x\n\n",
            vec![ev_full(Some("b"), "x", None, None)],
        ),
        case(
            "event type is reset after dispatch",
            b"event: a\ndata: 1\n\ndata: 2\n\n",
            vec![ev_full(Some("a"), "1", None, None), ev("2")],
        ),
        case(
            "a blank line without data resets the event type",
            b"event: a\n\ndata: 2\n\n",
            vec![ev("2")],
        ),
        case("no data, no event", b"event: a\nid: 7\nretry: 9\n\n", vec![])
            .last_event_id("7")
            .reconnection_time(9),
        case(
            "id is kept across events",
            b"id: 1\ndata: x\n\ndata: y\n\n",
            vec![ev_full(None, "x", Some("1"), None), ev_full(None, "y", Some("1"), None)],
        )
        .last_event_id("1"),
        case(
            "empty id resets it",
            b"id: 1\ndata: x\n\nid\ndata: y\n\n",
            vec![ev_full(None, "x", Some("1"), None), ev_full(None, "y", Some(""), None)],
        ),
        case(
            "id containing NUL is ignored",
            b"id: 1\ndata: x\n\nid: a\0b\ndata: y\n\n",
            vec![ev_full(None, "x", Some("1"), None), ev_full(None, "y", Some("1"), None)],
        )
        .last_event_id("1"),
        case(
            "id only one space stripped",
            b"id:  5\ndata: x\n\n",
            vec![ev_full(None, "x", Some(" 5"), None)],
        )
        .last_event_id(" 5"),
        case(
            "id line after data in the same block counts",
            b"data: x\nid: 3\n\n",
            vec![ev_full(None, "x", Some("3"), None)],
        )
        .last_event_id("3"),
        case(
            "retry with digits",
            b"retry: 3000\ndata: x\n\n",
            vec![ev_full(None, "x", None, Some(3000))],
        )
        .reconnection_time(3000),
        case("retry with a letter is ignored", b"retry: 30a\ndata: x\n\n", vec![ev("x")]),
        case("negative retry is ignored", b"retry: -1\ndata: x\n\n", vec![ev("x")]),
        case("fractional retry is ignored", b"retry: 1.5\ndata: x\n\n", vec![ev("x")]),
        case("empty retry is ignored", b"retry:\ndata: x\n\n", vec![ev("x")]),
        case("retry with two spaces is ignored", b"retry:  10\ndata: x\n\n", vec![ev("x")]),
        case(
            "retry belongs to its block only",
            b"retry: 5\ndata: a\n\ndata: b\n\n",
            vec![ev_full(None, "a", None, Some(5)), ev("b")],
        )
        .reconnection_time(5),
        case(
            "huge retry saturates",
            b"retry: 99999999999999999999999\ndata: x\n\n",
            vec![ev_full(None, "x", None, Some(u64::MAX))],
        )
        .reconnection_time(u64::MAX),
        case("comment", b": hello\n", vec![comment("hello")]),
        case("comment without space", b":hello\n", vec![comment("hello")]),
        case("comment keeps a second space", b":  hello\n", vec![comment(" hello")]),
        case("empty comment", b":\n", vec![comment("")]),
        case(
            "comment inside an event neither dispatches nor breaks it",
            b"data: a\n: ping\ndata: b\n\n",
            vec![comment("ping"), ev("a\nb")],
        ),
        case("unknown field is ignored", b"foo: bar\ndata: x\n\n", vec![ev("x")]),
        case(
            "unknown field is reported when asked",
            b"foo: bar\ndata: x\n\n",
            vec![unknown("foo: bar"), ev("x")],
        )
        .emit_unknown(),
        case(
            "raw JSON lines are unknown lines",
            b"data: x\n\n{\"error\": {\"code\": 503}}\n",
            vec![ev("x"), unknown("{\"error\": {\"code\": 503}}")],
        )
        .emit_unknown(),
        case("field names are case-sensitive", b"Data: x\nDATA: y\n\n", vec![]),
        case("a space before the colon makes another name", b"data : x\n\n", vec![]),
        case("a longer name is another name", b"datax: y\ndata2\n\n", vec![]),
        case("leading BOM is stripped", b"\xEF\xBB\xBFdata: x\n\n", vec![ev("x")]),
        case(
            "only one BOM is stripped",
            b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
            vec![ev("y")],
        ),
        case(
            "a BOM later in the stream is content",
            b"data: \xEF\xBB\xBFx\n\n",
            vec![ev("\u{feff}x")],
        ),
        case("a broken BOM is content", b"\xEF\xBBdata: x\n\ndata: y\n\n", vec![ev("y")]),
        case(
            "a broken BOM is reported as part of an unknown line",
            b"\xEF\xBBdata: x\n\n",
            vec![unknown("\u{fffd}data: x")],
        )
        .emit_unknown(),
        case(
            "invalid UTF-8 is replaced",
            b"data: a\xFFb\xE2\x82\n\n",
            vec![ev("a\u{fffd}b\u{fffd}")],
        ),
        case(
            "invalid UTF-8 in event type and id",
            b"event: \xC3\nid: \xFE\ndata: x\n\n",
            vec![ev_full(Some("\u{fffd}"), "x", Some("\u{fffd}"), None)],
        )
        .last_event_id("\u{fffd}"),
        case("blank lines between events", b"\n\n\ndata: x\n\n\n\n", vec![ev("x")]),
        case("unterminated event is dropped", b"data: x\n", vec![]).dropped(2),
        case("unterminated line is dropped", b"data: x", vec![]).dropped(7),
        case(
            "only the last, unterminated event is dropped",
            b"data: a\n\ndata: b\ndata: c",
            vec![ev("a")],
        )
        .dropped(9),
        case("unterminated id does not count", b"data: a\n\nid: 4\n", vec![ev("a")]),
        case("empty input", b"", vec![]),
        case("only a BOM", b"\xEF\xBB\xBF", vec![]),
        case("only part of a BOM", b"\xEF\xBB", vec![]).dropped(2),
    ]
}

/// Decodes `input` whole, byte by byte and cut everywhere (asserting they agree).
fn check(emit_unknown: bool, input: &[u8]) -> Outcome {
    assert_split_invariant(|| Decoder::new().emit_unknown_lines(emit_unknown), input)
}

#[test]
fn spec_table_with_every_line_ending() {
    let mut checked = 0;
    for case in cases() {
        for ending in [&b"\n"[..], b"\r", b"\r\n"] {
            let input = case.input.split(|&byte| byte == b'\n').collect::<Vec<_>>().join(ending);
            let outcome = check(case.emit_unknown, &input);
            let context = format!("case {:?} with ending {ending:?}", case.name);
            assert_eq!(outcome.frames, case.frames, "{context}");
            assert!(!outcome.failed, "{context}");
            assert_eq!(outcome.dropped, case.dropped, "{context}");
            assert_eq!(outcome.last_event_id, case.last_event_id, "{context}");
            assert_eq!(outcome.reconnection_time, case.reconnection_time, "{context}");
            checked += 1;
        }
    }
    assert_eq!(checked, cases().len() * 3);
}

#[test]
fn mixed_line_endings() {
    let outcome = check(false, b"data: a\rdata: b\r\ndata: c\n\r\ndata: d\r\r");
    assert_eq!(outcome.frames, vec![ev("a\nb\nc"), ev("d")]);
}

#[test]
fn cr_cr_is_two_line_endings_and_lf_cr_too() {
    let outcome = check(false, b"data: a\r\rdata: b\n\rdata: c\r\n\n");
    assert_eq!(outcome.frames, vec![ev("a"), ev("b"), ev("c")]);
}

#[test]
fn crlf_split_across_reads_is_one_line_ending() {
    // The classic bug: the LF after a CR that ended the previous read looks like a blank line
    // and dispatches the event early, cutting "a\nb" into two events.
    let outcome =
        decode_pieces(Decoder::new(), [&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(outcome.frames, vec![ev("a\nb")]);
    assert_eq!(outcome.dropped, 0);
}

#[test]
fn events_are_dispatched_as_soon_as_their_blank_line_ends() {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    decoder.feed(b"data: a\n", &mut frames).unwrap();
    assert!(frames.is_empty());
    decoder.feed(b"\n", &mut frames).unwrap();
    assert_eq!(frames, vec![ev("a")]);
    // A CR ends the blank line at once, even though an LF may follow in the next read.
    decoder.feed(b"data: b\r\r", &mut frames).unwrap();
    assert_eq!(frames, vec![ev("a"), ev("b")]);
    decoder.feed(b"\n: c\r", &mut frames).unwrap();
    assert_eq!(frames, vec![ev("a"), ev("b"), comment("c")]);
    assert_eq!(decoder.finish(), 0);
}

#[test]
fn multibyte_characters_split_across_reads_survive() {
    let input = "event: ünïcödé\ndata: 日本語 🎉\n\n".as_bytes();
    let outcome = check(false, input);
    assert_eq!(outcome.frames, vec![ev_full(Some("ünïcödé"), "日本語 🎉", None, None)]);
}

#[test]
fn bom_split_across_reads_is_stripped_once() {
    let outcome =
        decode_pieces(Decoder::new(), [&b"\xEF"[..], b"", b"\xBB", b"\xBF", b"data: x\n\n"]);
    assert_eq!(outcome.frames, vec![ev("x")]);
}

#[test]
fn finish_resets_for_a_new_stream_but_keeps_id_and_retry() {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    decoder
        .feed(b"id: 9\nretry: 100\nevent: a\ndata: x\n\nid: 10\nevent: b\ndata: y", &mut frames)
        .unwrap();
    assert_eq!(frames, vec![ev_full(Some("a"), "x", Some("9"), Some(100))]);
    assert_eq!(decoder.finish(), "data: y".len());
    assert_eq!(decoder.last_event_id(), "9");
    assert_eq!(decoder.reconnection_time(), Some(100));

    // The new stream starts clean: a BOM is stripped again and the unfinished event is gone.
    frames.clear();
    decoder.feed(b"\xEF\xBB\xBFdata: z\n\n", &mut frames).unwrap();
    assert_eq!(frames, vec![ev_full(None, "z", Some("9"), None)]);
    assert_eq!(decoder.finish(), 0);
}

#[test]
fn finish_into_reports_an_unterminated_unknown_tail() {
    let tail = b"{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}";
    let mut input = b"data: {\"candidates\":[]}\r\n\r\n".to_vec();
    input.extend_from_slice(tail);

    let outcome = check(true, &input);
    assert_eq!(
        outcome.frames,
        vec![ev("{\"candidates\":[]}"), unknown(std::str::from_utf8(tail).unwrap())]
    );
    assert_eq!(outcome.dropped, 0);

    // Without unknown lines the tail is an ordinary dropped line, as the spec says.
    let outcome = check(false, &input);
    assert_eq!(outcome.frames, vec![ev("{\"candidates\":[]}")]);
    assert_eq!(outcome.dropped, tail.len());

    // A known field is never reported as unknown, even unterminated.
    let outcome = check(true, b"data: x");
    assert_eq!(outcome.frames, vec![]);
    assert_eq!(outcome.dropped, 7);
}

#[test]
fn repeated_event_types_are_equal_values() {
    let outcome = check(
        false,
        b"event: delta\ndata: 1\n\nevent: delta\ndata: 2\n\nevent: other\ndata: 3\n\n",
    );
    assert_eq!(
        outcome.frames,
        vec![
            ev_full(Some("delta"), "1", None, None),
            ev_full(Some("delta"), "2", None, None),
            ev_full(Some("other"), "3", None, None),
        ]
    );
}

#[test]
fn event_type_defaults_to_message() {
    let Frame::Event(event) = ev("x") else { unreachable!() };
    assert_eq!(event.event_type(), "message");
    let Frame::Event(event) = ev_full(Some(""), "x", None, None) else { unreachable!() };
    assert_eq!(event.event_type(), "message");
    let Frame::Event(event) = ev_full(Some("ping"), "x", None, None) else { unreachable!() };
    assert_eq!(event.event_type(), "ping");
}

//! Property tests of every stream translator and relay, the stable twin of the `fuzz/` targets:
//! arbitrary bytes, provider-shaped events and mutated golden fixtures, fed whole, cut at
//! arbitrary points and byte by byte, give the same chunks and the same end; nothing panics; and
//! a line or frame past the limits is an error rather than a growing buffer.
//!
//! (`golden.rs` replays the fixtures unmutated at every split point; this file covers what they
//! do not contain.)

use std::path::{Path, PathBuf};

use base64::Engine as _;
use prism_providers::native::{self, NativeApi};
use prism_providers::{ByteTranslator, Deployment, ProviderKind, StreamContext, bedrock};
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Every byte-level pipeline the server can put behind an upstream response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
    AnthropicRelay,
    Gemini,
    BedrockConverse,
    BedrockInvoke,
    BedrockInvokeRelay,
}

const SSE_LANES: [Lane; 5] =
    [Lane::OpenAiChat, Lane::OpenAiResponses, Lane::Anthropic, Lane::AnthropicRelay, Lane::Gemini];

const BEDROCK_LANES: [Lane; 3] =
    [Lane::BedrockConverse, Lane::BedrockInvoke, Lane::BedrockInvokeRelay];

fn translator(lane: Lane, flags: u8) -> Box<dyn ByteTranslator> {
    let ctx = StreamContext {
        include_usage: flags & 1 == 1,
        usage_on_finish: flags & 2 == 2,
        ..StreamContext::new("chatcmpl-prop", 1_700_000_000, "public-model")
    };
    let kind = match lane {
        Lane::OpenAiChat | Lane::OpenAiResponses => ProviderKind::OpenAi,
        Lane::Anthropic | Lane::AnthropicRelay => ProviderKind::Anthropic,
        Lane::Gemini => ProviderKind::Gemini,
        Lane::BedrockConverse | Lane::BedrockInvoke | Lane::BedrockInvokeRelay => {
            ProviderKind::Bedrock
        }
    };
    let mut deployment = Deployment::new(kind, "http://127.0.0.1:1", "upstream-model");
    deployment.bedrock_invoke = matches!(lane, Lane::BedrockInvoke | Lane::BedrockInvokeRelay);
    match lane {
        Lane::OpenAiResponses => native::relay(NativeApi::OpenAiResponses, &deployment, ctx),
        Lane::AnthropicRelay | Lane::BedrockInvokeRelay => {
            native::relay(NativeApi::AnthropicMessages, &deployment, ctx)
        }
        _ => prism_providers::stream_translator(&deployment, ctx),
    }
}

/// What a run is judged on: the chunks as the client gets them (`raw` when present) and as
/// parsed, the first feed error, whether the terminal event was seen, and `finish`'s result.
#[derive(Debug, PartialEq)]
struct Outcome {
    chunks: String,
    feed_error: Option<String>,
    done: bool,
    finish: Option<String>,
}

fn run<'a>(lane: Lane, flags: u8, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut t = translator(lane, flags);
    let mut out = Vec::new();
    let mut feed_error = None;
    for piece in pieces {
        if let Err(e) = t.feed(piece, &mut out) {
            feed_error = Some(format!("{e:?}"));
            break;
        }
    }
    let done = t.is_done();
    let finish = feed_error.is_none().then(|| format!("{:?}", t.finish(&mut out)));
    let mut chunks = Vec::new();
    for chunk in &out {
        chunk.write_json(&mut chunks);
        chunks.push(b'\n');
        prism_types::json::extend(&mut chunks, &chunk.chunk);
        chunks.push(b'\n');
    }
    Outcome { chunks: String::from_utf8_lossy(&chunks).into_owned(), feed_error, done, finish }
}

/// Whole, cut at `cuts`, and (when short) byte by byte: all the same.
fn check_splits(lane: Lane, flags: u8, body: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
    let whole = run(lane, flags, [body]);
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for &p in &points {
        pieces.push(&body[start..p]);
        start = p;
    }
    pieces.push(&body[start..]);
    prop_assert_eq!(&run(lane, flags, pieces), &whole, "{:?} cut at {:?}", lane, points);
    if body.len() <= 384 {
        prop_assert_eq!(&run(lane, flags, body.chunks(1)), &whole, "{:?} byte by byte", lane);
    }
    Ok(())
}

/// Event templates per protocol: SSE event name (if any) and data, where `$S` becomes a JSON
/// string and `$N` a number.
fn templates(lane: Lane) -> &'static [(Option<&'static str>, &'static str)] {
    match lane {
        Lane::OpenAiChat => &[
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":$N,"delta":{"content":$S},"finish_reason":null}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":$S,"refusal":$S}}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":$N,"id":$S,"type":"function","function":{"name":$S,"arguments":""}}]}}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":$N,"function":{"arguments":$S}}]}}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":$N,"delta":{},"finish_reason":$S}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            ),
            (
                None,
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":$N,"completion_tokens":$N,"total_tokens":$N}}"#,
            ),
            (None, r#"{"error":{"message":$S,"type":"server_error","code":$N}}"#),
            (None, "[DONE]"),
        ],
        Lane::OpenAiResponses => &[
            (
                Some("response.created"),
                r#"{"type":"response.created","sequence_number":$N,"response":{"id":"resp_1","model":"m","output":[]}}"#,
            ),
            (
                Some("response.output_text.delta"),
                r#"{"type":"response.output_text.delta","sequence_number":$N,"item_id":"msg_1","delta":$S}"#,
            ),
            (
                Some("response.reasoning_summary_text.delta"),
                r#"{"type":"response.reasoning_summary_text.delta","delta":$S}"#,
            ),
            (
                Some("response.output_item.added"),
                r#"{"type":"response.output_item.added","item":{"type":"function_call","id":$S,"call_id":$S,"name":$S}}"#,
            ),
            (
                Some("response.function_call_arguments.delta"),
                r#"{"type":"response.function_call_arguments.delta","delta":$S}"#,
            ),
            (
                Some("response.completed"),
                r#"{"type":"response.completed","response":{"model":"m","usage":{"input_tokens":$N,"output_tokens":$N,"input_tokens_details":{"cached_tokens":$N},"output_tokens_details":{"reasoning_tokens":$N}}}}"#,
            ),
            (
                Some("response.incomplete"),
                r#"{"type":"response.incomplete","response":{"incomplete_details":{"reason":$S}}}"#,
            ),
            (Some("error"), r#"{"type":"error","code":$S,"message":"x"}"#),
            (None, r#"{"type":$S,"sequence_number":$N}"#),
        ],
        Lane::Anthropic | Lane::AnthropicRelay | Lane::BedrockInvoke | Lane::BedrockInvokeRelay => {
            &[
                (
                    Some("message_start"),
                    r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":$N,"output_tokens":1}}}"#,
                ),
                (
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":$N,"content_block":{"type":"text","text":""}}"#,
                ),
                (
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":$N,"content_block":{"type":"tool_use","id":$S,"name":"f","input":{}}}"#,
                ),
                (
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":$N,"content_block":{"type":"thinking","thinking":""}}"#,
                ),
                (
                    Some("content_block_start"),
                    r#"{"type":"content_block_start","index":$N,"content_block":{"type":"redacted_thinking","data":$S}}"#,
                ),
                (
                    Some("content_block_delta"),
                    r#"{"type":"content_block_delta","index":$N,"delta":{"type":"text_delta","text":$S}}"#,
                ),
                (
                    Some("content_block_delta"),
                    r#"{"type":"content_block_delta","index":$N,"delta":{"type":"input_json_delta","partial_json":$S}}"#,
                ),
                (
                    Some("content_block_delta"),
                    r#"{"type":"content_block_delta","index":$N,"delta":{"type":"thinking_delta","thinking":$S}}"#,
                ),
                (
                    Some("content_block_delta"),
                    r#"{"type":"content_block_delta","index":$N,"delta":{"type":"signature_delta","signature":$S}}"#,
                ),
                (Some("content_block_stop"), r#"{"type":"content_block_stop","index":$N}"#),
                (
                    Some("message_delta"),
                    r#"{"type":"message_delta","delta":{"stop_reason":$S},"usage":{"output_tokens":$N}}"#,
                ),
                (Some("message_stop"), r#"{"type":"message_stop"}"#),
                (Some("ping"), r#"{"type":"ping"}"#),
                (Some("error"), r#"{"type":"error","error":{"type":$S,"message":"x"}}"#),
            ]
        }
        Lane::Gemini => &[
            (
                None,
                r#"{"candidates":[{"content":{"parts":[{"text":$S}],"role":"model"},"index":$N}]}"#,
            ),
            (
                None,
                r#"{"candidates":[{"content":{"parts":[{"text":$S,"thought":true}],"role":"model"},"index":0}]}"#,
            ),
            (
                None,
                r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":$S,"args":{"a":$N}}}],"role":"model"},"index":0}]}"#,
            ),
            (
                None,
                r#"{"candidates":[{"content":{"parts":[],"role":"model"},"finishReason":$S,"index":$N}]}"#,
            ),
            (
                None,
                r#"{"candidates":[{"content":{"parts":[{"text":"."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":$N,"candidatesTokenCount":$N,"totalTokenCount":$N}}"#,
            ),
            (None, r#"{"promptFeedback":{"blockReason":$S}}"#),
            (None, r#"{"error":{"code":$N,"message":$S,"status":"UNAVAILABLE"}}"#),
            (None, r#"[{"error":{"code":$N,"message":$S,"status":"RESOURCE_EXHAUSTED"}}]"#),
        ],
        Lane::BedrockConverse => &[
            (Some("messageStart"), r#"{"role":"assistant"}"#),
            (
                Some("contentBlockStart"),
                r#"{"contentBlockIndex":$N,"start":{"toolUse":{"toolUseId":$S,"name":$S}}}"#,
            ),
            (Some("contentBlockDelta"), r#"{"contentBlockIndex":$N,"delta":{"text":$S}}"#),
            (
                Some("contentBlockDelta"),
                r#"{"contentBlockIndex":$N,"delta":{"toolUse":{"input":$S}}}"#,
            ),
            (
                Some("contentBlockDelta"),
                r#"{"contentBlockIndex":$N,"delta":{"reasoningContent":{"text":$S}}}"#,
            ),
            (
                Some("contentBlockDelta"),
                r#"{"contentBlockIndex":$N,"delta":{"reasoningContent":{"signature":$S}}}"#,
            ),
            (Some("contentBlockStop"), r#"{"contentBlockIndex":$N}"#),
            (Some("messageStop"), r#"{"stopReason":$S}"#),
            (
                Some("metadata"),
                r#"{"usage":{"inputTokens":$N,"outputTokens":$N,"totalTokens":$N},"metrics":{"latencyMs":1}}"#,
            ),
        ],
    }
}

const NUMBERS: [&str; 8] =
    ["0", "1", "2", "-1", "4294967296", "1e400", "18446744073709551616", "0.5"];

/// One event: a template index, a number index, a string, and a line ending.
fn event() -> impl Strategy<Value = (Index, usize, String, &'static str)> {
    (
        any::<Index>(),
        0..NUMBERS.len(),
        prop_oneof!["[a-z ]{0,6}", "\\PC{0,6}", Just("\n\r\u{2028}\"\\".to_owned())],
        select(vec!["\n", "\r\n", "\r"]),
    )
}

fn fill(template: &str, number: usize, text: &str) -> String {
    let string = serde_json::Value::String(text.to_owned()).to_string();
    template.replace("$S", &string).replace("$N", NUMBERS[number])
}

/// A body of `lane`'s wire format built from `events`: SSE, or event-stream frames for Bedrock
/// (InvokeModel's `chunk` frames carry the Anthropic event base64-encoded).
fn body(lane: Lane, events: &[(Index, usize, String, &'static str)]) -> Vec<u8> {
    let templates = templates(lane);
    let mut body = Vec::new();
    for (index, number, text, eol) in events {
        let (name, template) = templates[index.index(templates.len())];
        let data = fill(template, *number, text);
        if BEDROCK_LANES.contains(&lane) {
            let frame = match lane {
                Lane::BedrockConverse => {
                    bedrock::encode_event(name.unwrap_or("x"), data.as_bytes())
                }
                _ => {
                    let bytes = base64::engine::general_purpose::STANDARD.encode(&data);
                    bedrock::encode_event("chunk", format!(r#"{{"bytes":"{bytes}"}}"#).as_bytes())
                }
            };
            body.extend_from_slice(&frame.unwrap_or_default());
            continue;
        }
        if let Some(name) = name {
            body.extend_from_slice(format!("event: {name}{eol}").as_bytes());
        }
        body.extend_from_slice(format!("data: {data}{eol}{eol}").as_bytes());
    }
    body
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Every golden upstream stream with the lanes that read it.
fn fixtures() -> Vec<(Lane, Vec<u8>)> {
    let mut all = Vec::new();
    let dirs: [(&str, &[Lane]); 5] = [
        ("openai", &[Lane::OpenAiChat]),
        ("anthropic", &[Lane::Anthropic, Lane::AnthropicRelay]),
        ("gemini", &[Lane::Gemini]),
        ("vertex", &[Lane::Gemini]),
        ("bedrock", &[Lane::BedrockConverse, Lane::BedrockInvoke, Lane::BedrockInvokeRelay]),
    ];
    for (dir, lanes) in dirs {
        let Ok(cases) = std::fs::read_dir(fixtures_root().join(dir)) else { continue };
        let mut cases: Vec<PathBuf> = cases.filter_map(|c| c.ok().map(|c| c.path())).collect();
        cases.sort();
        for case in cases {
            for file in ["upstream.sse", "upstream.eventstream"] {
                if let Ok(bytes) = std::fs::read(case.join(file)) {
                    all.extend(lanes.iter().map(|&lane| (lane, bytes.clone())));
                }
            }
        }
    }
    all
}

/// An edit of a fixture: at a position, delete, insert a byte, or overwrite a byte.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Insert(Index, u8),
    Overwrite(Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![any::<u8>(), select(b"\n\r:{}\"\\,0 ".to_vec())];
    prop_oneof![
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Edit::Overwrite(i, b)),
    ]
}

fn apply(body: &mut Vec<u8>, edits: &[Edit]) {
    for edit in edits {
        match *edit {
            Edit::Delete(i) if !body.is_empty() => {
                body.remove(i.index(body.len()));
            }
            Edit::Insert(i, b) => body.insert(i.index(body.len() + 1), b),
            Edit::Overwrite(i, b) if !body.is_empty() => {
                let at = i.index(body.len());
                body[at] = b;
            }
            _ => {}
        }
    }
}

fn lane() -> impl Strategy<Value = Lane> {
    select([SSE_LANES.as_slice(), BEDROCK_LANES.as_slice()].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Arbitrary bytes: no panic, and every cut gives the whole run's outcome.
    #[test]
    fn arbitrary_bytes_are_split_invariant(
        lane in lane(),
        flags in 0u8..4,
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        check_splits(lane, flags, &bytes, &cuts)?;
    }

    /// Provider-shaped events (odd numbers, control characters, wrong orders): the same.
    #[test]
    fn provider_shaped_events_are_split_invariant(
        lane in lane(),
        flags in 0u8..4,
        events in prop::collection::vec(event(), 0..10),
        cuts in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        check_splits(lane, flags, &body(lane, &events), &cuts)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Golden fixtures with a few bytes deleted, inserted or overwritten: the same.
    #[test]
    fn mutated_fixtures_are_split_invariant(
        fixture in any::<Index>(),
        edits in prop::collection::vec(edit(), 1..5),
        flags in 0u8..4,
        cuts in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        let all = fixtures();
        prop_assume!(!all.is_empty());
        let (lane, mut body) = all[fixture.index(all.len())].clone();
        apply(&mut body, &edits);
        check_splits(lane, flags, &body, &cuts)?;
    }
}

/// A line that never ends is refused once past the SSE decoder's limit (1 MiB), by every SSE
/// lane, instead of being buffered without bound.
#[test]
fn an_endless_sse_line_is_an_error_not_a_growing_buffer() {
    let piece = vec![b'a'; 64 * 1024];
    for lane in SSE_LANES {
        let mut t = translator(lane, 0);
        let mut out = Vec::new();
        let mut fed = t.feed(b"data: ", &mut out);
        let mut total = 0;
        while fed.is_ok() && total < 4 * 1024 * 1024 {
            fed = t.feed(&piece, &mut out);
            total += piece.len();
        }
        assert!(fed.is_err(), "{lane:?} buffered {total} bytes of one line");
        assert!(out.is_empty(), "{lane:?}");
    }
}

/// A frame whose prelude announces more than the decoder's limit (16 MiB) is refused at once,
/// before its bytes arrive.
#[test]
fn an_oversized_bedrock_frame_is_refused_from_its_prelude() {
    let mut prelude = Vec::new();
    prelude.extend_from_slice(&u32::MAX.to_be_bytes());
    prelude.extend_from_slice(&0u32.to_be_bytes());
    let crc = crc32(&prelude);
    prelude.extend_from_slice(&crc.to_be_bytes());
    for lane in BEDROCK_LANES {
        let mut t = translator(lane, 0);
        assert!(t.feed(&prelude, &mut Vec::new()).is_err(), "{lane:?}");
    }
}

/// CRC-32 (IEEE), bitwise: enough for one prelude.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

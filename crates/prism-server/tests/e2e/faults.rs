//! A faulty upstream, one fault per test, over every provider wire: cuts (inside a chunk, a
//! UTF-8 sequence, an event-stream frame), stalls, garbage, invalid JSON, a 10 MB event, a bad
//! CRC and an oversized frame, a malformed chunk size, a 1 byte/s drip, a body that never ends
//! after its terminal event, an HTML page, a redirect and a TCP reset.
//!
//! Every case asserts the documented result: before the first byte an error response in the
//! OpenAI shape (or the next deployment's answer, for `fallback`); after it the content so far,
//! one error event and no `[DONE]`. It also asserts that nothing hangs (each request is bounded
//! by the short timeouts below), that no upstream connection stays open, and that the gateway
//! serves a normal request right after. Each case has its own gateway and raw-HTTP simulator, so
//! the cases of a test run concurrently.

use std::time::{Duration, Instant};

use prism_server::Config;
use prism_simulator::{
    Behavior, Fault, Provider, RenderOptions, Reply, SimConfig, Simulator, Wire, render_stream,
};
use serde_json::{Value, json};

use crate::support::{Harness, Opts, Streamed, config_toml, error_body};

/// The reply every fault breaks: multi-byte characters in most words, paced so each event is
/// its own read at the gateway.
const TEXT: &str = "Hello wörld, ça va? Grüße aus München, à bientôt, señor.";

/// (model, the wire its deployment speaks).
const WIRES: [(&str, Wire); 6] = [
    ("gpt", Wire::OpenAi),
    ("gpt-responses", Wire::OpenAiResponses),
    ("claude", Wire::Anthropic),
    ("gemini", Wire::Gemini),
    ("bedrock", Wire::BedrockConverse),
    ("bedrock-invoke", Wire::BedrockInvoke),
];

/// The Bedrock wires, for the event-stream faults.
const EVENTSTREAM: [(&str, Wire); 2] =
    [("bedrock", Wire::BedrockConverse), ("bedrock-invoke", Wire::BedrockInvoke)];

/// Bounds every request beyond the gateway's own total timeout: no case may take longer.
const CASE_SLACK: Duration = Duration::from_secs(4);

fn opts() -> Opts {
    Opts { first_token_ms: 500, idle_ms: 500, total_ms: 2000, ..Opts::default() }
}

fn reply() -> Reply {
    Reply::text(TEXT).delay(Duration::from_millis(15))
}

/// Events of `wire`'s stream up to and including the first one carrying text: a fault after
/// them comes after the first byte reached the client.
fn through_first_content(wire: Wire) -> usize {
    // InvokeModel wraps the Anthropic events one for one, base64-encoded.
    let plain = if wire == Wire::BedrockInvoke { Wire::Anthropic } else { wire };
    let events = render_stream(plain, &reply(), &RenderOptions::new("m"));
    events.iter().position(|e| e.windows(5).any(|w| w == b"Hello")).unwrap() + 1
}

/// What a case must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An error response before the first byte, in the OpenAI shape, after `attempts` upstream
    /// attempts.
    Status { status: u16, attempts: u32 },
    /// The same with this error `code`.
    StatusCode { status: u16, attempts: u32, code: &'static str },
    /// The first deployment failed before the first byte and `fallback`'s second one (OpenAI)
    /// answered in full, after `attempts` attempts.
    FellBack { attempts: u32 },
    /// A `200` stream: the content so far (at least the first word), then exactly one error
    /// event of `kind` as the last event, and no `[DONE]`.
    ErrorEvent { kind: &'static str },
    /// A complete answer whose text is at least `min_len` bytes (`[DONE]` when streaming).
    Complete { min_len: usize },
}

/// One case: `behavior` queued `pushes` times (for `fallback`, on the Anthropic queue, with a
/// normal OpenAI answer behind it), one request to `model`, then the checks every case shares.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    model: &'static str,
    stream: bool,
    behavior: Behavior,
    pushes: usize,
    expect: Expect,
    opts: Opts,
}

impl Case {
    fn new(name: &str, model: &'static str, stream: bool, behavior: Behavior) -> Case {
        Case {
            name: format!("{name} {model} stream={stream}"),
            model,
            stream,
            behavior,
            pushes: 2,
            expect: Expect::Status { status: 502, attempts: 2 },
            opts: opts(),
        }
    }

    fn expect(mut self, expect: Expect) -> Case {
        // An error after the first byte is never retried: one attempt, one upstream request.
        // Before it, each attempt takes one queued behaviour.
        self.pushes = match expect {
            Expect::Status { attempts, .. } | Expect::StatusCode { attempts, .. } => {
                attempts as usize
            }
            _ => 1,
        };
        self.expect = expect;
        self
    }

    fn opts(mut self, opts: Opts) -> Case {
        self.opts = opts;
        self
    }

    /// The same fault on `fallback` (Anthropic, then OpenAI), expecting the OpenAI answer.
    fn fallback(mut self, attempts: u32) -> Case {
        self.name = format!("{} via fallback", self.name);
        self.model = "fallback";
        self.expect = Expect::FellBack { attempts };
        self
    }
}

async fn harness(opts: &Opts) -> Harness {
    let sim = Simulator::start_with(SimConfig::default().with_raw_http(true)).await.unwrap();
    let config = Config::from_toml(&config_toml(&sim.base_url(), opts), &|_| None).unwrap();
    Harness::with_config(sim, config).await
}

async fn run(case: Case) {
    let name = &case.name;
    let h = harness(&case.opts).await;
    for _ in 0..case.pushes {
        if case.model == "fallback" {
            h.sim.push_behavior_for(Provider::Anthropic, case.behavior.clone());
        } else {
            h.sim.push_behavior(case.behavior.clone());
        }
    }
    if case.model == "fallback" {
        h.sim.push_behavior_for(Provider::OpenAi, Reply::text(TEXT).into());
    }
    let started = Instant::now();
    let limit = Duration::from_millis(case.opts.total_ms) + CASE_SLACK;
    let resp = tokio::time::timeout(limit, h.chat(case.model, case.stream, json!({})))
        .await
        .unwrap_or_else(|_| panic!("{name}: no response head within {limit:?}"));
    let attempts = resp.headers().get("x-prism-attempts").map(|v| v.to_str().unwrap().to_owned());
    match case.expect {
        Expect::Status { status, attempts: n } => {
            let (got, _, err) = bounded(name, limit, error_body(resp)).await;
            assert_eq!(got, status, "{name}: {err}");
            assert_eq!(attempts, Some(n.to_string()), "{name}: attempts");
        }
        Expect::StatusCode { status, attempts: n, code } => {
            let (got, _, err) = bounded(name, limit, error_body(resp)).await;
            assert_eq!(got, status, "{name}: {err}");
            assert_eq!(err["error"]["code"], code, "{name}: {err}");
            assert_eq!(attempts, Some(n.to_string()), "{name}: attempts");
        }
        Expect::FellBack { attempts: n } => {
            let (content, done) = answer(name, limit, resp, case.stream).await;
            assert_eq!(content, TEXT, "{name}");
            assert!(done, "{name}: ends with [DONE]");
            assert_eq!(attempts, Some(n.to_string()), "{name}: attempts");
        }
        Expect::ErrorEvent { kind } => {
            assert!(case.stream, "{name}: error events are for streams");
            let s = bounded(name, limit, Streamed::read(resp)).await;
            assert_eq!(s.status, 200, "{name}");
            assert!(!s.done, "{name}: no [DONE] after a failure: {}", s.raw);
            let errors = s.chunks.iter().filter(|c| c.get("error").is_some()).count();
            assert_eq!(errors, 1, "{name}: exactly one error event: {}", s.raw);
            let err = s.error().unwrap_or_else(|| panic!("{name}: last event an error: {}", s.raw));
            assert_eq!(err["type"], kind, "{name}: {err}");
            assert!(err["message"].is_string(), "{name}: {err}");
            let content = s.content();
            assert!(content.starts_with("Hello"), "{name}: the first content came: {}", s.raw);
            assert!(TEXT.starts_with(&content), "{name}: only whole characters: {content:?}");
            assert_eq!(s.finish_reasons(), Vec::<String>::new(), "{name}: never a fake finish");
            assert_eq!(attempts.as_deref(), Some("1"), "{name}: no retry after the first byte");
            assert_eq!(h.sim.requests(), 1, "{name}: one upstream request");
        }
        Expect::Complete { min_len } => {
            let (content, done) = answer(name, limit, resp, case.stream).await;
            assert!(content.len() >= min_len, "{name}: {} bytes of text", content.len());
            assert!(done || !case.stream, "{name}: ends with [DONE]");
            assert_eq!(attempts.as_deref(), Some("1"), "{name}");
        }
    }
    assert!(started.elapsed() < limit, "{name}: took {:?}", started.elapsed());
    // The successful fallback answer may stay in the gateway's pool; every faulty one is closed.
    let pooled = usize::from(case.model == "fallback");
    assert!(
        h.sim.wait_open_connections_at_most(pooled, Duration::from_secs(2)).await,
        "{name}: {} upstream connections left open",
        h.sim.open_connections()
    );
    assert_eq!(h.sim.queued(), 0, "{name}: every queued behaviour was used");
    // The gateway keeps serving.
    h.sim.push_behavior(Reply::text("still here").into());
    let s =
        bounded(name, limit, async { Streamed::read(h.chat("gpt", true, json!({})).await).await })
            .await;
    assert!(s.done, "{name}: a normal request after the fault: {}", s.raw);
    assert_eq!(s.content(), "still here", "{name}");
}

async fn bounded<T>(
    name: &str,
    limit: Duration,
    future: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{name}: the body did not end within {limit:?}"))
}

/// The text of a complete answer, and whether a stream ended with `[DONE]`.
async fn answer(
    name: &str,
    limit: Duration,
    resp: reqwest::Response,
    stream: bool,
) -> (String, bool) {
    if stream {
        let s = bounded(name, limit, Streamed::read(resp)).await;
        assert_eq!(s.status, 200, "{name}: {}", s.raw);
        assert_eq!(s.error(), None, "{name}: {}", s.raw);
        (s.content(), s.done)
    } else {
        assert_eq!(resp.status(), 200, "{name}");
        let body: Value = bounded(name, limit, resp.json()).await.unwrap();
        let content = body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
        (content.to_owned(), true)
    }
}

/// Runs every case at once.
async fn run_all(cases: Vec<Case>) {
    futures::future::join_all(cases.into_iter().map(run)).await;
}

/// `fault` before the first byte (streaming, with a fallback variant) and, for
/// `after: Some(kind)`, after it.
fn stream_cases(
    name: &str,
    wires: &[(&'static str, Wire)],
    fault: impl Fn(usize) -> Fault,
    before: Expect,
    after: Option<Expect>,
) -> Vec<Case> {
    let mut cases = Vec::new();
    for &(model, wire) in wires {
        let before_case = Case::new(name, model, true, Behavior::fault(reply(), fault(0)));
        cases.push(before_case.clone().expect(before));
        if let Some(after) = after {
            let events = through_first_content(wire);
            let behavior = Behavior::fault(reply(), fault(events));
            cases.push(Case::new(&format!("{name} after"), model, true, behavior).expect(after));
        }
    }
    cases
}

/// `fault` on a non-streaming request to every wire.
fn whole_cases(
    name: &str,
    wires: &[(&'static str, Wire)],
    fault: Fault,
    expect: Expect,
) -> Vec<Case> {
    wires
        .iter()
        .map(|&(model, _)| {
            Case::new(name, model, false, Behavior::fault(reply(), fault.clone())).expect(expect)
        })
        .collect()
}

/// The fallback variant of a before-the-first-byte fault (Anthropic first).
fn fallback_case(name: &str, fault: Fault, attempts: u32) -> Case {
    Case::new(name, "claude", true, Behavior::fault(reply(), fault)).fallback(attempts)
}

const BAD_GATEWAY: Expect = Expect::Status { status: 502, attempts: 2 };
/// The upstream's body broke after its head, before the first byte: not a connect failure.
const CONNECTION_LOST: Expect =
    Expect::StatusCode { status: 502, attempts: 2, code: "upstream_connection_lost" };
const UPSTREAM_ERROR: Expect = Expect::ErrorEvent { kind: "upstream_error" };
const TIMEOUT_ERROR: Expect = Expect::ErrorEvent { kind: "timeout_error" };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_inside_a_chunk_mid_event() {
    let mut cases = stream_cases(
        "cut mid-event",
        &WIRES,
        |events| Fault::CutInEvent { events, bytes: 9 },
        CONNECTION_LOST,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(whole_cases(
        "cut mid-body",
        &WIRES,
        Fault::CutInEvent { events: 0, bytes: 40 },
        CONNECTION_LOST,
    ));
    cases.push(fallback_case("cut mid-event", Fault::CutInEvent { events: 0, bytes: 9 }, 3));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_inside_a_utf8_sequence() {
    // From the first content on, the cut falls inside the first multi-byte character (InvokeModel
    // base64-encodes its events, so there it falls in the middle of the next frame).
    let mut cases: Vec<Case> = WIRES
        .iter()
        .map(|&(model, wire)| {
            let fault = Fault::CutInUtf8 { events: through_first_content(wire) };
            Case::new("cut in UTF-8", model, true, Behavior::fault(reply(), fault))
                .expect(UPSTREAM_ERROR)
        })
        .collect();
    cases.extend(whole_cases(
        "cut in UTF-8",
        &WIRES,
        Fault::CutInUtf8 { events: 0 },
        CONNECTION_LOST,
    ));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_inside_an_event_stream_frame() {
    // Inside the prelude (4 bytes), the headers (30) and the payload (100) of a frame.
    let mut cases = Vec::new();
    for bytes in [4, 30, 100] {
        cases.extend(stream_cases(
            &format!("cut in frame at {bytes}"),
            &EVENTSTREAM,
            |events| Fault::CutInEvent { events, bytes },
            CONNECTION_LOST,
            Some(UPSTREAM_ERROR),
        ));
    }
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_after_the_head_and_after_events() {
    let stall = |events| Behavior::Stall { reply: reply(), events };
    let first_token = Expect::Status { status: 504, attempts: 1 };
    let mut cases = Vec::new();
    for (model, wire) in WIRES {
        cases.push(Case::new("stall after head", model, true, stall(0)).expect(first_token));
        let events = through_first_content(wire);
        cases.push(
            Case::new("stall after events", model, true, stall(events)).expect(TIMEOUT_ERROR),
        );
        cases.push(
            Case::new("stall mid-body", model, false, stall(0))
                .expect(Expect::Status { status: 504, attempts: 1 }),
        );
    }
    let mut fallback = Case::new("stall after head", "claude", true, stall(0)).fallback(2);
    fallback.pushes = 1;
    cases.push(fallback);
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes() {
    let mut cases = stream_cases(
        "garbage",
        &WIRES,
        |events| Fault::Garbage { events, len: 512 },
        BAD_GATEWAY,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(whole_cases(
        "garbage",
        &WIRES,
        Fault::Garbage { events: 0, len: 512 },
        BAD_GATEWAY,
    ));
    cases.push(fallback_case("garbage", Fault::Garbage { events: 0, len: 512 }, 3));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_in_a_well_framed_event() {
    let mut cases = stream_cases(
        "invalid JSON",
        &WIRES,
        |events| Fault::InvalidJson { events },
        BAD_GATEWAY,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(whole_cases(
        "invalid JSON",
        &WIRES,
        Fault::InvalidJson { events: 0 },
        BAD_GATEWAY,
    ));
    cases.push(fallback_case("invalid JSON", Fault::InvalidJson { events: 0 }, 3));
    run_all(cases).await;
}

/// 10 MB: over the SSE decoder's 1 MiB event limit, under event-stream's 16 MiB frame limit and
/// the 32 MiB whole-body limit.
const TEN_MB: usize = 10 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_ten_megabytes() {
    let sse: Vec<(&'static str, Wire)> =
        WIRES.iter().copied().filter(|(_, w)| !w.is_eventstream()).collect();
    let mut cases = stream_cases(
        "10 MB event",
        &sse,
        |events| Fault::Oversized { events, len: TEN_MB },
        BAD_GATEWAY,
        Some(UPSTREAM_ERROR),
    );
    // A 10 MB event-stream frame and a 10 MB body are valid: their text is delivered. A debug
    // build takes over a second for each on two cores, hence patient deadlines and two wires
    // of each kind.
    let patient = Opts { first_token_ms: 6000, idle_ms: 6000, total_ms: 8000, ..opts() };
    for (model, wire) in EVENTSTREAM {
        let fault = Fault::Oversized { events: through_first_content(wire), len: TEN_MB };
        let case = Case::new("10 MB frame", model, true, Behavior::fault(reply(), fault));
        cases.push(case.expect(Expect::Complete { min_len: TEN_MB }));
    }
    let some = [WIRES[0], WIRES[4]];
    let fault = Fault::Oversized { events: 0, len: TEN_MB };
    let whole = whole_cases("10 MB body", &some, fault, Expect::Complete { min_len: TEN_MB });
    cases.extend(whole);
    // The 10 MB answers slow the small ones down too.
    run_all(cases.into_iter().map(|case| case.opts(patient.clone())).collect()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_crc_and_oversized_frame() {
    let mut cases = stream_cases(
        "bad CRC",
        &EVENTSTREAM,
        |events| Fault::BadCrc { events },
        BAD_GATEWAY,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(stream_cases(
        "frame too long",
        &EVENTSTREAM,
        |events| Fault::FrameTooLong { events, total_length: u32::MAX },
        BAD_GATEWAY,
        Some(UPSTREAM_ERROR),
    ));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunk_size() {
    let mut cases = stream_cases(
        "bad chunk size",
        &WIRES,
        |events| Fault::BadChunkSize { events },
        CONNECTION_LOST,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(whole_cases(
        "bad chunk size",
        &WIRES,
        Fault::BadChunkSize { events: 0 },
        CONNECTION_LOST,
    ));
    cases.push(fallback_case("bad chunk size", Fault::BadChunkSize { events: 0 }, 3));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_per_second() {
    // Each byte keeps the idle timer (1.5 s) alive: the first-token deadline (500 ms) or the
    // total deadline (2.5 s) ends the request.
    let slow = Opts { idle_ms: 1500, total_ms: 2500, ..opts() };
    let drip = |events| Fault::Drip { events, interval: Duration::from_secs(1) };
    let mut cases = Vec::new();
    for (model, wire) in WIRES {
        let before = Case::new("drip", model, true, Behavior::fault(reply(), drip(0)));
        cases.push(before.expect(Expect::Status { status: 504, attempts: 1 }).opts(slow.clone()));
        let after = Behavior::fault(reply(), drip(through_first_content(wire)));
        cases.push(
            Case::new("drip after", model, true, after).expect(TIMEOUT_ERROR).opts(slow.clone()),
        );
        let whole = Case::new("drip", model, false, Behavior::fault(reply(), drip(0)));
        cases.push(whole.expect(Expect::Status { status: 504, attempts: 1 }).opts(slow.clone()));
    }
    for case in &mut cases {
        case.pushes = 1;
    }
    let mut fallback = fallback_case("drip", drip(0), 2).opts(slow);
    fallback.pushes = 1;
    cases.push(fallback);
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_held_open_after_the_terminal_event() {
    let mut cases: Vec<Case> = WIRES
        .iter()
        .map(|&(model, _)| {
            Case::new("held open", model, true, Behavior::fault(reply(), Fault::HoldOpen))
                .expect(Expect::Complete { min_len: TEXT.len() })
        })
        .collect();
    // A whole body whose HTTP body never ends is not complete: the total deadline ends it.
    let never_ends = Expect::Status { status: 504, attempts: 1 };
    for case in whole_cases("held open", &WIRES, Fault::HoldOpen, never_ends) {
        cases.push(Case { pushes: 1, ..case });
    }
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_page_with_200() {
    let mut cases = stream_cases("html", &WIRES, |_| Fault::Html, BAD_GATEWAY, None);
    cases.extend(whole_cases("html", &WIRES, Fault::Html, BAD_GATEWAY));
    cases.push(fallback_case("html", Fault::Html, 3));
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect() {
    let to = || Fault::Redirect { location: "https://elsewhere.example/v1".into() };
    // Redirects are never followed (they could carry credentials elsewhere), and the same
    // deployment would redirect again: a 502 at once, or the next deployment.
    let refused = Expect::Status { status: 502, attempts: 1 };
    let mut cases = stream_cases("redirect", &WIRES, |_| to(), refused, None);
    cases.extend(whole_cases("redirect", &WIRES, to(), refused));
    for case in &mut cases {
        case.pushes = 1;
    }
    let mut fallback = fallback_case("redirect", to(), 2);
    fallback.pushes = 1;
    cases.push(fallback);
    run_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reset() {
    let mut cases = stream_cases(
        "reset",
        &WIRES,
        |events| Fault::Reset { events },
        CONNECTION_LOST,
        Some(UPSTREAM_ERROR),
    );
    cases.extend(whole_cases("reset", &WIRES, Fault::Reset { events: 0 }, CONNECTION_LOST));
    cases.push(fallback_case("reset", Fault::Reset { events: 0 }, 3));
    run_all(cases).await;
}

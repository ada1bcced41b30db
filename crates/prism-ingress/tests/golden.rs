//! Golden snapshot tests of the Messages and Responses encoders: every provider fixture in
//! `fixtures/<provider>/<case>/` is translated by that provider's translator into the canonical
//! chunk stream (exactly as the server does), then encoded into each client protocol's events and
//! pinned with insta; `response.json`, when present, is translated and encoded as the
//! non-streaming answer.
//!
//! Split invariance before any snapshot: the upstream bytes fed one byte at a time and in two
//! pieces at every offset must give the same client bytes as feeding them whole (the translator
//! then emits different chunkings of the same stream; the encoder must not care). The encoder's
//! output is also checked against its grammar: every SSE event whole, `event:` equal to the data's
//! `type`, and nothing after the terminal event.

#![expect(
    clippy::unwrap_used,
    reason = "a harness that cannot read or render its fixtures fails the test"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use prism_ingress::{EncodeContext, Protocol};
use prism_providers::{Credentials, Deployment, OutChunk, ProviderKind, Secret, StreamContext};
use prism_types::ChatRequest;
use serde::Deserialize;

/// The fields of `deployment.json` that change what the translator emits.
#[derive(Debug, Default, Deserialize)]
struct DeploymentOverride {
    kind: Option<String>,
    upstream_model: Option<String>,
    bedrock_invoke: Option<bool>,
    supports_stream_usage: Option<bool>,
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn deployment(provider: &str, case: &Path) -> Deployment {
    let o: DeploymentOverride = match std::fs::read(case.join("deployment.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => DeploymentOverride::default(),
    };
    let (kind, model) = match o.kind.as_deref().unwrap_or(provider) {
        "openai" => (ProviderKind::OpenAi, "gpt-4o-mini"),
        "anthropic" => (ProviderKind::Anthropic, "claude-sonnet-4-5"),
        "gemini" => (ProviderKind::Gemini, "gemini-2.5-flash"),
        "vertex" => (ProviderKind::Vertex, "gemini-2.5-flash"),
        "bedrock" => (ProviderKind::Bedrock, "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        other => panic!("unknown provider {other:?}"),
    };
    let mut d = Deployment::new(kind, "https://upstream.test", model);
    d.credentials = Credentials::ApiKey(Secret::new("test-key"));
    d.region = Some("us-east-1".into());
    d.project = Some("test-project".into());
    if let Some(m) = o.upstream_model {
        d.upstream_model = m;
    }
    if let Some(v) = o.bedrock_invoke {
        d.bedrock_invoke = v;
    }
    if let Some(v) = o.supports_stream_usage {
        d.supports_stream_usage = v;
    }
    d
}

const CREATED: u64 = 1_735_689_600;

fn encode_context(protocol: Protocol, model: &str) -> EncodeContext {
    let id = match protocol {
        Protocol::ChatCompletions => "chatcmpl-golden",
        Protocol::Messages => "msg_golden",
        Protocol::Responses => "resp_golden",
    };
    EncodeContext { id: id.into(), created: CREATED, model: model.into() }
}

/// Upstream bytes in `pieces` → translator → encoder: the client's bytes.
fn encode_stream(
    protocol: Protocol,
    deployment: &Deployment,
    req: &ChatRequest,
    pieces: &[&[u8]],
) -> String {
    // Every non-Chat ingress asks for usage at the end (see `Decoded::request`).
    let sctx = StreamContext {
        include_usage: true,
        usage_on_finish: true,
        ..StreamContext::new("chatcmpl-golden", CREATED, req.model.clone())
    };
    let mut translator = prism_providers::stream_translator(deployment, sctx);
    let mut encoder = prism_ingress::stream_encoder(protocol, encode_context(protocol, &req.model));
    let mut chunks: Vec<OutChunk> = Vec::new();
    let mut out = BytesMut::new();
    let mut failed = None;
    for piece in pieces {
        let fed = translator.feed(piece, &mut chunks);
        for c in chunks.drain(..) {
            encoder.chunk(&c.chunk, c.raw.as_deref(), &mut out);
        }
        if let Err(e) = fed {
            failed = Some(e);
            break;
        }
    }
    let end = match failed {
        Some(e) => Err(e),
        None => translator.finish(&mut chunks),
    };
    for c in chunks.drain(..) {
        encoder.chunk(&c.chunk, c.raw.as_deref(), &mut out);
    }
    match end {
        Ok(_) => encoder.finish(&mut out),
        Err(e) => encoder.fail(&e.to_provider_error().error, &mut out),
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// Checks the SSE framing every client parser relies on: whole events, each with one `event:`
/// line naming the data's `type`, exactly one terminal event and it last (Responses may put one
/// `error` right before `response.failed`), and, for Responses, `sequence_number` counting up.
fn check_grammar(protocol: Protocol, name: &str, sse: &str) {
    assert!(sse.ends_with("\n\n"), "{name}: the last event is not whole");
    let mut kinds = Vec::new();
    for event in sse.split("\n\n").filter(|e| !e.is_empty() && !e.starts_with(':')) {
        let mut lines = event.lines();
        let kind = lines
            .next()
            .and_then(|l| l.strip_prefix("event: "))
            .unwrap_or_else(|| panic!("{name}: an event without an `event:` line first: {event}"));
        let data = lines.next().and_then(|l| l.strip_prefix("data: ")).unwrap();
        assert!(lines.next().is_none(), "{name}: more than one data line: {event}");
        let value: serde_json::Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("{name}: data is not JSON ({e}): {data}"));
        assert_eq!(value["type"].as_str(), Some(kind), "{name}: event and type differ");
        if protocol == Protocol::Responses {
            let seq = value["sequence_number"].as_u64();
            assert_eq!(seq, Some(kinds.len() as u64), "{name}: sequence_number of {kind}");
        }
        kinds.push(kind.to_owned());
    }
    let terminal: &[&str] = match protocol {
        Protocol::Messages => &["message_stop", "error"],
        Protocol::Responses => &["response.completed", "response.incomplete", "response.failed"],
        Protocol::ChatCompletions => unreachable!("chat is pinned by the provider goldens"),
    };
    let at: Vec<usize> =
        (0..kinds.len()).filter(|&i| terminal.contains(&kinds[i].as_str())).collect();
    assert_eq!(at, [kinds.len() - 1], "{name}: terminal events out of place: {kinds:?}");
    let errors: Vec<usize> = (0..kinds.len()).filter(|&i| kinds[i] == "error").collect();
    if protocol == Protocol::Responses {
        assert!(
            errors.is_empty()
                || (errors == [kinds.len() - 2] && kinds[kinds.len() - 1] == "response.failed"),
            "{name}: an error event out of place: {kinds:?}"
        );
    }
}

/// Where a two-piece feed is cut. The translators are checked at every offset by
/// prism-providers' golden tests; what the encoders add depends on how events batch, so this
/// cuts around every event boundary (SSE blank lines, event-stream message lengths) and at a
/// stride in between, which keeps the quadratic cost of these cases inside CI's budget.
fn split_points(bytes: &[u8]) -> Vec<usize> {
    const AROUND: usize = 2;
    const STRIDE: usize = 32;
    let mut boundaries = Vec::new();
    if bytes.first() == Some(&0) {
        // AWS event-stream: each message starts with its total length (big-endian u32).
        let mut at = 0;
        while let Some(len) = bytes.get(at..at + 4) {
            boundaries.push(at);
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len == 0 {
                break;
            }
            at += len;
        }
    } else {
        boundaries
            .extend(bytes.windows(2).enumerate().filter(|(_, w)| w == b"\n\n").map(|(i, _)| i + 1));
    }
    let mut points: Vec<usize> = (1..bytes.len()).step_by(STRIDE).collect();
    for b in boundaries {
        points.extend(b.saturating_sub(AROUND).max(1)..(b + AROUND + 1).min(bytes.len()));
    }
    points.sort_unstable();
    points.dedup();
    points
}

fn run_case(protocol: Protocol, provider: &str, case: &Path) {
    let name = format!(
        "{}__{provider}__{}",
        protocol.as_str(),
        case.file_name().unwrap().to_str().unwrap()
    );
    let req: ChatRequest =
        serde_json::from_slice(&std::fs::read(case.join("request.json")).unwrap()).unwrap();
    let deployment = deployment(provider, case);
    let upstream = ["upstream.sse", "upstream.eventstream"]
        .iter()
        .map(|f| case.join(f))
        .find(|p| p.exists())
        .unwrap();
    let bytes = std::fs::read(&upstream).unwrap();

    let whole = encode_stream(protocol, &deployment, &req, &[&bytes]);
    check_grammar(protocol, &name, &whole);
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        encode_stream(protocol, &deployment, &req, &singles),
        whole,
        "{name}: byte-by-byte feed differs"
    );
    for at in split_points(&bytes) {
        let (a, b) = bytes.split_at(at);
        let split = encode_stream(protocol, &deployment, &req, &[a, b]);
        assert_eq!(split, whole, "{name}: split at byte {at} differs");
    }

    let mut snap = String::new();
    writeln!(snap, "--- client stream").unwrap();
    snap.push_str(&whole);
    let response = case.join("response.json");
    if response.exists() {
        let sctx = StreamContext::new("chatcmpl-golden", CREATED, req.model.clone());
        writeln!(snap, "--- client response (non-streaming)").unwrap();
        let body = std::fs::read(&response).unwrap();
        match prism_providers::translate_response(&deployment, &sctx, &body) {
            Ok(c) => {
                let ctx = encode_context(protocol, &req.model);
                let encoded = prism_ingress::encode_completion(protocol, &c, &ctx);
                let v: serde_json::Value = serde_json::from_slice(&encoded)
                    .unwrap_or_else(|e| panic!("{name}: the response is not JSON: {e}"));
                snap.push_str(&serde_json::to_string_pretty(&v).unwrap());
            }
            Err(e) => {
                let p = e.to_provider_error();
                let (status, body) = prism_ingress::error_response(protocol, p.status, &p.error);
                write!(snap, "error {status}: {}", String::from_utf8_lossy(&body)).unwrap();
            }
        }
        snap.push('\n');
    }
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        input_file => &upstream,
    }, {
        insta::assert_snapshot!(name, snap);
    });
}

fn golden(protocol: Protocol, provider: &str) {
    let filter = std::env::var("GOLDEN_FILTER").ok();
    let dir = fixtures_root().join(provider);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("request.json").exists())
        .collect();
    cases.sort();
    let mut ran = 0;
    for case in cases {
        let label = format!("{provider}/{}", case.file_name().unwrap().to_str().unwrap());
        if filter.as_deref().is_some_and(|f| !label.contains(f)) {
            continue;
        }
        run_case(protocol, provider, &case);
        ran += 1;
    }
    assert!(ran > 0 || filter.is_some(), "no fixtures under {}", dir.display());
}

#[test]
fn messages_anthropic() {
    golden(Protocol::Messages, "anthropic");
}
#[test]
fn messages_bedrock() {
    golden(Protocol::Messages, "bedrock");
}
#[test]
fn messages_gemini() {
    golden(Protocol::Messages, "gemini");
}
#[test]
fn messages_openai() {
    golden(Protocol::Messages, "openai");
}
#[test]
fn messages_vertex() {
    golden(Protocol::Messages, "vertex");
}
#[test]
fn responses_anthropic() {
    golden(Protocol::Responses, "anthropic");
}
#[test]
fn responses_bedrock() {
    golden(Protocol::Responses, "bedrock");
}
#[test]
fn responses_gemini() {
    golden(Protocol::Responses, "gemini");
}
#[test]
fn responses_openai() {
    golden(Protocol::Responses, "openai");
}
#[test]
fn responses_vertex() {
    golden(Protocol::Responses, "vertex");
}

//! Golden snapshot tests: every `fixtures/<provider>/<case>/` is translated and pinned with insta.
//!
//! A case holds `request.json` (the OpenAI request the client sent), the native upstream stream
//! (`upstream.sse`, or `upstream.eventstream` for Bedrock's binary frames), optionally
//! `response.json` (the provider's non-streaming body for the same request) and optionally
//! `deployment.json` (overrides of the provider directory's default deployment). Before
//! snapshotting, the stream is also fed one byte at a time and split at every byte boundary; each
//! must give output identical to feeding it whole.

#![expect(
    clippy::unwrap_used,
    reason = "a harness that cannot read or render its fixtures fails the test"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use prism_providers::{
    BuildOptions, Credentials, Deployment, OutChunk, ProviderKind, Secret, StreamContext,
};
use prism_types::ChatRequest;
use serde::Deserialize;

/// Fields of `deployment.json`; anything absent keeps the provider directory's default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentOverride {
    kind: Option<String>,
    base_url: Option<String>,
    upstream_model: Option<String>,
    region: Option<String>,
    project: Option<String>,
    bedrock_invoke: Option<bool>,
    supports_stream_usage: Option<bool>,
    default_max_tokens: Option<u64>,
    /// `api_key` (default for the provider), `bearer` or `aws`.
    credentials: Option<String>,
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn kind_named(name: &str) -> ProviderKind {
    match name {
        "openai" => ProviderKind::OpenAi,
        "anthropic" => ProviderKind::Anthropic,
        "gemini" => ProviderKind::Gemini,
        "vertex" => ProviderKind::Vertex,
        "bedrock" => ProviderKind::Bedrock,
        other => panic!("unknown provider directory or kind {other:?}"),
    }
}

fn credentials_named(name: &str) -> Credentials {
    match name {
        "api_key" => Credentials::ApiKey(Secret::new("test-api-key-0123456789")),
        "bearer" => Credentials::Bearer(Secret::new("test-bearer-token-0123456789")),
        "aws" => Credentials::Aws {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        },
        other => panic!("unknown credentials {other:?}"),
    }
}

fn default_deployment(provider: &str) -> Deployment {
    let kind = kind_named(provider);
    let mut d = match kind {
        ProviderKind::OpenAi => Deployment::new(kind, "https://api.openai.com", "gpt-4o-mini"),
        ProviderKind::Anthropic => {
            Deployment::new(kind, "https://api.anthropic.com", "claude-sonnet-4-5")
        }
        ProviderKind::Gemini => {
            Deployment::new(kind, "https://generativelanguage.googleapis.com", "gemini-2.5-flash")
        }
        ProviderKind::Vertex => {
            let mut d = Deployment::new(
                kind,
                "https://us-central1-aiplatform.googleapis.com",
                "gemini-2.5-flash",
            );
            d.project = Some("test-project".into());
            d.region = Some("us-central1".into());
            d
        }
        ProviderKind::Bedrock => {
            let mut d = Deployment::new(
                kind,
                "https://bedrock-runtime.us-east-1.amazonaws.com",
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
            );
            d.region = Some("us-east-1".into());
            d
        }
    };
    d.credentials = match kind {
        ProviderKind::Vertex => credentials_named("bearer"),
        ProviderKind::Bedrock => credentials_named("aws"),
        _ => credentials_named("api_key"),
    };
    d
}

fn deployment_for(provider: &str, case: &Path) -> Deployment {
    let mut d = default_deployment(provider);
    let path = case.join("deployment.json");
    if !path.exists() {
        return d;
    }
    let o: DeploymentOverride = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(kind) = o.kind {
        let base = default_deployment(&kind);
        d.kind = base.kind;
        d.base_url = base.base_url;
        d.upstream_model = base.upstream_model;
        d.credentials = base.credentials;
        d.region = base.region;
        d.project = base.project;
    }
    if let Some(v) = o.base_url {
        d.base_url = v;
    }
    if let Some(v) = o.upstream_model {
        d.upstream_model = v;
    }
    if let Some(v) = o.region {
        d.region = Some(v);
    }
    if let Some(v) = o.project {
        d.project = Some(v);
    }
    if let Some(v) = o.bedrock_invoke {
        d.bedrock_invoke = v;
    }
    if let Some(v) = o.supports_stream_usage {
        d.supports_stream_usage = v;
    }
    if let Some(v) = o.default_max_tokens {
        d.default_max_tokens = v;
    }
    if let Some(v) = o.credentials {
        d.credentials = credentials_named(&v);
    }
    d
}

/// The fixed clock of every snapshot: 2025-01-01T00:00:00Z (so SigV4 signatures are stable).
fn fixed_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600)
}

fn context_for(req: &ChatRequest) -> StreamContext {
    StreamContext {
        include_usage: req.include_usage(),
        // The server's default policy: usage rides on the finish chunk when not asked for.
        usage_on_finish: true,
        ..StreamContext::new("chatcmpl-golden", 1_735_689_600, req.model.clone())
    }
}

const SECRET_HEADERS: &[&str] =
    &["authorization", "api-key", "x-api-key", "x-goog-api-key", "x-amz-security-token"];

fn render_request(req: &ChatRequest, deployment: &Deployment, stream: bool) -> String {
    let opts = BuildOptions { stream, request_usage: true, now: fixed_now() };
    let built = match prism_providers::build_request(req, deployment, &opts) {
        Ok(r) => r,
        Err(e) => return format!("error: {e}\n{:?}\n", e.to_provider_error()),
    };
    let mut s = format!("{} {}\n", built.method(), built.uri());
    let mut headers: Vec<(String, String)> = built
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("<binary>").to_owned()))
        .collect();
    headers.sort();
    for (k, v) in headers {
        // Secrets must reach the wire, but never a snapshot. AWS signatures are not secret and
        // are pinned: they prove the signing is deterministic and correct for the fixed clock.
        let shown = if SECRET_HEADERS.contains(&k.as_str()) && !v.starts_with("AWS4-HMAC-SHA256") {
            assert!(!v.is_empty());
            "<redacted>".to_owned()
        } else {
            v
        };
        writeln!(s, "{k}: {shown}").unwrap();
    }
    let body = built.body();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => s.push_str(&serde_json::to_string_pretty(&v).unwrap()),
        Err(_) => s.push_str(&String::from_utf8_lossy(body)),
    }
    s.push('\n');
    s
}

/// Runs the upstream bytes through the provider's pipeline in the given pieces and renders what
/// the client would receive as SSE, followed by the summary or the error.
fn render_stream(deployment: &Deployment, ctx: &StreamContext, pieces: &[&[u8]]) -> String {
    let mut translator = prism_providers::stream_translator(deployment, ctx.clone());
    let mut out: Vec<OutChunk> = Vec::new();
    let mut s = String::new();
    let flush = |out: &mut Vec<OutChunk>, s: &mut String| {
        for chunk in out.drain(..) {
            let mut json = Vec::new();
            chunk.write_json(&mut json);
            if let Some(raw) = &chunk.raw {
                // A pass-through payload must describe the same chunk as the parsed form.
                let reparsed: prism_types::ChatChunk = serde_json::from_slice(raw).unwrap();
                assert_eq!(reparsed, chunk.chunk, "raw bytes and parsed chunk disagree");
            }
            writeln!(s, "data: {}\n", String::from_utf8(json).unwrap()).unwrap();
        }
    };
    for piece in pieces {
        if let Err(e) = translator.feed(piece, &mut out) {
            flush(&mut out, &mut s);
            return render_error(s, &e);
        }
        flush(&mut out, &mut s);
    }
    match translator.finish(&mut out) {
        Ok(summary) => {
            flush(&mut out, &mut s);
            s.push_str("data: [DONE]\n\n");
            writeln!(s, "--- summary\n{summary:#?}").unwrap();
            s
        }
        Err(e) => {
            flush(&mut out, &mut s);
            render_error(s, &e)
        }
    }
}

fn render_error(mut s: String, e: &prism_providers::TranslateError) -> String {
    let mapped = e.to_provider_error();
    let body = serde_json::to_string(&mapped.error.clone().into_body()).unwrap();
    writeln!(s, "data: {body}\n").unwrap();
    writeln!(
        s,
        "--- stream ended without [DONE]: {e} (status {}, retryable {})",
        mapped.status, mapped.retryable
    )
    .unwrap();
    s
}

fn run_case(provider: &str, case: &Path) {
    let name = format!("{provider}__{}", case.file_name().unwrap().to_str().unwrap());
    let req: ChatRequest =
        serde_json::from_slice(&std::fs::read(case.join("request.json")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: request.json: {e}"));
    let deployment = deployment_for(provider, case);
    let ctx = context_for(&req);

    let mut snap = String::new();
    writeln!(snap, "--- upstream request (stream)").unwrap();
    snap.push_str(&render_request(&req, &deployment, true));

    let upstream = ["upstream.sse", "upstream.eventstream"]
        .iter()
        .map(|f| case.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name}: no upstream.sse or upstream.eventstream"));
    let bytes = std::fs::read(&upstream).unwrap();

    let whole = render_stream(&deployment, &ctx, &[&bytes]);
    // Split invariance, before any snapshot: byte by byte, and two pieces at every offset.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        render_stream(&deployment, &ctx, &singles),
        whole,
        "{name}: byte-by-byte feed differs"
    );
    for at in 1..bytes.len() {
        let (a, b) = bytes.split_at(at);
        let split = render_stream(&deployment, &ctx, &[a, b]);
        assert_eq!(split, whole, "{name}: split at byte {at} differs");
    }
    writeln!(snap, "--- client stream").unwrap();
    snap.push_str(&whole);

    let response = case.join("response.json");
    if response.exists() {
        writeln!(snap, "--- upstream request (non-streaming)").unwrap();
        snap.push_str(&render_request(&req, &deployment, false));
        let body = std::fs::read(&response).unwrap();
        writeln!(snap, "--- client completion").unwrap();
        match prism_providers::translate_response(&deployment, &ctx, &body) {
            Ok(c) => snap.push_str(&serde_json::to_string_pretty(&c).unwrap()),
            Err(e) => write!(snap, "error: {e} -> {:?}", e.to_provider_error()).unwrap(),
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

fn cases() -> Vec<(String, PathBuf)> {
    let mut all = Vec::new();
    for provider in std::fs::read_dir(fixtures_root()).unwrap() {
        let provider = provider.unwrap().path();
        if !provider.is_dir() {
            continue;
        }
        let pname = provider.file_name().unwrap().to_str().unwrap().to_owned();
        for case in std::fs::read_dir(&provider).unwrap() {
            let case = case.unwrap().path();
            if case.join("request.json").exists() {
                all.push((pname.clone(), case));
            }
        }
    }
    all.sort();
    all
}

/// The provider directories with a test below; a new directory must be added here.
const PROVIDERS: &[&str] = &["anthropic", "bedrock", "gemini", "openai", "vertex"];

/// Runs every case of one provider directory (optionally narrowed by `GOLDEN_FILTER`).
fn golden(provider: &str) {
    let filter = std::env::var("GOLDEN_FILTER").ok();
    let mut ran = 0;
    for (_, case) in cases().into_iter().filter(|(p, _)| p == provider) {
        let label = format!("{provider}/{}", case.file_name().unwrap().to_str().unwrap());
        if filter.as_deref().is_some_and(|f| !label.contains(f)) {
            continue;
        }
        run_case(provider, &case);
        ran += 1;
    }
    assert!(ran > 0 || filter.is_some(), "no fixtures for {provider}");
}

#[test]
fn every_fixture_directory_has_a_test() {
    let all = cases();
    assert!(!all.is_empty(), "no fixtures found under {}", fixtures_root().display());
    for (provider, case) in all {
        assert!(PROVIDERS.contains(&provider.as_str()), "{} has no golden test", case.display());
    }
}

#[test]
fn golden_anthropic() {
    golden("anthropic");
}

#[test]
fn golden_bedrock() {
    golden("bedrock");
}

#[test]
fn golden_gemini() {
    golden("gemini");
}

#[test]
fn golden_openai() {
    golden("openai");
}

#[test]
fn golden_vertex() {
    golden("vertex");
}

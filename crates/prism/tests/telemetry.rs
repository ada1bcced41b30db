//! OpenTelemetry from `prism serve`: an in-test OTLP/HTTP receiver (the opentelemetry-proto
//! types over a local hyper server) receives the spans and metrics of a streamed request that
//! was retried and then fell back, with the GenAI attributes; the client's trace continues into
//! the upstream request; prompt content appears nowhere unless opted in.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prism_simulator::{Behavior, Simulator};
use prism_testkit::ChildGuard as Proc;
use prost::Message as _;

const PRISM: &str = env!("CARGO_BIN_EXE_prism");
const KEY: &str = "sk-telemetry-test";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const MARKER: &str = "unique-prompt-marker-7731";

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An OTLP/HTTP collector that keeps every request body by path.
async fn receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let store = Arc::clone(&store);
                        async move {
                            let path = req.uri().path().to_owned();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            store.lock().unwrap().push((path, body));
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            resp.headers_mut()
                                .insert("content-type", "application/x-protobuf".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), received)
}

/// An OTLP/gRPC collector (gRPC over cleartext HTTP/2, spoken with hyper: a length-prefixed
/// protobuf message each way and `grpc-status: 0` in the trailers) that keeps each message by
/// its method path.
async fn grpc_receiver() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let store = Arc::clone(&store);
                        async move {
                            let path = req.uri().path().to_owned();
                            let framed = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            // [compressed: u8][length: u32 BE][message]
                            let message = framed.slice(5.min(framed.len())..);
                            store.lock().unwrap().push((path, message));
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            let frames: Vec<
                                Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
                            > = vec![
                                Ok(hyper::body::Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
                                Ok(hyper::body::Frame::trailers(trailers)),
                            ];
                            let mut resp = hyper::Response::new(http_body_util::StreamBody::new(
                                futures::stream::iter(frames),
                            ));
                            resp.headers_mut()
                                .insert("content-type", "application/grpc".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    (format!("http://{addr}"), received)
}

fn attr<'s>(attrs: &'s [KeyValue], key: &str) -> Option<&'s any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn str_attr<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    match attr(&span.attributes, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(&span.attributes, key) {
        Some(any_value::Value::IntValue(n)) => Some(*n),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_genai_metrics_reach_an_otlp_collector() {
    let (collector, received) = receiver().await;
    let sim = Simulator::start().await.unwrap();
    // The first deployment fails twice (a retry, then the fallback); the second answers.
    sim.push_behavior(Behavior::status(500));
    sim.push_behavior(Behavior::status(500));
    let config = format!(
        r#"listen = "127.0.0.1:0"
[[keys]]
name = "k"
key = "{KEY}"
[providers.first]
kind = "openai"
base_url = "{sim}"
[providers.second]
kind = "openai"
base_url = "{sim}"
[[models]]
name = "flaky"
deployments = [{{ provider = "first", model = "gpt-4o-mini" }}, {{ provider = "second", model = "gpt-4o-mini" }}]
[retries]
max_attempts = 2
backoff_base_ms = 10
backoff_max_ms = 20
[telemetry]
endpoint = "{collector}"
protocol = "http/protobuf"
service_name = "prism-under-test"
export_interval_ms = 200
"#,
        sim = sim.base_url()
    );
    let path = std::env::temp_dir().join(format!("prism-telemetry-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let (mut proc, url) = Proc::spawn_with_url(
        Command::new(PRISM)
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["serve", "--config"])
            .arg(&path)
            .stderr(Stdio::null()),
    );

    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(&serde_json::json!({
            "model": "flaky",
            "stream": true,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": format!("Say hello {MARKER}")}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-prism-attempts"], "3");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // Metrics export every 200 ms; spans are flushed at the graceful shutdown.
    tokio::time::sleep(Duration::from_millis(600)).await;
    proc.terminate();
    let _ = std::fs::remove_file(&path);

    let received = received.lock().unwrap().clone();
    for (_, body) in &received {
        assert!(
            !body.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "prompt content must not be exported unless capture_content is on"
        );
    }
    let spans: Vec<Span> = received
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .flat_map(|(_, body)| {
            ExportTraceServiceRequest::decode(body.as_ref()).unwrap().resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    let names: Vec<(&str, usize)> = received.iter().map(|(p, b)| (p.as_str(), b.len())).collect();
    let server = spans.iter().find(|s| s.name == "chat flaky").unwrap_or_else(|| {
        panic!(
            "the request span: {names:?} {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(hex(&server.trace_id), TRACE_ID, "the client's trace continues");
    assert_eq!(hex(&server.parent_span_id), PARENT_ID);
    assert_eq!(server.kind, 2, "SERVER");
    assert_eq!(str_attr(server, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(server, "gen_ai.request.model"), Some("flaky"));
    assert_eq!(str_attr(server, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(str_attr(server, "gen_ai.response.model"), Some("gpt-4o-mini"));
    assert_eq!(str_attr(server, "server.address"), Some("127.0.0.1"));
    assert!(str_attr(server, "gen_ai.response.id").unwrap().starts_with("chatcmpl-"));
    assert_eq!(int_attr(server, "gen_ai.request.max_tokens"), Some(64));
    assert!(int_attr(server, "gen_ai.usage.input_tokens").unwrap() > 0);
    assert!(int_attr(server, "gen_ai.usage.output_tokens").unwrap() > 0);
    match attr(&server.attributes, "gen_ai.response.finish_reasons") {
        Some(any_value::Value::ArrayValue(a)) => assert_eq!(a.values.len(), 1),
        other => panic!("finish reasons: {other:?}"),
    }

    let attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == server.span_id)
        .filter(|s| s.kind == 3)
        .collect();
    assert_eq!(attempts.len(), 3, "two failed attempts and the one that answered: {attempts:#?}");
    let failed: Vec<&&Span> =
        attempts.iter().filter(|s| str_attr(s, "error.type").is_some()).collect();
    assert_eq!(failed.len(), 2);
    let ok = attempts.iter().find(|s| str_attr(s, "error.type").is_none()).unwrap();
    assert_eq!(ok.name, "chat gpt-4o-mini");
    assert_eq!(int_attr(ok, "http.response.status_code"), Some(200));
    assert_eq!(str_attr(ok, "gen_ai.provider.name"), Some("openai"));

    // The upstream request carried the attempt's context.
    let upstream = sim.recorded().into_iter().last().unwrap();
    let traceparent = upstream.headers["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(traceparent, format!("00-{TRACE_ID}-{}-01", hex(&ok.span_id)));

    // The GenAI metrics, with the conventions' names, units and buckets.
    let mut metrics: HashMap<String, (String, Vec<f64>)> = HashMap::new();
    for (_, body) in received.iter().filter(|(p, _)| p == "/v1/metrics") {
        let req = ExportMetricsServiceRequest::decode(body.as_ref()).unwrap();
        for m in
            req.resource_metrics.into_iter().flat_map(|r| r.scope_metrics).flat_map(|s| s.metrics)
        {
            let bounds = match &m.data {
                Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Histogram(h)) => {
                    h.data_points.first().map(|p| p.explicit_bounds.clone()).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            metrics.insert(m.name.clone(), (m.unit.clone(), bounds));
        }
    }
    for name in [
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
        "gen_ai.server.request.duration",
        "gen_ai.client.token.usage",
    ] {
        assert!(metrics.contains_key(name), "{name} missing from {:?}", metrics.keys());
    }
    let (unit, bounds) = &metrics["gen_ai.server.time_to_first_token"];
    assert_eq!(unit, "s");
    assert_eq!(bounds.first(), Some(&0.001));
    assert_eq!(metrics["gen_ai.client.token.usage"].0, "{token}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `--log-format json`: every line is one JSON object, each request has one `request finished`
/// line with the record's fields and the client's trace id, and no key or prompt appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_without_secrets() {
    let sim = Simulator::start().await.unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[[keys]]\nname = \"tenant\"\nkey = \"{KEY}\"\n\
         [providers.p]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-upstream-never-logged\"\n\
         [[models]]\nname = \"m\"\ndeployments = [{{ provider = \"p\", model = \"gpt-4o-mini\" }}]\n",
        sim.base_url()
    );
    let path = std::env::temp_dir().join(format!("prism-jsonlog-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let (mut proc, url) = Proc::spawn_with_url(
        Command::new(PRISM)
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&path)
            .stderr(Stdio::piped()),
    );
    let stderr = proc.0.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>()
    });
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for stream in [true, false] {
        let resp = client
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
            .json(&serde_json::json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": MARKER}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
        resp.bytes().await.unwrap();
    }
    proc.terminate();
    let lines = logs.join().unwrap();
    let _ = std::fs::remove_file(&path);
    let mut finished = Vec::new();
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for secret in [KEY, MARKER, "sk-upstream-never-logged"] {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
        if value["fields"]["message"] == "request finished" {
            finished.push(value);
        }
    }
    assert_eq!(finished.len(), 2, "one line per request: {lines:#?}");
    for (line, id) in finished.iter().zip(&ids) {
        let f = &line["fields"];
        assert_eq!(f["request_id"], id.as_str(), "{line}");
        assert_eq!(f["trace_id"], TRACE_ID, "{line}");
        assert_eq!(
            (f["key"].as_str(), f["model"].as_str(), f["provider"].as_str()),
            (Some("tenant"), Some("m"), Some("p"))
        );
        assert_eq!(f["status"], 200);
        assert_eq!(f["outcome"], "completed");
        assert!(f["output_tokens"].as_u64().unwrap() > 0, "{line}");
        assert_eq!(line["target"], "prism::request");
    }
    assert_eq!(finished[0]["fields"]["stream"], true);
}

/// The default transport, OTLP over gRPC, reaches a collector too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_reaches_an_otlp_collector() {
    let (collector, received) = grpc_receiver().await;
    let sim = Simulator::start().await.unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[[keys]]\nname = \"k\"\nkey = \"{KEY}\"\n\
         [providers.p]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-ant\"\n\
         [[models]]\nname = \"claude\"\ndeployments = [{{ provider = \"p\", model = \"claude-sonnet-4-5\" }}]\n\
         [telemetry]\nendpoint = \"{collector}\"\nexport_interval_ms = 200\n",
        sim.base_url()
    );
    let path = std::env::temp_dir().join(format!("prism-grpc-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let (mut proc, url) = Proc::spawn_with_url(
        Command::new(PRISM)
            .env_clear()
            .args(["serve", "--config"])
            .arg(&path)
            .stderr(Stdio::null()),
    );
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proc.terminate();
    let _ = std::fs::remove_file(&path);
    let received = received.lock().unwrap().clone();
    let spans: Vec<Span> = received
        .iter()
        .filter(|(p, _)| p == "/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        .flat_map(|(_, m)| ExportTraceServiceRequest::decode(m.as_ref()).unwrap().resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect();
    let server =
        spans.iter().find(|s| s.name == "chat claude").unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(str_attr(server, "gen_ai.provider.name"), Some("anthropic"));
    let metrics: Vec<String> = received
        .iter()
        .filter(|(p, _)| p == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
        .flat_map(|(_, m)| {
            ExportMetricsServiceRequest::decode(m.as_ref()).unwrap().resource_metrics
        })
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .map(|m| m.name)
        .collect();
    assert!(metrics.iter().any(|m| m == "gen_ai.server.request.duration"), "{metrics:?}");
}

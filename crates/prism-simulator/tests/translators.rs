//! Full circle through the gateway's own code: `prism_providers::build_request` builds each
//! provider's native request against the simulator, the simulator answers, and the providers'
//! stream and response translators must read the answer back as the reply's OpenAI content.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::time::SystemTime;

use prism_providers::{BuildOptions, Credentials, Deployment, ProviderKind, Secret, StreamContext};
use prism_simulator::{Reply, Simulator};
use prism_types::{ChatRequest, FinishReason};

fn deployments(base: &str) -> Vec<Deployment> {
    let mut vertex = Deployment::new(ProviderKind::Vertex, base, "gemini-2.5-pro");
    vertex.project = Some("proj".into());
    vertex.region = Some("us-central1".into());
    vertex.credentials = Credentials::Bearer(Secret::new("token"));
    let mut converse =
        Deployment::new(ProviderKind::Bedrock, base, "anthropic.claude-sonnet-4-5-v1:0");
    converse.region = Some("us-east-1".into());
    converse.credentials = Credentials::Bearer(Secret::new("bedrock-key"));
    let mut invoke = converse.clone();
    invoke.bedrock_invoke = true;
    vec![
        Deployment::new(ProviderKind::OpenAi, base, "gpt-4o-mini"),
        Deployment::new(ProviderKind::Anthropic, base, "claude-sonnet-4-5"),
        Deployment::new(ProviderKind::Gemini, base, "gemini-2.5-flash"),
        vertex,
        converse,
        invoke,
    ]
}

fn chat_request(stream: bool) -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": "public-model",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream,
    }))
    .unwrap()
}

fn ctx() -> StreamContext {
    StreamContext {
        id: "chatcmpl-test".into(),
        created: 1,
        model: "public-model".into(),
        include_usage: false,
        usage_on_finish: true,
    }
}

/// Sends a built request with reqwest and returns status and body.
async fn execute(request: http::Request<bytes::Bytes>) -> (u16, bytes::Bytes, Option<String>) {
    let (parts, body) = request.into_parts();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    (status, response.bytes().await.unwrap(), content_type)
}

#[tokio::test]
async fn every_provider_stream_translates_back_to_the_reply() {
    let sim = Simulator::start().await.unwrap();
    let reply = Reply::text("Hello from the simulator, in words.").usage(11, 7);
    for deployment in deployments(&sim.base_url()) {
        let label = format!("{:?} invoke={}", deployment.kind, deployment.bedrock_invoke);
        sim.push_behavior(reply.clone().into());
        let opts = BuildOptions { stream: true, request_usage: true, now: SystemTime::now() };
        let request =
            prism_providers::build_request(&chat_request(true), &deployment, &opts).unwrap();
        let (status, body, _) = execute(request).await;
        assert_eq!(status, 200, "{label}: {}", String::from_utf8_lossy(&body));
        assert!(sim.last_request().unwrap().stream, "{label}: routed as a stream");

        let mut translator = prism_providers::stream_translator(&deployment, ctx());
        let mut chunks = Vec::new();
        // Feed in small pieces, as a socket would deliver them.
        for piece in body.chunks(7) {
            translator.feed(piece, &mut chunks).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        let summary = translator.finish(&mut chunks).unwrap_or_else(|e| panic!("{label}: {e}"));
        let text: String = chunks
            .iter()
            .flat_map(|c| c.chunk.choices.iter())
            .filter_map(|choice| choice.delta.content.as_deref())
            .collect();
        assert_eq!(text, reply.text_content(), "{label}");
        assert_eq!(summary.finish_reasons, [(0, FinishReason::Stop)], "{label}");
        let usage = summary.usage.unwrap_or_else(|| panic!("{label}: usage"));
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 7), "{label}");
    }
}

#[tokio::test]
async fn every_provider_body_translates_back_to_the_reply() {
    let sim = Simulator::start().await.unwrap();
    let reply = Reply::text("A whole answer.").usage(5, 3);
    for deployment in deployments(&sim.base_url()) {
        let label = format!("{:?} invoke={}", deployment.kind, deployment.bedrock_invoke);
        sim.push_behavior(reply.clone().into());
        let opts = BuildOptions { stream: false, request_usage: true, now: SystemTime::now() };
        let request =
            prism_providers::build_request(&chat_request(false), &deployment, &opts).unwrap();
        let (status, body, content_type) = execute(request).await;
        assert_eq!(status, 200, "{label}: {}", String::from_utf8_lossy(&body));
        assert_eq!(content_type.as_deref(), Some("application/json"), "{label}");
        assert!(!sim.last_request().unwrap().stream, "{label}: routed as non-streaming");
        let completion = prism_providers::translate_response(&deployment, &ctx(), &body)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            completion.choices[0].message.content.as_deref(),
            Some("A whole answer."),
            "{label}"
        );
        assert_eq!(completion.choices[0].finish_reason, Some(FinishReason::Stop), "{label}");
    }
}

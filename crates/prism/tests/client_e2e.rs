//! The Rust client SDK end to end through the real gateway, for every provider: the completion the
//! stream manager assembles from the stream equals the non-streaming completion of the same reply
//! (content, tool calls, finish reason, usage).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

use futures::StreamExt;
use prism_client::Prism;
use prism_server::{Config, Server};
use prism_simulator::{Behavior, Reply, Simulator};
use prism_types::{ChatCompletion, ChatRequest, FinishReason, FunctionDef, Message, Tool};

const KEY: &str = "sk-prism-client-e2e";

fn config(sim: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
[[keys]]
name = "client"
key = "{KEY}"
models = ["*"]
[providers.oa]
kind = "openai"
base_url = "{sim}"
api_key = "k"
[providers.an]
kind = "anthropic"
base_url = "{sim}"
api_key = "k"
[providers.ge]
kind = "gemini"
base_url = "{sim}"
api_key = "k"
[providers.vx]
kind = "vertex"
base_url = "{sim}"
project = "p"
region = "us-central1"
access_token = "t"
[providers.br]
kind = "bedrock"
base_url = "{sim}"
region = "us-east-1"
access_key_id = "AKID"
secret_access_key = "s"
[[models]]
name = "openai"
deployments = [{{ provider = "oa", model = "gpt-4o-mini" }}]
[[models]]
name = "anthropic"
deployments = [{{ provider = "an", model = "claude-sonnet-4-5" }}]
[[models]]
name = "gemini"
deployments = [{{ provider = "ge", model = "gemini-2.5-flash" }}]
[[models]]
name = "vertex"
deployments = [{{ provider = "vx", model = "gemini-2.5-flash" }}]
[[models]]
name = "bedrock"
deployments = [{{ provider = "br", model = "amazon.nova-lite-v1:0" }}]
[[models]]
name = "bedrock-invoke"
deployments = [{{ provider = "br", model = "anthropic.claude-sonnet-4-5-v1:0", bedrock_invoke = true }}]
"#
    )
}

fn request(model: &str, tools: bool) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![Message::User {
            content: "What is the weather in Oslo?".into(),
            name: None,
        }],
        tools: tools.then(|| {
            vec![Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: "get_weather".into(),
                    description: Some("Weather for a city".into()),
                    parameters: Some(serde_json::json!({
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"]
                    })),
                    strict: None,
                },
            }]
        }),
        ..ChatRequest::default()
    }
}

/// What must agree between the streamed and the whole completion (ids and timestamps may not).
fn essence(c: &ChatCompletion) -> serde_json::Value {
    let choice = &c.choices[0];
    let calls: Vec<serde_json::Value> = choice
        .message
        .tool_calls
        .iter()
        .flatten()
        .map(|call| {
            assert!(!call.id.is_empty(), "tool call without id");
            let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
            serde_json::json!({"name": call.function.name, "arguments": args})
        })
        .collect();
    let usage = c.usage.as_ref().expect("usage");
    serde_json::json!({
        "content": choice.message.content.clone().filter(|t| !t.is_empty()),
        "tool_calls": calls,
        "finish_reason": choice.finish_reason,
        "usage": [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_manager_final_completion_equals_non_streaming_for_every_provider() {
    let sim = Simulator::start().await.unwrap();
    let config = Config::from_toml(&config(&sim.base_url()), &|_| None).unwrap();
    let server = Server::bind(config).await.unwrap().spawn();
    let client = Prism::new(KEY).base_url(server.base_url());

    let text = Reply::text("Oslo is 4°C and cloudy — bring a jacket 🧥.").usage(21, 13);
    let call = Reply::tool_call("get_weather", r#"{"city":"Oslo","unit":"celsius"}"#).usage(30, 9);
    for model in ["openai", "anthropic", "gemini", "vertex", "bedrock", "bedrock-invoke"] {
        for (reply, tools) in [(&text, false), (&call, true)] {
            sim.push_behavior(Behavior::Reply(reply.clone()));
            let mut stream =
                client.chat().completions().stream(request(model, tools)).await.unwrap();
            let mut streamed_text = String::new();
            while let Some(t) = stream.text_stream().next().await {
                streamed_text.push_str(&t.unwrap());
            }
            let streamed = stream.final_completion().await.unwrap();

            sim.push_behavior(Behavior::Reply(reply.clone()));
            let whole = client.chat().completions().create(request(model, tools)).await.unwrap();

            let label = format!("{model} tools={tools}");
            assert_eq!(essence(&streamed), essence(&whole), "{label}");
            assert_eq!(streamed.model, model, "{label}");
            if tools {
                assert_eq!(
                    streamed.choices[0].finish_reason,
                    Some(FinishReason::ToolCalls),
                    "{label}"
                );
            } else {
                assert_eq!(streamed_text, reply.text_content(), "{label}");
                assert_eq!(streamed.choices[0].finish_reason, Some(FinishReason::Stop), "{label}");
            }
        }
    }
}

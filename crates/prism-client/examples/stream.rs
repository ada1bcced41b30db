//! Streams a completion chunk by chunk: `PRISM_API_KEY=sk-prism-… cargo run -p prism-client --example stream`.

use futures::StreamExt;
use prism_client::Prism;
use prism_types::{ChatRequest, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Prism::from_env()?;
    let request = ChatRequest {
        model: std::env::var("PRISM_MODEL").unwrap_or_else(|_| "demo/anthropic".into()),
        messages: vec![Message::User { content: "Say hello".into(), name: None }],
        ..ChatRequest::default()
    };
    let mut stream = client.chat().completions().create_stream(request).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(text) = chunk.choices.first().and_then(|c| c.delta.content.as_deref()) {
            print!("{text}");
        }
    }
    println!();
    Ok(())
}

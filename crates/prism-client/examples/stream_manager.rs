//! The stream manager: print text as it arrives, then the assembled completion and its usage.
//! `PRISM_API_KEY=sk-prism-… cargo run -p prism-client --example stream_manager`.

use futures::StreamExt;
use prism_client::Prism;
use prism_types::{ChatRequest, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Prism::from_env()?;
    let request = ChatRequest {
        model: std::env::var("PRISM_MODEL").unwrap_or_else(|_| "demo/gemini".into()),
        messages: vec![Message::User { content: "Say hello".into(), name: None }],
        ..ChatRequest::default()
    };
    let mut s = client.chat().completions().stream(request).await?;
    while let Some(text) = s.text_stream().next().await {
        print!("{}", text?);
    }
    let completion = s.final_completion().await?;
    println!();
    println!("finish_reason: {:?}", completion.choices.first().and_then(|c| c.finish_reason));
    println!("usage: {:?}", completion.usage);
    Ok(())
}

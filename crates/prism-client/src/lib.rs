//! Rust client SDK for Prism (or any OpenAI-compatible endpoint): non-streaming completions,
//! typed chunk streams, and a stream manager that assembles the final completion.
//!
//! ```no_run
//! # async fn demo() -> Result<(), prism_client::Error> {
//! use futures::StreamExt;
//! use prism_client::Prism;
//! use prism_types::{ChatRequest, Message};
//!
//! let client = Prism::new("sk-prism-dev").base_url("http://127.0.0.1:8080");
//! let request = ChatRequest {
//!     model: "demo/anthropic".into(),
//!     messages: vec![Message::User { content: "Say hello".into(), name: None }],
//!     ..ChatRequest::default()
//! };
//! let mut s = client.chat().completions().stream(request).await?;
//! while let Some(text) = s.text_stream().next().await {
//!     print!("{}", text?);
//! }
//! let completion = s.final_completion().await?;
//! println!("\n{:?}", completion.usage);
//! # Ok(()) }
//! ```

mod accumulate;
mod client;
mod error;
mod stream;

pub use accumulate::Accumulator;
pub use client::{Chat, Completions, Prism, RetryPolicy};
pub use error::{ApiError, Error};
pub use stream::{ChatCompletionStream, ChunkStream, TextStream};

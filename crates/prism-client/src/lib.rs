#![doc = include_str!("../README.md")]

mod accumulate;
mod client;
mod error;
mod stream;

pub use accumulate::Accumulator;
pub use client::{Chat, Completions, Prism, RetryPolicy};
pub use error::{ApiError, Error};
pub use stream::{ChatCompletionStream, ChunkStream, TextStream};

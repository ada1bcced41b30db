#![doc = include_str!("../README.md")]

mod chunk;
mod completion;
mod error;
pub mod json;
mod request;
mod usage;

pub use chunk::{ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
pub use completion::{ChatCompletion, Choice, ResponseMessage};
pub use error::{ErrorBody, ErrorObject};
pub use request::{
    ChatRequest, Content, ContentPart, FileRef, FunctionCall, FunctionDef, ImageUrl, InputAudio,
    JsonSchemaFormat, Message, NamedFunction, NamedFunctionName, RequestExtensions, ResponseFormat,
    Stop, StreamOptions, ThinkingBlock, Tool, ToolCall, ToolChoice, ToolChoiceMode,
};
pub use usage::{CompletionTokensDetails, PromptTokensDetails, Usage};

use serde::{Deserialize, Serialize};

/// Why a choice stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end of the turn or a stop sequence.
    Stop,
    /// The token limit was reached.
    Length,
    /// The turn ended with tool calls for the client to run.
    ToolCalls,
    /// Output was withheld or cut by a safety system.
    ContentFilter,
    /// Legacy single function call.
    FunctionCall,
}

impl FinishReason {
    /// The wire name, as OpenAI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::FunctionCall => "function_call",
        }
    }
}

/// The author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Newer name for system instructions on reasoning models.
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// Legacy function result.
    Function,
}

/// `object` value of a non-streaming completion.
pub const OBJECT_COMPLETION: &str = "chat.completion";
/// `object` value of a stream chunk.
pub const OBJECT_CHUNK: &str = "chat.completion.chunk";

//! `chat.completion`: the non-streaming response.

use serde::{Deserialize, Serialize};

use crate::{FinishReason, OBJECT_COMPLETION, Role, ThinkingBlock, ToolCall, Usage};

/// A whole completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// Completion id.
    pub id: String,
    /// Always `chat.completion`.
    #[serde(default = "completion_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The public model name.
    #[serde(default)]
    pub model: String,
    /// The generated choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend fingerprint; `null` for translated providers.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
    /// Service tier, only when the provider reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

fn completion_object() -> String {
    OBJECT_COMPLETION.to_owned()
}

impl ChatCompletion {
    /// An empty completion to be filled in.
    pub fn new(id: impl Into<String>, created: u64, model: impl Into<String>) -> Self {
        ChatCompletion {
            id: id.into(),
            object: completion_object(),
            created,
            model: model.into(),
            choices: Vec::new(),
            usage: None,
            system_fingerprint: None,
            service_tier: None,
        }
    }
}

/// One generated choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Which choice.
    #[serde(default)]
    pub index: u32,
    /// The assistant message.
    pub message: ResponseMessage,
    /// Log probabilities; `null` for every provider but OpenAI.
    #[serde(default)]
    pub logprobs: Option<serde_json::Value>,
    /// Why the choice ended.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

/// The assistant message of a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    pub role: Role,
    /// The answer text; `null` when the turn is only tool calls.
    #[serde(default)]
    pub content: Option<String>,
    /// A refusal, or `null`.
    #[serde(default)]
    pub refusal: Option<String>,
    /// The model's reasoning, when the provider exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The model's thinking blocks with their signatures, and redacted blocks, in order
    /// (Anthropic and Bedrock Claude; LiteLLM's extension). Send them back unchanged in
    /// [`crate::Message::Assistant`] to continue a tool loop with thinking on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::request::known_thinking_blocks"
    )]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
    /// Tool calls the model made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

impl Default for ResponseMessage {
    fn default() -> Self {
        ResponseMessage {
            role: Role::Assistant,
            content: None,
            refusal: None,
            reasoning_content: None,
            thinking_blocks: None,
            tool_calls: None,
        }
    }
}

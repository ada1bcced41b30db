//! `chat.completion.chunk`: one streamed event.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{FinishReason, OBJECT_CHUNK, Role, ThinkingBlock, Usage};

/// One `chat.completion.chunk` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// Identical in every chunk of a stream.
    pub id: String,
    /// Always `chat.completion.chunk`.
    #[serde(default = "chunk_object")]
    pub object: String,
    /// Unix seconds; identical in every chunk of a stream.
    #[serde(default)]
    pub created: u64,
    /// The public model name.
    #[serde(default)]
    pub model: String,
    /// Backend fingerprint; `null` for translated providers.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
    /// Service tier, only when the provider reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Per-choice deltas; empty on the usage chunk (some upstreams send `null`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub choices: Vec<ChunkChoice>,
    /// Usage, on the final usage chunk (or on the finish chunk, see the server's usage policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

fn chunk_object() -> String {
    OBJECT_CHUNK.to_owned()
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

impl ChatChunk {
    /// A chunk with no choices and no usage, to be filled in.
    pub fn new(id: impl Into<String>, created: u64, model: impl Into<String>) -> Self {
        ChatChunk {
            id: id.into(),
            object: chunk_object(),
            created,
            model: model.into(),
            system_fingerprint: None,
            service_tier: None,
            choices: Vec::new(),
            usage: None,
        }
    }

    /// Adds a choice with `delta` and no finish reason.
    pub fn with_delta(mut self, index: u32, delta: Delta) -> Self {
        self.choices.push(ChunkChoice { index, delta, logprobs: None, finish_reason: None });
        self
    }

    /// Adds a choice with an empty delta and `finish_reason`.
    pub fn with_finish(mut self, index: u32, finish_reason: FinishReason) -> Self {
        self.choices.push(ChunkChoice {
            index,
            delta: Delta::default(),
            logprobs: None,
            finish_reason: Some(finish_reason),
        });
        self
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// One choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Which choice (0 unless `n` > 1).
    #[serde(default)]
    pub index: u32,
    /// What this chunk adds.
    #[serde(default)]
    pub delta: Delta,
    /// Log probabilities; `null` for every provider but OpenAI.
    #[serde(default)]
    pub logprobs: Option<serde_json::Value>,
    /// `null` until the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

/// What a chunk adds to a choice. Absent fields are omitted on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant`, on the first delta of a choice only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A fragment of the answer text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A fragment of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// A fragment of the model's reasoning (thinking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Replay data of thinking blocks (LiteLLM's extension): a block's `signature` once it is
    /// known, as `{"type":"thinking","thinking":"","signature":…}` closing the thinking text
    /// streamed so far in `reasoning_content`, and whole `redacted_thinking` blocks.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::request::known_thinking_blocks"
    )]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
    /// Tool-call fragments, merged by clients on `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

impl Delta {
    /// The first delta of a choice: `{"role":"assistant"}`.
    pub fn role() -> Self {
        Delta { role: Some(Role::Assistant), ..Delta::default() }
    }

    /// A text fragment.
    pub fn content(text: impl Into<String>) -> Self {
        Delta { content: Some(text.into()), ..Delta::default() }
    }

    /// A reasoning fragment.
    pub fn reasoning(text: impl Into<String>) -> Self {
        Delta { reasoning_content: Some(text.into()), ..Delta::default() }
    }

    /// A delta carrying one thinking block (a signature or a redacted block).
    pub fn thinking_block(block: ThinkingBlock) -> Self {
        Delta { thinking_blocks: Some(vec![block]), ..Delta::default() }
    }

    /// Whether the delta carries nothing at all.
    pub fn is_empty(&self) -> bool {
        self.role.is_none()
            && self.content.is_none()
            && self.refusal.is_none()
            && self.reasoning_content.is_none()
            && self.thinking_blocks.is_none()
            && self.tool_calls.is_none()
    }
}

/// A fragment of a tool call. `id`, `type` and `function.name` come in the first fragment of a
/// call only; later fragments carry `index` and argument text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Which call, counted per response (never a provider's content-block index).
    pub index: u32,
    /// The call's id, first fragment only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, first fragment only.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name and/or argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

impl ToolCallDelta {
    /// The first fragment of a call: index, id, type and name, with empty arguments.
    pub fn start(index: u32, id: impl Into<String>, name: impl Into<String>) -> Self {
        ToolCallDelta {
            index,
            id: Some(id.into()),
            kind: Some("function".to_owned()),
            function: Some(FunctionCallDelta {
                name: Some(name.into()),
                arguments: Some(String::new()),
            }),
        }
    }

    /// A later fragment carrying argument text.
    pub fn arguments(index: u32, arguments: impl Into<String>) -> Self {
        ToolCallDelta {
            index,
            id: None,
            kind: None,
            function: Some(FunctionCallDelta { name: None, arguments: Some(arguments.into()) }),
        }
    }
}

/// Function part of a tool-call fragment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    /// The function's name, first fragment only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A fragment of the JSON arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

//! Bedrock Converse wire types we read: ConverseStream event payloads, the Converse response and
//! error bodies. Every union is a struct of optional members, so new members (Bedrock adds them
//! without notice) and the random `p` padding field are ignored instead of failing the stream.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// An optional string borrowed from the payload when it has no escapes (serde only borrows a
/// `Cow` that is not wrapped in an `Option`).
fn opt_cow<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// `contentBlockStart`.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentBlockStart<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    pub(crate) index: u32,
    #[serde(default, borrow)]
    pub(crate) start: Option<BlockStart<'a>>,
}

/// The `start` union of `contentBlockStart`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockStart<'a> {
    #[serde(rename = "toolUse", default, borrow)]
    pub(crate) tool_use: Option<ToolUseStart<'a>>,
    /// A server-side tool's result block: never a client tool call.
    #[serde(rename = "toolResult", default)]
    pub(crate) tool_result: Option<serde::de::IgnoredAny>,
}

/// `start.toolUse`.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolUseStart<'a> {
    #[serde(rename = "toolUseId", borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    /// `server_tool_use` marks tools Bedrock runs itself.
    #[serde(rename = "type", default, borrow, deserialize_with = "opt_cow")]
    pub(crate) kind: Option<Cow<'a, str>>,
}

/// `contentBlockDelta`.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentBlockDelta<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    pub(crate) index: u32,
    #[serde(default, borrow)]
    pub(crate) delta: Option<BlockDelta<'a>>,
}

/// The `delta` union of `contentBlockDelta`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockDelta<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(rename = "toolUse", default, borrow)]
    pub(crate) tool_use: Option<ToolUseDelta<'a>>,
    #[serde(rename = "reasoningContent", default, borrow)]
    pub(crate) reasoning: Option<ReasoningDelta<'a>>,
}

/// `delta.toolUse`: a fragment of the tool input's JSON text.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolUseDelta<'a> {
    #[serde(default, borrow)]
    pub(crate) input: Cow<'a, str>,
}

/// `delta.reasoningContent`: one of text, signature or redacted content.
#[derive(Debug, Deserialize)]
pub(crate) struct ReasoningDelta<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(crate) text: Option<Cow<'a, str>>,
    /// Closes the reasoning block: needed to replay it.
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    pub(crate) signature: Option<Cow<'a, str>>,
    /// Encrypted reasoning, base64 (a blob in the JSON protocol).
    #[serde(rename = "redactedContent", default, borrow, deserialize_with = "opt_cow")]
    pub(crate) redacted_content: Option<Cow<'a, str>>,
}

/// `contentBlockStop`.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentBlockStop {
    #[serde(rename = "contentBlockIndex", default)]
    pub(crate) index: u32,
}

/// `messageStop`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageStop<'a> {
    #[serde(rename = "stopReason", default, borrow, deserialize_with = "opt_cow")]
    pub(crate) stop_reason: Option<Cow<'a, str>>,
}

/// `metadata`.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) usage: Option<ConverseUsage>,
}

/// `usage` of `metadata` and of the Converse response. Cache counters come under two names.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConverseUsage {
    #[serde(rename = "inputTokens", default)]
    pub(crate) input_tokens: u64,
    #[serde(rename = "outputTokens", default)]
    pub(crate) output_tokens: u64,
    #[serde(rename = "cacheReadInputTokens", default)]
    pub(crate) cache_read: Option<u64>,
    #[serde(rename = "cacheReadInputTokenCount", default)]
    pub(crate) cache_read_count: Option<u64>,
    #[serde(rename = "cacheWriteInputTokens", default)]
    pub(crate) cache_write: Option<u64>,
    #[serde(rename = "cacheWriteInputTokenCount", default)]
    pub(crate) cache_write_count: Option<u64>,
}

/// The Converse (non-streaming) response.
#[derive(Debug, Deserialize)]
pub(crate) struct ConverseResponse {
    #[serde(default)]
    pub(crate) output: Option<ConverseOutput>,
    #[serde(rename = "stopReason", default)]
    pub(crate) stop_reason: Option<String>,
    #[serde(default)]
    pub(crate) usage: Option<ConverseUsage>,
}

/// `output` of the Converse response.
#[derive(Debug, Deserialize)]
pub(crate) struct ConverseOutput {
    #[serde(default)]
    pub(crate) message: Option<OutputMessage>,
}

/// `output.message`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputMessage {
    #[serde(default)]
    pub(crate) content: Vec<OutputBlock>,
}

/// One content block of the response message.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputBlock {
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(rename = "toolUse", default)]
    pub(crate) tool_use: Option<OutputToolUse>,
    #[serde(rename = "reasoningContent", default)]
    pub(crate) reasoning: Option<OutputReasoning>,
}

/// `toolUse` block of the response: the input is a whole JSON value.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputToolUse {
    #[serde(rename = "toolUseId")]
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) input: serde_json::Value,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
}

/// `reasoningContent` block of the response: reasoning text or redacted content.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputReasoning {
    #[serde(rename = "reasoningText", default)]
    pub(crate) reasoning_text: Option<OutputReasoningText>,
    /// Encrypted reasoning, base64.
    #[serde(rename = "redactedContent", default)]
    pub(crate) redacted_content: Option<String>,
}

/// `reasoningContent.reasoningText`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutputReasoningText {
    #[serde(default)]
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) signature: Option<String>,
}

/// An exception frame's payload or an HTTP error body. Read leniently from a JSON value, because
/// AWS spells the fields more than one way (`message` / `Message`, `__type` / `code`) and a body
/// holding both spellings must not lose the message.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    pub(crate) message: Option<String>,
    /// `__type` (e.g. `com.amazon.coral.validate#ValidationException`), when the body names it.
    pub(crate) kind: Option<String>,
    pub(crate) original_status: Option<u64>,
    pub(crate) original_message: Option<String>,
}

impl ErrorBody {
    /// Parses `bytes`; anything that is not a JSON object gives an empty body.
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) else {
            return ErrorBody::default();
        };
        let text = |keys: &[&str]| {
            keys.iter().find_map(|k| map.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
        };
        ErrorBody {
            message: text(&["message", "Message"]),
            kind: text(&["__type", "code", "Code"]),
            original_status: map.get("originalStatusCode").and_then(serde_json::Value::as_u64),
            original_message: text(&["originalMessage"]),
        }
    }
}

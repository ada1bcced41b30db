//! Assembles a whole completion from streamed chunks, as the OpenAI SDKs' stream helpers do.

use std::collections::BTreeMap;

use prism_types::{
    ChatChunk, ChatCompletion, Choice, Delta, FinishReason, FunctionCall, ResponseMessage,
    ThinkingBlock, ToolCall, Usage,
};

/// What one choice has accumulated.
#[derive(Debug, Default, Clone)]
struct ChoiceAcc {
    content: Option<String>,
    refusal: Option<String>,
    reasoning: Option<String>,
    /// Closed thinking blocks (signed or redacted), in arrival order.
    thinking_blocks: Vec<ThinkingBlock>,
    /// Byte offset in `reasoning` where the open thinking block's text starts.
    open_thinking: usize,
    /// Tool calls by their stream `index` (indices need not start at 0 or be dense).
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<FinishReason>,
}

impl ChoiceAcc {
    fn reasoning_len(&self) -> usize {
        self.reasoning.as_ref().map_or(0, String::len)
    }

    /// Applies a delta's `thinking_blocks` after its `reasoning_content` (see [`Accumulator`]).
    fn thinking(&mut self, delta: &Delta) {
        for block in delta.thinking_blocks.iter().flatten() {
            match block {
                ThinkingBlock::Thinking { thinking, signature }
                    if signature.as_deref().is_none_or(str::is_empty) =>
                {
                    // A text fragment (servers that stream thinking only here); LiteLLM also
                    // repeats `reasoning_content` here, which must not count twice.
                    if delta.reasoning_content.is_none() && !thinking.is_empty() {
                        self.reasoning.get_or_insert_with(String::new).push_str(thinking);
                    }
                }
                ThinkingBlock::Thinking { thinking, signature } => {
                    let text = if thinking.is_empty() {
                        self.reasoning.as_deref().unwrap_or("").get(self.open_thinking..)
                    } else {
                        Some(thinking.as_str())
                    };
                    self.thinking_blocks.push(ThinkingBlock::Thinking {
                        thinking: text.unwrap_or("").to_owned(),
                        signature: signature.clone(),
                    });
                    self.open_thinking = self.reasoning_len();
                }
                ThinkingBlock::RedactedThinking { .. } => {
                    self.thinking_blocks.push(block.clone());
                    self.open_thinking = self.reasoning_len();
                }
            }
        }
    }
}

/// Accumulates chunks into a [`ChatCompletion`]: text fields concatenated, tool calls merged by
/// index (id and name from the first fragment, arguments concatenated), the finish reason per
/// choice, and the usage from whichever chunk carried it.
///
/// Thinking blocks (`delta.thinking_blocks`, see Prism's stream docs) are reassembled into
/// `message.thinking_blocks`, ready to be echoed in the next assistant message:
/// - a `thinking` entry with a signature closes the open block: its text is all
///   `reasoning_content` received since the previous block closed (or the entry's own text when
///   a server sends whole blocks), its signature the entry's;
/// - a `redacted_thinking` entry is kept as it is, and also closes the open block;
/// - a `thinking` entry without a signature is a text fragment, counted only when its delta has
///   no `reasoning_content`;
/// - within a delta, `reasoning_content` counts before `thinking_blocks`; reasoning text that no
///   signature closed (a stream cut short) stays in `reasoning_content` only.
#[derive(Debug, Default, Clone)]
pub struct Accumulator {
    id: String,
    created: u64,
    model: String,
    system_fingerprint: Option<String>,
    service_tier: Option<String>,
    choices: BTreeMap<u32, ChoiceAcc>,
    usage: Option<Usage>,
}

fn append(slot: &mut Option<String>, text: &Option<String>) {
    if let Some(text) = text {
        slot.get_or_insert_with(String::new).push_str(text);
    }
}

impl Accumulator {
    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        if self.created == 0 {
            self.created = chunk.created;
        }
        if self.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if chunk.system_fingerprint.is_some() {
            self.system_fingerprint.clone_from(&chunk.system_fingerprint);
        }
        if chunk.service_tier.is_some() {
            self.service_tier.clone_from(&chunk.service_tier);
        }
        if chunk.usage.is_some() {
            self.usage.clone_from(&chunk.usage);
        }
        for choice in &chunk.choices {
            let acc = self.choices.entry(choice.index).or_default();
            let delta = &choice.delta;
            append(&mut acc.content, &delta.content);
            append(&mut acc.refusal, &delta.refusal);
            append(&mut acc.reasoning, &delta.reasoning_content);
            acc.thinking(delta);
            for call in delta.tool_calls.iter().flatten() {
                let entry = acc.tool_calls.entry(call.index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    kind: "function".to_owned(),
                    function: FunctionCall { name: String::new(), arguments: String::new() },
                });
                if let Some(id) = &call.id
                    && entry.id.is_empty()
                {
                    entry.id.clone_from(id);
                }
                if let Some(function) = &call.function {
                    if let Some(name) = &function.name
                        && entry.function.name.is_empty()
                    {
                        entry.function.name.clone_from(name);
                    }
                    if let Some(args) = &function.arguments {
                        entry.function.arguments.push_str(args);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                acc.finish_reason = choice.finish_reason;
            }
        }
    }

    /// The text content of choice 0 so far.
    pub fn content(&self) -> &str {
        self.choices.get(&0).and_then(|c| c.content.as_deref()).unwrap_or("")
    }

    /// The usage, once a chunk carried it.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The completion assembled so far.
    pub fn completion(&self) -> ChatCompletion {
        let mut completion = ChatCompletion::new(self.id.clone(), self.created, self.model.clone());
        completion.system_fingerprint.clone_from(&self.system_fingerprint);
        completion.service_tier.clone_from(&self.service_tier);
        completion.usage.clone_from(&self.usage);
        completion.choices = self
            .choices
            .iter()
            .map(|(&index, acc)| {
                let tool_calls: Vec<ToolCall> = acc
                    .tool_calls
                    .values()
                    .cloned()
                    .map(|mut call| {
                        // A call that streamed no argument text means "no arguments".
                        if call.function.arguments.is_empty() {
                            call.function.arguments = "{}".to_owned();
                        }
                        call
                    })
                    .collect();
                // The role-only first delta carries `content: ""`; an answer made only of tool
                // calls has null content, as in OpenAI's non-streaming responses.
                let content = match &acc.content {
                    Some(text) if text.is_empty() && !tool_calls.is_empty() => None,
                    other => other.clone(),
                };
                Choice {
                    index,
                    message: ResponseMessage {
                        content,
                        refusal: acc.refusal.clone(),
                        reasoning_content: acc.reasoning.clone(),
                        thinking_blocks: (!acc.thinking_blocks.is_empty())
                            .then(|| acc.thinking_blocks.clone()),
                        tool_calls: if tool_calls.is_empty() { None } else { Some(tool_calls) },
                        ..ResponseMessage::default()
                    },
                    logprobs: None,
                    finish_reason: acc.finish_reason,
                }
            })
            .collect();
        completion
    }
}

#[cfg(test)]
mod tests {
    use prism_types::ToolCallDelta;

    use super::*;

    #[test]
    fn merges_text_tools_by_index_and_usage() {
        let mut acc = Accumulator::default();
        let base = || ChatChunk::new("chatcmpl-1", 5, "m");
        acc.push(&base().with_delta(0, Delta { content: Some(String::new()), ..Delta::role() }));
        acc.push(&base().with_delta(0, Delta::content("Hel")));
        acc.push(&base().with_delta(0, Delta::reasoning("think")));
        acc.push(&base().with_delta(0, Delta::content("lo")));
        // Indices from an upstream that starts at 1 and sends a whole call in one fragment.
        acc.push(&base().with_delta(
            0,
            Delta {
                tool_calls: Some(vec![ToolCallDelta::start(1, "call_a", "f")]),
                ..Delta::default()
            },
        ));
        acc.push(&base().with_delta(
            0,
            Delta {
                tool_calls: Some(vec![ToolCallDelta::arguments(1, "{\"a\":")]),
                ..Delta::default()
            },
        ));
        acc.push(&base().with_delta(
            0,
            Delta { tool_calls: Some(vec![ToolCallDelta::arguments(1, "1}")]), ..Delta::default() },
        ));
        acc.push(&base().with_delta(
            0,
            Delta {
                tool_calls: Some(vec![ToolCallDelta::start(3, "call_b", "g")]),
                ..Delta::default()
            },
        ));
        acc.push(&base().with_finish(0, FinishReason::ToolCalls));
        acc.push(&base().with_usage(Usage::new(4, 6)));
        let c = acc.completion();
        assert_eq!(c.id, "chatcmpl-1");
        let m = &c.choices[0].message;
        assert_eq!(m.content.as_deref(), Some("Hello"));
        assert_eq!(m.reasoning_content.as_deref(), Some("think"));
        let calls = m.tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.as_str(), calls[0].function.name.as_str()), ("call_a", "f"));
        assert_eq!(calls[0].function.arguments, "{\"a\":1}");
        assert_eq!(calls[1].function.arguments, "{}");
        assert_eq!(c.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(c.usage.unwrap().total_tokens, 10);
    }

    fn thinking_delta(blocks: Vec<ThinkingBlock>) -> Delta {
        Delta { thinking_blocks: Some(blocks), ..Delta::default() }
    }

    #[test]
    fn thinking_blocks_are_reassembled_from_reasoning_and_signatures() {
        let mut acc = Accumulator::default();
        let base = || ChatChunk::new("x", 1, "m");
        let push = |acc: &mut Accumulator, d: Delta| acc.push(&base().with_delta(0, d));
        push(&mut acc, Delta { content: Some(String::new()), ..Delta::role() });
        push(&mut acc, Delta::reasoning("First "));
        push(&mut acc, Delta::reasoning("block."));
        push(&mut acc, thinking_delta(vec![ThinkingBlock::signature("sig1")]));
        push(&mut acc, thinking_delta(vec![ThinkingBlock::RedactedThinking { data: "r".into() }]));
        // Adaptive thinking with the display omitted: a signature and no text at all.
        push(&mut acc, thinking_delta(vec![ThinkingBlock::signature("sig2")]));
        push(&mut acc, Delta::content("Calling."));
        // Reasoning and its signature in one delta: the text counts first.
        push(
            &mut acc,
            Delta {
                reasoning_content: Some("Third.".into()),
                ..thinking_delta(vec![ThinkingBlock::signature("sig3")])
            },
        );
        push(
            &mut acc,
            Delta {
                tool_calls: Some(vec![ToolCallDelta::start(0, "toolu_1", "f")]),
                ..Delta::default()
            },
        );
        // Reasoning that no signature closed is not a block.
        push(&mut acc, Delta::reasoning(" Cut"));
        acc.push(&base().with_finish(0, FinishReason::ToolCalls));
        let m = acc.completion().choices.remove(0).message;
        assert_eq!(m.reasoning_content.as_deref(), Some("First block.Third. Cut"));
        assert_eq!(
            m.thinking_blocks,
            Some(vec![
                ThinkingBlock::Thinking {
                    thinking: "First block.".into(),
                    signature: Some("sig1".into())
                },
                ThinkingBlock::RedactedThinking { data: "r".into() },
                ThinkingBlock::Thinking { thinking: String::new(), signature: Some("sig2".into()) },
                ThinkingBlock::Thinking {
                    thinking: "Third.".into(),
                    signature: Some("sig3".into())
                },
            ])
        );
        // The assembled message replays as the next request's assistant turn unchanged.
        let echoed: prism_types::Message = serde_json::from_value(serde_json::json!({
            "role": "assistant",
            "tool_calls": m.tool_calls,
            "thinking_blocks": m.thinking_blocks,
        }))
        .unwrap();
        let prism_types::Message::Assistant { thinking_blocks, .. } = echoed else {
            panic!("not an assistant message");
        };
        assert_eq!(thinking_blocks, m.thinking_blocks);
    }

    #[test]
    fn thinking_blocks_from_litellm_style_and_whole_block_servers() {
        let mut acc = Accumulator::default();
        let base = || ChatChunk::new("x", 1, "m");
        let fragment = |t: &str| ThinkingBlock::Thinking { thinking: t.into(), signature: None };
        // LiteLLM repeats each reasoning fragment in `thinking_blocks`: counted once.
        acc.push(&base().with_delta(
            0,
            Delta {
                reasoning_content: Some("Lite".into()),
                ..thinking_delta(vec![fragment("Lite")])
            },
        ));
        acc.push(&base().with_delta(0, thinking_delta(vec![fragment("LLM")])));
        // An empty signature does not close a block.
        acc.push(&base().with_delta(
            0,
            thinking_delta(vec![ThinkingBlock::Thinking {
                thinking: String::new(),
                signature: Some(String::new()),
            }]),
        ));
        acc.push(&base().with_delta(0, thinking_delta(vec![ThinkingBlock::signature("s1")])));
        // A server that sends the whole block with its text.
        acc.push(&base().with_delta(
            0,
            thinking_delta(vec![ThinkingBlock::Thinking {
                thinking: "Whole.".into(),
                signature: Some("s2".into()),
            }]),
        ));
        let m = acc.completion().choices.remove(0).message;
        assert_eq!(m.reasoning_content.as_deref(), Some("LiteLLM"));
        assert_eq!(
            m.thinking_blocks,
            Some(vec![
                ThinkingBlock::Thinking {
                    thinking: "LiteLLM".into(),
                    signature: Some("s1".into())
                },
                ThinkingBlock::Thinking { thinking: "Whole.".into(), signature: Some("s2".into()) },
            ])
        );

        // Reasoning without any thinking blocks (DeepSeek, OpenAI-compatible servers): none.
        let mut acc = Accumulator::default();
        acc.push(&base().with_delta(0, Delta::reasoning("plain")));
        assert_eq!(acc.completion().choices[0].message.thinking_blocks, None);
    }

    #[test]
    fn tool_only_answer_has_null_content() {
        let mut acc = Accumulator::default();
        let base = || ChatChunk::new("x", 1, "m");
        acc.push(&base().with_delta(0, Delta { content: Some(String::new()), ..Delta::role() }));
        acc.push(&base().with_delta(
            0,
            Delta { tool_calls: Some(vec![ToolCallDelta::start(0, "c", "f")]), ..Delta::default() },
        ));
        assert_eq!(acc.completion().choices[0].message.content, None);
    }
}

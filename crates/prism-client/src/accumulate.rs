//! Assembles a whole completion from streamed chunks, as the OpenAI SDKs' stream helpers do.

use std::collections::BTreeMap;

use prism_types::{
    ChatChunk, ChatCompletion, Choice, FinishReason, FunctionCall, ResponseMessage, ToolCall, Usage,
};

/// What one choice has accumulated.
#[derive(Debug, Default, Clone)]
struct ChoiceAcc {
    content: Option<String>,
    refusal: Option<String>,
    reasoning: Option<String>,
    /// Tool calls by their stream `index` (indices need not start at 0 or be dense).
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<FinishReason>,
}

/// Accumulates chunks into a [`ChatCompletion`]: text fields concatenated, tool calls merged by
/// index (id and name from the first fragment, arguments concatenated), the finish reason per
/// choice, and the usage from whichever chunk carried it.
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
    use prism_types::{Delta, ToolCallDelta};

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

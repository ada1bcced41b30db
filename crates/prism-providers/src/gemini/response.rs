//! Maps `GenerateContentResponse` objects (stream chunks or a whole body) onto OpenAI choices.
//! One [`ResponseMapper`] serves both the streaming pipeline and the non-streaming translator
//! through the [`Sink`] trait, so both paths share ids, indices and finish reasons.

use prism_types::{
    ChatCompletion, Choice, CompletionTokensDetails, FinishReason, FunctionCall,
    PromptTokensDetails, ResponseMessage, ToolCall, Usage,
};

use super::tool_id;
use super::wire::{Candidate, GenerateContentResponse, UsageMetadata};
use crate::translate::{Emitter, OutChunk};

/// Candidates with an index at or above this are ignored: Gemini allows at most 8, and per-choice
/// state must stay bounded whatever the upstream sends.
pub(crate) const MAX_CANDIDATES: u32 = 16;

/// Where mapped output goes.
pub(crate) trait Sink {
    fn content(&mut self, choice: u32, text: &str);
    fn reasoning(&mut self, choice: u32, text: &str);
    fn tool_call(&mut self, choice: u32, id: &str, name: &str, arguments: &str);
    fn finish(&mut self, choice: u32, reason: FinishReason);
    fn native_stop_reason(&mut self, reason: &str);
    fn usage(&mut self, usage: Usage);
}

/// Per-candidate state.
#[derive(Debug, Default, Clone)]
struct CandidateState {
    /// Tool calls emitted so far: the next call's OpenAI index.
    tool_calls: u32,
    /// Any text, reasoning or tool call was emitted.
    produced: bool,
    /// A `finishReason` arrived; later parts for this candidate are dropped.
    finished: bool,
}

/// The response-wide mapping state.
#[derive(Debug)]
pub(crate) struct ResponseMapper {
    /// Seed of generated tool-call ids (the OpenAI chunk id).
    id_seed: String,
    candidates: Vec<CandidateState>,
    /// Some candidate finished, or the prompt was blocked: the response is complete.
    complete: bool,
}

impl ResponseMapper {
    pub(crate) fn new(id_seed: impl Into<String>) -> Self {
        ResponseMapper { id_seed: id_seed.into(), candidates: Vec::new(), complete: false }
    }

    /// Whether a terminal signal (a `finishReason`, or a blocked prompt) was seen.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Indices of candidates that produced output but got no `finishReason`.
    pub(crate) fn unfinished(&self) -> impl Iterator<Item = u32> + '_ {
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.produced && !c.finished)
            .map(|(i, _)| i as u32)
    }

    /// Maps one response object.
    pub(crate) fn apply(&mut self, resp: &GenerateContentResponse<'_>, sink: &mut impl Sink) {
        for candidate in &resp.candidates {
            self.candidate(candidate, sink);
        }
        if let Some(usage) = resp.usage_metadata.as_ref().and_then(map_usage) {
            sink.usage(usage);
        }
        // A blocked prompt: no candidates at all, only the feedback (sent in the first chunk).
        let block = resp.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_deref());
        if let Some(reason) =
            block.filter(|_| resp.candidates.is_empty() && self.candidates.is_empty())
        {
            self.complete = true;
            if let Some(state) = slot(&mut self.candidates, 0) {
                state.finished = true;
            }
            sink.native_stop_reason(&format!("prompt_blocked:{reason}"));
            sink.finish(0, FinishReason::ContentFilter);
        }
    }

    fn candidate(&mut self, candidate: &Candidate<'_>, sink: &mut impl Sink) {
        let choice = candidate.index.unwrap_or(0);
        let ResponseMapper { id_seed, candidates, complete } = self;
        let Some(state) = slot(candidates, choice) else { return };
        if state.finished {
            return;
        }
        for part in candidate.content.iter().flat_map(|c| c.parts.iter()) {
            if let Some(call) = &part.function_call {
                // Vertex's streamed-argument fragments have no name; Prism never asks for them.
                let Some(name) = call.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                let id = tool_id::encode(
                    id_seed,
                    choice,
                    state.tool_calls,
                    call.id.as_deref(),
                    part.thought_signature.as_deref(),
                );
                let args = call
                    .args
                    .map(|raw| compact_json(raw.get()))
                    .filter(|a| a != "null")
                    .unwrap_or_default();
                sink.tool_call(choice, &id, name, &args);
                state.tool_calls += 1;
                state.produced = true;
            } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                if part.thought == Some(true) {
                    sink.reasoning(choice, text);
                } else {
                    sink.content(choice, text);
                }
                state.produced = true;
            }
            // executableCode, codeExecutionResult, inlineData, …: server-side or media, not mapped.
        }
        if let Some(native) = candidate.finish_reason.as_deref() {
            let (reason, exact) = map_finish_reason(native, state.tool_calls > 0, state.produced);
            state.finished = true;
            *complete = true;
            if !exact {
                sink.native_stop_reason(native);
            }
            sink.finish(choice, reason);
        }
    }
}

/// The state of candidate `index`, created on first use; `None` beyond [`MAX_CANDIDATES`].
fn slot(candidates: &mut Vec<CandidateState>, index: u32) -> Option<&mut CandidateState> {
    if index >= MAX_CANDIDATES {
        return None;
    }
    let i = index as usize;
    if candidates.len() <= i {
        candidates.resize_with(i + 1, CandidateState::default);
    }
    candidates.get_mut(i)
}

/// Gemini `finishReason` → OpenAI, and whether the mapping is exact (if not, the caller records
/// the native value).
///
/// | Gemini | OpenAI |
/// |---|---|
/// | `STOP` | `stop`, or `tool_calls` when the candidate made calls |
/// | `MAX_TOKENS` | `length` |
/// | `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY`, `IMAGE_PROHIBITED_CONTENT`, `IMAGE_RECITATION`, `LANGUAGE`, `MODEL_ARMOR`, `JAILBREAK` | `content_filter` |
/// | `OTHER`, `IMAGE_OTHER`, `NO_IMAGE` | `content_filter` when nothing was produced, else `stop` |
/// | `MALFORMED_FUNCTION_CALL`, `UNEXPECTED_TOOL_CALL`, `TOO_MANY_TOOL_CALLS`, `MALFORMED_RESPONSE`, `MISSING_THOUGHT_SIGNATURE`, `FINISH_REASON_UNSPECIFIED`, unknown | `stop` (`tool_calls` if calls were made) |
pub(crate) fn map_finish_reason(
    native: &str,
    made_calls: bool,
    produced: bool,
) -> (FinishReason, bool) {
    let stop = if made_calls { FinishReason::ToolCalls } else { FinishReason::Stop };
    match native {
        "STOP" => (stop, true),
        "MAX_TOKENS" => (FinishReason::Length, true),
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE"
        | "MODEL_ARMOR"
        | "JAILBREAK" => (FinishReason::ContentFilter, false),
        "OTHER" | "IMAGE_OTHER" | "NO_IMAGE" if !produced => (FinishReason::ContentFilter, false),
        _ => (stop, false),
    }
}

/// `usageMetadata` → OpenAI usage; `None` for a snapshot without counts (Vertex's intermediate
/// chunks), which must not replace a real one.
///
/// prompt = `promptTokenCount` + `toolUsePromptTokenCount`; completion = `candidatesTokenCount` +
/// `thoughtsTokenCount` (OpenAI counts reasoning as completion); total = prompt + completion;
/// `cachedContentTokenCount` → `cached_tokens`; `thoughtsTokenCount` → `reasoning_tokens`.
pub(crate) fn map_usage(meta: &UsageMetadata) -> Option<Usage> {
    if meta.prompt_token_count.is_none()
        && meta.candidates_token_count.is_none()
        && meta.thoughts_token_count.is_none()
    {
        return None;
    }
    let prompt = meta
        .prompt_token_count
        .unwrap_or(0)
        .saturating_add(meta.tool_use_prompt_token_count.unwrap_or(0));
    let thoughts = meta.thoughts_token_count;
    let completion = meta.candidates_token_count.unwrap_or(0).saturating_add(thoughts.unwrap_or(0));
    let mut usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
        ..Usage::default()
    };
    if let Some(cached) = meta.cached_content_token_count {
        usage.prompt_tokens_details =
            Some(PromptTokensDetails { cached_tokens: Some(cached), ..Default::default() });
    }
    if let Some(reasoning) = thoughts {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: Some(reasoning),
            ..Default::default()
        });
    }
    Some(usage)
}

/// Removes insignificant whitespace from valid JSON text, keeping key order and string bytes
/// (Gemini pretty-prints `args` with spaces; OpenAI arguments are compact).
pub(crate) fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Streams mapped output through the [`Emitter`].
pub(crate) struct EmitSink<'a> {
    pub(crate) emitter: &'a mut Emitter,
    pub(crate) out: &'a mut Vec<OutChunk>,
}

impl Sink for EmitSink<'_> {
    fn content(&mut self, choice: u32, text: &str) {
        self.emitter.content(choice, text, self.out);
    }

    fn reasoning(&mut self, choice: u32, text: &str) {
        self.emitter.reasoning(choice, text, self.out);
    }

    fn tool_call(&mut self, choice: u32, id: &str, name: &str, arguments: &str) {
        self.emitter.tool_call(choice, id, name, arguments, self.out);
    }

    fn finish(&mut self, choice: u32, reason: FinishReason) {
        self.emitter.finish(choice, reason, self.out);
    }

    fn native_stop_reason(&mut self, reason: &str) {
        self.emitter.set_native_stop_reason(reason);
    }

    fn usage(&mut self, usage: Usage) {
        self.emitter.set_usage(usage);
    }
}

/// Collects mapped output into a non-streaming completion.
#[derive(Debug, Default)]
pub(crate) struct CompletionSink {
    choices: Vec<Option<ChoiceAcc>>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct ChoiceAcc {
    content: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
}

impl CompletionSink {
    fn acc(&mut self, choice: u32) -> &mut ChoiceAcc {
        let i = choice as usize;
        if self.choices.len() <= i {
            self.choices.resize_with(i + 1, || None);
        }
        self.choices[i].get_or_insert_with(ChoiceAcc::default)
    }

    /// The completion: choices in index order; text `null` only when the turn is all tool calls.
    pub(crate) fn into_completion(self, mut completion: ChatCompletion) -> ChatCompletion {
        for (index, acc) in self.choices.into_iter().enumerate() {
            let Some(acc) = acc else { continue };
            let has_calls = !acc.tool_calls.is_empty();
            let content =
                if acc.content.is_empty() && has_calls { None } else { Some(acc.content) };
            let default_finish =
                if has_calls { FinishReason::ToolCalls } else { FinishReason::Stop };
            completion.choices.push(Choice {
                index: index as u32,
                message: ResponseMessage {
                    content,
                    reasoning_content: (!acc.reasoning.is_empty()).then_some(acc.reasoning),
                    tool_calls: has_calls.then_some(acc.tool_calls),
                    ..ResponseMessage::default()
                },
                logprobs: None,
                finish_reason: Some(acc.finish.unwrap_or(default_finish)),
            });
        }
        completion.usage = self.usage;
        completion
    }
}

impl Sink for CompletionSink {
    fn content(&mut self, choice: u32, text: &str) {
        self.acc(choice).content.push_str(text);
    }

    fn reasoning(&mut self, choice: u32, text: &str) {
        self.acc(choice).reasoning.push_str(text);
    }

    fn tool_call(&mut self, choice: u32, id: &str, name: &str, arguments: &str) {
        let arguments = if arguments.is_empty() { "{}".to_owned() } else { arguments.to_owned() };
        self.acc(choice).tool_calls.push(ToolCall {
            id: id.to_owned(),
            kind: "function".to_owned(),
            function: FunctionCall { name: name.to_owned(), arguments },
        });
    }

    fn finish(&mut self, choice: u32, reason: FinishReason) {
        self.acc(choice).finish.get_or_insert(reason);
    }

    fn native_stop_reason(&mut self, _reason: &str) {}

    fn usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reason_table() {
        use FinishReason::*;
        let cases: &[(&str, bool, bool, FinishReason, bool)] = &[
            ("STOP", false, true, Stop, true),
            ("STOP", true, true, ToolCalls, true),
            ("MAX_TOKENS", false, true, Length, true),
            ("MAX_TOKENS", true, true, Length, true),
            ("SAFETY", false, false, ContentFilter, false),
            ("RECITATION", false, true, ContentFilter, false),
            ("BLOCKLIST", false, false, ContentFilter, false),
            ("PROHIBITED_CONTENT", false, false, ContentFilter, false),
            ("SPII", false, true, ContentFilter, false),
            ("IMAGE_SAFETY", false, false, ContentFilter, false),
            ("MODEL_ARMOR", false, false, ContentFilter, false),
            ("OTHER", false, false, ContentFilter, false),
            ("OTHER", false, true, Stop, false),
            ("MALFORMED_FUNCTION_CALL", false, false, Stop, false),
            ("MISSING_THOUGHT_SIGNATURE", false, false, Stop, false),
            ("TOO_MANY_TOOL_CALLS", true, true, ToolCalls, false),
            ("FINISH_REASON_UNSPECIFIED", false, true, Stop, false),
            ("SOMETHING_NEW", false, true, Stop, false),
        ];
        for &(native, calls, produced, want, exact) in cases {
            assert_eq!(
                map_finish_reason(native, calls, produced),
                (want, exact),
                "{native} calls={calls}"
            );
        }
    }

    #[test]
    fn usage_includes_thoughts_and_tool_prompt_and_skips_empty_snapshots() {
        let meta = UsageMetadata {
            prompt_token_count: Some(29),
            candidates_token_count: Some(10),
            cached_content_token_count: Some(8),
            thoughts_token_count: Some(202),
            tool_use_prompt_token_count: Some(3),
        };
        let usage = map_usage(&meta).unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
            (32, 212, 244)
        );
        assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, Some(8));
        assert_eq!(usage.completion_tokens_details.unwrap().reasoning_tokens, Some(202));
        assert_eq!(map_usage(&UsageMetadata::default()), None);
        let plain =
            map_usage(&UsageMetadata { prompt_token_count: Some(5), ..UsageMetadata::default() })
                .unwrap();
        assert_eq!(plain, Usage::new(5, 0));
    }

    #[test]
    fn compacting_keeps_strings_and_order() {
        assert_eq!(
            compact_json("{\"b\": 1, \"a\": [1, 2],\n \"s\": \"x y \\\" z\"}"),
            "{\"b\":1,\"a\":[1,2],\"s\":\"x y \\\" z\"}"
        );
        assert_eq!(compact_json("{ }"), "{}");
        assert_eq!(compact_json("{\"k\": \"\\\\\", \"j\": 1}"), "{\"k\":\"\\\\\",\"j\":1}");
    }
}

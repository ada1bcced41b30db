//! The translator contract shared by every provider, and [`Emitter`], which enforces the OpenAI
//! stream invariants so that each provider module only maps its own events.
//!
//! Invariants every translated stream keeps (the emitter guarantees them):
//! - one chunk id, one `created` and the public model name on every chunk;
//! - the first delta of each choice is `{"role":"assistant","content":""}`;
//! - deltas never carry empty strings; tool-call `index` is counted per choice and per response,
//!   never taken from a provider's content-block index; id, type and name come in a call's first
//!   fragment only; a call that streamed no argument text ends with `"{}"`;
//! - `finish_reason` appears exactly once per started choice;
//! - usage: with `include_usage`, one final chunk with `choices: []`; without it and with
//!   `usage_on_finish`, the finish chunk waits for the usage and carries it; otherwise usage is
//!   only reported in the [`StreamSummary`].
//!
//! # Thinking blocks (Anthropic, Bedrock Claude)
//!
//! Replaying a tool loop with thinking on needs each thinking block back with its signature, and
//! redacted blocks as they came. Streams expose them with LiteLLM's `delta.thinking_blocks`
//! extension, without buffering any thinking text:
//! - thinking text streams as `delta.reasoning_content`, as for every provider;
//! - when a block's signature arrives, one delta carries
//!   `thinking_blocks: [{"type":"thinking","thinking":"","signature":"…"}]`, closing that block;
//! - a redacted block is one delta with `thinking_blocks: [{"type":"redacted_thinking","data":"…"}]`.
//!
//! A client rebuilds the blocks in arrival order: a block's text is all `reasoning_content`
//! received since the previous thinking block closed (within one delta, `reasoning_content`
//! counts before `thinking_blocks`), its signature the one in the closing entry; redacted blocks
//! are kept as they are. `prism_client::Accumulator` does exactly this. (LiteLLM's proxy also
//! repeats every text fragment inside `thinking_blocks`; Prism does not, so the text travels once
//! and stays under the output guardrails' reasoning scan.) Non-streaming responses carry whole
//! blocks in `message.thinking_blocks`.

use bytes::Bytes;
use prism_types::{ChatChunk, Delta, FinishReason, ThinkingBlock, ToolCallDelta, Usage};

use crate::TranslateError;

/// Per-stream facts fixed before the first upstream byte arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamContext {
    /// The chunk id for synthesized streams, e.g. `chatcmpl-<uuid>`.
    pub id: String,
    /// Unix seconds stamped on every chunk.
    pub created: u64,
    /// The public model name the client asked for.
    pub model: String,
    /// The client asked for `stream_options.include_usage`.
    pub include_usage: bool,
    /// When the client did not ask for usage, attach it to the chunk that carries `finish_reason`.
    pub usage_on_finish: bool,
}

impl StreamContext {
    /// A context with the usage policy off (no usage to the client).
    pub fn new(id: impl Into<String>, created: u64, model: impl Into<String>) -> Self {
        StreamContext {
            id: id.into(),
            created,
            model: model.into(),
            include_usage: false,
            usage_on_finish: false,
        }
    }
}

/// One chunk for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct OutChunk {
    /// The chunk, parsed or built.
    pub chunk: ChatChunk,
    /// When set, the exact JSON to send as the event's `data` (pass-through: no re-serialisation).
    /// It always describes the same chunk as [`OutChunk::chunk`].
    pub raw: Option<Bytes>,
}

impl OutChunk {
    /// A chunk the translator built; the encoder serialises it.
    pub fn built(chunk: ChatChunk) -> Self {
        OutChunk { chunk, raw: None }
    }

    /// Appends the chunk's JSON (the raw bytes when present) to `buf`, with U+2028, U+2029 and
    /// U+0085 escaped as everything Prism emits (see [`prism_types::json`]).
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        match &self.raw {
            Some(raw) => buf.extend_from_slice(&prism_types::json::escape_separators(raw)),
            None => prism_types::json::extend(buf, &self.chunk),
        }
    }
}

/// What a stream came to, for logs, metrics and the server's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamSummary {
    /// The final usage, when the upstream reported it.
    pub usage: Option<Usage>,
    /// `(choice index, finish reason)` for every finished choice, in the order they finished.
    pub finish_reasons: Vec<(u32, FinishReason)>,
    /// The provider's own stop reason when it had no exact OpenAI equivalent (e.g. `pause_turn`).
    pub native_stop_reason: Option<String>,
}

/// A provider's whole streaming pipeline: framing (SSE or AWS event-stream) plus translation.
///
/// The server feeds it response body bytes exactly as they arrive, in pieces of any size.
pub trait ByteTranslator: Send {
    /// Consumes the next piece of the upstream body, appending any chunks it completes to `out`.
    ///
    /// # Errors
    /// A mid-stream upstream error event ([`TranslateError::Upstream`]), broken framing or JSON.
    /// After an error the stream is over: the caller sends one error event and no `[DONE]`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError>;

    /// Ends the stream at upstream EOF, appending the closing chunks (held finish, usage chunk).
    ///
    /// # Errors
    /// [`TranslateError::Truncated`] when the upstream stopped without its terminal event, or an
    /// error found in leftover bytes (Gemini appends a raw JSON error to a 200 body).
    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError>;

    /// Whether the provider's terminal event was seen; the caller may stop reading then.
    fn is_done(&self) -> bool;
}

/// Per-choice bookkeeping of the emitter.
#[derive(Debug, Default, Clone)]
struct ChoiceState {
    /// The role delta went out.
    started: bool,
    /// The finish reason, once known.
    finish: Option<FinishReason>,
    /// The finish chunk went out (it may be held back for usage).
    finish_sent: bool,
    /// Per OpenAI tool-call index: whether any argument text was sent.
    tool_has_args: Vec<bool>,
}

/// Builds OpenAI chunks from provider events while keeping the stream invariants.
#[derive(Debug)]
pub struct Emitter {
    ctx: StreamContext,
    choices: Vec<ChoiceState>,
    usage: Option<Usage>,
    /// Order in which choices finished, for the summary and for flushing held finishes.
    finish_order: Vec<u32>,
    native_stop_reason: Option<String>,
}

impl Emitter {
    /// An emitter for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        Emitter {
            ctx,
            choices: Vec::new(),
            usage: None,
            finish_order: Vec::new(),
            native_stop_reason: None,
        }
    }

    /// The stream's context.
    pub fn context(&self) -> &StreamContext {
        &self.ctx
    }

    /// A chunk stamped with the stream's id, created and model, without choices.
    pub fn chunk(&self) -> ChatChunk {
        ChatChunk::new(self.ctx.id.clone(), self.ctx.created, self.ctx.model.clone())
    }

    fn state(&mut self, choice: u32) -> &mut ChoiceState {
        let idx = choice as usize;
        if self.choices.len() <= idx {
            self.choices.resize_with(idx + 1, ChoiceState::default);
        }
        &mut self.choices[idx]
    }

    fn push_delta(&mut self, choice: u32, delta: Delta, out: &mut Vec<OutChunk>) {
        self.start(choice, out);
        out.push(OutChunk::built(self.chunk().with_delta(choice, delta)));
    }

    /// Emits the role delta of `choice` unless it went out already.
    pub fn start(&mut self, choice: u32, out: &mut Vec<OutChunk>) {
        let state = self.state(choice);
        if state.started {
            return;
        }
        state.started = true;
        let delta = Delta { content: Some(String::new()), ..Delta::role() };
        out.push(OutChunk::built(self.chunk().with_delta(choice, delta)));
    }

    /// Whether `choice` has started.
    pub fn is_started(&self, choice: u32) -> bool {
        self.choices.get(choice as usize).is_some_and(|c| c.started)
    }

    /// Whether `choice` has a finish reason.
    pub fn is_finished(&self, choice: u32) -> bool {
        self.choices.get(choice as usize).is_some_and(|c| c.finish.is_some())
    }

    /// A fragment of answer text; empty text is skipped.
    pub fn content(&mut self, choice: u32, text: &str, out: &mut Vec<OutChunk>) {
        if !text.is_empty() {
            self.push_delta(choice, Delta::content(text), out);
        }
    }

    /// A fragment of reasoning; empty text is skipped.
    pub fn reasoning(&mut self, choice: u32, text: &str, out: &mut Vec<OutChunk>) {
        if !text.is_empty() {
            self.push_delta(choice, Delta::reasoning(text), out);
        }
    }

    /// A thinking block's replay data: a signature-only block closing the thinking text streamed
    /// so far, or a redacted block (see the module docs). Blocks with nothing to replay (no
    /// signature, no data) are skipped.
    pub fn thinking_block(&mut self, choice: u32, block: ThinkingBlock, out: &mut Vec<OutChunk>) {
        if block.is_replayable() {
            self.push_delta(choice, Delta::thinking_block(block), out);
        }
    }

    /// A fragment of a refusal; empty text is skipped.
    pub fn refusal(&mut self, choice: u32, text: &str, out: &mut Vec<OutChunk>) {
        if !text.is_empty() {
            self.push_delta(
                choice,
                Delta { refusal: Some(text.to_owned()), ..Delta::default() },
                out,
            );
        }
    }

    /// Opens a tool call and returns its OpenAI index (counted per choice, from 0).
    pub fn tool_call_start(
        &mut self,
        choice: u32,
        id: &str,
        name: &str,
        out: &mut Vec<OutChunk>,
    ) -> u32 {
        self.start(choice, out);
        let state = self.state(choice);
        let index = state.tool_has_args.len() as u32;
        state.tool_has_args.push(false);
        let delta = Delta {
            tool_calls: Some(vec![ToolCallDelta::start(index, id, name)]),
            ..Delta::default()
        };
        out.push(OutChunk::built(self.chunk().with_delta(choice, delta)));
        index
    }

    /// A fragment of the arguments of the call at `index`; empty text is skipped.
    pub fn tool_call_arguments(
        &mut self,
        choice: u32,
        index: u32,
        text: &str,
        out: &mut Vec<OutChunk>,
    ) {
        if text.is_empty() {
            return;
        }
        if let Some(has) = self.state(choice).tool_has_args.get_mut(index as usize) {
            *has = true;
        }
        let delta = Delta {
            tool_calls: Some(vec![ToolCallDelta::arguments(index, text)]),
            ..Delta::default()
        };
        self.push_delta(choice, delta, out);
    }

    /// A whole tool call in one delta (providers that send calls complete); `""` becomes `"{}"`.
    pub fn tool_call(
        &mut self,
        choice: u32,
        id: &str,
        name: &str,
        arguments: &str,
        out: &mut Vec<OutChunk>,
    ) -> u32 {
        self.start(choice, out);
        let state = self.state(choice);
        let index = state.tool_has_args.len() as u32;
        state.tool_has_args.push(true);
        let mut call = ToolCallDelta::start(index, id, name);
        if let Some(f) = call.function.as_mut() {
            f.arguments =
                Some(if arguments.is_empty() { "{}".to_owned() } else { arguments.to_owned() });
        }
        let delta = Delta { tool_calls: Some(vec![call]), ..Delta::default() };
        out.push(OutChunk::built(self.chunk().with_delta(choice, delta)));
        index
    }

    /// How many tool calls `choice` has opened.
    pub fn tool_call_count(&self, choice: u32) -> u32 {
        self.choices.get(choice as usize).map_or(0, |c| c.tool_has_args.len() as u32)
    }

    /// Records the provider's own stop reason when it has no exact OpenAI equivalent.
    pub fn set_native_stop_reason(&mut self, reason: impl Into<String>) {
        self.native_stop_reason = Some(reason.into());
    }

    /// Ends `choice` with `reason`. A second call for the same choice is ignored (the first
    /// reason wins). Calls that streamed no arguments get `"{}"` first. The finish chunk is held
    /// back when usage must ride on it and is not final yet.
    pub fn finish(&mut self, choice: u32, reason: FinishReason, out: &mut Vec<OutChunk>) {
        if self.is_finished(choice) {
            return;
        }
        self.start(choice, out);
        let empty_calls: Vec<u32> = self
            .state(choice)
            .tool_has_args
            .iter()
            .enumerate()
            .filter(|(_, has)| !**has)
            .map(|(i, _)| i as u32)
            .collect();
        for index in empty_calls {
            self.tool_call_arguments(choice, index, "{}", out);
        }
        self.state(choice).finish = Some(reason);
        self.finish_order.push(choice);
        if !self.holds_finish() {
            self.state(choice).finish_sent = true;
            out.push(OutChunk::built(self.chunk().with_finish(choice, reason)));
        }
    }

    fn holds_finish(&self) -> bool {
        !self.ctx.include_usage && self.ctx.usage_on_finish
    }

    /// Records usage. Providers report cumulative snapshots, so this replaces, never adds.
    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// The usage recorded so far.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Closes the stream after the provider's terminal event: finishes started choices that got no
    /// reason with `stop`, sends held finish chunks (usage on the last), then the usage chunk when
    /// the client asked for it.
    pub fn end(&mut self, out: &mut Vec<OutChunk>) -> StreamSummary {
        let unfinished: Vec<u32> = (0..self.choices.len() as u32)
            .filter(|&c| {
                self.choices[c as usize].started && self.choices[c as usize].finish.is_none()
            })
            .collect();
        for choice in unfinished {
            self.finish(choice, FinishReason::Stop, out);
        }
        let held: Vec<u32> = self
            .finish_order
            .iter()
            .copied()
            .filter(|&c| !self.choices[c as usize].finish_sent)
            .collect();
        let last = held.len().saturating_sub(1);
        for (i, choice) in held.into_iter().enumerate() {
            let state = &mut self.choices[choice as usize];
            state.finish_sent = true;
            let reason = state.finish.unwrap_or(FinishReason::Stop);
            let mut chunk = self.chunk().with_finish(choice, reason);
            if i == last {
                chunk.usage = self.usage.clone();
            }
            out.push(OutChunk::built(chunk));
        }
        if self.ctx.include_usage
            && let Some(usage) = self.usage.clone()
        {
            out.push(OutChunk::built(self.chunk().with_usage(usage)));
        }
        self.summary()
    }

    /// The summary of what was emitted so far.
    pub fn summary(&self) -> StreamSummary {
        StreamSummary {
            usage: self.usage.clone(),
            finish_reasons: self
                .finish_order
                .iter()
                .filter_map(|&c| self.choices[c as usize].finish.map(|r| (c, r)))
                .collect(),
            native_stop_reason: self.native_stop_reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(out: &[OutChunk]) -> String {
        out.iter()
            .map(|c| {
                let mut buf = Vec::new();
                c.write_json(&mut buf);
                String::from_utf8(buf).unwrap()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn ctx(include_usage: bool, usage_on_finish: bool) -> StreamContext {
        StreamContext {
            include_usage,
            usage_on_finish,
            ..StreamContext::new("chatcmpl-t", 7, "pub")
        }
    }

    #[test]
    fn text_stream_with_usage_chunk() {
        let mut e = Emitter::new(ctx(true, true));
        let mut out = Vec::new();
        e.content(0, "Hel", &mut out);
        e.content(0, "", &mut out);
        e.content(0, "lo", &mut out);
        e.set_usage(Usage::new(3, 2));
        e.finish(0, FinishReason::Stop, &mut out);
        e.finish(0, FinishReason::Length, &mut out);
        let summary = e.end(&mut out);
        insta::assert_snapshot!(render(&out), @r#"
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}
        "#);
        assert_eq!(summary.finish_reasons, vec![(0, FinishReason::Stop)]);
    }

    #[test]
    fn thinking_blocks_follow_their_reasoning_and_empty_ones_are_skipped() {
        let mut e = Emitter::new(ctx(false, false));
        let mut out = Vec::new();
        // Replay data can open a choice (a redacted block first).
        e.thinking_block(0, ThinkingBlock::RedactedThinking { data: "opaque".into() }, &mut out);
        e.reasoning(0, "Hmm.", &mut out);
        e.thinking_block(0, ThinkingBlock::signature("sig"), &mut out);
        e.thinking_block(0, ThinkingBlock::signature(""), &mut out);
        e.thinking_block(0, ThinkingBlock::RedactedThinking { data: String::new() }, &mut out);
        let unsigned = ThinkingBlock::Thinking { thinking: "text".into(), signature: None };
        e.thinking_block(0, unsigned, &mut out);
        e.finish(0, FinishReason::Stop, &mut out);
        insta::assert_snapshot!(render(&out), @r#"
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"redacted_thinking","data":"opaque"}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"reasoning_content":"Hmm."},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"sig"}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}
        "#);
    }

    #[test]
    fn usage_rides_on_held_finish_chunk() {
        let mut e = Emitter::new(ctx(false, true));
        let mut out = Vec::new();
        e.content(0, "x", &mut out);
        e.finish(0, FinishReason::Length, &mut out);
        assert_eq!(out.len(), 2, "finish must be held until usage is known");
        e.set_usage(Usage::new(1, 1));
        e.end(&mut out);
        assert_eq!(out.len(), 3);
        let last = &out[2].chunk;
        assert_eq!(last.choices[0].finish_reason, Some(FinishReason::Length));
        assert_eq!(last.usage.as_ref().map(|u| u.total_tokens), Some(2));
    }

    #[test]
    fn no_usage_to_client_when_policy_off() {
        let mut e = Emitter::new(ctx(false, false));
        let mut out = Vec::new();
        e.set_usage(Usage::new(1, 1));
        e.finish(0, FinishReason::Stop, &mut out);
        let summary = e.end(&mut out);
        assert!(out.iter().all(|c| c.chunk.usage.is_none()));
        assert_eq!(summary.usage, Some(Usage::new(1, 1)));
        // An empty reply still gets its role delta and exactly one finish.
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn tool_indices_count_per_choice_and_empty_arguments_become_braces() {
        let mut e = Emitter::new(ctx(false, false));
        let mut out = Vec::new();
        let a = e.tool_call_start(0, "toolu_a", "now", &mut out);
        let b = e.tool_call_start(0, "toolu_b", "weather", &mut out);
        e.tool_call_arguments(0, b, "{\"city\":\"Oslo\"}", &mut out);
        let c = e.tool_call(1, "call_c", "now", "", &mut out);
        e.finish(0, FinishReason::ToolCalls, &mut out);
        e.finish(1, FinishReason::ToolCalls, &mut out);
        e.end(&mut out);
        assert_eq!((a, b, c), (0, 1, 0));
        insta::assert_snapshot!(render(&out), @r#"
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_a","type":"function","function":{"name":"now","arguments":""}}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"toolu_b","type":"function","function":{"name":"weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":1,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"now","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}
        {"id":"chatcmpl-t","object":"chat.completion.chunk","created":7,"model":"pub","system_fingerprint":null,"choices":[{"index":1,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}
        "#);
    }
}

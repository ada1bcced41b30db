//! The Anthropic stream state machine: one event JSON in, OpenAI chunks out (through the
//! [`Emitter`]), plus the SSE pipeline that feeds it.

use super::wire::{self, Block, Event, WireUsage};
use super::{JSON_TOOL, error_from_wire, map_stop_reason, usage_from_wire};
use crate::TranslateError;
use crate::translate::{ByteTranslator, Emitter, OutChunk, StreamContext, StreamSummary};
use prism_sse::{Decoder, Frame};
use prism_types::{FinishReason, ThinkingBlock};

const PROVIDER: &str = "anthropic";

/// Where the translator is in the event grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No `message_start` yet.
    Start,
    /// Inside the message: blocks, deltas, `message_delta`.
    InMessage,
    /// `message_stop` was handled; the stream is complete.
    Done,
    /// An `error` event or an invalid sequence ended the stream.
    Failed,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Start => "waiting for message_start",
            State::InMessage => "inside a message",
            State::Done => "after message_stop",
            State::Failed => "after an error",
        }
    }
}

/// What an open content block turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    /// `text`: `text_delta` → `delta.content`.
    Text,
    /// `thinking`: `thinking_delta` → `delta.reasoning_content`, `signature_delta` → a
    /// signature-only `delta.thinking_blocks` entry.
    Thinking,
    /// A client `tool_use` block: `input_json_delta` → argument fragments of OpenAI call `index`.
    ToolUse {
        /// The OpenAI tool-call index (counted per response by the emitter).
        index: u32,
        /// Whether any non-empty argument text went out.
        saw_args: bool,
    },
    /// The synthetic `response_format` tool: its input is the answer, streamed as content.
    Json,
    /// Anything without deltas to surface: server tools and their results, redacted thinking
    /// (surfaced whole at its start), and block types this translator does not know.
    Ignored,
}

/// Translates Anthropic Messages stream events (one JSON payload at a time) into OpenAI chunks.
///
/// Used directly by Bedrock's InvokeModelWithResponseStream, whose `chunk` events carry the same
/// JSON, and wrapped by [`StreamPipeline`] for the SSE API.
#[derive(Debug)]
pub struct EventTranslator {
    emitter: Emitter,
    state: State,
    /// The `id` of the first `message_start`, to tell a harmless duplicate from a spliced stream.
    message_id: Option<String>,
    /// Open and closed blocks by Anthropic content-block index.
    blocks: Vec<(u64, BlockKind)>,
    /// Usage merged from `message_start` and every `message_delta`.
    usage: WireUsage,
    /// Whether any usage was reported at all.
    saw_usage: bool,
    /// The last `stop_reason` of a `message_delta`.
    stop_reason: Option<String>,
    /// The summary, once `message_stop` was handled.
    summary: Option<StreamSummary>,
    /// The answer came through the synthetic JSON tool.
    json_answer: bool,
}

impl EventTranslator {
    /// A translator for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        EventTranslator {
            emitter: Emitter::new(ctx),
            state: State::Start,
            message_id: None,
            blocks: Vec::new(),
            usage: WireUsage::default(),
            saw_usage: false,
            stop_reason: None,
            summary: None,
            json_answer: false,
        }
    }

    /// Handles one Anthropic event payload (its `type` field decides what it is).
    ///
    /// # Errors
    /// [`TranslateError::Upstream`] for an `error` event, [`TranslateError::InvalidJson`] for a
    /// payload that is not an event, and [`TranslateError::UnexpectedEvent`] for a second message
    /// spliced into the stream or events after the stream ended.
    pub fn feed_json(
        &mut self,
        data: &[u8],
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        let event: Event<'_> = serde_json::from_slice(data).map_err(|source| {
            self.state = State::Failed;
            TranslateError::InvalidJson {
                provider: PROVIDER,
                context: "stream event".into(),
                source,
            }
        })?;
        let result = self.handle(&event, out);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Ends the stream at the end of the upstream body.
    ///
    /// # Errors
    /// [`TranslateError::Truncated`] unless `message_stop` was seen.
    pub fn finish(&mut self, _out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        match (&self.summary, self.state) {
            (Some(summary), State::Done) => Ok(summary.clone()),
            _ => Err(TranslateError::Truncated { provider: PROVIDER }),
        }
    }

    /// Whether `message_stop` was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let kind = event.kind.as_ref();
        match self.state {
            State::Done | State::Failed if kind == "ping" => return Ok(()),
            State::Done | State::Failed => return Err(self.unexpected(kind)),
            State::Start | State::InMessage => {}
        }
        match kind {
            "message_start" => self.message_start(event, out),
            "content_block_start" => {
                self.ensure_started(out);
                self.block_start(event, out)
            }
            "content_block_delta" => {
                self.ensure_started(out);
                self.block_delta(event, out);
                Ok(())
            }
            "content_block_stop" => {
                self.block_stop(event, out);
                Ok(())
            }
            "message_delta" => {
                self.ensure_started(out);
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(usage) = &event.usage {
                    self.merge_usage(usage);
                }
                Ok(())
            }
            "message_stop" => {
                self.message_stop(out);
                Ok(())
            }
            "error" => {
                let err = event.error.clone().unwrap_or_default();
                Err(TranslateError::Upstream(error_from_wire(None, &err)))
            }
            // `ping` and event types added after this was written.
            _ => Ok(()),
        }
    }

    fn unexpected(&self, event: &str) -> TranslateError {
        TranslateError::UnexpectedEvent {
            provider: PROVIDER,
            event: event.to_owned(),
            state: self.state.label(),
        }
    }

    /// Tolerates Anthropic-compatible servers that start without `message_start`.
    fn ensure_started(&mut self, out: &mut Vec<OutChunk>) {
        if self.state == State::Start {
            self.state = State::InMessage;
            self.emitter.start(0, out);
        }
    }

    fn merge_usage(&mut self, usage: &WireUsage) {
        self.usage.merge(usage);
        self.saw_usage = true;
    }

    fn message_start(
        &mut self,
        event: &Event<'_>,
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        let message: Option<wire::Message> = match event.message {
            Some(raw) => Some(serde_json::from_str(raw.get()).map_err(|source| {
                TranslateError::InvalidJson {
                    provider: PROVIDER,
                    context: "message_start".into(),
                    source,
                }
            })?),
            None => None,
        };
        let id = message.as_ref().and_then(|m| m.id.clone());
        if self.state == State::InMessage {
            // A repeated `message_start` of the same message is harmless; a different message
            // means two responses were spliced together, which no chunk sequence can express.
            return if self.message_id.is_none() || id == self.message_id {
                Ok(())
            } else {
                Err(self.unexpected("message_start of a second message"))
            };
        }
        self.state = State::InMessage;
        self.message_id = id;
        self.emitter.start(0, out);
        if let Some(message) = message {
            if let Some(usage) = &message.usage {
                self.merge_usage(usage);
            }
            // With programmatic tool calling the message can start with complete blocks.
            for block in &message.content {
                self.whole_block(block, out);
            }
        }
        Ok(())
    }

    /// A block that arrives complete (in `message_start.message.content`).
    fn whole_block(&mut self, block: &Block, out: &mut Vec<OutChunk>) {
        match block.kind.as_str() {
            "text" => self.emitter.content(0, block.text.as_deref().unwrap_or(""), out),
            "thinking" => {
                self.emitter.reasoning(0, block.thinking.as_deref().unwrap_or(""), out);
                self.replay_data(block, out);
            }
            "redacted_thinking" => self.replay_data(block, out),
            "tool_use" => {
                let args = block.input.as_ref().map_or("{}", |raw| raw.get());
                self.emitter.tool_call(
                    0,
                    block.id.as_deref().unwrap_or(""),
                    block.name.as_deref().unwrap_or(""),
                    args,
                    out,
                );
            }
            _ => {}
        }
    }

    /// The replay data a `thinking` block carries when it arrives whole (its signature), or a
    /// `redacted_thinking` block (its data), as a `thinking_blocks` delta.
    fn replay_data(&mut self, block: &Block, out: &mut Vec<OutChunk>) {
        let replay = match block.kind.as_str() {
            "thinking" => block.signature.as_deref().map(ThinkingBlock::signature),
            "redacted_thinking" => {
                block.data.clone().map(|data| ThinkingBlock::RedactedThinking { data })
            }
            _ => None,
        };
        if let Some(replay) = replay {
            // Empty signatures (every streamed block starts with one) are skipped here.
            self.emitter.thinking_block(0, replay, out);
        }
    }

    fn block_start(
        &mut self,
        event: &Event<'_>,
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        let Some(raw) = event.content_block else {
            return Ok(());
        };
        let block: Block =
            serde_json::from_str(raw.get()).map_err(|source| TranslateError::InvalidJson {
                provider: PROVIDER,
                context: "content_block_start".into(),
                source,
            })?;
        let kind = match block.kind.as_str() {
            "text" => {
                self.emitter.content(0, block.text.as_deref().unwrap_or(""), out);
                BlockKind::Text
            }
            "thinking" => {
                self.emitter.reasoning(0, block.thinking.as_deref().unwrap_or(""), out);
                self.replay_data(&block, out);
                BlockKind::Thinking
            }
            "redacted_thinking" => {
                // Complete in its start event: no deltas follow.
                self.replay_data(&block, out);
                BlockKind::Ignored
            }
            "tool_use" if block.name.as_deref() == Some(JSON_TOOL) => {
                self.json_answer = true;
                let input = block.input.as_ref().map_or("", |raw| raw.get().trim());
                if input != "{}" {
                    self.emitter.content(0, input, out);
                }
                BlockKind::Json
            }
            "tool_use" => {
                let id = block.id.as_deref().unwrap_or("");
                let name = block.name.as_deref().unwrap_or("");
                let index = self.emitter.tool_call_start(0, id, name, out);
                // The streaming API opens with `input: {}` and streams the input; a non-empty
                // input here is complete and no deltas follow.
                let input = block.input.as_ref().map_or("", |raw| raw.get().trim());
                let saw_args = !input.is_empty() && input != "{}";
                if saw_args {
                    self.emitter.tool_call_arguments(0, index, input, out);
                }
                BlockKind::ToolUse { index, saw_args }
            }
            // `server_tool_use`, `mcp_tool_use` and the `*_tool_result` blocks are run by
            // Anthropic, not the client.
            _ => BlockKind::Ignored,
        };
        let index = event.index.unwrap_or(0);
        match self.blocks.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = kind,
            None => self.blocks.push((index, kind)),
        }
        Ok(())
    }

    fn block_kind(&mut self, index: u64) -> Option<&mut BlockKind> {
        // Blocks arrive in increasing index order, so the open one is almost always the last.
        self.blocks.iter_mut().rev().find(|(i, _)| *i == index).map(|(_, kind)| kind)
    }

    fn block_delta(&mut self, event: &Event<'_>, out: &mut Vec<OutChunk>) {
        let Some(delta) = &event.delta else {
            return;
        };
        let Some(kind) = self.block_kind(event.index.unwrap_or(0)) else {
            return;
        };
        match (delta.kind.as_deref(), kind) {
            (Some("text_delta"), BlockKind::Text) => {
                self.emitter.content(0, delta.text.as_deref().unwrap_or(""), out);
            }
            (Some("input_json_delta"), BlockKind::Json) => {
                self.emitter.content(0, delta.partial_json.as_deref().unwrap_or(""), out);
            }
            (Some("thinking_delta"), BlockKind::Thinking) => {
                self.emitter.reasoning(0, delta.thinking.as_deref().unwrap_or(""), out);
            }
            (Some("signature_delta"), BlockKind::Thinking) => {
                // Closes the block's text for clients that replay it (see `translate`).
                let signature = delta.signature.as_deref().unwrap_or("");
                self.emitter.thinking_block(0, ThinkingBlock::signature(signature), out);
            }
            (Some("input_json_delta"), BlockKind::ToolUse { index, saw_args }) => {
                let fragment = delta.partial_json.as_deref().unwrap_or("");
                if !fragment.is_empty() {
                    *saw_args = true;
                    let index = *index;
                    self.emitter.tool_call_arguments(0, index, fragment, out);
                }
            }
            // `citations_delta`, server-tool input and delta types added later.
            _ => {}
        }
    }

    fn block_stop(&mut self, event: &Event<'_>, out: &mut Vec<OutChunk>) {
        if let Some(BlockKind::ToolUse { index, saw_args }) =
            self.block_kind(event.index.unwrap_or(0))
            && !*saw_args
        {
            // A call without arguments must still reassemble to valid JSON.
            *saw_args = true;
            let index = *index;
            self.emitter.tool_call_arguments(0, index, "{}", out);
        }
    }

    fn message_stop(&mut self, out: &mut Vec<OutChunk>) {
        self.ensure_started(out);
        let (mut reason, native) = map_stop_reason(self.stop_reason.as_deref());
        if self.json_answer
            && reason == FinishReason::ToolCalls
            && self.emitter.tool_call_count(0) == 0
        {
            reason = FinishReason::Stop;
        }
        if let Some(native) = native {
            self.emitter.set_native_stop_reason(native);
        }
        if self.saw_usage {
            self.emitter.set_usage(usage_from_wire(&self.usage));
        }
        self.emitter.finish(0, reason, out);
        self.summary = Some(self.emitter.end(out));
        self.state = State::Done;
    }
}

/// The streaming pipeline of the Anthropic Messages API: SSE decoding plus [`EventTranslator`].
#[derive(Debug)]
pub struct StreamPipeline {
    decoder: Decoder,
    frames: Vec<Frame>,
    events: EventTranslator,
}

impl StreamPipeline {
    /// A pipeline for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        StreamPipeline {
            decoder: Decoder::new(),
            frames: Vec::new(),
            events: EventTranslator::new(ctx),
        }
    }
}

impl ByteTranslator for StreamPipeline {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let mut result = Ok(());
        for frame in self.frames.drain(..) {
            if let Frame::Event(event) = frame {
                // Some proxies send keep-alive events without data.
                if event.data.as_bytes().iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // Events after `message_stop` are not expected, but the connection may still
                // deliver bytes: stop translating rather than fail a complete answer.
                if self.events.is_done() {
                    break;
                }
                if let Err(e) = self.events.feed_json(event.data.as_bytes(), out) {
                    result = Err(e);
                    break;
                }
            }
        }
        self.frames.clear();
        result?;
        decoded.map_err(|e| TranslateError::Framing { provider: PROVIDER, message: e.to_string() })
    }

    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        self.decoder.finish();
        self.events.finish(out)
    }

    fn is_done(&self) -> bool {
        self.events.is_done()
    }
}

//! Canonical chunks → Anthropic Messages SSE events (spec §5.4).
//!
//! Grammar written: `message_start (block)* message_delta message_stop`, each event with its
//! `event: <type>` line and a `data` whose `type` equals it; `block` is `content_block_start
//! content_block_delta* content_block_stop`; indices are dense from 0 and one block is open at a
//! time. A failure is one `error` event and nothing after it.
//!
//! How canonical deltas become blocks:
//! - `reasoning_content` → a `thinking` block (`thinking_delta`); a `thinking_blocks` entry with
//!   a signature → `signature_delta` and the block closes (a signature with no streamed text gets
//!   a block of its own); a redacted block → a complete `redacted_thinking` start + stop;
//! - `content` and `refusal` → a `text` block (`text_delta`);
//! - tool calls → `tool_use` blocks with `input_json_delta`s. Blocks cannot interleave, so the
//!   first call streams live and a call that starts while another is open is buffered; the open
//!   call is closed early (and the buffered one opened) once its arguments are a complete JSON
//!   value, otherwise at the next text/thinking or at the finish. A call that got no argument
//!   text gets one `{}` delta. Ids are sanitised to `[A-Za-z0-9_-]` (Claude clients replay them
//!   to Anthropic);
//! - `finish_reason` closes the open block and flushes buffered calls; `message_delta` waits for
//!   the usage chunk (`choices: []`) or for [`StreamEncoder::finish`].
//!
//! Only choice 0 is encoded (Messages has one answer per request).
//!
//! Usage: the canonical stream reports usage only at the end, so `message_start` carries the
//! input estimate given with [`MessagesEncoder::with_input_tokens`] (0 when none was given) and
//! zero cache and output counts; the final `message_delta` has the real cumulative counts.
//!
//! Stop reasons: `stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` → `tool_use`,
//! `content_filter` → `refusal`. A matched stop sequence is not visible in canonical chunks
//! (the provider's native stop reason only reaches the translator's summary), so `stop_sequence`
//! is never produced here and `stop_sequence` is always `null`.

use bytes::BytesMut;
use prism_sse::EventRef;
use prism_types::{
    ChatChunk, Delta, ErrorObject, FinishReason, ThinkingBlock, ToolCallDelta, Usage,
};
use serde::Serialize;

use super::{AnthropicUsage, ErrorEvent, sanitize_tool_id, stop_reason, stream_error_type};
use crate::{EncodeContext, StreamEncoder};

/// The Messages stream encoder: a state machine from canonical chunks to Anthropic events.
#[derive(Debug)]
pub struct MessagesEncoder {
    ctx: EncodeContext,
    /// Input tokens announced in `message_start`.
    input_estimate: u64,
    /// `message_start` went out.
    started: bool,
    /// `message_stop` or `error` went out: nothing more is written.
    ended: bool,
    /// The index the next block gets.
    next_index: u32,
    /// The block currently open.
    open: Option<Open>,
    /// Tool calls by canonical index.
    tools: Vec<ToolState>,
    /// The finish reason of choice 0, once seen.
    finish: Option<FinishReason>,
    /// The latest usage seen.
    usage: Option<Usage>,
    /// Reused JSON scratch.
    json: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    /// A tool call, by canonical index.
    Tool(usize),
}

#[derive(Debug, Clone, Copy)]
struct Open {
    index: u32,
    kind: Kind,
}

#[derive(Debug, Default)]
struct ToolState {
    id: String,
    name: String,
    /// Argument text not yet written (the call's block is not open yet).
    pending: String,
    /// All argument text seen, for the completeness check.
    seen: String,
    /// Lifecycle of the call's block.
    phase: Phase,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Buffered: its block has not started.
    #[default]
    Waiting,
    /// Its block is the open one.
    Open,
    /// Its block was closed; later fragments are dropped.
    Closed,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Text { text: &'a str },
    Thinking { thinking: &'a str, signature: &'a str },
    RedactedThinking { data: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: Empty },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(clippy::enum_variant_names, reason = "the names are Anthropic's delta types")]
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart { message: StartMessage<'a> },
    ContentBlockStart { index: u32, content_block: BlockStart<'a> },
    ContentBlockDelta { index: u32, delta: BlockDelta<'a> },
    ContentBlockStop { index: u32 },
    MessageDelta { delta: MessageDeltaBody, usage: AnthropicUsage },
    MessageStop,
    Ping,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Ping => "ping",
        }
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [Empty; 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
struct MessageDeltaBody {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

impl MessagesEncoder {
    /// A new encoder; `message_start` announces 0 input tokens (see
    /// [`MessagesEncoder::with_input_tokens`]).
    pub fn new(ctx: EncodeContext) -> Self {
        MessagesEncoder {
            ctx,
            input_estimate: 0,
            started: false,
            ended: false,
            next_index: 0,
            open: None,
            tools: Vec::new(),
            finish: None,
            usage: None,
            json: Vec::with_capacity(256),
        }
    }

    /// Sets the input tokens `message_start` announces, e.g.
    /// [`super::estimate_input_tokens`] of the request (Claude Code's context accounting reads
    /// them there; the final `message_delta` corrects them with the upstream's count).
    #[must_use]
    pub fn with_input_tokens(mut self, input_tokens: u64) -> Self {
        self.input_estimate = input_tokens;
        self
    }

    fn emit(&mut self, out: &mut BytesMut, event: &Event<'_>) {
        self.json.clear();
        prism_types::json::extend(&mut self.json, event);
        // Serialised JSON is UTF-8; the event names have no line breaks, so this cannot fail.
        let data = std::str::from_utf8(&self.json).unwrap_or_default();
        let _ = prism_sse::write_event(
            out,
            &EventRef { event: Some(event.name()), data, id: None, retry: None },
        );
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let ctx = std::mem::replace(
            &mut self.ctx,
            EncodeContext { id: String::new(), created: 0, model: String::new() },
        );
        let usage =
            AnthropicUsage { input_tokens: self.input_estimate, ..AnthropicUsage::default() };
        let event = Event::MessageStart {
            message: StartMessage {
                id: &ctx.id,
                kind: "message",
                role: "assistant",
                model: &ctx.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage,
            },
        };
        self.emit(out, &event);
        self.ctx = ctx;
    }

    fn start_block(&mut self, out: &mut BytesMut, kind: Kind, block: &BlockStart<'_>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        self.emit(out, &Event::ContentBlockStart { index, content_block: clone_start(block) });
        self.open = Some(Open { index, kind });
        index
    }

    fn delta(&mut self, out: &mut BytesMut, index: u32, delta: BlockDelta<'_>) {
        self.emit(out, &Event::ContentBlockDelta { index, delta });
    }

    /// Closes the open block (a tool block with no argument text gets `{}` first).
    fn close_open(&mut self, out: &mut BytesMut) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let Kind::Tool(i) = open.kind {
            let empty = self.tools.get(i).is_some_and(|t| t.seen.trim().is_empty());
            if empty {
                self.delta(out, open.index, BlockDelta::InputJsonDelta { partial_json: "{}" });
            }
            if let Some(t) = self.tools.get_mut(i) {
                t.phase = Phase::Closed;
            }
        }
        self.emit(out, &Event::ContentBlockStop { index: open.index });
    }

    /// Opens the block of buffered call `i` and writes what it buffered.
    fn open_tool(&mut self, out: &mut BytesMut, i: usize) {
        self.close_open(out);
        let Some(tool) = self.tools.get_mut(i) else {
            return;
        };
        tool.phase = Phase::Open;
        let id = std::mem::take(&mut tool.id);
        let name = std::mem::take(&mut tool.name);
        let pending = std::mem::take(&mut tool.pending);
        let index = self.start_block(
            out,
            Kind::Tool(i),
            &BlockStart::ToolUse { id: &id, name: &name, input: Empty {} },
        );
        if !pending.is_empty() {
            self.delta(out, index, BlockDelta::InputJsonDelta { partial_json: &pending });
        }
        if let Some(tool) = self.tools.get_mut(i) {
            tool.id = id;
            tool.name = name;
        }
    }

    /// Opens, fills and closes every call still buffered, in canonical order.
    fn flush_tools(&mut self, out: &mut BytesMut) {
        for i in 0..self.tools.len() {
            if self.tools[i].phase == Phase::Waiting {
                self.open_tool(out, i);
                self.close_open(out);
            }
        }
    }

    fn open_tool_index(&self) -> Option<usize> {
        match self.open {
            Some(Open { kind: Kind::Tool(i), .. }) => Some(i),
            _ => None,
        }
    }

    fn open_tool_is_complete(&self) -> bool {
        self.open_tool_index()
            .and_then(|i| self.tools.get(i))
            .is_some_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(&t.seen).is_ok())
    }

    fn thinking_text(&mut self, out: &mut BytesMut, text: &str) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open { index, kind: Kind::Thinking }) => index,
            _ => {
                self.close_open(out);
                self.start_block(
                    out,
                    Kind::Thinking,
                    &BlockStart::Thinking { thinking: "", signature: "" },
                )
            }
        };
        self.delta(out, index, BlockDelta::ThinkingDelta { thinking: text });
    }

    fn thinking_block(&mut self, out: &mut BytesMut, block: &ThinkingBlock) {
        match block {
            ThinkingBlock::Thinking { thinking, signature } => {
                self.thinking_text(out, thinking);
                let Some(signature) = signature.as_deref().filter(|s| !s.is_empty()) else {
                    return;
                };
                let index = match self.open {
                    Some(Open { index, kind: Kind::Thinking }) => index,
                    _ => {
                        self.close_open(out);
                        self.start_block(
                            out,
                            Kind::Thinking,
                            &BlockStart::Thinking { thinking: "", signature: "" },
                        )
                    }
                };
                self.delta(out, index, BlockDelta::SignatureDelta { signature });
                self.close_open(out);
            }
            ThinkingBlock::RedactedThinking { data } => {
                self.close_open(out);
                self.start_block(out, Kind::Text, &BlockStart::RedactedThinking { data });
                self.close_open(out);
            }
        }
    }

    fn text(&mut self, out: &mut BytesMut, text: &str) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open { index, kind: Kind::Text }) => index,
            _ => {
                self.close_open(out);
                self.start_block(out, Kind::Text, &BlockStart::Text { text: "" })
            }
        };
        self.delta(out, index, BlockDelta::TextDelta { text });
    }

    fn tool_fragment(&mut self, out: &mut BytesMut, call: &ToolCallDelta) {
        let i = call.index as usize;
        if i >= self.tools.len() {
            self.tools.resize_with(i + 1, ToolState::default);
        }
        let function = call.function.as_ref();
        let args = function.and_then(|f| f.arguments.as_deref()).unwrap_or("");
        let tool = &mut self.tools[i];
        if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty())
            && tool.id.is_empty()
        {
            tool.id = sanitize_tool_id(id);
        }
        if let Some(name) = function.and_then(|f| f.name.as_deref())
            && tool.name.is_empty()
        {
            tool.name = name.to_owned();
        }
        if tool.id.is_empty() {
            tool.id = format!("toolu_{}_{i}", sanitize_tool_id(&self.ctx.id));
        }
        match tool.phase {
            Phase::Closed => {}
            Phase::Open => {
                tool.seen.push_str(args);
                if let Some(open) = self.open
                    && !args.is_empty()
                {
                    self.delta(out, open.index, BlockDelta::InputJsonDelta { partial_json: args });
                }
            }
            Phase::Waiting => {
                tool.seen.push_str(args);
                tool.pending.push_str(args);
                // Open it now unless another call is open and may still get arguments.
                if self.open_tool_index().is_none() || self.open_tool_is_complete() {
                    self.open_tool(out, i);
                }
            }
        }
    }

    /// Writes `message_delta` and `message_stop`.
    fn end_message(&mut self, out: &mut BytesMut) {
        self.close_open(out);
        self.flush_tools(out);
        let usage = self.usage.as_ref().map(AnthropicUsage::from_canonical).unwrap_or_default();
        let reason = stop_reason(self.finish.unwrap_or(FinishReason::Stop));
        self.emit(
            out,
            &Event::MessageDelta {
                delta: MessageDeltaBody { stop_reason: reason, stop_sequence: None },
                usage,
            },
        );
        self.emit(out, &Event::MessageStop);
        self.ended = true;
    }

    fn delta_content(&mut self, out: &mut BytesMut, delta: &Delta) {
        if let Some(text) = delta.reasoning_content.as_deref() {
            self.thinking_text(out, text);
        }
        for block in delta.thinking_blocks.iter().flatten() {
            self.thinking_block(out, block);
        }
        if let Some(text) = delta.content.as_deref() {
            self.text(out, text);
        }
        if let Some(text) = delta.refusal.as_deref() {
            self.text(out, text);
        }
        for call in delta.tool_calls.iter().flatten() {
            self.tool_fragment(out, call);
        }
    }
}

fn clone_start<'a>(block: &BlockStart<'a>) -> BlockStart<'a> {
    match *block {
        BlockStart::Text { text } => BlockStart::Text { text },
        BlockStart::Thinking { thinking, signature } => {
            BlockStart::Thinking { thinking, signature }
        }
        BlockStart::RedactedThinking { data } => BlockStart::RedactedThinking { data },
        BlockStart::ToolUse { id, name, .. } => BlockStart::ToolUse { id, name, input: Empty {} },
    }
}

impl StreamEncoder for MessagesEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, _raw: Option<&[u8]>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ensure_started(out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if self.finish.is_none() {
                self.delta_content(out, &choice.delta);
            }
            if let Some(reason) = choice.finish_reason
                && self.finish.is_none()
            {
                self.finish = Some(reason);
                self.close_open(out);
                self.flush_tools(out);
            }
        }
        if self.finish.is_some() && self.usage.is_some() {
            self.end_message(out);
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ensure_started(out);
        self.end_message(out);
    }

    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.json.clear();
        prism_types::json::extend(
            &mut self.json,
            &ErrorEvent::new(stream_error_type(error), &error.message),
        );
        let data = std::str::from_utf8(&self.json).unwrap_or_default();
        let _ = prism_sse::write_event(
            out,
            &EventRef { event: Some("error"), data, id: None, retry: None },
        );
    }

    fn keepalive(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        // `ping` is only valid after `message_start`; before it, an SSE comment.
        if self.started {
            self.emit(out, &Event::Ping);
        } else {
            prism_sse::write_comment(out, "keep-alive");
        }
    }
}

//! Canonical chunks → OpenAI Responses streaming events (spec §4.3, §5.5).
//!
//! Grammar written: `response.created response.in_progress item* terminal`, every event with its
//! `event:` line and a `sequence_number` counting from 0. Items never interleave: one is open at
//! a time and closed (all its `.done` events) before the next is added, because single
//! "current item" clients break otherwise. Item kinds:
//! - `reasoning` (canonical `reasoning_content`): one summary part of `summary_text`; signed
//!   thinking blocks close it with the Prism envelope as `encrypted_content`;
//! - `message` (`content`, or `refusal`): one `output_text` (or `refusal`) part;
//! - `function_call` per canonical tool call: the first call streams live, a call that starts
//!   while another is open is buffered and replayed when the open one's arguments are complete
//!   JSON (or at the next item or the finish).
//!
//! The terminal event waits for the usage (the canonical stream reports it after the finish) or
//! [`StreamEncoder::finish`]: `response.completed`, or `response.incomplete` for a length or
//! content-filter stop. A failure is an `error` event (fields flat and under `error`, as the SDKs
//! read either) and `response.failed`; nothing follows.
//!
//! Only choice 0 is encoded. The final Response object lists every item in full, so each item's
//! text is accumulated once (one growing String per item).

use bytes::BytesMut;
use prism_sse::EventRef;
use prism_types::{
    ChatChunk, Delta, ErrorObject, FinishReason, ThinkingBlock, ToolCallDelta, Usage,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::{item_id, response_object, seal_envelope, terminal, usage_json};
use crate::{EncodeContext, StreamEncoder};

/// The Responses stream encoder.
#[derive(Debug)]
pub struct ResponsesEncoder {
    ctx: EncodeContext,
    seq: u64,
    started: bool,
    ended: bool,
    /// Finished items, for the terminal Response object.
    done: Vec<Value>,
    open: Option<OpenItem>,
    tools: Vec<Tool>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    json: Vec<u8>,
}

#[derive(Debug)]
struct OpenItem {
    id: String,
    output_index: usize,
    kind: ItemKind,
}

#[derive(Debug)]
enum ItemKind {
    Reasoning {
        text: String,
        blocks: Vec<ThinkingBlock>,
    },
    Message {
        text: String,
        refusal: bool,
    },
    /// A function call, by canonical tool index.
    Call(usize),
}

#[derive(Debug, Default)]
struct Tool {
    call_id: String,
    name: String,
    /// Arguments so far (all of them, for `.done` and the final object).
    arguments: String,
    /// Whether its item was added (it may still be buffered).
    phase: Phase,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Waiting,
    Open,
    Closed,
}

/// The per-chunk delta events, serialised without building a JSON tree.
#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[u8; 0]>,
}

impl ResponsesEncoder {
    /// A new encoder.
    pub fn new(ctx: EncodeContext) -> Self {
        ResponsesEncoder {
            ctx,
            seq: 0,
            started: false,
            ended: false,
            done: Vec::new(),
            open: None,
            tools: Vec::new(),
            finish: None,
            usage: None,
            json: Vec::with_capacity(256),
        }
    }

    fn write(&mut self, out: &mut BytesMut, name: &str) {
        let data = std::str::from_utf8(&self.json).unwrap_or_default();
        let _ = prism_sse::write_event(
            out,
            &EventRef { event: Some(name), data, id: None, retry: None },
        );
        self.seq += 1;
    }

    /// Writes an event built as JSON, stamping its `type` and `sequence_number`.
    fn emit(&mut self, out: &mut BytesMut, name: &'static str, mut value: Value) {
        if let Some(obj) = value.as_object_mut() {
            obj.insert("type".into(), json!(name));
            obj.insert("sequence_number".into(), json!(self.seq));
        }
        self.json.clear();
        prism_types::json::extend(&mut self.json, &value);
        self.write(out, name);
    }

    fn emit_delta(&mut self, out: &mut BytesMut, event: &DeltaEvent<'_>) {
        self.json.clear();
        prism_types::json::extend(&mut self.json, event);
        self.write(out, event.kind);
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = response_object(&self.ctx, "in_progress", &[], None, None, None);
        self.emit(out, "response.created", json!({"response": response.clone()}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn open_item(&mut self, out: &mut BytesMut, kind: ItemKind) {
        self.close_open(out);
        let output_index = self.done.len();
        let (prefix, item) = match &kind {
            ItemKind::Reasoning { .. } => ("rs", json!({"type": "reasoning", "summary": []})),
            ItemKind::Message { .. } => (
                "msg",
                json!({"type": "message", "status": "in_progress", "role": "assistant", "content": []}),
            ),
            ItemKind::Call(i) => {
                let t = &self.tools[*i];
                (
                    "fc",
                    json!({"type": "function_call", "status": "in_progress", "arguments": "",
                    "call_id": t.call_id, "name": t.name}),
                )
            }
        };
        let id = item_id(&self.ctx, prefix, output_index);
        let mut item = item;
        item["id"] = json!(id);
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        match &kind {
            ItemKind::Reasoning { .. } => self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            ),
            ItemKind::Message { refusal, .. } => {
                let part = if *refusal {
                    json!({"type": "refusal", "refusal": ""})
                } else {
                    json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
                };
                self.emit(
                    out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}),
                );
            }
            ItemKind::Call(_) => {}
        }
        self.open = Some(OpenItem { id, output_index, kind });
    }

    /// Closes the open item: its `.done` events, then `output_item.done`.
    fn close_open(&mut self, out: &mut BytesMut) {
        let Some(OpenItem { id, output_index, kind }) = self.open.take() else {
            return;
        };
        let base = json!({"item_id": id, "output_index": output_index});
        let with = |extra: Value| {
            let mut v = base.clone();
            if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
                v.extend(extra);
            }
            v
        };
        let item = match kind {
            ItemKind::Reasoning { text, blocks } => {
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    with(json!({"summary_index": 0, "text": text})),
                );
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    with(json!({"summary_index": 0, "part": part})),
                );
                let summary = if text.is_empty() { json!([]) } else { json!([part]) };
                let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
                if let Some(sealed) = seal_envelope(&blocks) {
                    item["encrypted_content"] = json!(sealed);
                }
                item
            }
            ItemKind::Message { text, refusal } => {
                let part = if refusal {
                    self.emit(
                        out,
                        "response.refusal.done",
                        with(json!({"content_index": 0, "refusal": text})),
                    );
                    json!({"type": "refusal", "refusal": text})
                } else {
                    self.emit(
                        out,
                        "response.output_text.done",
                        with(json!({"content_index": 0, "text": text, "logprobs": []})),
                    );
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
                };
                self.emit(
                    out,
                    "response.content_part.done",
                    with(json!({"content_index": 0, "part": part})),
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
            }
            ItemKind::Call(i) => {
                let t = &mut self.tools[i];
                t.phase = Phase::Closed;
                if t.arguments.trim().is_empty() {
                    t.arguments = "{}".to_owned();
                }
                let (args, name, call_id) =
                    (t.arguments.clone(), t.name.clone(), t.call_id.clone());
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    with(json!({"arguments": args, "name": name})),
                );
                json!({"id": id, "type": "function_call", "status": "completed",
                    "arguments": args, "call_id": call_id, "name": name})
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
        self.done.push(item);
    }

    fn reasoning(&mut self, out: &mut BytesMut, text: &str) {
        if text.is_empty() {
            return;
        }
        if !matches!(self.open, Some(OpenItem { kind: ItemKind::Reasoning { .. }, .. })) {
            self.open_item(out, ItemKind::Reasoning { text: String::new(), blocks: Vec::new() });
        }
        let Some(OpenItem { id, output_index, kind: ItemKind::Reasoning { text: all, .. } }) =
            &mut self.open
        else {
            return;
        };
        all.push_str(text);
        let (id, output_index) = (std::mem::take(id), *output_index);
        self.emit_delta(
            out,
            &DeltaEvent {
                kind: "response.reasoning_summary_text.delta",
                sequence_number: self.seq,
                item_id: &id,
                output_index,
                content_index: None,
                summary_index: Some(0),
                delta: text,
                logprobs: None,
            },
        );
        if let Some(open) = &mut self.open {
            open.id = id;
        }
    }

    fn thinking_block(&mut self, out: &mut BytesMut, block: &ThinkingBlock) {
        if let ThinkingBlock::Thinking { thinking, .. } = block {
            self.reasoning(out, thinking);
        }
        if !matches!(self.open, Some(OpenItem { kind: ItemKind::Reasoning { .. }, .. })) {
            self.open_item(out, ItemKind::Reasoning { text: String::new(), blocks: Vec::new() });
        }
        if let Some(OpenItem { kind: ItemKind::Reasoning { blocks, .. }, .. }) = &mut self.open {
            blocks.push(block.clone());
        }
        // A signature ends its thinking block.
        if block.is_replayable() {
            self.close_open(out);
        }
    }

    fn text(&mut self, out: &mut BytesMut, text: &str, refusal: bool) {
        if text.is_empty() {
            return;
        }
        let same = matches!(&self.open, Some(OpenItem { kind: ItemKind::Message { refusal: r, .. }, .. }) if *r == refusal);
        if !same {
            self.open_item(out, ItemKind::Message { text: String::new(), refusal });
        }
        let Some(OpenItem { id, output_index, kind: ItemKind::Message { text: all, .. } }) =
            &mut self.open
        else {
            return;
        };
        all.push_str(text);
        let (id, output_index) = (std::mem::take(id), *output_index);
        self.emit_delta(
            out,
            &DeltaEvent {
                kind: if refusal { "response.refusal.delta" } else { "response.output_text.delta" },
                sequence_number: self.seq,
                item_id: &id,
                output_index,
                content_index: Some(0),
                summary_index: None,
                delta: text,
                logprobs: (!refusal).then_some([]),
            },
        );
        if let Some(open) = &mut self.open {
            open.id = id;
        }
    }

    fn open_call(&self) -> Option<usize> {
        match &self.open {
            Some(OpenItem { kind: ItemKind::Call(i), .. }) => Some(*i),
            _ => None,
        }
    }

    fn start_call(&mut self, out: &mut BytesMut, i: usize) {
        self.open_item(out, ItemKind::Call(i));
        self.tools[i].phase = Phase::Open;
        let buffered = self.tools[i].arguments.clone();
        if !buffered.is_empty() {
            self.call_delta(out, &buffered);
        }
    }

    fn call_delta(&mut self, out: &mut BytesMut, args: &str) {
        let Some(OpenItem { id, output_index, .. }) = &mut self.open else {
            return;
        };
        let (id, output_index) = (std::mem::take(id), *output_index);
        self.emit_delta(
            out,
            &DeltaEvent {
                kind: "response.function_call_arguments.delta",
                sequence_number: self.seq,
                item_id: &id,
                output_index,
                content_index: None,
                summary_index: None,
                delta: args,
                logprobs: None,
            },
        );
        if let Some(open) = &mut self.open {
            open.id = id;
        }
    }

    fn tool_fragment(&mut self, out: &mut BytesMut, call: &ToolCallDelta) {
        let i = call.index as usize;
        if i >= self.tools.len() {
            self.tools.resize_with(i + 1, Tool::default);
        }
        let function = call.function.as_ref();
        let args = function.and_then(|f| f.arguments.as_deref()).unwrap_or("");
        let t = &mut self.tools[i];
        if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty())
            && t.call_id.is_empty()
        {
            t.call_id = id.to_owned();
        }
        if let Some(name) = function.and_then(|f| f.name.as_deref())
            && t.name.is_empty()
        {
            t.name = name.to_owned();
        }
        if t.call_id.is_empty() {
            t.call_id = format!("call_{}_{i}", self.ctx.id);
        }
        match t.phase {
            Phase::Closed => {}
            Phase::Open => {
                t.arguments.push_str(args);
                if !args.is_empty() {
                    self.call_delta(out, args);
                }
            }
            Phase::Waiting => {
                t.arguments.push_str(args);
                let open_complete = self.open_call().is_some_and(|o| {
                    serde_json::from_str::<serde::de::IgnoredAny>(&self.tools[o].arguments).is_ok()
                });
                if self.open_call().is_none() || open_complete {
                    self.start_call(out, i);
                }
            }
        }
    }

    /// Opens, fills and closes every call still buffered.
    fn flush_calls(&mut self, out: &mut BytesMut) {
        for i in 0..self.tools.len() {
            if self.tools[i].phase == Phase::Waiting {
                self.start_call(out, i);
                self.close_open(out);
            }
        }
    }

    fn delta(&mut self, out: &mut BytesMut, d: &Delta) {
        if let Some(text) = d.reasoning_content.as_deref() {
            self.reasoning(out, text);
        }
        for block in d.thinking_blocks.iter().flatten() {
            self.thinking_block(out, block);
        }
        if let Some(text) = d.content.as_deref() {
            self.text(out, text, false);
        }
        if let Some(text) = d.refusal.as_deref() {
            self.text(out, text, true);
        }
        for call in d.tool_calls.iter().flatten() {
            self.tool_fragment(out, call);
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        self.close_open(out);
        self.flush_calls(out);
        let (status, incomplete) = terminal(self.finish);
        let usage = usage_json(self.usage.as_ref());
        let response =
            response_object(&self.ctx, status, &self.done, Some(usage), incomplete, None);
        let name = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(out, name, json!({"response": response}));
        self.ended = true;
    }
}

impl StreamEncoder for ResponsesEncoder {
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
                self.delta(out, &choice.delta);
            }
            if let Some(reason) = choice.finish_reason
                && self.finish.is_none()
            {
                self.finish = Some(reason);
                self.close_open(out);
                self.flush_calls(out);
            }
        }
        if self.finish.is_some() && self.usage.is_some() {
            self.end(out);
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ensure_started(out);
        self.end(out);
    }

    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ensure_started(out);
        self.ended = true;
        let code = error.code.clone().unwrap_or_else(|| "server_error".to_owned());
        let kind = if error.kind.is_empty() { "server_error" } else { error.kind.as_str() };
        self.emit(
            out,
            "error",
            json!({"code": code, "message": error.message, "param": error.param,
                "error": {"type": kind, "code": code, "message": error.message, "param": error.param}}),
        );
        let err = json!({"code": code, "message": error.message});
        let response = response_object(&self.ctx, "failed", &self.done, None, None, Some(err));
        self.emit(out, "response.failed", json!({"response": response}));
    }
}

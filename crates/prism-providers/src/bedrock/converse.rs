//! Bedrock Converse: the OpenAI request as a Converse body, ConverseStream events as OpenAI
//! chunks, and the Converse response as a completion.
//!
//! Event grammar of a ConverseStream (after the event-stream framing):
//!
//! ```text
//! messageStart (contentBlockStart? contentBlockDelta* contentBlockStop?)* messageStop metadata
//! ```
//!
//! Text and reasoning blocks usually come without `contentBlockStart`; only tool-use blocks are
//! opened with one (id and name, never input). `metadata` (usage) has been seen both after and
//! before `messageStop`. Unknown events and union members are skipped.
//!
//! Request mapping decisions: system/developer messages become `system` blocks; turns are merged
//! so roles alternate, tool results lead their user turn, and the first turn must be the user's;
//! blank text blocks are dropped and a final assistant prefill loses trailing whitespace; images
//! only as base64 data URLs (png, jpeg, gif, webp); `temperature` is clamped to 0–1; `maxTokens`
//! is always sent (client limit or `default_max_tokens`). Not mapped: `seed`, penalties,
//! `logit_bias`, `user`, `metadata`, `parallel_tool_calls` (Converse has no field for them); `n > 1`
//! and `logprobs` are rejected.
//!
//! Reasoning round trip (LiteLLM's `thinking_blocks` extension, as for Anthropic): reasoning text
//! streams as `delta.reasoning_content`; a `reasoningContent.signature` delta becomes a
//! signature-only `thinking_blocks` entry closing that text and `redactedContent` a
//! `redacted_thinking` entry (see [`crate::translate`]); the Converse response gives whole
//! blocks. An assistant message's `thinking_blocks` open its turn again as
//! `reasoningContent.reasoningText {text, signature}` / `reasoningContent.redactedContent`
//! blocks (unsigned ones dropped), which Claude requires to continue a tool loop with thinking
//! on. When a client does not echo them, Claude thinking stays off for the request that
//! continues the tool loop (the Anthropic translator's rule).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prism_types::{
    ChatCompletion, ChatRequest, Choice, Content, ContentPart, FinishReason, FunctionCall, Message,
    PromptTokensDetails, ResponseFormat, ResponseMessage, ThinkingBlock, ToolCall, ToolChoice,
    ToolChoiceMode, Usage,
};
use serde_json::{Map, Value, json};

use super::wire;
use crate::anthropic::JSON_TOOL;
use crate::translate::{Emitter, OutChunk, StreamContext, StreamSummary};
use crate::{Deployment, TranslateError};

const PROVIDER: &str = "bedrock";
/// Claude's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

// ===== request =====

/// Builds the Converse / ConverseStream body for `req` (the same body serves both).
pub(crate) fn build_body(
    req: &ChatRequest,
    deployment: &Deployment,
) -> Result<Value, TranslateError> {
    reject_unsupported(req)?;
    let converted = convert_messages(&req.messages)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(converted.messages));
    if !converted.system.is_empty() {
        body.insert("system".into(), Value::Array(converted.system));
    }

    let model = deployment.upstream_model.as_str();
    let forced_tool = matches!(
        req.tool_choice,
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) | Some(ToolChoice::Named(_))
    ) || (json_schema(req).is_some()
        && req.tools.as_ref().is_none_or(Vec::is_empty));
    let reasoning = reasoning_config(req, deployment, model, forced_tool)?;

    let mut inference = Map::new();
    inference.insert("maxTokens".into(), json!(reasoning.max_tokens));
    if !reasoning.claude_thinking {
        if let Some(t) = req.temperature {
            // Converse takes 0–1; OpenAI allows up to 2.
            inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(p) = req.top_p {
            inference.insert("topP".into(), json!(p));
        }
    }
    if let Some(stop) = &req.stop {
        let seqs = stop.to_vec();
        if !seqs.is_empty() {
            inference.insert("stopSequences".into(), json!(seqs));
        }
    }
    body.insert("inferenceConfig".into(), Value::Object(inference));

    if let Some(tool_config) = tool_config(req, &converted.history_tools)? {
        body.insert("toolConfig".into(), tool_config);
    }
    let mut fields = reasoning.additional_fields;
    // Converse has no `topK`; Claude takes it as a model field (not together with thinking).
    if let (Some(k), false, true) =
        (req.top_k(), reasoning.claude_thinking, model.contains("anthropic."))
    {
        let obj = fields.get_or_insert_with(|| json!({}));
        if let Some(obj) = obj.as_object_mut() {
            obj.insert("top_k".into(), json!(k));
        }
    }
    if let Some(fields) = fields {
        body.insert("additionalModelRequestFields".into(), fields);
    }
    Ok(Value::Object(body))
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest { param: Some(param.into()), message: message.into() }
}

fn reject_unsupported(req: &ChatRequest) -> Result<(), TranslateError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("n", "bedrock generates one choice per request"));
    }
    if req.logprobs == Some(true) {
        return Err(invalid("logprobs", "bedrock does not return log probabilities"));
    }
    Ok(())
}

/// The schema of the requested JSON output, when `response_format` asks for JSON.
fn json_schema(req: &ChatRequest) -> Option<Value> {
    match &req.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            Some(json_schema.schema.clone().unwrap_or_else(|| json!({"type": "object"})))
        }
        Some(ResponseFormat::JsonObject) => Some(json!({"type": "object"})),
        Some(ResponseFormat::Text) | None => None,
    }
}

/// The Converse messages and system blocks, plus the names of tools used in the history.
struct Converted {
    messages: Vec<Value>,
    system: Vec<Value>,
    /// Tool names of every `toolUse` in the history; `Some` (maybe empty) when the history holds
    /// any tool block, since Bedrock then insists on a `toolConfig`.
    history_tools: Option<Vec<String>>,
}

/// One Converse turn being assembled.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

fn convert_messages(messages: &[Message]) -> Result<Converted, TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut history_tools: Option<Vec<String>> = None;
    let push = |turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.blocks.extend(blocks),
            _ => turns.push(Turn { role, blocks }),
        }
    };
    for (i, message) in messages.iter().enumerate() {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.extend(text_blocks(content));
            }
            Message::User { content, .. } => push(&mut turns, "user", user_blocks(content, i)?),
            Message::Assistant { content, tool_calls, thinking_blocks, .. } => {
                // Reasoning first: Claude checks that a tool-loop turn starts with it.
                let mut blocks: Vec<Value> =
                    thinking_blocks.iter().flatten().filter_map(reasoning_block).collect();
                blocks.extend(content.as_ref().map(text_blocks).unwrap_or_default());
                for (j, call) in tool_calls.iter().flatten().enumerate() {
                    let input = tool_input(&call.function.arguments).ok_or_else(|| {
                        invalid(
                            format!("messages[{i}].tool_calls[{j}].function.arguments"),
                            "tool call arguments must be a JSON object",
                        )
                    })?;
                    history_tools.get_or_insert_with(Vec::new).push(call.function.name.clone());
                    blocks.push(json!({"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": input}}));
                }
                push(&mut turns, "assistant", blocks);
            }
            Message::Tool { content, tool_call_id } => {
                history_tools.get_or_insert_with(Vec::new);
                let text = content.joined_text();
                let result_content =
                    if text.trim().is_empty() { json!([]) } else { json!([{"text": text}]) };
                push(
                    &mut turns,
                    "user",
                    vec![
                        json!({"toolResult": {"toolUseId": tool_call_id, "content": result_content}}),
                    ],
                );
            }
            Message::Function { .. } => {
                return Err(invalid(
                    format!("messages[{i}]"),
                    "legacy function messages are not supported; use tool messages",
                ));
            }
        }
    }
    for turn in &mut turns {
        if turn.role == "user" {
            // Tool results must open the user turn that answers a tool-use turn.
            turn.blocks.sort_by_key(|b| b.get("toolResult").is_none());
        } else {
            // Merged assistant messages: all reasoning still has to open the turn.
            turn.blocks.sort_by_key(|b| b.get("reasoningContent").is_none());
        }
    }
    // A final assistant turn (prefill) must not end in whitespace.
    if let Some(last) = turns.last_mut().filter(|t| t.role == "assistant")
        && let Some(Value::String(text)) = last.blocks.last_mut().and_then(|b| b.get_mut("text"))
    {
        let trimmed = text.trim_end().len();
        text.truncate(trimmed);
    }
    match turns.first() {
        None => {
            return Err(invalid(
                "messages",
                "bedrock needs at least one user or assistant message with content",
            ));
        }
        Some(t) if t.role != "user" => {
            return Err(invalid(
                "messages",
                "bedrock conversations must start with a user message",
            ));
        }
        Some(_) => {}
    }
    let messages =
        turns.into_iter().map(|t| json!({"role": t.role, "content": t.blocks})).collect();
    Ok(Converted { messages, system, history_tools })
}

/// The Converse block for an echoed thinking block; `None` for blocks Claude would reject
/// (reasoning without a signature, redacted reasoning without data). Redacted data is the
/// base64 text Bedrock sent, which is how the JSON protocol spells a blob.
fn reasoning_block(block: &ThinkingBlock) -> Option<Value> {
    if !block.is_replayable() {
        return None;
    }
    Some(match block {
        ThinkingBlock::Thinking { thinking, signature } => {
            json!({"reasoningContent": {"reasoningText": {"text": thinking, "signature": signature}}})
        }
        ThinkingBlock::RedactedThinking { data } => {
            json!({"reasoningContent": {"redactedContent": data}})
        }
    })
}

/// Text blocks of `content`; blank text is dropped because Converse rejects it.
fn text_blocks(content: &Content) -> Vec<Value> {
    let text = |t: &str| (!t.trim().is_empty()).then(|| json!({"text": t}));
    match content {
        Content::Text(t) => text(t).into_iter().collect(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text: t } => text(t),
                _ => None,
            })
            .collect(),
    }
}

fn user_blocks(content: &Content, i: usize) -> Result<Vec<Value>, TranslateError> {
    let Content::Parts(parts) = content else {
        return Ok(text_blocks(content));
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match part {
            ContentPart::Text { text } => {
                if !text.trim().is_empty() {
                    blocks.push(json!({"text": text}));
                }
            }
            ContentPart::ImageUrl { image_url } => {
                let Some((mime, data)) = image_url.as_data_url() else {
                    return Err(invalid(
                        param(),
                        "bedrock accepts images only as base64 data URLs, not by http(s) URL",
                    ));
                };
                let format = match mime.to_ascii_lowercase().as_str() {
                    "image/png" => "png",
                    "image/jpeg" | "image/jpg" => "jpeg",
                    "image/gif" => "gif",
                    "image/webp" => "webp",
                    _ => {
                        return Err(invalid(
                            param(),
                            format!("unsupported image type {mime:?}; use png, jpeg, gif or webp"),
                        ));
                    }
                };
                if B64.decode(data).is_err() {
                    return Err(invalid(param(), "the image data URL is not valid base64"));
                }
                blocks.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
            }
            ContentPart::InputAudio { .. } => {
                return Err(invalid(param(), "bedrock converse does not accept audio input"));
            }
            ContentPart::File { .. } => {
                return Err(invalid(param(), "file parts are not supported for bedrock"));
            }
            ContentPart::Refusal { .. } => {}
        }
    }
    Ok(blocks)
}

/// A tool call's arguments as the JSON object Converse wants; `""` means no arguments.
fn tool_input(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(arguments).ok().filter(Value::is_object)
}

/// `toolConfig`, or `None` when there is nothing to configure.
///
/// Converse has no `tool_choice: none`: with `none` the tools are left out, unless the history
/// holds tool blocks, which Bedrock rejects without a `toolConfig` — then the tools stay and the
/// model may still call one. A history with tool blocks but no declared tools gets minimal specs
/// (`{"type":"object"}`) for the tool names it uses.
///
/// JSON output (`response_format`) is the synthetic tool [`JSON_TOOL`] whose input is the answer
/// (the technique of the Anthropic translator, same tool name); without client tools it is forced.
fn tool_config(
    req: &ChatRequest,
    history_tools: &Option<Vec<String>>,
) -> Result<Option<Value>, TranslateError> {
    let declared = req.tools.as_deref().unwrap_or_default();
    let mut specs = Vec::with_capacity(declared.len());
    for (i, tool) in declared.iter().enumerate() {
        if tool.kind != "function" {
            return Err(invalid(
                format!("tools[{i}].type"),
                format!("unsupported tool type {:?}", tool.kind),
            ));
        }
        let f = &tool.function;
        if f.name == JSON_TOOL {
            return Err(invalid(
                format!("tools[{i}].function.name"),
                format!("the tool name {JSON_TOOL:?} is reserved for response_format"),
            ));
        }
        let schema =
            f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut spec = Map::new();
        spec.insert("name".into(), json!(f.name));
        if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(d));
        }
        spec.insert("inputSchema".into(), json!({"json": schema}));
        specs.push(json!({"toolSpec": spec}));
    }
    let json = json_schema(req);
    let has_json = json.is_some();
    let forced_json = has_json && declared.is_empty();
    if specs.is_empty()
        && let Some(names) = history_tools
    {
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            if !seen.contains(&name.as_str()) {
                seen.push(name);
                specs.push(json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}));
            }
        }
    }
    // The synthesized specs only satisfy validation: no tool choice goes with them.
    let synthesized_only = declared.is_empty() && !has_json;
    if let Some(schema) = json {
        specs.push(json!({"toolSpec": {
            "name": JSON_TOOL,
            "description": "Give the final answer by calling this tool with it as the input.",
            "inputSchema": {"json": schema},
        }}));
    }
    let choice = match &req.tool_choice {
        _ if forced_json => Some(json!({"tool": {"name": JSON_TOOL}})),
        None => None,
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => {
            if history_tools.is_none() && !has_json {
                return Ok(None);
            }
            None
        }
        Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => Some(json!({"auto": {}})),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(json!({"any": {}})),
        Some(ToolChoice::Named(named)) => Some(json!({"tool": {"name": named.function.name}})),
    };
    if synthesized_only && matches!(choice, Some(ref c) if c.get("auto").is_none()) {
        return Err(invalid("tool_choice", "tool_choice requires tools"));
    }
    if specs.is_empty() {
        return Ok(None);
    }
    let mut config = Map::new();
    let choice = if synthesized_only { None } else { choice };
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

/// What `reasoning_effort` and the token limit turn into.
struct ReasoningPlan {
    max_tokens: u64,
    /// Claude extended thinking is on (temperature and top_p must then be left out).
    claude_thinking: bool,
    additional_fields: Option<Value>,
}

/// Thinking budget per `reasoning_effort`, for Claude.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" => Some(1024),
        "low" => Some(4096),
        "medium" => Some(8192),
        "high" => Some(16_384),
        "xhigh" => Some(32_768),
        _ => None,
    }
}

/// Maps `reasoning_effort` per model family: Claude (`anthropic.` ids) gets
/// `thinking: {type: enabled, budget_tokens}`, `openai.` models get `reasoning_effort`; other
/// families have no common switch and get nothing. For Claude the client's limit is the total,
/// thinking included (as OpenAI counts `max_completion_tokens`), so the budget is at most half of
/// it and thinking stays off when that is below Claude's 1024 minimum; without a client limit the
/// budget is added on top of the deployment's default. A forced tool choice wins over thinking,
/// which Claude does not allow together, and so does a tool loop whose last assistant turn
/// echoed no thinking blocks.
fn reasoning_config(
    req: &ChatRequest,
    deployment: &Deployment,
    model: &str,
    forced_tool: bool,
) -> Result<ReasoningPlan, TranslateError> {
    let limit = req.output_token_limit();
    let mut plan = ReasoningPlan {
        max_tokens: limit.unwrap_or(deployment.default_max_tokens),
        claude_thinking: false,
        additional_fields: None,
    };
    let effort = req.reasoning_effort.as_deref();
    let budget = match (req.ext.thinking_budget, effort) {
        // A Messages client's own budget (Claude only; other families take no budget).
        (Some(budget), _) => budget,
        (None, None | Some("none")) => return Ok(plan),
        (None, Some(effort)) => thinking_budget(effort).ok_or_else(|| {
            invalid("reasoning_effort", format!("unknown reasoning_effort {effort:?}"))
        })?,
    };
    if model.contains("anthropic.") {
        if forced_tool || unsigned_tool_loop(req) {
            return Ok(plan);
        }
        let (budget, max_tokens) = match limit {
            Some(limit) => (budget.min(limit / 2), limit),
            None => (budget, deployment.default_max_tokens + budget),
        };
        if budget < MIN_THINKING_BUDGET {
            return Ok(plan);
        }
        plan.max_tokens = max_tokens;
        plan.claude_thinking = true;
        plan.additional_fields =
            Some(json!({"thinking": {"type": "enabled", "budget_tokens": budget}}));
    } else if let (true, Some(effort)) = (model.contains("openai."), effort) {
        let level = match effort {
            "minimal" | "low" => "low",
            "medium" => "medium",
            _ => "high",
        };
        plan.additional_fields = Some(json!({"reasoning_effort": level}));
    }
    Ok(plan)
}

/// Whether the last assistant turn made tool calls without echoing any thinking blocks: Claude
/// would then reject thinking, which needs that turn to start with its signed reasoning.
fn unsigned_tool_loop(req: &ChatRequest) -> bool {
    req.messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, thinking_blocks, .. } => Some(
                tool_calls.as_ref().is_some_and(|c| !c.is_empty())
                    && !thinking_blocks.iter().flatten().any(ThinkingBlock::is_replayable),
            ),
            _ => None,
        })
        .unwrap_or(false)
}

// ===== mapping tables =====

/// The OpenAI finish reason for a Converse `stopReason`, and whether the mapping is exact.
///
/// `tool_use` becomes `tool_calls` only when a call was actually emitted. `malformed_*` and
/// unknown reasons have no OpenAI equivalent: `stop`, with the native reason kept.
pub(crate) fn finish_reason(native: &str, has_tool_calls: bool) -> (FinishReason, bool) {
    match native {
        "end_turn" => (FinishReason::Stop, true),
        "stop_sequence" => (FinishReason::Stop, true),
        "tool_use" if has_tool_calls => (FinishReason::ToolCalls, true),
        "tool_use" => (FinishReason::Stop, false),
        "max_tokens" => (FinishReason::Length, true),
        "model_context_window_exceeded" => (FinishReason::Length, false),
        "guardrail_intervened" | "content_filtered" => (FinishReason::ContentFilter, false),
        _ => (FinishReason::Stop, false),
    }
}

/// OpenAI usage from Converse usage: `prompt_tokens` includes cache reads and writes,
/// `cached_tokens` is the reads (when reported), writes are kept as `cache_creation_input_tokens`
/// (when non-zero, as for Anthropic).
pub(crate) fn usage(u: &wire::ConverseUsage) -> Usage {
    let read = u.cache_read.or(u.cache_read_count);
    let write = u.cache_write.or(u.cache_write_count);
    let prompt = u.input_tokens + read.unwrap_or(0) + write.unwrap_or(0);
    let mut usage = Usage::new(prompt, u.output_tokens);
    if let Some(read) = read {
        usage.prompt_tokens_details =
            Some(PromptTokensDetails { cached_tokens: Some(read), audio_tokens: None });
    }
    if let Some(write) = write.filter(|&w| w > 0) {
        usage.extra.insert("cache_creation_input_tokens".into(), json!(write));
    }
    usage
}

// ===== stream =====

/// What an open content block is, by its `contentBlockIndex`.
#[derive(Debug, Clone, Copy)]
enum OpenBlock {
    /// A client tool call with this OpenAI index.
    Tool(u32),
    /// The [`JSON_TOOL`] carrying a `response_format` answer: its input is streamed as content.
    Json,
    /// A block Bedrock handles itself (server tool use or result): its deltas are dropped.
    Server,
}

/// ConverseStream events → OpenAI chunks.
#[derive(Debug)]
pub(crate) struct StreamTranslator {
    emitter: Emitter,
    /// Open non-text blocks, by `contentBlockIndex`; closed blocks are removed.
    blocks: Vec<(u32, OpenBlock)>,
    /// `messageStop` arrived.
    stopped: bool,
    /// `metadata` arrived.
    metadata_seen: bool,
    /// The answer came through [`JSON_TOOL`].
    json_answer: bool,
}

impl StreamTranslator {
    pub(crate) fn new(ctx: StreamContext) -> Self {
        StreamTranslator {
            emitter: Emitter::new(ctx),
            blocks: Vec::new(),
            stopped: false,
            metadata_seen: false,
            json_answer: false,
        }
    }

    /// Whether both `messageStop` and `metadata` arrived: nothing else will come.
    pub(crate) fn is_done(&self) -> bool {
        self.stopped && self.metadata_seen
    }

    /// Handles one event. After `messageStop` only `metadata` is taken; anything else (and
    /// everything once done) is ignored, so no delta can follow the finish chunk.
    pub(crate) fn on_event(
        &mut self,
        event: &str,
        payload: &[u8],
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        if self.is_done() || (self.stopped && event != "metadata") {
            return Ok(());
        }
        match event {
            "messageStart" => self.emitter.start(0, out),
            "contentBlockStart" => {
                let start: wire::ContentBlockStart<'_> = parse(event, payload)?;
                let Some(s) = start.start else { return Ok(()) };
                if let Some(tool) = s.tool_use {
                    let block = if tool.kind.as_deref() == Some("server_tool_use") {
                        OpenBlock::Server
                    } else if tool.name == JSON_TOOL {
                        self.json_answer = true;
                        self.emitter.start(0, out);
                        OpenBlock::Json
                    } else {
                        OpenBlock::Tool(self.emitter.tool_call_start(0, &tool.id, &tool.name, out))
                    };
                    self.open(start.index, block);
                } else if s.tool_result.is_some() {
                    self.open(start.index, OpenBlock::Server);
                }
            }
            "contentBlockDelta" => {
                let d: wire::ContentBlockDelta<'_> = parse(event, payload)?;
                let Some(delta) = d.delta else { return Ok(()) };
                if let Some(text) = delta.text {
                    self.emitter.content(0, &text, out);
                } else if let Some(tool) = delta.tool_use {
                    match self.block(d.index) {
                        Some(OpenBlock::Tool(index)) => {
                            self.emitter.tool_call_arguments(0, index, &tool.input, out)
                        }
                        Some(OpenBlock::Json) => self.emitter.content(0, &tool.input, out),
                        Some(OpenBlock::Server) => {}
                        None => {
                            return Err(TranslateError::UnexpectedEvent {
                                provider: PROVIDER,
                                event: format!("toolUse delta for content block {}", d.index),
                                state: "no tool block is open at that index",
                            });
                        }
                    }
                } else if let Some(reasoning) = delta.reasoning {
                    if let Some(text) = reasoning.text {
                        self.emitter.reasoning(0, &text, out);
                    }
                    if let Some(signature) = reasoning.signature {
                        // Closes the block's text for clients that replay it.
                        self.emitter.thinking_block(0, ThinkingBlock::signature(signature), out);
                    }
                    if let Some(data) = reasoning.redacted_content {
                        let block = ThinkingBlock::RedactedThinking { data: data.into_owned() };
                        self.emitter.thinking_block(0, block, out);
                    }
                }
            }
            "contentBlockStop" => {
                let stop: wire::ContentBlockStop = parse(event, payload)?;
                self.blocks.retain(|(i, _)| *i != stop.index);
            }
            "messageStop" => {
                let stop: wire::MessageStop<'_> = parse(event, payload)?;
                let native = stop.stop_reason.as_deref().unwrap_or("end_turn");
                let calls = self.emitter.tool_call_count(0) > 0;
                let (reason, exact) = if self.json_answer && !calls && native == "tool_use" {
                    (FinishReason::Stop, true)
                } else {
                    finish_reason(native, calls)
                };
                if !exact {
                    self.emitter.set_native_stop_reason(native);
                }
                self.stopped = true;
                self.emitter.finish(0, reason, out);
            }
            "metadata" => {
                let meta: wire::Metadata = parse(event, payload)?;
                if let Some(u) = &meta.usage {
                    self.emitter.set_usage(usage(u));
                }
                self.metadata_seen = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the stream at upstream EOF: clean after `messageStop` (with or without `metadata`),
    /// truncated otherwise.
    pub(crate) fn finish(
        &mut self,
        out: &mut Vec<OutChunk>,
    ) -> Result<StreamSummary, TranslateError> {
        if !self.stopped {
            return Err(TranslateError::Truncated { provider: PROVIDER });
        }
        Ok(self.emitter.end(out))
    }

    fn open(&mut self, index: u32, block: OpenBlock) {
        self.blocks.retain(|(i, _)| *i != index);
        self.blocks.push((index, block));
    }

    fn block(&self, index: u32) -> Option<OpenBlock> {
        self.blocks.iter().find(|(i, _)| *i == index).map(|(_, b)| *b)
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(
    event: &str,
    payload: &'a [u8],
) -> Result<T, TranslateError> {
    serde_json::from_slice(payload).map_err(|source| TranslateError::InvalidJson {
        provider: PROVIDER,
        context: format!("{event} event"),
        source,
    })
}

// ===== whole response =====

/// Translates a Converse response body.
pub(crate) fn translate_response(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    let resp: wire::ConverseResponse =
        serde_json::from_slice(body).map_err(|source| TranslateError::InvalidJson {
            provider: PROVIDER,
            context: "converse response".into(),
            source,
        })?;
    let Some(message) = resp.output.and_then(|o| o.message) else {
        // A 2xx body without output is an error in disguise (seen with guardrails and service faults).
        return Err(TranslateError::Upstream(super::map_error(502, body)));
    };
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut calls = Vec::new();
    let mut json_answer = false;
    for block in message.content {
        if let Some(text) = block.text {
            content.push_str(&text);
        } else if let Some(tool) = block.tool_use {
            if tool.kind.as_deref() == Some("server_tool_use") {
                continue;
            }
            if tool.name == JSON_TOOL {
                json_answer = true;
                content.push_str(&tool.input.to_string());
                continue;
            }
            let arguments = match &tool.input {
                Value::Null => "{}".to_owned(),
                input => input.to_string(),
            };
            calls.push(ToolCall {
                id: tool.id,
                kind: "function".into(),
                function: FunctionCall { name: tool.name, arguments },
            });
        } else if let Some(r) = block.reasoning {
            if let Some(text) = r.reasoning_text {
                reasoning.push_str(&text.text);
                let signature = text.signature.filter(|s| !s.is_empty());
                thinking_blocks.push(ThinkingBlock::Thinking { thinking: text.text, signature });
            } else if let Some(data) = r.redacted_content {
                thinking_blocks.push(ThinkingBlock::RedactedThinking { data });
            }
        }
    }
    let native = resp.stop_reason.as_deref().unwrap_or("end_turn");
    let (finish, _) = if json_answer && calls.is_empty() && native == "tool_use" {
        (FinishReason::Stop, true)
    } else {
        finish_reason(native, !calls.is_empty())
    };
    let mut completion = ChatCompletion::new(ctx.id.clone(), ctx.created, ctx.model.clone());
    completion.choices.push(Choice {
        index: 0,
        message: ResponseMessage {
            content: (!content.is_empty() || calls.is_empty()).then_some(content),
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
            tool_calls: (!calls.is_empty()).then_some(calls),
            ..ResponseMessage::default()
        },
        logprobs: None,
        finish_reason: Some(finish),
    });
    completion.usage = resp.usage.as_ref().map(usage);
    Ok(completion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProviderKind;

    fn deployment(model: &str) -> Deployment {
        Deployment::new(
            ProviderKind::Bedrock,
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            model,
        )
    }

    fn body(req: Value, model: &str) -> Result<Value, TranslateError> {
        let req: ChatRequest = serde_json::from_value(req).unwrap();
        build_body(&req, &deployment(model))
    }

    const CLAUDE: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

    #[test]
    fn a_messages_clients_own_budget_and_top_k_reach_claude() {
        let mut req: ChatRequest = serde_json::from_value(
            json!({"model": "m", "max_tokens": 9000, "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        req.ext.thinking_budget = Some(3000);
        let b = build_body(&req, &deployment(CLAUDE)).unwrap();
        assert_eq!(
            b["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 3000}})
        );
        req.ext.thinking_budget = None;
        req.ext.top_k = Some(7);
        let b = build_body(&req, &deployment(CLAUDE)).unwrap();
        assert_eq!(b["additionalModelRequestFields"], json!({"top_k": 7}));
        // Other families take neither.
        let b = build_body(&req, &deployment("amazon.nova-lite-v1:0")).unwrap();
        assert!(b.get("additionalModelRequestFields").is_none());
    }

    #[test]
    fn roles_alternate_tool_results_lead_and_system_is_lifted() {
        let b = body(
            json!({"model": "m", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}, {"type": "text", "text": "  "}]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "t2", "type": "function", "function": {"name": "now", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "12C"},
                {"role": "tool", "tool_call_id": "t2", "content": ""},
                {"role": "developer", "content": "Use metric."},
                {"role": "assistant", "content": "It is "}
            ]}),
            CLAUDE,
        )
        .unwrap();
        insta::assert_json_snapshot!(b, @r#"
        {
          "inferenceConfig": {
            "maxTokens": 4096
          },
          "messages": [
            {
              "content": [
                {
                  "text": "Hi"
                },
                {
                  "text": "Weather in Oslo?"
                }
              ],
              "role": "user"
            },
            {
              "content": [
                {
                  "text": "Checking."
                },
                {
                  "toolUse": {
                    "input": {
                      "city": "Oslo"
                    },
                    "name": "weather",
                    "toolUseId": "t1"
                  }
                },
                {
                  "toolUse": {
                    "input": {},
                    "name": "now",
                    "toolUseId": "t2"
                  }
                }
              ],
              "role": "assistant"
            },
            {
              "content": [
                {
                  "toolResult": {
                    "content": [
                      {
                        "text": "12C"
                      }
                    ],
                    "toolUseId": "t1"
                  }
                },
                {
                  "toolResult": {
                    "content": [],
                    "toolUseId": "t2"
                  }
                }
              ],
              "role": "user"
            },
            {
              "content": [
                {
                  "text": "It is"
                }
              ],
              "role": "assistant"
            }
          ],
          "system": [
            {
              "text": "Be brief."
            },
            {
              "text": "Use metric."
            }
          ],
          "toolConfig": {
            "tools": [
              {
                "toolSpec": {
                  "inputSchema": {
                    "json": {
                      "type": "object"
                    }
                  },
                  "name": "weather"
                }
              },
              {
                "toolSpec": {
                  "inputSchema": {
                    "json": {
                      "type": "object"
                    }
                  },
                  "name": "now"
                }
              }
            ]
          }
        }
        "#);
    }

    #[test]
    fn tool_choice_modes() {
        let tools = json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]);
        let choice = |c: Value| {
            let b = body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": c}), "amazon.nova-pro-v1:0").unwrap();
            b.get("toolConfig").cloned()
        };
        assert_eq!(choice(json!("auto")).unwrap()["toolChoice"], json!({"auto": {}}));
        assert_eq!(choice(json!("required")).unwrap()["toolChoice"], json!({"any": {}}));
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "f"}})).unwrap()["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        assert_eq!(choice(json!("none")), None);
        let spec = &choice(json!("auto")).unwrap()["tools"][0]["toolSpec"];
        assert_eq!(
            spec,
            &json!({"name": "f", "description": "d", "inputSchema": {"json": {"type": "object"}}})
        );
    }

    #[test]
    fn json_output_is_a_forced_synthetic_tool_unless_the_client_has_tools() {
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low",
                "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
            CLAUDE,
        )
        .unwrap();
        assert_eq!(b["toolConfig"]["toolChoice"], json!({"tool": {"name": JSON_TOOL}}));
        assert_eq!(b["toolConfig"]["tools"][0]["toolSpec"]["name"], json!(JSON_TOOL));
        assert_eq!(
            b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["name"],
            json!({"type": "string"})
        );
        assert!(
            b.get("additionalModelRequestFields").is_none(),
            "a forced tool turns thinking off"
        );

        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "response_format": {"type": "json_object"}}),
            CLAUDE,
        )
        .unwrap();
        let names: Vec<&Value> = b["toolConfig"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["toolSpec"]["name"])
            .collect();
        assert_eq!(names, [&json!("f"), &json!(JSON_TOOL)]);
        assert!(b["toolConfig"].get("toolChoice").is_none());

        let reserved = json!([{"type": "function", "function": {"name": JSON_TOOL}}]);
        assert!(body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": reserved}), CLAUDE).is_err());
    }

    #[test]
    fn images_only_as_data_urls() {
        let req = |url: &str| {
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url}}]}]})
        };
        let b = body(req("data:image/png;base64,iVBORw0KGgo="), CLAUDE).unwrap();
        assert_eq!(
            b["messages"][0]["content"][1],
            json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
        );
        let err = body(req("https://example.com/cat.png"), CLAUDE).unwrap_err();
        assert!(
            matches!(err, TranslateError::InvalidRequest { param: Some(ref p), .. } if p == "messages[0].content[1]"),
            "{err:?}"
        );
        assert!(body(req("data:image/tiff;base64,AAAA"), CLAUDE).is_err());
        assert!(body(req("data:image/png;base64,@@@"), CLAUDE).is_err());
    }

    #[test]
    fn thinking_for_claude_drops_sampling_and_respects_the_limit() {
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low", "temperature": 0.3, "top_p": 0.9}),
            CLAUDE,
        )
        .unwrap();
        assert_eq!(
            b["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 4096}})
        );
        assert_eq!(b["inferenceConfig"], json!({"maxTokens": 4096 + 4096}));

        let b = body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high", "max_completion_tokens": 10000}), CLAUDE).unwrap();
        assert_eq!(b["additionalModelRequestFields"]["thinking"]["budget_tokens"], json!(5000));
        assert_eq!(b["inferenceConfig"]["maxTokens"], json!(10000));

        let b = body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high", "max_tokens": 1500}), CLAUDE).unwrap();
        assert!(
            b.get("additionalModelRequestFields").is_none(),
            "budget below 1024 disables thinking"
        );

        let b = body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "minimal", "temperature": 1.7}), "openai.gpt-oss-120b-1:0").unwrap();
        assert_eq!(b["additionalModelRequestFields"], json!({"reasoning_effort": "low"}));
        assert_eq!(b["inferenceConfig"]["temperature"], json!(1.0));

        assert!(body(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}), CLAUDE).is_err());
    }

    #[test]
    fn echoed_thinking_blocks_become_leading_reasoning_content() {
        let tool_loop = |blocks: Value| {
            json!({"model": "m", "reasoning_effort": "low", "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "Checking.", "thinking_blocks": blocks,
                 "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "ok"}]})
        };
        let b = body(
            tool_loop(json!([
                {"type": "thinking", "thinking": "Call f.", "signature": "sig1"},
                {"type": "thinking", "thinking": "unsigned"},
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
                {"type": "thinking", "thinking": "", "signature": "sig2"}])),
            CLAUDE,
        )
        .unwrap();
        assert_eq!(
            b["messages"][1]["content"],
            json!([
                {"reasoningContent": {"reasoningText": {"text": "Call f.", "signature": "sig1"}}},
                {"reasoningContent": {"redactedContent": "b3BhcXVl"}},
                {"reasoningContent": {"reasoningText": {"text": "", "signature": "sig2"}}},
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}},
            ])
        );
        assert_eq!(b["additionalModelRequestFields"]["thinking"]["type"], json!("enabled"));
        // Nothing replayable echoed: Claude would reject thinking in this tool loop.
        for blocks in [json!(null), json!([{"type": "thinking", "thinking": "unsigned"}])] {
            let b = body(tool_loop(blocks), CLAUDE).unwrap();
            assert!(b.get("additionalModelRequestFields").is_none(), "{b}");
            assert_eq!(b["messages"][1]["content"][0], json!({"text": "Checking."}));
        }
        // Other model families are not Claude: their reasoning switch is unaffected.
        let b = body(tool_loop(json!(null)), "openai.gpt-oss-120b-1:0").unwrap();
        assert_eq!(b["additionalModelRequestFields"], json!({"reasoning_effort": "low"}));
        // Merged assistant messages open with all their reasoning.
        let b = body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"},
                {"role": "assistant", "content": "One."},
                {"role": "assistant", "content": "Two.", "thinking_blocks": [{"type": "redacted_thinking", "data": "ZA=="}]},
                {"role": "user", "content": "y"}]}),
            CLAUDE,
        )
        .unwrap();
        assert_eq!(
            b["messages"][1]["content"],
            json!([{"reasoningContent": {"redactedContent": "ZA=="}}, {"text": "One."}, {"text": "Two."}])
        );
    }

    #[test]
    fn reasoning_signatures_and_redacted_content_reach_the_client() {
        let mut t = StreamTranslator::new(StreamContext::new("c", 1, "m"));
        let mut out = Vec::new();
        let events: [(&str, &str); 7] = [
            ("messageStart", r#"{"role":"assistant"}"#),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Think."}}}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sig1"}}}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"b3BhcXVl"}}}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":2,"delta":{"reasoningContent":{"signature":""}}}"#,
            ),
            ("contentBlockDelta", r#"{"contentBlockIndex":3,"delta":{"text":"Hi."}}"#),
            ("messageStop", r#"{"stopReason":"end_turn"}"#),
        ];
        for (event, payload) in events {
            t.on_event(event, payload.as_bytes(), &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        let deltas: Vec<&prism_types::Delta> =
            out.iter().flat_map(|c| &c.chunk.choices).map(|c| &c.delta).collect();
        assert_eq!(deltas[1], &prism_types::Delta::reasoning("Think."));
        assert_eq!(
            deltas[2],
            &prism_types::Delta::thinking_block(ThinkingBlock::signature("sig1"))
        );
        assert_eq!(
            deltas[3],
            &prism_types::Delta::thinking_block(ThinkingBlock::RedactedThinking {
                data: "b3BhcXVl".into()
            })
        );
        assert_eq!(deltas[4], &prism_types::Delta::content("Hi."), "an empty signature is skipped");

        let body = br#"{"output":{"message":{"role":"assistant","content":[
            {"reasoningContent":{"reasoningText":{"text":"Think.","signature":"sig1"}}},
            {"reasoningContent":{"redactedContent":"b3BhcXVl"}},
            {"text":"Hi."}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":2}}"#;
        let done = translate_response(&StreamContext::new("c", 1, "m"), body).unwrap();
        let m = &done.choices[0].message;
        assert_eq!(m.reasoning_content.as_deref(), Some("Think."));
        assert_eq!(
            m.thinking_blocks,
            Some(vec![
                ThinkingBlock::Thinking {
                    thinking: "Think.".into(),
                    signature: Some("sig1".into())
                },
                ThinkingBlock::RedactedThinking { data: "b3BhcXVl".into() },
            ])
        );
    }

    #[test]
    fn unsupported_requests_are_rejected() {
        let base = |extra: Value| {
            let mut r = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body(r, CLAUDE)
        };
        assert!(base(json!({"n": 2})).is_err());
        assert!(base(json!({"tool_choice": "required"})).is_err());
        assert!(
            body(
                json!({"model": "m", "messages": [{"role": "assistant", "content": "x"}]}),
                CLAUDE
            )
            .is_err()
        );
        assert!(
            body(json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}), CLAUDE)
                .is_err()
        );
        let bad_args = json!({"model": "m", "messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]});
        assert!(body(bad_args, CLAUDE).is_err());
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason("end_turn", false), (FinishReason::Stop, true));
        assert_eq!(finish_reason("stop_sequence", false), (FinishReason::Stop, true));
        assert_eq!(finish_reason("tool_use", true), (FinishReason::ToolCalls, true));
        assert_eq!(finish_reason("tool_use", false), (FinishReason::Stop, false));
        assert_eq!(finish_reason("max_tokens", false), (FinishReason::Length, true));
        assert_eq!(
            finish_reason("model_context_window_exceeded", false),
            (FinishReason::Length, false)
        );
        assert_eq!(
            finish_reason("guardrail_intervened", false),
            (FinishReason::ContentFilter, false)
        );
        assert_eq!(finish_reason("content_filtered", false), (FinishReason::ContentFilter, false));
        assert_eq!(finish_reason("malformed_tool_use", true), (FinishReason::Stop, false));
        assert_eq!(finish_reason("something_new", false), (FinishReason::Stop, false));
    }

    #[test]
    fn usage_counts_cache_in_the_prompt_under_either_spelling() {
        let u: wire::ConverseUsage = serde_json::from_value(json!({
            "inputTokens": 10, "outputTokens": 5, "totalTokens": 1215,
            "cacheReadInputTokenCount": 1000, "cacheWriteInputTokens": 200}))
        .unwrap();
        let u = usage(&u);
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (1210, 5, 1215));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(1000));
        assert_eq!(u.extra["cache_creation_input_tokens"], json!(200));
    }
}

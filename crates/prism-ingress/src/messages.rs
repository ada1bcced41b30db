//! The Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`): request
//! decoding into the canonical request, the stream encoder ([`MessagesEncoder`]), the
//! non-streamed `message`, and Anthropic's error shape and statuses. Mapping tables:
//! `docs/protocols.md`.
//!
//! Decoding builds the equivalent Chat Completions request as JSON and lets the canonical types
//! parse it: one definition of what a valid canonical request is, and errors that name the
//! client's own parameter because every check here runs first. Unknown top-level fields are
//! ignored, never rejected (strict validators break Claude Code); fields only Anthropic can
//! honour are kept for the same-protocol lane, which forwards the client's body untouched.

mod stream;

pub use stream::MessagesEncoder;

use prism_types::{
    ChatCompletion, ChatRequest, ErrorObject, FinishReason, Message, ThinkingBlock, Usage,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::{Decoded, EncodeContext, IngressError};

/// Decodes a Messages request body into the canonical request.
///
/// # Errors
/// A 400 naming the parameter: not JSON, a missing `model`, `max_tokens` or `messages`, a wrong
/// type, an unknown block type, or a value the canonical request cannot hold.
pub fn decode_request(body: &[u8]) -> Result<Decoded, IngressError> {
    decode(body, true)
}

/// Decodes a `count_tokens` body: a Messages request without `max_tokens`.
///
/// # Errors
/// As [`decode_request`].
pub fn decode_count_tokens(body: &[u8]) -> Result<ChatRequest, IngressError> {
    decode(body, false).map(|d| d.request)
}

fn decode(body: &[u8], need_max_tokens: bool) -> Result<Decoded, IngressError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| IngressError::body(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(IngressError::body("the body must be a JSON object"));
    };
    let mut native_only = None;
    let mut chat = Map::new();

    let model = str_field(&obj, "model")?
        .ok_or_else(|| IngressError::invalid("model", "model: Field required"))?;
    chat.insert("model".into(), json!(model));
    match obj.get("max_tokens") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => {
            chat.insert("max_completion_tokens".into(), Value::Number(n.clone()));
        }
        Some(Value::Number(n)) if n.as_u64() == Some(0) => {
            native_only.get_or_insert(IngressError::invalid(
                "max_tokens",
                "max_tokens: 0 (prompt-cache pre-warming) is only served by Anthropic upstreams",
            ));
            chat.insert("max_completion_tokens".into(), json!(1));
        }
        None | Some(Value::Null) if need_max_tokens => {
            return Err(IngressError::invalid("max_tokens", "max_tokens: Field required"));
        }
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(IngressError::invalid(
                "max_tokens",
                "max_tokens: must be a positive integer",
            ));
        }
    }
    let stream = bool_field(&obj, "stream")?.unwrap_or(false);
    chat.insert("stream".into(), json!(stream));
    if stream {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "top_p")] {
        if let Some(v) = obj.get(from).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(IngressError::invalid(from, format!("{from}: must be a number")));
            }
            chat.insert(to.into(), v.clone());
        }
    }
    if let Some(stops) = obj.get("stop_sequences").filter(|v| !v.is_null()) {
        let ok = stops.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(IngressError::invalid(
                "stop_sequences",
                "stop_sequences: must be a list of strings",
            ));
        }
        if stops.as_array().is_some_and(|a| !a.is_empty()) {
            chat.insert("stop".into(), stops.clone());
        }
    }
    if let Some(user) = obj.get("metadata").and_then(|m| m.get("user_id")).and_then(Value::as_str) {
        chat.insert("user".into(), json!(user));
    }

    // System prompt and conversation.
    let mut messages = Vec::new();
    if let Some(system) = obj.get("system").filter(|v| !v.is_null()) {
        let text = system_text(system, "system")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let turns = obj
        .get("messages")
        .ok_or_else(|| IngressError::invalid("messages", "messages: Field required"))?
        .as_array()
        .ok_or_else(|| IngressError::invalid("messages", "messages: must be a list"))?;
    for (i, turn) in turns.iter().enumerate() {
        decode_turn(turn, i, &mut messages, &mut native_only)?;
    }
    chat.insert("messages".into(), Value::Array(messages));

    // Tools.
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| IngressError::invalid("tools", "tools: must be a list"))?;
        let mut out = Vec::new();
        for (i, tool) in tools.iter().enumerate() {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
            if kind != "custom" {
                native_only.get_or_insert(IngressError::invalid(
                    format!("tools[{i}].type"),
                    format!("the server tool {kind:?} is only served by Anthropic upstreams"),
                ));
                continue;
            }
            let name = tool.get("name").and_then(Value::as_str).ok_or_else(|| {
                IngressError::invalid(format!("tools[{i}].name"), "tool name: Field required")
            })?;
            let mut function = json!({
                "name": name,
                "parameters": tool.get("input_schema").cloned().unwrap_or(json!({"type": "object"})),
            });
            if let Some(d) = tool.get("description").and_then(Value::as_str) {
                function["description"] = json!(d);
            }
            if let Some(s) = tool.get("strict").and_then(Value::as_bool) {
                function["strict"] = json!(s);
            }
            out.push(json!({"type": "function", "function": function}));
        }
        if !out.is_empty() {
            chat.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let kind = choice.get("type").and_then(Value::as_str).unwrap_or("");
        let mapped = match kind {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => {
                let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid("tool_choice.name", "tool_choice.name: Field required")
                })?;
                json!({"type": "function", "function": {"name": name}})
            }
            other => {
                return Err(IngressError::invalid(
                    "tool_choice.type",
                    format!("tool_choice.type: unknown value {other:?} (auto, any, tool or none)"),
                ));
            }
        };
        if chat.contains_key("tools") || kind == "none" {
            chat.insert("tool_choice".into(), mapped);
        }
        if choice.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true)
            && chat.contains_key("tools")
        {
            chat.insert("parallel_tool_calls".into(), json!(false));
        }
    }

    // Thinking: an explicit budget rides as an extension; adaptive thinking takes the effort.
    let mut thinking_budget = None;
    if let Some(thinking) = obj.get("thinking").filter(|v| !v.is_null()) {
        match thinking.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget =
                    thinking.get("budget_tokens").and_then(Value::as_u64).ok_or_else(|| {
                        IngressError::invalid(
                            "thinking.budget_tokens",
                            "thinking.budget_tokens: Field required",
                        )
                    })?;
                thinking_budget = Some(budget);
            }
            Some("adaptive") => {
                let effort = obj
                    .get("output_config")
                    .and_then(|o| o.get("effort"))
                    .and_then(Value::as_str)
                    .unwrap_or("medium");
                let effort = if effort == "max" { "xhigh" } else { effort };
                chat.insert("reasoning_effort".into(), json!(effort));
            }
            Some("disabled") => {}
            _ => {
                return Err(IngressError::invalid(
                    "thinking.type",
                    "thinking.type: expected enabled, adaptive or disabled",
                ));
            }
        }
    }
    if let Some(schema) = obj.get("output_config").and_then(|o| o.pointer("/format/schema")) {
        chat.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
        );
    }
    for field in ["mcp_servers", "container"] {
        if obj.get(field).is_some_and(|v| !v.is_null()) {
            native_only.get_or_insert(IngressError::invalid(
                field,
                format!("{field} is only served by Anthropic upstreams"),
            ));
        }
    }

    let mut request: ChatRequest = serde_json::from_value(Value::Object(chat))
        .map_err(|e| IngressError::body(format!("the request cannot be served: {e}")))?;
    request.ext.thinking_budget = thinking_budget;
    request.ext.top_k = obj.get("top_k").and_then(Value::as_u64);
    crate::chat::validate(&request)?;
    Ok(Decoded { request, native_only })
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, IngressError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(IngressError::invalid(name, format!("{name}: must be a string"))),
    }
}

fn bool_field(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, IngressError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(IngressError::invalid(name, format!("{name}: must be a boolean"))),
    }
}

/// The text of `system` (a string or text blocks; `cache_control` and the like dropped).
fn system_text(system: &Value, param: &str) -> Result<String, IngressError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (i, block) in blocks.iter().enumerate() {
                let t = block.get("text").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid(
                        format!("{param}[{i}]"),
                        "system blocks must be text blocks",
                    )
                })?;
                if !text.is_empty() && !t.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            Ok(text)
        }
        _ => Err(IngressError::invalid(param, format!("{param}: must be a string or a list"))),
    }
}

/// One turn → canonical messages (a user turn with tool results becomes tool messages first).
fn decode_turn(
    turn: &Value,
    i: usize,
    out: &mut Vec<Value>,
    native_only: &mut Option<IngressError>,
) -> Result<(), IngressError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let role = turn
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| IngressError::invalid(at("role"), "role: Field required"))?;
    let content = turn
        .get("content")
        .ok_or_else(|| IngressError::invalid(at("content"), "content: Field required"))?;
    let blocks: Vec<Value> = match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => {
            return Err(IngressError::invalid(
                at("content"),
                "content: must be a string or a list",
            ));
        }
    };
    match role {
        "user" => {
            let mut parts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                let param = format!("messages[{i}].content[{j}]");
                let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
                match kind {
                    "tool_result" => {
                        let id =
                            block.get("tool_use_id").and_then(Value::as_str).ok_or_else(|| {
                                IngressError::invalid(
                                    format!("{param}.tool_use_id"),
                                    "Field required",
                                )
                            })?;
                        let text = tool_result_text(block.get("content"), &param)?;
                        let text = if block.get("is_error").and_then(Value::as_bool) == Some(true) {
                            format!("Error: {text}")
                        } else {
                            text
                        };
                        out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
                    }
                    _ => {
                        if let Some(part) = user_part(block, &param, native_only)? {
                            parts.push(part);
                        }
                    }
                }
            }
            if !parts.is_empty() {
                out.push(json!({"role": "user", "content": parts}));
            }
        }
        "assistant" => {
            let mut text = String::new();
            let mut calls = Vec::new();
            let mut thinking = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                let param = format!("messages[{i}].content[{j}]");
                match block.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => {
                        text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    "tool_use" => {
                        let id = block.get("id").and_then(Value::as_str).unwrap_or_default();
                        let name = block.get("name").and_then(Value::as_str).ok_or_else(|| {
                            IngressError::invalid(format!("{param}.name"), "Field required")
                        })?;
                        let input = block.get("input").cloned().unwrap_or(json!({}));
                        calls.push(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()},
                        }));
                    }
                    "thinking" => thinking.push(json!({
                        "type": "thinking",
                        "thinking": block.get("thinking").and_then(Value::as_str).unwrap_or(""),
                        "signature": block.get("signature").and_then(Value::as_str).unwrap_or(""),
                    })),
                    "redacted_thinking" => thinking.push(json!({
                        "type": "redacted_thinking",
                        "data": block.get("data").and_then(Value::as_str).unwrap_or(""),
                    })),
                    kind if kind.starts_with("server_tool_use")
                        || kind.ends_with("_tool_result") =>
                    {
                        native_only.get_or_insert(IngressError::invalid(
                            format!("{param}.type"),
                            format!("{kind} blocks are only served by Anthropic upstreams"),
                        ));
                    }
                    other => {
                        return Err(IngressError::invalid(
                            format!("{param}.type"),
                            format!("unknown assistant content block type {other:?}"),
                        ));
                    }
                }
            }
            let mut m = json!({"role": "assistant"});
            if !text.is_empty() || calls.is_empty() {
                m["content"] = json!(text);
            }
            if !calls.is_empty() {
                m["tool_calls"] = Value::Array(calls);
            }
            if !thinking.is_empty() {
                m["thinking_blocks"] = Value::Array(thinking);
            }
            out.push(m);
        }
        "system" => {
            out.push(json!({"role": "system", "content": system_text(content, &at("content"))?}))
        }
        other => {
            return Err(IngressError::invalid(
                at("role"),
                format!("role: unknown value {other:?} (user or assistant)"),
            ));
        }
    }
    Ok(())
}

/// A user block → a canonical content part (`None` for an empty text block).
fn user_part(
    block: &Value,
    param: &str,
    native_only: &mut Option<IngressError>,
) -> Result<Option<Value>, IngressError> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    Ok(match kind {
        "text" => {
            let text = block.get("text").and_then(Value::as_str).unwrap_or("");
            (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
        }
        "image" => {
            let url = match block.pointer("/source/type").and_then(Value::as_str) {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    block
                        .pointer("/source/media_type")
                        .and_then(Value::as_str)
                        .unwrap_or("image/png"),
                    block.pointer("/source/data").and_then(Value::as_str).unwrap_or("")
                ),
                Some("url") => {
                    block.pointer("/source/url").and_then(Value::as_str).unwrap_or("").to_owned()
                }
                _ => {
                    return Err(IngressError::invalid(
                        format!("{param}.source.type"),
                        "image source type must be base64 or url",
                    ));
                }
            };
            Some(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        "document" => match block.pointer("/source/type").and_then(Value::as_str) {
            Some("base64") => {
                let media = block
                    .pointer("/source/media_type")
                    .and_then(Value::as_str)
                    .unwrap_or("application/pdf");
                let data = block.pointer("/source/data").and_then(Value::as_str).unwrap_or("");
                let title = block.get("title").and_then(Value::as_str).unwrap_or("document.pdf");
                Some(
                    json!({"type": "file", "file": {"file_data": format!("data:{media};base64,{data}"), "filename": title}}),
                )
            }
            Some("text") => {
                let data = block.pointer("/source/data").and_then(Value::as_str).unwrap_or("");
                Some(json!({"type": "text", "text": data}))
            }
            Some("content") => {
                let text = tool_result_text(block.pointer("/source/content"), param)?;
                Some(json!({"type": "text", "text": text}))
            }
            _ => {
                native_only.get_or_insert(IngressError::invalid(
                    format!("{param}.source"),
                    "document url sources are only served by Anthropic upstreams",
                ));
                None
            }
        },
        "search_result" => {
            let text = tool_result_text(block.get("content"), param)?;
            Some(json!({"type": "text", "text": text}))
        }
        other => {
            return Err(IngressError::invalid(
                format!("{param}.type"),
                format!("unknown user content block type {other:?}"),
            ));
        }
    })
}

/// The text of a `tool_result` content (a string or blocks; images are described, not sent).
fn tool_result_text(content: Option<&Value>, param: &str) -> Result<String, IngressError> {
    Ok(match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut text = String::new();
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    Some(other) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&format!("[{other}]"));
                    }
                    None => {}
                }
            }
            text
        }
        Some(_) => {
            return Err(IngressError::invalid(
                format!("{param}.content"),
                "content: must be a string or a list",
            ));
        }
    })
}

/// Anthropic's usage object from the canonical usage: `input_tokens` excludes cache reads and
/// writes, which the canonical `prompt_tokens` includes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct AnthropicUsage {
    pub(crate) input_tokens: u64,
    pub(crate) cache_creation_input_tokens: u64,
    pub(crate) cache_read_input_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl AnthropicUsage {
    pub(crate) fn from_canonical(u: &Usage) -> Self {
        let cached = u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
        let written =
            u.extra.get("cache_creation_input_tokens").and_then(Value::as_u64).unwrap_or(0);
        AnthropicUsage {
            input_tokens: u.prompt_tokens.saturating_sub(cached).saturating_sub(written),
            cache_creation_input_tokens: written,
            cache_read_input_tokens: cached,
            output_tokens: u.completion_tokens,
        }
    }
}

/// `{"type":"error","error":{"type","message"}}`.
#[derive(Serialize)]
pub(crate) struct ErrorEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

impl<'a> ErrorEvent<'a> {
    pub(crate) fn new(kind: &'a str, message: &'a str) -> Self {
        ErrorEvent { kind: "error", error: ErrorDetail { kind, message } }
    }
}

/// Tool ids as Anthropic accepts them when a client replays them: `[A-Za-z0-9_-]`.
pub(crate) fn sanitize_tool_id(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect()
}

pub(crate) fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls | FinishReason::FunctionCall => "tool_use",
        FinishReason::ContentFilter => "refusal",
        _ => "end_turn",
    }
}

/// The Anthropic error type for a failure after the first byte.
pub(crate) fn stream_error_type(error: &ErrorObject) -> &'static str {
    match error.kind.as_str() {
        "rate_limit_error" | "rate_limit_exceeded" => "rate_limit_error",
        "overloaded_error" => "overloaded_error",
        "timeout" | "timeout_error" => "timeout_error",
        "invalid_request_error" => "invalid_request_error",
        "guardrail_error" => "permission_error",
        _ => "api_error",
    }
}

/// Anthropic's error type for an HTTP status, and the status to send (an overloaded gateway is
/// Anthropic's 529).
fn error_type_for(status: u16) -> (u16, &'static str) {
    match status {
        401 => (401, "authentication_error"),
        402 => (402, "billing_error"),
        403 => (403, "permission_error"),
        404 => (404, "not_found_error"),
        409 => (409, "conflict_error"),
        413 => (413, "request_too_large"),
        429 => (429, "rate_limit_error"),
        503 | 529 => (529, "overloaded_error"),
        504 => (504, "timeout_error"),
        400..=499 => (status, "invalid_request_error"),
        _ => (status, "api_error"),
    }
}

/// The Anthropic error response for a gateway error.
pub fn error_response(status: u16, error: &ErrorObject) -> (u16, Vec<u8>) {
    let (status, kind) = error_type_for(status);
    let mut out = Vec::with_capacity(128);
    prism_types::json::extend(&mut out, &ErrorEvent::new(kind, &error.message));
    (status, out)
}

#[derive(Serialize)]
struct MessageBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Value>,
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
    usage: AnthropicUsage,
}

/// A whole Messages response: thinking first, then text, then tool calls (Anthropic's order).
pub fn encode_completion(completion: &ChatCompletion, ctx: &EncodeContext) -> Vec<u8> {
    let choice = completion.choices.first();
    let mut content = Vec::new();
    let mut finish = FinishReason::Stop;
    if let Some(choice) = choice {
        finish = choice.finish_reason.unwrap_or(FinishReason::Stop);
        let m = &choice.message;
        for block in m.thinking_blocks.iter().flatten() {
            content.push(match block {
                ThinkingBlock::Thinking { thinking, signature } => json!({
                    "type": "thinking", "thinking": thinking,
                    "signature": signature.as_deref().unwrap_or(""),
                }),
                ThinkingBlock::RedactedThinking { data } => {
                    json!({"type": "redacted_thinking", "data": data})
                }
            });
        }
        if m.thinking_blocks.as_ref().is_none_or(Vec::is_empty)
            && let Some(r) = m.reasoning_content.as_deref().filter(|r| !r.is_empty())
        {
            content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
        }
        let text = m.content.as_deref().filter(|t| !t.is_empty()).or(m.refusal.as_deref());
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in m.tool_calls.iter().flatten() {
            let input: Value = serde_json::from_str(&call.function.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            content.push(json!({
                "type": "tool_use", "id": sanitize_tool_id(&call.id),
                "name": call.function.name, "input": input,
            }));
        }
    }
    let body = MessageBody {
        id: &ctx.id,
        kind: "message",
        role: "assistant",
        model: &ctx.model,
        content,
        stop_reason: stop_reason(finish),
        stop_sequence: None,
        usage: completion.usage.as_ref().map(AnthropicUsage::from_canonical).unwrap_or_default(),
    };
    let mut out = Vec::with_capacity(512);
    prism_types::json::extend(&mut out, &body);
    out
}

/// Estimated input tokens of a request, for `count_tokens` without an Anthropic upstream and for
/// `message_start`: about 4 bytes of text per token (the chars/4 rule of thumb), plus 4 tokens
/// of framing per message, 8 per tool beside its JSON, 85 per image (a low-detail tile) and 3
/// for the reply's priming. Text means message text, tool-call arguments, tool schemas and the
/// system prompt. An estimate, not a tokenizer: it is within tens of percent for prose.
pub fn estimate_input_tokens(req: &ChatRequest) -> u64 {
    use prism_types::{Content, ContentPart};
    let mut bytes = 0usize;
    let mut tokens = 3u64;
    let count = |c: &Content, bytes: &mut usize, tokens: &mut u64| match c {
        Content::Text(t) => *bytes += t.len(),
        Content::Parts(parts) => {
            for p in parts {
                match p {
                    ContentPart::Text { text } => *bytes += text.len(),
                    _ => *tokens += 85,
                }
            }
        }
    };
    for m in &req.messages {
        tokens += 4;
        match m {
            Message::System { content: c, .. }
            | Message::Developer { content: c, .. }
            | Message::User { content: c, .. }
            | Message::Tool { content: c, .. } => count(c, &mut bytes, &mut tokens),
            Message::Assistant { content: c, tool_calls, .. } => {
                if let Some(c) = c {
                    count(c, &mut bytes, &mut tokens);
                }
                for call in tool_calls.iter().flatten() {
                    bytes += call.function.name.len() + call.function.arguments.len();
                }
            }
            Message::Function { content: c, .. } => bytes += c.as_deref().map_or(0, str::len),
        }
    }
    let mut tool_bytes = 0usize;
    for tool in req.tools.iter().flatten() {
        tokens += 8;
        tool_bytes += tool.function.name.len();
        tool_bytes += tool.function.description.as_deref().map_or(0, str::len);
        tool_bytes += tool.function.parameters.as_ref().map_or(0, |p| p.to_string().len());
    }
    tokens + ((bytes + tool_bytes) as u64).div_ceil(4)
}

/// The `count_tokens` response body.
pub fn count_tokens_body(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}

#[cfg(test)]
mod tests;

//! The OpenAI Responses API (`POST /v1/responses`, stateless): request decoding into the
//! canonical request, the stream encoder ([`ResponsesEncoder`]), the non-streamed Response
//! object, and OpenAI's error shape. Mapping tables: `docs/protocols.md`.
//!
//! Stateless: `store` is accepted and every answer says `store: false`; `previous_response_id`
//! and `conversation` are a 400 (there is nothing to look them up in). Built-in tools are only
//! served by an OpenAI upstream through the same-protocol lane (`Decoded::native_only`).
//!
//! Reasoning round trip: Anthropic-style signed thinking comes back to the client as a
//! `reasoning` item whose `encrypted_content` is a Prism envelope, `prism1.` + base64url of
//! `{"p":"anthropic","blocks":[…]}`; replayed, it becomes the canonical `thinking_blocks` again.
//! Native OpenAI blobs are dropped (they only mean something to OpenAI, which the native lane
//! serves byte for byte).

mod stream;

pub use stream::ResponsesEncoder;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prism_types::{ChatCompletion, ChatRequest, ErrorObject, FinishReason, ThinkingBlock, Usage};
use serde_json::{Map, Value, json};

use crate::{Decoded, EncodeContext, IngressError};

/// The prefix of Prism's reasoning envelope in `encrypted_content`.
const ENVELOPE: &str = "prism1.";

/// Decodes a Responses request body into the canonical request.
///
/// # Errors
/// A 400 naming the parameter.
pub fn decode_request(body: &[u8]) -> Result<Decoded, IngressError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| IngressError::body(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(IngressError::body("the body must be a JSON object"));
    };
    let mut native_only = None;
    let mut chat = Map::new();
    let model = match obj.get("model") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(IngressError::invalid("model", "model must be a string")),
        None => return Err(IngressError::invalid("model", "Missing required parameter: 'model'.")),
    };
    chat.insert("model".into(), json!(model));
    for field in ["previous_response_id", "conversation"] {
        if obj.get(field).is_some_and(|v| !v.is_null()) {
            return Err(IngressError::invalid(
                field,
                format!(
                    "{field} is not supported: this gateway is stateless (send the whole conversation in `input`, with store: false)"
                ),
            ));
        }
    }
    if obj.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(IngressError::invalid("background", "background responses are not supported"));
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(IngressError::invalid("stream", "stream must be a boolean")),
    };
    chat.insert("stream".into(), json!(stream));
    if stream {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(v) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        if v.as_u64().is_none_or(|n| n < 1) {
            return Err(IngressError::invalid(
                "max_output_tokens",
                "max_output_tokens must be a positive integer",
            ));
        }
        chat.insert("max_completion_tokens".into(), v.clone());
    }
    for field in ["temperature", "top_p"] {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(IngressError::invalid(field, format!("{field} must be a number")));
            }
            chat.insert(field.into(), v.clone());
        }
    }
    if let Some(v) = obj.get("parallel_tool_calls").and_then(Value::as_bool) {
        chat.insert("parallel_tool_calls".into(), json!(v));
    }
    if let Some(user) =
        obj.get("safety_identifier").or_else(|| obj.get("user")).and_then(Value::as_str)
    {
        chat.insert("user".into(), json!(user));
    }
    if let Some(effort) = obj.get("reasoning").and_then(|r| r.get("effort")).and_then(Value::as_str)
    {
        let effort = if effort == "max" { "xhigh" } else { effort };
        chat.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(format) = obj.get("text").and_then(|t| t.get("format")).filter(|f| !f.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let name = format.get("name").and_then(Value::as_str).unwrap_or("output");
                let mut schema = json!({"name": name});
                for key in ["schema", "strict", "description"] {
                    if let Some(v) = format.get(key) {
                        schema[key] = v.clone();
                    }
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(IngressError::invalid(
                    "text.format.type",
                    format!("unknown text.format.type {other:?}"),
                ));
            }
        }
    }

    let mut messages = Vec::new();
    if let Some(instructions) =
        obj.get("instructions").and_then(Value::as_str).filter(|s| !s.is_empty())
    {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match obj.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => decode_items(items, &mut messages, &mut native_only)?,
        None | Some(Value::Null) => {
            return Err(IngressError::invalid("input", "Missing required parameter: 'input'."));
        }
        Some(_) => return Err(IngressError::invalid("input", "input must be a string or a list")),
    }
    chat.insert("messages".into(), Value::Array(messages));

    let mut tools = Vec::new();
    for (i, tool) in obj.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
        match tool.get("type").and_then(Value::as_str).unwrap_or("") {
            "function" => {
                let name = tool.get("name").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid(
                        format!("tools[{i}].name"),
                        "Missing required parameter: 'name'.",
                    )
                })?;
                let mut function = json!({"name": name});
                if let Some(p) = tool.get("parameters").filter(|p| !p.is_null()) {
                    function["parameters"] = p.clone();
                }
                if let Some(d) = tool.get("description").and_then(Value::as_str) {
                    function["description"] = json!(d);
                }
                if let Some(s) = tool.get("strict").and_then(Value::as_bool) {
                    function["strict"] = json!(s);
                }
                tools.push(json!({"type": "function", "function": function}));
            }
            // Freeform tools (Codex's apply_patch): a function taking the text as `input`.
            "custom" => {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or("custom");
                let mut description =
                    tool.get("description").and_then(Value::as_str).unwrap_or("").to_owned();
                if let Some(def) = tool.pointer("/format/definition").and_then(Value::as_str) {
                    description.push_str("\n\nThe input follows this grammar:\n");
                    description.push_str(def);
                }
                tools.push(json!({"type": "function", "function": {
                    "name": name, "description": description,
                    "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
                }}));
            }
            other => {
                native_only.get_or_insert(IngressError::invalid(
                    format!("tools[{i}].type"),
                    format!("the built-in tool {other:?} is only served by OpenAI upstreams"),
                ));
            }
        }
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let mapped = match choice {
            Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
                Some(json!(s))
            }
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("function" | "custom") => o
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|name| json!({"type": "function", "function": {"name": name}})),
                Some("allowed_tools") => o.get("mode").and_then(Value::as_str).map(|m| json!(m)),
                _ => None,
            },
            _ => None,
        };
        let Some(mapped) = mapped else {
            return Err(IngressError::invalid("tool_choice", "unsupported tool_choice"));
        };
        if chat.contains_key("tools") || mapped == "none" {
            chat.insert("tool_choice".into(), mapped);
        }
    }

    let request: ChatRequest = serde_json::from_value(Value::Object(chat))
        .map_err(|e| IngressError::body(format!("the request cannot be served: {e}")))?;
    crate::chat::validate(&request)?;
    Ok(Decoded { request, native_only })
}

/// The assistant turn being assembled, started when needed.
fn assistant(turn: &mut Option<Value>) -> &mut Value {
    turn.get_or_insert_with(|| json!({"role": "assistant", "content": ""}))
}

/// Input items → canonical messages. Consecutive function calls (and the assistant text and
/// reasoning before them) become one assistant message.
fn decode_items(
    items: &[Value],
    out: &mut Vec<Value>,
    native_only: &mut Option<IngressError>,
) -> Result<(), IngressError> {
    // The assistant turn being assembled: text, tool calls, thinking blocks.
    let mut turn: Option<Value> = None;
    let flush = |turn: &mut Option<Value>, out: &mut Vec<Value>| {
        if let Some(t) = turn.take() {
            out.push(t);
        }
    };
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid(
                        format!("{param}.role"),
                        "Missing required parameter: 'role'.",
                    )
                })?;
                let content = item.get("content").unwrap_or(&Value::Null);
                if role == "assistant" {
                    let text = assistant_text(content);
                    let t = assistant(&mut turn);
                    if t.get("tool_calls").is_some() {
                        flush(&mut turn, out);
                    }
                    let t = assistant(&mut turn);
                    let joined = format!("{}{text}", t["content"].as_str().unwrap_or(""));
                    t["content"] = json!(joined);
                    continue;
                }
                flush(&mut turn, out);
                let role = match role {
                    "user" | "system" | "developer" => role,
                    other => {
                        return Err(IngressError::invalid(
                            format!("{param}.role"),
                            format!("unknown role {other:?}"),
                        ));
                    }
                };
                out.push(json!({"role": role, "content": user_content(content, &param)?}));
            }
            "function_call" | "custom_tool_call" => {
                let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid(
                        format!("{param}.call_id"),
                        "Missing required parameter: 'call_id'.",
                    )
                })?;
                let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                let arguments = if kind == "custom_tool_call" {
                    json!({"input": item.get("input").and_then(Value::as_str).unwrap_or("")})
                        .to_string()
                } else {
                    item.get("arguments").and_then(Value::as_str).unwrap_or("{}").to_owned()
                };
                let t = assistant(&mut turn);
                if !t["tool_calls"].is_array() {
                    t["tool_calls"] = json!([]);
                }
                if let Some(calls) = t["tool_calls"].as_array_mut() {
                    calls.push(json!({"id": call_id, "type": "function",
                        "function": {"name": name, "arguments": arguments}}));
                }
            }
            "function_call_output" | "custom_tool_call_output" => {
                flush(&mut turn, out);
                let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                    IngressError::invalid(
                        format!("{param}.call_id"),
                        "Missing required parameter: 'call_id'.",
                    )
                })?;
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                };
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            "reasoning" => {
                let blocks = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .and_then(open_envelope)
                    .unwrap_or_default();
                if !blocks.is_empty() {
                    let t = assistant(&mut turn);
                    if t.get("tool_calls").is_some() {
                        flush(&mut turn, out);
                    }
                    let t = assistant(&mut turn);
                    if !t["thinking_blocks"].is_array() {
                        t["thinking_blocks"] = json!([]);
                    }
                    if let Some(list) = t["thinking_blocks"].as_array_mut() {
                        list.extend(blocks);
                    }
                }
            }
            "item_reference" => {
                return Err(IngressError::invalid(
                    format!("{param}.type"),
                    "item_reference needs stored responses; send the items themselves",
                ));
            }
            other => {
                native_only.get_or_insert(IngressError::invalid(
                    format!("{param}.type"),
                    format!("{other} items are only served by OpenAI upstreams"),
                ));
            }
        }
    }
    flush(&mut turn, out);
    // An assistant turn with only tool calls carries no text.
    for m in out.iter_mut() {
        if m["role"] == "assistant"
            && m["content"] == ""
            && m.get("tool_calls").is_some()
            && let Some(o) = m.as_object_mut()
        {
            o.remove("content");
        }
    }
    Ok(())
}

fn assistant_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn user_content(content: &Value, param: &str) -> Result<Value, IngressError> {
    let Value::Array(parts) = content else {
        return match content {
            Value::String(s) => Ok(json!(s)),
            _ => Err(IngressError::invalid(
                format!("{param}.content"),
                "content must be a string or a list",
            )),
        };
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "input_text" | "output_text" | "text" => {
                out.push(json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")}));
            }
            "input_image" => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return Err(IngressError::invalid(
                        format!("{at}.image_url"),
                        "only image_url images are supported (no file_id: there is no Files API)",
                    ));
                };
                let mut image = json!({"url": url});
                if let Some(d) = part.get("detail").and_then(Value::as_str) {
                    image["detail"] = json!(d);
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            "input_file" => {
                let Some(data) = part.get("file_data").and_then(Value::as_str) else {
                    return Err(IngressError::invalid(
                        format!("{at}.file_data"),
                        "only inline file_data files are supported (no file_id or file_url)",
                    ));
                };
                let mut file = json!({"file_data": data});
                if let Some(name) = part.get("filename").and_then(Value::as_str) {
                    file["filename"] = json!(name);
                }
                out.push(json!({"type": "file", "file": file}));
            }
            other => {
                return Err(IngressError::invalid(
                    format!("{at}.type"),
                    format!("unknown content part type {other:?}"),
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

/// Prism's envelope for signed thinking, as `encrypted_content`.
pub(crate) fn seal_envelope(blocks: &[ThinkingBlock]) -> Option<String> {
    let list: Vec<Value> = blocks
        .iter()
        .filter(|b| b.is_replayable())
        .map(|b| match b {
            ThinkingBlock::Thinking { thinking, signature } => {
                json!({"thinking": thinking, "signature": signature})
            }
            ThinkingBlock::RedactedThinking { data } => json!({"redacted": data}),
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    let json = json!({"p": "anthropic", "blocks": list}).to_string();
    Some(format!("{ENVELOPE}{}", URL_SAFE_NO_PAD.encode(json)))
}

/// The thinking blocks of a Prism envelope (as canonical JSON); `None` for anything else.
fn open_envelope(sealed: &str) -> Option<Vec<Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(ENVELOPE)?).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let blocks = v.get("blocks")?.as_array()?;
    Some(
        blocks
            .iter()
            .filter_map(|b| match (b.get("signature"), b.get("redacted")) {
                (Some(sig), _) => Some(json!({"type": "thinking",
                    "thinking": b.get("thinking").cloned().unwrap_or(json!("")), "signature": sig})),
                (None, Some(data)) => Some(json!({"type": "redacted_thinking", "data": data})),
                _ => None,
            })
            .collect(),
    )
}

/// Responses usage from the canonical usage (every field, zeros included: Codex requires them).
pub(crate) fn usage_json(u: Option<&Usage>) -> Value {
    let u = u.cloned().unwrap_or_default();
    let cached = u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
    let written = u.extra.get("cache_creation_input_tokens").and_then(Value::as_u64).unwrap_or(0);
    let reasoning =
        u.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// The terminal status for a finish reason: `completed`, or `incomplete` with its reason.
pub(crate) fn terminal(finish: Option<FinishReason>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some(FinishReason::Length) => ("incomplete", Some("max_output_tokens")),
        Some(FinishReason::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// The Response object.
pub(crate) fn response_object(
    ctx: &EncodeContext,
    status: &str,
    output: &[Value],
    usage: Option<Value>,
    incomplete: Option<&str>,
    error: Option<Value>,
) -> Value {
    json!({
        "id": ctx.id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": error,
        "incomplete_details": incomplete.map(|r| json!({"reason": r})),
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage,
    })
}

/// Item ids, derived from the response id so the output is deterministic.
pub(crate) fn item_id(ctx: &EncodeContext, prefix: &str, output_index: usize) -> String {
    let base = ctx.id.strip_prefix("resp_").unwrap_or(&ctx.id);
    format!("{prefix}_{base}_{output_index}")
}

/// A whole Responses response.
pub fn encode_completion(completion: &ChatCompletion, ctx: &EncodeContext) -> Vec<u8> {
    let mut output = Vec::new();
    let mut finish = None;
    if let Some(choice) = completion.choices.first() {
        finish = choice.finish_reason;
        let m = &choice.message;
        let summary = m.reasoning_content.as_deref().unwrap_or("");
        let sealed = m.thinking_blocks.as_deref().and_then(seal_envelope);
        if !summary.is_empty() || sealed.is_some() {
            let summary: Vec<Value> = if summary.is_empty() {
                Vec::new()
            } else {
                vec![json!({"type": "summary_text", "text": summary})]
            };
            let mut item = json!({"id": item_id(ctx, "rs", output.len()), "type": "reasoning", "summary": summary});
            if let Some(sealed) = sealed {
                item["encrypted_content"] = json!(sealed);
            }
            output.push(item);
        }
        let text = m.content.as_deref().unwrap_or("");
        if !text.is_empty() || m.refusal.is_some() || m.tool_calls.is_none() {
            let part = match m.refusal.as_deref().filter(|_| text.is_empty()) {
                Some(r) => json!({"type": "refusal", "refusal": r}),
                None => {
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
                }
            };
            output.push(json!({"id": item_id(ctx, "msg", output.len()), "type": "message",
                "status": "completed", "role": "assistant", "content": [part]}));
        }
        for call in m.tool_calls.iter().flatten() {
            output.push(json!({"id": item_id(ctx, "fc", output.len()), "type": "function_call",
                "status": "completed", "call_id": call.id, "name": call.function.name,
                "arguments": call.function.arguments}));
        }
    }
    let (status, incomplete) = terminal(finish);
    let body = response_object(
        ctx,
        status,
        &output,
        Some(usage_json(completion.usage.as_ref())),
        incomplete,
        None,
    );
    let mut out = Vec::with_capacity(1024);
    prism_types::json::extend(&mut out, &body);
    out
}

/// OpenAI's `type` and `code` for a gateway error status.
fn error_kind(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

/// The Responses error response for a gateway error: OpenAI's shape, the gateway's own type and
/// code where it has them.
pub fn error_response(status: u16, error: &ErrorObject) -> (u16, Vec<u8>) {
    let (kind, code) = error_kind(status);
    let kind = if error.kind.is_empty() { kind } else { error.kind.as_str() };
    let body = json!({"error": {
        "message": error.message,
        "type": kind,
        "param": error.param,
        "code": error.code.clone().map_or_else(|| code.map(Value::from).unwrap_or(Value::Null), Value::from),
    }});
    let mut out = Vec::with_capacity(128);
    prism_types::json::extend(&mut out, &body);
    (status, out)
}

#[cfg(test)]
mod tests;

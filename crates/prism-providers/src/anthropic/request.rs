//! OpenAI Chat Completions request → Anthropic Messages request body.

use prism_types::{
    ChatRequest, Content, ContentPart, Message, ResponseFormat, ThinkingBlock, ToolCall,
    ToolChoice, ToolChoiceMode,
};
use serde_json::{Map, Value, json};

use super::JSON_TOOL;
use crate::{Deployment, TranslateError};

/// The smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Builds the Messages body (including `model`, and `stream: true` when streaming).
pub(super) fn build_body(
    req: &ChatRequest,
    deployment: &Deployment,
    stream: bool,
) -> Result<Value, TranslateError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("n", "anthropic models generate one choice per request; n must be 1"));
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::String(deployment.upstream_model.clone()));

    let (system, messages) = map_messages(&req.messages)?;
    if !system.is_empty() {
        body.insert("system".into(), system_value(system));
    }
    body.insert("messages".into(), Value::Array(messages));

    let tools = map_tools(req)?;
    let has_tools = !tools.is_empty();
    let tool_choice = map_tool_choice(req, has_tools);
    let forced_tool = tool_choice
        .as_ref()
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    if has_tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice {
        body.insert("tool_choice".into(), choice);
    }

    let thinking_budget = thinking_budget(req, forced_tool)?;
    let limit = req.output_token_limit();
    let (max_tokens, thinking) = match (limit, thinking_budget) {
        // No limit from the client: the answer keeps the default room, thinking comes on top.
        (None, Some(budget)) => {
            (deployment.default_max_tokens.saturating_add(budget), Some(budget))
        }
        (None, None) => (deployment.default_max_tokens, None),
        // `max_completion_tokens` includes reasoning, like Anthropic's `max_tokens`: the budget
        // has to fit below it, or thinking stays off.
        (Some(limit), Some(budget)) => {
            let budget = budget.min(limit.saturating_sub(1));
            (limit, (budget >= MIN_THINKING_BUDGET).then_some(budget))
        }
        (Some(limit), None) => (limit, None),
    };
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(budget) = thinking {
        body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
    }

    // Sampling. With thinking on, Anthropic rejects temperature and top_k, and top_p below 0.95.
    // Recent Claude models also reject temperature together with top_p: temperature wins.
    if thinking.is_none() {
        if let Some(t) = req.temperature {
            // OpenAI's range is 0–2, Anthropic's 0–1.
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(k) = req.top_k() {
            body.insert("top_k".into(), json!(k));
        }
    }
    if let Some(p) = req.top_p {
        let allowed = match thinking {
            Some(_) => (0.95..=1.0).contains(&p),
            None => req.temperature.is_none(),
        };
        if allowed {
            body.insert("top_p".into(), json!(p));
        }
    }
    if let Some(stop) = &req.stop {
        let sequences: Vec<String> = stop.to_vec().into_iter().filter(|s| !s.is_empty()).collect();
        if !sequences.is_empty() {
            body.insert("stop_sequences".into(), json!(sequences));
        }
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(body))
}

fn invalid(param: &str, message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest { param: Some(param.to_owned()), message: message.into() }
}

fn system_value(mut blocks: Vec<String>) -> Value {
    if blocks.len() == 1 {
        return Value::String(blocks.remove(0));
    }
    Value::Array(blocks.into_iter().map(|text| json!({"type": "text", "text": text})).collect())
}

/// One Anthropic turn being assembled.
struct Turn {
    role: &'static str,
    content: Vec<Value>,
}

/// Splits the conversation into the system texts (all system and developer messages, in order)
/// and alternating user/assistant turns.
fn map_messages(messages: &[Message]) -> Result<(Vec<String>, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let param = || format!("messages[{i}]");
        let (role, blocks) = match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                push_system(&mut system, content);
                continue;
            }
            Message::User { content, .. } => ("user", content_blocks(content, &param())?),
            Message::Assistant { content, refusal, tool_calls, thinking_blocks, .. } => {
                // Thinking first: Anthropic checks that a tool-loop turn starts with it.
                let mut blocks: Vec<Value> =
                    thinking_blocks.iter().flatten().filter_map(thinking_block).collect();
                if let Some(content) = content {
                    blocks.extend(content_blocks(content, &param())?);
                }
                if blocks.iter().all(is_thinking)
                    && let Some(refusal) = refusal.as_deref().filter(|r| !r.is_empty())
                {
                    blocks.push(text_block(refusal));
                }
                for (j, call) in tool_calls.iter().flatten().enumerate() {
                    blocks.push(tool_use_block(call, &format!("{}.tool_calls[{j}]", param()))?);
                }
                ("assistant", blocks)
            }
            Message::Tool { content, tool_call_id } => {
                let mut block = Map::new();
                block.insert("type".into(), json!("tool_result"));
                block.insert("tool_use_id".into(), json!(tool_call_id));
                match content {
                    Content::Text(text) if text.is_empty() => {}
                    Content::Text(text) => {
                        block.insert("content".into(), json!(text));
                    }
                    Content::Parts(_) => {
                        let parts = content_blocks(content, &param())?;
                        if !parts.is_empty() {
                            block.insert("content".into(), Value::Array(parts));
                        }
                    }
                }
                ("user", vec![Value::Object(block)])
            }
            Message::Function { .. } => {
                return Err(invalid(
                    &param(),
                    "legacy function messages are not supported; use tool messages with a tool_call_id",
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            // Consecutive turns of one role become one (Anthropic requires alternation, and all
            // tool results answering one assistant turn must share a user turn).
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn { role, content: blocks }),
        }
    }
    if let Some(last) = turns.last_mut().filter(|t| t.role == "assistant") {
        trim_prefill(&mut last.content);
        if last.content.is_empty() {
            turns.pop();
        }
    }
    if turns.is_empty() {
        return Err(invalid("messages", "at least one user or assistant message is required"));
    }
    let messages = turns
        .into_iter()
        .map(|mut turn| {
            if turn.role == "user" {
                // Tool results must open the user turn; text the client sent after them follows.
                let (mut results, rest): (Vec<Value>, Vec<Value>) =
                    turn.content.into_iter().partition(|b| b["type"] == "tool_result");
                results.extend(rest);
                turn.content = results;
            }
            if turn.role == "assistant" {
                // Merged assistant messages: all thinking still has to open the turn.
                let (mut thinking, rest): (Vec<Value>, Vec<Value>) =
                    turn.content.into_iter().partition(is_thinking);
                thinking.extend(rest);
                turn.content = thinking;
            }
            json!({"role": turn.role, "content": turn.content})
        })
        .collect();
    Ok((system, messages))
}

/// The Anthropic content block for an echoed thinking block; `None` for blocks Anthropic would
/// reject (thinking without a signature, redacted thinking without data).
fn thinking_block(block: &ThinkingBlock) -> Option<Value> {
    if !block.is_replayable() {
        return None;
    }
    Some(match block {
        ThinkingBlock::Thinking { thinking, signature } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        ThinkingBlock::RedactedThinking { data } => {
            json!({"type": "redacted_thinking", "data": data})
        }
    })
}

fn is_thinking(block: &Value) -> bool {
    matches!(block["type"].as_str(), Some("thinking" | "redacted_thinking"))
}

fn push_system(system: &mut Vec<String>, content: &Content) {
    match content {
        Content::Text(text) => {
            if !text.is_empty() {
                system.push(text.clone());
            }
        }
        Content::Parts(parts) => {
            for part in parts {
                if let ContentPart::Text { text } = part
                    && !text.is_empty()
                {
                    system.push(text.clone());
                }
            }
        }
    }
}

/// A final assistant message is a prefill, which Anthropic rejects when it ends in whitespace.
fn trim_prefill(content: &mut Vec<Value>) {
    if let Some(Value::Object(last)) = content.last_mut()
        && last.get("type").and_then(Value::as_str) == Some("text")
    {
        let trimmed = last.get("text").and_then(Value::as_str).map(|t| t.trim_end().to_owned());
        match trimmed {
            Some(t) if t.is_empty() => {
                content.pop();
            }
            Some(t) => {
                last.insert("text".into(), Value::String(t));
            }
            None => {}
        }
    }
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Content blocks of a user, assistant or tool message; empty text is dropped.
fn content_blocks(content: &Content, param: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Content::Text(text) if text.is_empty() => Ok(Vec::new()),
        Content::Text(text) => Ok(vec![text_block(text)]),
        Content::Parts(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let param = || format!("{param}.content[{j}]");
                match part {
                    ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                        if !text.is_empty() {
                            blocks.push(text_block(text));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => {
                        let source = if let Some((media_type, data)) = image_url.as_data_url() {
                            json!({"type": "base64", "media_type": media_type, "data": data})
                        } else if image_url.url.starts_with("https://")
                            || image_url.url.starts_with("http://")
                        {
                            json!({"type": "url", "url": image_url.url})
                        } else {
                            return Err(invalid(
                                &param(),
                                "image_url must be an http(s) URL or a base64 data URL",
                            ));
                        };
                        blocks.push(json!({"type": "image", "source": source}));
                    }
                    ContentPart::File { file } => {
                        let data = file.file_data.as_deref().and_then(|d| {
                            let rest = d.strip_prefix("data:")?;
                            let (meta, data) = rest.split_once(',')?;
                            Some((meta.strip_suffix(";base64")?, data))
                        });
                        match data {
                            Some((media_type @ "application/pdf", data)) => {
                                let mut block = json!({
                                    "type": "document",
                                    "source": {"type": "base64", "media_type": media_type, "data": data},
                                });
                                if let Some(name) = &file.filename {
                                    block["title"] = json!(name);
                                }
                                blocks.push(block);
                            }
                            _ => {
                                return Err(invalid(
                                    &param(),
                                    "anthropic accepts files only as base64 PDF data URLs in file_data",
                                ));
                            }
                        }
                    }
                    ContentPart::InputAudio { .. } => {
                        return Err(invalid(
                            &param(),
                            "anthropic models do not accept audio input",
                        ));
                    }
                }
            }
            Ok(blocks)
        }
    }
}

fn tool_use_block(call: &ToolCall, param: &str) -> Result<Value, TranslateError> {
    let args = call.function.arguments.trim();
    let input = if args.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(args) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(invalid(
                    &format!("{param}.function.arguments"),
                    "tool call arguments must be a JSON object",
                ));
            }
            Err(_) => {
                return Err(invalid(
                    &format!("{param}.function.arguments"),
                    "tool call arguments are not valid JSON",
                ));
            }
        }
    };
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}))
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The client's function tools, plus the synthetic JSON tool for `response_format`.
fn map_tools(req: &ChatRequest) -> Result<Vec<Value>, TranslateError> {
    let mut tools = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        let param = format!("tools[{i}]");
        if tool.kind != "function" {
            return Err(invalid(&param, format!("tool type {:?} is not supported", tool.kind)));
        }
        let f = &tool.function;
        if !valid_tool_name(&f.name) || f.name == JSON_TOOL {
            return Err(invalid(
                &format!("{param}.function.name"),
                format!(
                    "tool name {:?} must match ^[a-zA-Z0-9_-]{{1,64}}$ and not be {JSON_TOOL}",
                    f.name
                ),
            ));
        }
        let schema =
            f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut t = json!({"name": f.name, "input_schema": schema});
        if let Some(d) = &f.description {
            t["description"] = json!(d);
        }
        tools.push(t);
    }
    if let Some(schema) = json_schema(req) {
        tools.push(json!({
            "name": JSON_TOOL,
            "description": "Give the final answer by calling this tool with it as the input.",
            "input_schema": schema,
        }));
    }
    Ok(tools)
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

fn map_tool_choice(req: &ChatRequest, has_tools: bool) -> Option<Value> {
    if !has_tools {
        return None;
    }
    let client_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty());
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => json!({"type": "auto"}),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => json!({"type": "any"}),
        Some(ToolChoice::Named(named)) => json!({"type": "tool", "name": named.function.name}),
        // Only the JSON tool: force it, so the answer is the JSON.
        None if !client_tools => json!({"type": "tool", "name": JSON_TOOL}),
        None if req.parallel_tool_calls == Some(false) => json!({"type": "auto"}),
        None => return None,
    };
    if req.parallel_tool_calls == Some(false) {
        choice["disable_parallel_tool_use"] = Value::Bool(true);
    }
    Some(choice)
}

/// The thinking budget: the client's own (`thinking.budget_tokens` of a Messages request), else
/// one for `reasoning_effort`; before fitting it under `max_tokens`.
///
/// Thinking stays off when the request forces a tool (Anthropic allows only `auto`/`none` with
/// thinking) and when the conversation continues a tool loop whose last assistant turn echoed no
/// thinking blocks: that turn would have to start with its signed thinking blocks.
fn thinking_budget(req: &ChatRequest, forced_tool: bool) -> Result<Option<u64>, TranslateError> {
    let budget = match (req.ext.thinking_budget, req.reasoning_effort.as_deref()) {
        (Some(budget), _) => budget,
        (None, None) => return Ok(None),
        (None, Some(effort)) => match effort_budget(effort)? {
            Some(budget) => budget,
            None => return Ok(None),
        },
    };
    let unsigned_tool_loop = req
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, thinking_blocks, .. } => Some(
                tool_calls.as_ref().is_some_and(|c| !c.is_empty())
                    && !thinking_blocks.iter().flatten().any(ThinkingBlock::is_replayable),
            ),
            _ => None,
        })
        .unwrap_or(false);
    if forced_tool || unsigned_tool_loop {
        return Ok(None);
    }
    Ok(Some(budget))
}

/// The thinking budget for a `reasoning_effort`; `None` for `none`.
fn effort_budget(effort: &str) -> Result<Option<u64>, TranslateError> {
    Ok(Some(match effort {
        "none" => return Ok(None),
        "minimal" | "low" => MIN_THINKING_BUDGET,
        "medium" => 2048,
        "high" => 4096,
        "xhigh" => 8192,
        other => {
            return Err(invalid(
                "reasoning_effort",
                format!(
                    "unknown reasoning_effort {other:?}; use none, minimal, low, medium, high or xhigh"
                ),
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ProviderKind;

    fn deployment() -> Deployment {
        Deployment::new(ProviderKind::Anthropic, "https://api.anthropic.com", "claude-test")
    }

    fn body(req: Value) -> Value {
        let req: ChatRequest = serde_json::from_value(req).unwrap();
        build_body(&req, &deployment(), false).unwrap()
    }

    fn error(req: Value) -> (Option<String>, String) {
        let req: ChatRequest = serde_json::from_value(req).unwrap();
        match build_body(&req, &deployment(), false) {
            Err(TranslateError::InvalidRequest { param, message }) => (param, message),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn a_messages_clients_own_budget_and_top_k_reach_anthropic() {
        let mut req: ChatRequest = serde_json::from_value(
            json!({"model": "m", "max_tokens": 20000, "messages": [user("hi")], "reasoning_effort": "low"}),
        )
        .unwrap();
        req.ext.thinking_budget = Some(12_000);
        req.ext.top_k = Some(5);
        let b = build_body(&req, &deployment(), false).unwrap();
        // The explicit budget wins over the effort's; top_k is dropped with thinking on.
        assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 12_000}));
        assert_eq!(b["max_tokens"], json!(20000));
        assert!(b.get("top_k").is_none());
        req.ext.thinking_budget = None;
        req.reasoning_effort = None;
        let b = build_body(&req, &deployment(), false).unwrap();
        assert_eq!(b["top_k"], json!(5));
        assert!(b.get("thinking").is_none());
    }

    #[test]
    fn every_system_message_goes_to_system_in_order() {
        let b = body(json!({"model": "m", "messages": [
            {"role": "system", "content": "one"},
            user("hi"),
            {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "three"},
            user("bye"),
        ]}));
        assert_eq!(
            b["system"],
            json!([{"type": "text", "text": "one"}, {"type": "text", "text": "two"}, {"type": "text", "text": "three"}])
        );
        assert_eq!(b["messages"].as_array().unwrap().len(), 3);
        let single = body(
            json!({"model": "m", "messages": [{"role": "system", "content": "only"}, user("hi")]}),
        );
        assert_eq!(single["system"], json!("only"));
        let none = body(json!({"model": "m", "messages": [user("hi")]}));
        assert!(none.get("system").is_none());
    }

    #[test]
    fn consecutive_same_role_turns_merge() {
        let b = body(json!({"model": "m", "messages": [
            user("a"), user("b"),
            {"role": "assistant", "content": "c"}, {"role": "assistant", "content": ""}, {"role": "assistant", "content": "d"},
            user("e"),
        ]}));
        assert_eq!(
            b["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
                {"role": "user", "content": [{"type": "text", "text": "e"}]},
            ])
        );
    }

    #[test]
    fn tool_results_share_one_user_turn_and_come_first() {
        let b = body(json!({"model": "m", "messages": [
            user("weather?"),
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "t2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ]},
            user("also, be quick"),
            {"role": "tool", "tool_call_id": "t1", "content": "3C"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "tool", "tool_call_id": "t3", "content": ""},
        ]}));
        assert_eq!(
            b["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "t2", "name": "now", "input": {}},
            ]})
        );
        assert_eq!(
            b["messages"][2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "3C"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "12:00"}]},
                {"type": "tool_result", "tool_use_id": "t3"},
                {"type": "text", "text": "also, be quick"},
            ]})
        );
        assert_eq!(b["messages"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn images_from_data_and_http_urls() {
        let b = body(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        ]}]}));
        assert_eq!(
            b["messages"][0]["content"],
            json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            ])
        );
        let (param, _) = error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}}]}]}));
        assert_eq!(param.as_deref(), Some("messages[0].content[0]"));
        let (param, _) = error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}));
        assert_eq!(param.as_deref(), Some("messages[0].content[0]"));
    }

    fn choice(tool_choice: Value, parallel: Option<bool>) -> Option<Value> {
        let mut req = json!({"model": "m", "messages": [user("x")], "tool_choice": tool_choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        if let Some(p) = parallel {
            req["parallel_tool_calls"] = json!(p);
        }
        body(req).get("tool_choice").cloned()
    }

    #[test]
    fn tool_choice_mapping() {
        assert_eq!(choice(json!("auto"), None), Some(json!({"type": "auto"})));
        assert_eq!(choice(json!("none"), None), Some(json!({"type": "none"})));
        assert_eq!(choice(json!("required"), None), Some(json!({"type": "any"})));
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "f"}}), None),
            Some(json!({"type": "tool", "name": "f"}))
        );
        assert_eq!(
            choice(json!("required"), Some(false)),
            Some(json!({"type": "any", "disable_parallel_tool_use": true}))
        );
        assert_eq!(choice(json!("none"), Some(false)), Some(json!({"type": "none"})));
        assert_eq!(choice(json!("auto"), Some(true)), Some(json!({"type": "auto"})));
        // No tool_choice but parallel_tool_calls:false: auto carries the flag.
        let b = body(json!({"model": "m", "messages": [user("x")], "parallel_tool_calls": false,
            "tools": [{"type": "function", "function": {"name": "f"}}]}));
        assert_eq!(b["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
        assert_eq!(
            b["tools"],
            json!([{"name": "f", "input_schema": {"type": "object", "properties": {}}}])
        );
        // Without tools there is nothing to choose from.
        let b = body(
            json!({"model": "m", "messages": [user("x")], "tool_choice": "required", "parallel_tool_calls": false}),
        );
        assert!(b.get("tool_choice").is_none() && b.get("tools").is_none());
    }

    #[test]
    fn invalid_tools_and_arguments_are_rejected() {
        let (param, _) = error(json!({"model": "m", "messages": [user("x")],
            "tools": [{"type": "function", "function": {"name": "has space"}}]}));
        assert_eq!(param.as_deref(), Some("tools[0].function.name"));
        let (param, _) = error(json!({"model": "m", "messages": [user("x")],
            "tools": [{"type": "function", "function": {"name": JSON_TOOL}}]}));
        assert_eq!(param.as_deref(), Some("tools[0].function.name"));
        let (param, _) = error(json!({"model": "m", "messages": [user("x"),
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}));
        assert_eq!(param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
        let (param, _) = error(json!({"model": "m", "messages": [user("x"),
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}));
        assert_eq!(param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
        let (param, _) = error(
            json!({"model": "m", "messages": [user("x"), {"role": "function", "name": "f", "content": "1"}]}),
        );
        assert_eq!(param.as_deref(), Some("messages[1]"));
        let (param, _) = error(json!({"model": "m", "messages": [user("x")], "n": 2}));
        assert_eq!(param.as_deref(), Some("n"));
        let (param, _) =
            error(json!({"model": "m", "messages": [{"role": "system", "content": "only"}]}));
        assert_eq!(param.as_deref(), Some("messages"));
        let (param, _) =
            error(json!({"model": "m", "messages": [user("x")], "reasoning_effort": "huge"}));
        assert_eq!(param.as_deref(), Some("reasoning_effort"));
    }

    fn thinking(extra: Value) -> (Value, Option<Value>) {
        let mut req = json!({"model": "m", "messages": [user("x")]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let b = body(req);
        (b["max_tokens"].clone(), b.get("thinking").cloned())
    }

    #[test]
    fn reasoning_effort_becomes_a_budget_below_max_tokens() {
        let enabled = |n: u64| Some(json!({"type": "enabled", "budget_tokens": n}));
        // No client limit: the default answer room plus the budget.
        assert_eq!(
            thinking(json!({"reasoning_effort": "medium"})),
            (json!(4096 + 2048), enabled(2048))
        );
        assert_eq!(
            thinking(json!({"reasoning_effort": "minimal"})),
            (json!(4096 + 1024), enabled(1024))
        );
        // A client limit caps the budget below it.
        assert_eq!(
            thinking(json!({"reasoning_effort": "high", "max_completion_tokens": 3000})),
            (json!(3000), enabled(2999))
        );
        assert_eq!(
            thinking(json!({"reasoning_effort": "low", "max_completion_tokens": 1025})),
            (json!(1025), enabled(1024))
        );
        // Too small for the minimum budget: thinking stays off.
        assert_eq!(
            thinking(json!({"reasoning_effort": "high", "max_completion_tokens": 1024})),
            (json!(1024), None)
        );
        assert_eq!(thinking(json!({"reasoning_effort": "none"})), (json!(4096), None));
    }

    #[test]
    fn thinking_drops_what_anthropic_rejects_with_it() {
        let b = body(
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "low", "temperature": 0.3,
            "top_p": 0.5, "top_k": 5}),
        );
        assert!(b.get("thinking").is_some());
        assert!(
            b.get("temperature").is_none() && b.get("top_p").is_none() && b.get("top_k").is_none()
        );
        let b = body(
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "low", "top_p": 0.97}),
        );
        assert_eq!(b["top_p"], json!(0.97));
        // A forced tool and thinking do not go together: the tool wins.
        let b = body(
            json!({"model": "m", "messages": [user("x")], "reasoning_effort": "low", "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        assert!(b.get("thinking").is_none());
        // Continuing a tool loop would need the signed thinking blocks of the last assistant turn.
        let b = body(json!({"model": "m", "reasoning_effort": "low", "messages": [user("x"),
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"}]}));
        assert!(b.get("thinking").is_none());
    }

    #[test]
    fn echoed_thinking_blocks_open_the_assistant_turn_and_keep_thinking_on() {
        let signed = json!({"type": "thinking", "thinking": "Call f.", "signature": "sig1"});
        let redacted = json!({"type": "redacted_thinking", "data": "opaque=="});
        let omitted = json!({"type": "thinking", "thinking": "", "signature": "sig2"});
        let unsigned = json!({"type": "thinking", "thinking": "lost"});
        let b = body(json!({"model": "m", "reasoning_effort": "low", "messages": [user("x"),
            {"role": "assistant", "content": "Checking.", "thinking_blocks": [signed, unsigned, redacted, omitted],
             "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"}]}));
        assert_eq!(
            b["messages"][1]["content"],
            json!([
                {"type": "thinking", "thinking": "Call f.", "signature": "sig1"},
                {"type": "redacted_thinking", "data": "opaque=="},
                {"type": "thinking", "thinking": "", "signature": "sig2"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "a", "name": "f", "input": {}},
            ]),
            "thinking first, in order; the unsigned block is dropped"
        );
        assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));

        // Only unsigned blocks echoed: nothing to replay, so thinking stays off in the loop.
        let b = body(json!({"model": "m", "reasoning_effort": "low", "messages": [user("x"),
            {"role": "assistant", "thinking_blocks": [{"type": "thinking", "thinking": "t"}],
             "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"}]}));
        assert!(b.get("thinking").is_none());
        assert_eq!(b["messages"][1]["content"][0]["type"], json!("tool_use"));

        // Blocks of an earlier, finished turn are sent even without thinking, and merged
        // assistant messages still open with all their thinking.
        let b = body(json!({"model": "m", "messages": [user("x"),
            {"role": "assistant", "content": "Part one."},
            {"role": "assistant", "content": "Part two.", "thinking_blocks": [{"type": "redacted_thinking", "data": "d"}]},
            user("y")]}));
        assert!(b.get("thinking").is_none());
        assert_eq!(
            b["messages"][1]["content"],
            json!([
                {"type": "redacted_thinking", "data": "d"},
                {"type": "text", "text": "Part one."},
                {"type": "text", "text": "Part two."},
            ])
        );
        // A refusal still fills an assistant turn whose only other blocks are thinking.
        let b = body(json!({"model": "m", "messages": [user("x"),
            {"role": "assistant", "refusal": "No.", "thinking_blocks": [{"type": "redacted_thinking", "data": "d"}]},
            user("y")]}));
        assert_eq!(b["messages"][1]["content"][1], json!({"type": "text", "text": "No."}));
    }

    #[test]
    fn sampling_limits_stop_and_user() {
        let b = body(
            json!({"model": "m", "messages": [user("x")], "max_tokens": 100, "max_completion_tokens": 50,
            "temperature": 1.7, "top_p": 0.9, "stop": "END", "user": "u-1", "seed": 3, "presence_penalty": 1.0, "top_k": 40}),
        );
        assert_eq!(b["max_tokens"], json!(50));
        assert_eq!(b["temperature"], json!(1.0));
        assert!(b.get("top_p").is_none(), "top_p is dropped when temperature is set");
        assert_eq!(b["top_k"], json!(40));
        assert_eq!(b["stop_sequences"], json!(["END"]));
        assert_eq!(b["metadata"], json!({"user_id": "u-1"}));
        assert!(
            b.get("seed").is_none()
                && b.get("presence_penalty").is_none()
                && b.get("stream").is_none()
        );
        let b = body(
            json!({"model": "m", "messages": [user("x")], "max_tokens": 100, "top_p": 0.9, "stop": ["a", "", "b"]}),
        );
        assert_eq!(b["max_tokens"], json!(100));
        assert_eq!(b["top_p"], json!(0.9));
        assert_eq!(b["stop_sequences"], json!(["a", "b"]));
        let b = body(json!({"model": "m", "messages": [user("x")], "stop": [""]}));
        assert!(b.get("stop_sequences").is_none());
        assert_eq!(b["model"], json!("claude-test"));
    }

    #[test]
    fn prefill_loses_trailing_whitespace() {
        let b = body(
            json!({"model": "m", "messages": [user("x"), {"role": "assistant", "content": "The answer is  \n"}]}),
        );
        assert_eq!(b["messages"][1]["content"], json!([{"type": "text", "text": "The answer is"}]));
        let b = body(
            json!({"model": "m", "messages": [user("x"), {"role": "assistant", "content": " \n"}]}),
        );
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_response_format_adds_a_forced_tool() {
        let b = body(
            json!({"model": "m", "messages": [user("x")], "response_format": {"type": "json_object"}}),
        );
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
        // With client tools the JSON tool is offered, not forced.
        let b = body(
            json!({"model": "m", "messages": [user("x")], "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        assert!(b.get("tool_choice").is_none());
        assert_eq!(b["tools"].as_array().unwrap().len(), 2);
    }
}

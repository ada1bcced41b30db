//! The demo's answer to a request that offers tools: a call to the first tool, whatever the wire.

use serde_json::{Map, Value};

/// The first offered tool's name and demo arguments built from its schema, unless the request
/// forbids tool calls or its last message already carries a tool result (then the demo answers
/// with text, closing the tool loop).
pub(crate) fn demo_tool_call(body: &[u8]) -> Option<(String, String)> {
    let body: Value = serde_json::from_slice(body).ok()?;
    if tools_forbidden(&body) || last_turn_has_tool_result(&body) {
        return None;
    }
    let (name, schema) = first_tool(&body)?;
    let arguments = demo_arguments(schema.unwrap_or(&Value::Null));
    Some((name.to_owned(), arguments))
}

/// Tools the demo prefers to call when offered: read-only ones, so that a coding agent pointed at
/// the demo (Claude Code offers `Task` first, which would start a sub-agent that calls it again)
/// takes one harmless step and gets a result back.
const PREFERRED: [&str; 6] = ["Read", "LS", "Glob", "read_file", "list_dir", "list_files"];

/// The tool the demo calls, with its schema: the first [`PREFERRED`] one offered, else the first
/// tool of an OpenAI, Anthropic, Gemini or Bedrock Converse body.
fn first_tool(body: &Value) -> Option<(&str, Option<&Value>)> {
    let tools = offered_tools(body);
    tools.iter().find(|(name, _)| PREFERRED.contains(name)).or(tools.first()).copied()
}

fn offered_tools(body: &Value) -> Vec<(&str, Option<&Value>)> {
    let mut out = Vec::new();
    for tool in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        if let Some(f) = tool.get("function") {
            out.extend(f.get("name").and_then(Value::as_str).map(|n| (n, f.get("parameters"))));
        } else if let Some(decls) = tool.get("functionDeclarations").and_then(Value::as_array) {
            for decl in decls {
                let schema = decl.get("parameters").or_else(|| decl.get("parametersJsonSchema"));
                out.extend(decl.get("name").and_then(Value::as_str).map(|n| (n, schema)));
            }
        } else if let Some(name) = tool.get("name").and_then(Value::as_str) {
            // Anthropic (`input_schema`) and the flat Responses function tools (`parameters`).
            out.push((name, tool.get("input_schema").or_else(|| tool.get("parameters"))));
        }
    }
    for tool in body.pointer("/toolConfig/tools").and_then(Value::as_array).into_iter().flatten() {
        if let Some(spec) = tool.get("toolSpec") {
            let name = spec.get("name").and_then(Value::as_str);
            out.extend(name.map(|n| (n, spec.pointer("/inputSchema/json"))));
        }
    }
    out
}

fn tools_forbidden(body: &Value) -> bool {
    let openai = body.get("tool_choice").and_then(Value::as_str) == Some("none");
    let anthropic = body.pointer("/tool_choice/type").and_then(Value::as_str) == Some("none");
    let gemini = body.pointer("/toolConfig/functionCallingConfig/mode").and_then(Value::as_str)
        == Some("NONE");
    openai || anthropic || gemini
}

fn last_turn_has_tool_result(body: &Value) -> bool {
    let last = body
        .get("messages")
        .or_else(|| body.get("contents"))
        .or_else(|| body.get("input"))
        .and_then(Value::as_array)
        .and_then(|turns| turns.last());
    let Some(last) = last else { return false };
    if last.get("role").and_then(Value::as_str) == Some("tool") {
        return true;
    }
    let text = last.to_string();
    ["\"tool_result\"", "\"functionResponse\"", "\"toolResult\"", "\"function_call_output\""]
        .iter()
        .any(|m| text.contains(m))
}

/// Arguments satisfying the schema's required properties with simple demo values.
fn demo_arguments(schema: &Value) -> String {
    let mut args = Map::new();
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let kind = schema
            .pointer(&format!("/properties/{name}/type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match kind.to_ascii_lowercase().as_str() {
            "integer" | "number" => Value::from(1),
            "boolean" => Value::Bool(true),
            "array" => Value::Array(Vec::new()),
            "object" => Value::Object(Map::new()),
            _ => Value::from("Paris"),
        };
        args.insert(name.to_owned(), value);
    }
    Value::Object(args).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}"#;

    #[test]
    fn finds_the_first_tool_on_every_wire() {
        let openai = format!(
            r#"{{"messages":[{{"role":"user","content":"hi"}}],"tools":[{{"type":"function","function":{{"name":"get_weather","parameters":{SCHEMA}}}}}]}}"#
        );
        let anthropic = format!(
            r#"{{"messages":[{{"role":"user","content":"hi"}}],"tools":[{{"name":"get_weather","input_schema":{SCHEMA}}}]}}"#
        );
        let gemini = format!(
            r#"{{"contents":[{{"role":"user","parts":[{{"text":"hi"}}]}}],"tools":[{{"functionDeclarations":[{{"name":"get_weather","parameters":{SCHEMA}}}]}}]}}"#
        );
        let bedrock = format!(
            r#"{{"messages":[{{"role":"user","content":[{{"text":"hi"}}]}}],"toolConfig":{{"tools":[{{"toolSpec":{{"name":"get_weather","inputSchema":{{"json":{SCHEMA}}}}}}}]}}}}"#
        );
        for body in [openai, anthropic, gemini, bedrock] {
            let (name, args) =
                demo_tool_call(body.as_bytes()).unwrap_or_else(|| panic!("no tool in {body}"));
            assert_eq!(name, "get_weather");
            assert_eq!(args, r#"{"city":"Paris","days":1}"#);
        }
    }

    #[test]
    fn prefers_a_read_only_tool_and_closes_a_responses_loop() {
        let agent = r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Task","input_schema":{}},{"name":"Bash","input_schema":{}},{"name":"Read","input_schema":{"required":["file_path"]}}]}"#;
        let (name, args) = demo_tool_call(agent.as_bytes()).unwrap();
        assert_eq!((name.as_str(), args.as_str()), ("Read", r#"{"file_path":"Paris"}"#));
        let responses = r#"{"input":[{"type":"function_call_output","call_id":"c","output":"ok"}],"tools":[{"type":"function","name":"shell","parameters":{}}]}"#;
        assert!(demo_tool_call(responses.as_bytes()).is_none());
        let fresh =
            r#"{"input":"hi","tools":[{"type":"function","name":"shell","parameters":{}}]}"#;
        assert_eq!(demo_tool_call(fresh.as_bytes()).unwrap().0, "shell");
    }

    #[test]
    fn no_call_when_forbidden_absent_or_answered() {
        assert!(demo_tool_call(br#"{"messages":[{"role":"user","content":"hi"}]}"#).is_none());
        let none = r#"{"messages":[],"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}]}"#;
        assert!(demo_tool_call(none.as_bytes()).is_none());
        let answered = r#"{"messages":[{"role":"tool","tool_call_id":"c","content":"18C"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#;
        assert!(demo_tool_call(answered.as_bytes()).is_none());
        let no_args = r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#;
        assert_eq!(demo_tool_call(no_args.as_bytes()), Some(("f".to_owned(), "{}".to_owned())));
    }
}

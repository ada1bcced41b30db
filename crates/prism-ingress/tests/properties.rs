//! Property tests of the client request decoders, the stable twin of the `requests` fuzz target:
//! Chat Completions, Messages (and `count_tokens`) and Responses never panic on arbitrary bytes,
//! arbitrary JSON, valid requests with any field replaced by a value of any type, deep nesting,
//! huge numbers or duplicate keys; and every request they accept is a canonical request the Chat
//! Completions decoder accepts again, unchanged.

use prism_ingress::{chat, messages, responses};
use prism_types::ChatRequest;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Chat,
    Messages,
    CountTokens,
    Responses,
}

const DECODERS: [Decoder; 4] =
    [Decoder::Chat, Decoder::Messages, Decoder::CountTokens, Decoder::Responses];

/// Decodes `body`; an accepted request must survive a JSON round trip through the chat decoder.
fn check(decoder: Decoder, body: &[u8]) -> Result<(), TestCaseError> {
    let request = match decoder {
        Decoder::Chat => chat::decode_request(body).map(|d| d.request),
        Decoder::Messages => messages::decode_request(body).map(|d| d.request),
        Decoder::CountTokens => {
            // A token count never goes upstream, so it only has to decode without panicking.
            let _ = messages::decode_count_tokens(body);
            return Ok(());
        }
        Decoder::Responses => responses::decode_request(body).map(|d| d.request),
    };
    let Ok(request) = request else { return Ok(()) };
    round_trips(decoder, &request)
}

/// `ext` is what the Messages and Responses ingresses carry beyond Chat Completions; JSON never
/// carries it, so the round trip compares everything else.
fn round_trips(decoder: Decoder, request: &ChatRequest) -> Result<(), TestCaseError> {
    let mut expected = request.clone();
    expected.ext = Default::default();
    let json = serde_json::to_vec(request)
        .map_err(|e| TestCaseError::fail(format!("{decoder:?}: does not serialize: {e}")))?;
    match chat::decode_request(&json) {
        Ok(again) => prop_assert_eq!(again.request, expected, "{:?}: round trip", decoder),
        Err(e) => prop_assert!(false, "{decoder:?}: chat rejects the canonical request: {e:?}"),
    }
    Ok(())
}

/// Field names the decoders look at, so generated objects hit real paths.
const KEYS: [&str; 32] = [
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tools",
    "tool_choice",
    "max_tokens",
    "system",
    "input",
    "name",
    "arguments",
    "id",
    "tool_calls",
    "function",
    "parameters",
    "stream",
    "stream_options",
    "include_usage",
    "temperature",
    "top_p",
    "stop",
    "n",
    "instructions",
    "tool_use_id",
    "call_id",
    "output",
    "thinking",
    "reasoning",
    "image_url",
    "source",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => select(KEYS.to_vec()).prop_map(str::to_owned), 1 => "\\PC{0,6}"]
}

/// Leaves of every JSON type, with the numbers decoders trip over.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![0.0, -0.0, 0.5, 1.0, 2.5, -1.0, 1e300, -1e300, 5e-324, f64::MAX])
            .prop_map(Value::from),
        select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "developer",
            "text",
            "image",
            "tool_use",
            "tool_result",
            "function",
            "auto",
            "none",
            "required",
            "input_text",
            "function_call",
            "function_call_output",
            "message",
            "enabled",
            "gpt-4o",
            ""
        ])
        .prop_map(Value::from),
        "\\PC{0,10}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Valid requests of each protocol, rich enough that most fields are present.
fn valid_requests() -> Vec<(Decoder, Value)> {
    let chat = json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 100, "stop": ["END"], "n": 1,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "12C"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto", "response_format": {"type": "json_object"}
    });
    let messages = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12C"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}
        ],
        "tools": [{"name": "get_weather", "description": "d",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "auto"}, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "temperature": 0.5, "top_k": 40, "stop_sequences": ["END"], "metadata": {"user_id": "u"}
    });
    let responses = json!({
        "model": "gpt-4o-mini", "stream": true, "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "12C"}
        ],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": "auto", "reasoning": {"effort": "low"}, "max_output_tokens": 256,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "temperature": 1, "store": false
    });
    vec![
        (Decoder::Chat, chat),
        (Decoder::Messages, messages.clone()),
        (Decoder::CountTokens, messages),
        (Decoder::Responses, responses),
    ]
}

/// Replaces the value at the path `steps` walks (each step picks a member or element), or
/// inserts it under `key` in the object the walk ends in.
fn replace(value: &mut Value, steps: &[Index], key: &str, with: Value) {
    let Some((step, rest)) = steps.split_first() else { return insert(value, key, with) };
    let child = match value {
        Value::Object(map) if !map.is_empty() => {
            let n = step.index(map.len());
            map.values_mut().nth(n)
        }
        Value::Array(items) if !items.is_empty() => {
            let n = step.index(items.len());
            items.get_mut(n)
        }
        _ => None,
    };
    match child {
        Some(child) if child.is_object() || child.is_array() => replace(child, rest, key, with),
        Some(child) => *child = with,
        None => insert(value, key, with),
    }
}

fn insert(value: &mut Value, key: &str, with: Value) {
    match value {
        Value::Object(map) => {
            map.insert(key.to_owned(), with);
        }
        other => *other = with,
    }
}

fn decoder() -> impl Strategy<Value = Decoder> {
    select(DECODERS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(decoder in decoder(), body in prop::collection::vec(any::<u8>(), 0..200)) {
        check(decoder, &body)?;
    }

    #[test]
    fn arbitrary_json_never_panics(decoder in decoder(), value in json_value()) {
        check(decoder, value.to_string().as_bytes())?;
    }

    /// Valid requests with one value swapped for anything (a wrong type, a huge number, an
    /// object where a string belongs), or a new member added.
    #[test]
    fn valid_requests_with_any_field_replaced_never_panic(
        which in any::<Index>(),
        steps in prop::collection::vec(any::<Index>(), 0..6),
        key in key(),
        with in json_value(),
    ) {
        let all = valid_requests();
        let (decoder, mut value) = all[which.index(all.len())].clone();
        replace(&mut value, &steps, &key, with);
        check(decoder, value.to_string().as_bytes())?;
    }
}

/// Fails the plain test a property check failed.
fn must(result: Result<(), TestCaseError>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The unmodified valid requests decode, so the property above starts from accepted requests.
#[test]
fn the_valid_requests_decode() {
    for (decoder, value) in valid_requests() {
        let body = value.to_string();
        let ok = match decoder {
            Decoder::Chat => chat::decode_request(body.as_bytes()).is_ok(),
            Decoder::Messages => messages::decode_request(body.as_bytes()).is_ok(),
            Decoder::CountTokens => messages::decode_count_tokens(body.as_bytes()).is_ok(),
            Decoder::Responses => responses::decode_request(body.as_bytes()).is_ok(),
        };
        assert!(ok, "{decoder:?} rejects its valid request");
    }
}

/// 10,000 levels of arrays or objects, at the top and inside fields the decoders walk: an error,
/// not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    for deep in [&arrays, &objects] {
        let bodies = [
            deep.clone(),
            format!(
                r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":{deep}}}]}}"#
            ),
            format!(r#"{{"model":"m","input":{deep}}}"#),
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{deep}}}}}]}}"#
            ),
        ];
        for decoder in DECODERS {
            for body in &bodies {
                must(check(decoder, body.as_bytes()));
            }
        }
    }
}

/// Numbers past every integer type, and duplicate keys with conflicting values.
#[test]
fn huge_numbers_and_duplicate_keys_never_panic() {
    let numbers = [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "1e-400",
        "123456789012345678901234567890",
        "4294967296",
        "-1",
        "0.0000001",
    ];
    for n in numbers {
        for field in [
            "max_tokens",
            "max_output_tokens",
            "temperature",
            "top_p",
            "top_k",
            "n",
            "seed",
            "budget_tokens",
            "max_completion_tokens",
        ] {
            let bodies = [
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":"x"}}],"{field}":{n}}}"#
                ),
                format!(r#"{{"model":"m","input":"x","{field}":{n}}}"#),
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":"x"}}],"thinking":{{"type":"enabled","{field}":{n}}}}}"#
                ),
            ];
            for decoder in DECODERS {
                for body in &bodies {
                    must(check(decoder, body.as_bytes()));
                }
            }
        }
    }
    let duplicates = [
        r#"{"model":"a","model":"b","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"a","max_tokens":1,"max_tokens":"x","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"a","max_tokens":1,"messages":[{"role":"user","role":"assistant","content":"x","content":[]}]}"#,
        r#"{"model":"a","input":"x","input":[{"role":"user","content":"y"}]}"#,
        r#"{"model":"a","input":"x","stream":true,"stream":false}"#,
    ];
    for body in duplicates {
        for decoder in DECODERS {
            must(check(decoder, body.as_bytes()));
        }
    }
}

use bytes::BytesMut;
use prism_types::{
    ChatChunk, ChunkChoice, Content, Delta, FunctionCallDelta, Message, ToolCallDelta,
};
use serde_json::json;

use super::*;
use crate::StreamEncoder;

fn decode(v: Value) -> Decoded {
    decode_request(v.to_string().as_bytes()).unwrap()
}

#[test]
fn a_codex_shaped_request_decodes() {
    let d = decode(json!({
        "model": "m", "instructions": "You are Codex.", "stream": true, "store": false,
        "tool_choice": "auto", "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "thread-1",
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object"}, "strict": false},
            {"type": "custom", "name": "apply_patch", "description": "Patch files", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}
        ],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]},
            {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]}
        ]
    }));
    assert!(d.native_only.is_none());
    let r = d.request;
    assert!(r.include_usage());
    assert_eq!(r.reasoning_effort.as_deref(), Some("medium"));
    assert_eq!(r.parallel_tool_calls, Some(false));
    let tools = r.tools.unwrap();
    assert_eq!(tools[1].function.name, "apply_patch");
    assert!(tools[1].function.description.as_deref().unwrap().contains("start: x"));
    assert_eq!(r.messages.len(), 5, "{:#?}", r.messages);
    assert!(matches!(&r.messages[0], Message::System { .. }));
    assert!(
        matches!(&r.messages[2], Message::Assistant { tool_calls: Some(c), content: None, .. } if c[0].id == "call_1")
    );
    assert!(
        matches!(&r.messages[3], Message::Tool { tool_call_id, .. } if tool_call_id == "call_1")
    );
    assert!(
        matches!(&r.messages[4], Message::Assistant { content: Some(Content::Text(t)), .. } if t == "Done.")
    );
}

#[test]
fn stateless_and_built_in_rules() {
    let e = decode_request(
        json!({"model": "m", "input": "x", "previous_response_id": "resp_1"})
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("previous_response_id"));
    let d = decode(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}));
    assert_eq!(d.native_only.unwrap().param.as_deref(), Some("tools[0].type"));
    let e = decode_request(br#"{"model": "m"}"#).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input"));
}

#[test]
fn the_reasoning_envelope_round_trips() {
    let blocks =
        vec![ThinkingBlock::Thinking { thinking: "t".into(), signature: Some("sig".into()) }];
    let sealed = seal_envelope(&blocks).unwrap();
    assert!(sealed.starts_with("prism1."));
    let d = decode(json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": sealed},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"}
    ]}));
    match &d.request.messages[1] {
        Message::Assistant { thinking_blocks: Some(b), tool_calls: Some(_), .. } => {
            assert_eq!(b, &blocks)
        }
        other => panic!("{other:?}"),
    }
}

fn ctx() -> EncodeContext {
    EncodeContext { id: "resp_1".into(), created: 7, model: "pub".into() }
}

fn chunk(delta: Delta, finish: Option<FinishReason>) -> ChatChunk {
    let mut c = ChatChunk::new("c", 1, "pub");
    c.choices.push(ChunkChoice { index: 0, delta, logprobs: None, finish_reason: finish });
    c
}

fn events(out: &BytesMut) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            serde_json::from_str(e.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn reasoning_text_and_parallel_calls_close_in_order_with_usage() {
    let mut enc = ResponsesEncoder::new(ctx());
    let mut out = BytesMut::new();
    let call = |index, id: Option<&str>, name: Option<&str>, args: &str| ToolCallDelta {
        index,
        id: id.map(Into::into),
        kind: id.map(|_| "function".into()),
        function: Some(FunctionCallDelta {
            name: name.map(Into::into),
            arguments: Some(args.into()),
        }),
    };
    enc.chunk(&chunk(Delta::role(), None), None, &mut out);
    enc.chunk(
        &chunk(Delta { reasoning_content: Some("think".into()), ..Delta::default() }, None),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(Delta { content: Some("Hi".into()), ..Delta::default() }, None),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta {
                tool_calls: Some(vec![call(0, Some("c0"), Some("a"), "{\"x\":")]),
                ..Delta::default()
            },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta {
                tool_calls: Some(vec![call(1, Some("c1"), Some("b"), "")]),
                ..Delta::default()
            },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(
        &chunk(
            Delta { tool_calls: Some(vec![call(0, None, None, "1}")]), ..Delta::default() },
            None,
        ),
        None,
        &mut out,
    );
    enc.chunk(&chunk(Delta::default(), Some(FinishReason::ToolCalls)), None, &mut out);
    let mut usage = Usage::new(10, 5);
    usage.completion_tokens_details = Some(prism_types::CompletionTokensDetails {
        reasoning_tokens: Some(2),
        ..Default::default()
    });
    let mut last = ChatChunk::new("c", 1, "pub");
    last.usage = Some(usage);
    enc.chunk(&last, None, &mut out);
    enc.finish(&mut out);
    let ev = events(&out);
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(e["sequence_number"], i);
    }
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"response.created"));
    assert_eq!(types.last(), Some(&"response.completed"));
    let done = &ev.last().unwrap()["response"];
    let output = done["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "message", "function_call", "function_call"]);
    assert_eq!(output[2]["arguments"], "{\"x\":1}");
    assert_eq!(output[3]["arguments"], "{}");
    assert_eq!(output[3]["call_id"], "c1");
    assert_eq!(done["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
    assert_eq!(done["usage"]["total_tokens"], 15);
    // Each item's deltas come between its added and done events.
    let added: Vec<usize> = ev
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .map(|e| e["output_index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(added, [0, 1, 2, 3]);
}

#[test]
fn length_is_incomplete_and_failure_is_error_then_failed() {
    let mut enc = ResponsesEncoder::new(ctx());
    let mut out = BytesMut::new();
    enc.chunk(
        &chunk(
            Delta { content: Some("Hi".into()), ..Delta::default() },
            Some(FinishReason::Length),
        ),
        None,
        &mut out,
    );
    enc.finish(&mut out);
    let last = events(&out).pop().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");

    let mut enc = ResponsesEncoder::new(ctx());
    let mut out = BytesMut::new();
    enc.chunk(
        &chunk(Delta { content: Some("Hi".into()), ..Delta::default() }, None),
        None,
        &mut out,
    );
    enc.fail(&ErrorObject::new("server_error", "cut").with_code("upstream_truncated"), &mut out);
    enc.finish(&mut out);
    let ev = events(&out);
    let n = ev.len();
    assert_eq!(ev[n - 2]["type"], "error");
    assert_eq!(ev[n - 2]["error"]["code"], "upstream_truncated");
    assert_eq!(ev[n - 1]["type"], "response.failed");
    assert_eq!(ev[n - 1]["response"]["error"]["message"], "cut");
}

#[test]
fn errors_keep_openai_shape() {
    let (status, body) =
        error_response(404, &ErrorObject::new("invalid_request_error", "unknown model"));
    assert_eq!(status, 404);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["message"], "unknown model");
}

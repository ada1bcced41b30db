//! OpenAI Responses (`POST /v1/responses`): the `response.*` SSE events, each with an `event:`
//! line and a strictly increasing `sequence_number`, ending in `response.completed` (or
//! `response.incomplete` at the token limit); the Response body; errors as OpenAI's.
//!
//! Built with `serde_json` values rather than format strings: the event objects nest deeply and
//! are rendered once per shape (the server caches renderings), so clarity wins here.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{RenderOptions, arg_fragments, sse_event};
use crate::{Finish, Reply};

const RESPONSE_ID: &str = "resp_sim0001";
const MESSAGE_ID: &str = "msg_sim0001";
const CREATED_AT: u64 = 1_735_689_600;

/// The in-band failure as the live API sends it: the fields both flat and nested under `error`
/// (clients read one or the other), then `response.failed`. One element: both events.
const MIDSTREAM_MESSAGE: &str =
    "The server had an error while processing your request. Sorry about that! (simulated)";

pub(super) fn midstream_error(opts: &RenderOptions, sequence_number: u64) -> Bytes {
    let error = json!({
        "type": "error",
        "sequence_number": sequence_number,
        "code": "server_error",
        "message": MIDSTREAM_MESSAGE,
        "param": null,
        "error": {
            "type": "server_error",
            "code": "server_error",
            "message": MIDSTREAM_MESSAGE,
            "param": null,
        },
    });
    let mut failed = response_object(opts, "failed", Vec::new(), Value::Null);
    failed["error"] = json!({
        "code": "server_error",
        "message": MIDSTREAM_MESSAGE,
    });
    let failed = json!({"type": "response.failed", "sequence_number": sequence_number + 1, "response": failed});
    let mut out = sse_event(Some("error"), &error.to_string()).to_vec();
    out.extend_from_slice(&sse_event(Some("response.failed"), &failed.to_string()));
    Bytes::from(out)
}

/// The JSON of the in-band error, for a non-streaming request under `ErrorMidstream`.
pub(super) const MIDSTREAM_ERROR_JSON: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that! (simulated)","type":"server_error","param":null,"code":"server_error"}}"#;

fn usage(reply: &Reply) -> Value {
    json!({
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    })
}

fn status(reply: &Reply) -> &'static str {
    if reply.finish == Finish::Length { "incomplete" } else { "completed" }
}

/// The Response object with the echoed settings a client reads.
fn response_object(opts: &RenderOptions, status: &str, output: Vec<Value>, usage: Value) -> Value {
    let incomplete =
        if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null };
    json!({
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED_AT,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "metadata": {},
        "model": opts.model(),
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "service_tier": "default",
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
    })
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

fn message_item(text: &str, status: &str) -> Value {
    let content = if status == "in_progress" { json!([]) } else { json!([text_part(text)]) };
    json!({"id": MESSAGE_ID, "type": "message", "status": status, "content": content, "role": "assistant"})
}

fn call_item(i: usize, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "id": format!("fc_sim_{i}"),
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": format!("call_sim_{i}"),
        "name": name,
    })
}

/// The output items of the finished response.
fn output(reply: &Reply) -> Vec<Value> {
    let mut items = Vec::with_capacity(1 + reply.tool_calls.len());
    let item_status = if reply.finish == Finish::Length { "incomplete" } else { "completed" };
    if has_message(reply) {
        items.push(message_item(&reply.text_content(), item_status));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        items.push(call_item(i, &call.name, &call.arguments, "completed"));
    }
    items
}

fn has_message(reply: &Reply) -> bool {
    reply.visible_deltas().next().is_some() || reply.tool_calls.is_empty()
}

pub(super) fn stream(reply: &Reply, opts: &RenderOptions) -> Vec<Bytes> {
    let mut events = Vec::with_capacity(reply.deltas.len() + 4 * reply.tool_calls.len() + 9);
    let mut sequence = 0u64;
    let mut push = |kind: &'static str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        events.push(sse_event(Some(kind), &data.to_string()));
    };
    let pending = response_object(opts, "in_progress", Vec::new(), Value::Null);
    push("response.created", json!({"response": pending.clone()}));
    push("response.in_progress", json!({"response": pending}));

    let mut output_index = 0usize;
    if has_message(reply) {
        let item_status = if reply.finish == Finish::Length { "incomplete" } else { "completed" };
        let text = reply.text_content();
        let at = |extra: Value| {
            let mut v =
                json!({"item_id": MESSAGE_ID, "output_index": output_index, "content_index": 0});
            if let (Value::Object(base), Value::Object(extra)) = (&mut v, extra) {
                base.extend(extra);
            }
            v
        };
        push(
            "response.output_item.added",
            json!({"output_index": output_index, "item": message_item("", "in_progress")}),
        );
        push("response.content_part.added", at(json!({"part": text_part("")})));
        for delta in reply.visible_deltas() {
            push("response.output_text.delta", at(json!({"delta": delta, "logprobs": []})));
        }
        push("response.output_text.done", at(json!({"text": text, "logprobs": []})));
        push("response.content_part.done", at(json!({"part": text_part(&text)})));
        push(
            "response.output_item.done",
            json!({"output_index": output_index, "item": message_item(&text, item_status)}),
        );
        output_index += 1;
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        let item_id = format!("fc_sim_{i}");
        push(
            "response.output_item.added",
            json!({"output_index": output_index, "item": call_item(i, &call.name, "", "in_progress")}),
        );
        for fragment in arg_fragments(&call.arguments).into_iter().filter(|f| !f.is_empty()) {
            push(
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": output_index, "delta": fragment}),
            );
        }
        push(
            "response.function_call_arguments.done",
            json!({"item_id": item_id, "output_index": output_index, "name": call.name, "arguments": call.arguments}),
        );
        push(
            "response.output_item.done",
            json!({"output_index": output_index, "item": call_item(i, &call.name, &call.arguments, "completed")}),
        );
        output_index += 1;
    }
    let status = status(reply);
    let terminal =
        if status == "incomplete" { "response.incomplete" } else { "response.completed" };
    push(terminal, json!({"response": response_object(opts, status, output(reply), usage(reply))}));
    events
}

pub(super) fn body(reply: &Reply, opts: &RenderOptions) -> Bytes {
    let response = response_object(opts, status(reply), output(reply), usage(reply));
    Bytes::from(response.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(events: &[Bytes]) -> Vec<(String, Value)> {
        let mut decoder = prism_sse::Decoder::new();
        let mut frames = Vec::new();
        for event in events {
            decoder.feed(event, &mut frames).unwrap();
        }
        frames
            .iter()
            .filter_map(|f| match f {
                prism_sse::Frame::Event(e) => {
                    Some((e.event_type().to_owned(), serde_json::from_str(&e.data).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_stream_follows_the_documented_order_with_increasing_sequence_numbers() {
        let reply = Reply::text("Hello big world");
        let events = decode(&stream(&reply, &RenderOptions::new("gpt-sim")));
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (kind, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], kind.as_str());
            assert_eq!(data["sequence_number"], i as u64);
        }
        let last = &events.last().unwrap().1["response"];
        assert_eq!(last["model"], "gpt-sim");
        assert_eq!(last["output"][0]["content"][0]["text"], "Hello big world");
        assert_eq!(last["usage"]["total_tokens"], 13);
    }

    #[test]
    fn tool_calls_stream_their_arguments_in_fragments_and_the_length_limit_is_incomplete() {
        let reply = Reply::tool_call("get_weather", r#"{"city":"Paris"}"#);
        let events = decode(&stream(&reply, &RenderOptions::new("m")));
        let args: String = events
            .iter()
            .filter(|(k, _)| k == "response.function_call_arguments.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(args, r#"{"city":"Paris"}"#);
        let done = &events.last().unwrap().1["response"]["output"][0];
        assert_eq!(done["type"], "function_call");
        assert_eq!(done["call_id"], "call_sim_0");

        let cut = Reply::text("a b").finish(Finish::Length);
        let events = decode(&stream(&cut, &RenderOptions::new("m")));
        let (kind, last) = events.last().unwrap();
        assert_eq!(kind, "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    }

    #[test]
    fn midstream_error_is_an_error_event_then_response_failed() {
        let events = decode(&[midstream_error(&RenderOptions::new("m"), 4)]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0, "error");
        assert_eq!(events[0].1["error"]["code"], "server_error");
        assert_eq!(events[0].1["sequence_number"], 4);
        assert_eq!(events[1].0, "response.failed");
        assert_eq!(events[1].1["sequence_number"], 5);
        assert_eq!(events[1].1["response"]["status"], "failed");
    }
}

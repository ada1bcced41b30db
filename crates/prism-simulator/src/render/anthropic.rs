//! Anthropic Messages: the stream events (`message_start` … `message_stop`), the message body
//! and `{"type":"error",…}` bodies. Bedrock's InvokeModel reuses these events and bodies.

use bytes::Bytes;

use super::{RenderOptions, arg_fragments, args_object, json_str, push_json_str};
use crate::{Finish, Reply};

pub(super) const MIDSTREAM_ERROR: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_sim0001"}"#;

/// Where the Anthropic events are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// The Anthropic API (or Vertex): SSE with `ping`.
    Direct,
    /// Bedrock InvokeModel: no `ping`, `msg_bdrk_` ids, invocation metrics on `message_stop`.
    Bedrock,
}

/// One Anthropic stream event: its type (the SSE `event:` name) and its JSON.
pub(super) struct Event {
    pub(super) name: &'static str,
    pub(super) data: String,
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

fn message_id(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Direct => "msg_sim0001",
        Flavor::Bedrock => "msg_bdrk_sim0001",
    }
}

pub(super) fn stream(reply: &Reply, opts: &RenderOptions, flavor: Flavor) -> Vec<Event> {
    let mut events = Vec::with_capacity(reply.deltas.len() + 4 * reply.tool_calls.len() + 6);
    let mut push = |name: &'static str, data: String| events.push(Event { name, data });
    push(
        "message_start",
        format!(
            r#"{{"type":"message_start","message":{{"id":"{}","type":"message","role":"assistant","model":{},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}}}}"#,
            message_id(flavor),
            json_str(opts.model()),
            reply.prompt_tokens
        ),
    );
    let mut pinged = flavor == Flavor::Bedrock;
    let mut ping = |push: &mut dyn FnMut(&'static str, String)| {
        if !pinged {
            pinged = true;
            push("ping", r#"{"type":"ping"}"#.to_owned());
        }
    };
    let mut index = 0usize;
    if reply.visible_deltas().next().is_some() {
        push(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
                .to_owned(),
        );
        ping(&mut push);
        for text in reply.visible_deltas() {
            let mut data = String::with_capacity(text.len() + 80);
            data.push_str(
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#,
            );
            push_json_str(&mut data, text);
            data.push_str("}}");
            push("content_block_delta", data);
        }
        push("content_block_stop", r#"{"type":"content_block_stop","index":0}"#.to_owned());
        index += 1;
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        push(
            "content_block_start",
            format!(
                r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"tool_use","id":"toolu_sim_{i}","name":{},"input":{{}}}}}}"#,
                json_str(&call.name)
            ),
        );
        ping(&mut push);
        let mut frags = vec![""];
        frags.extend(arg_fragments(&call.arguments).into_iter().filter(|f| !f.is_empty()));
        for frag in frags {
            push(
                "content_block_delta",
                format!(
                    r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"input_json_delta","partial_json":{}}}}}"#,
                    json_str(frag)
                ),
            );
        }
        push("content_block_stop", format!(r#"{{"type":"content_block_stop","index":{index}}}"#));
        index += 1;
    }
    ping(&mut push);
    push(
        "message_delta",
        format!(
            r#"{{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":null}},"usage":{{"output_tokens":{}}}}}"#,
            stop_reason(reply.finish),
            reply.completion_tokens
        ),
    );
    let stop = match flavor {
        Flavor::Direct => r#"{"type":"message_stop"}"#.to_owned(),
        Flavor::Bedrock => format!(
            r#"{{"type":"message_stop","amazon-bedrock-invocationMetrics":{{"inputTokenCount":{},"outputTokenCount":{},"invocationLatency":42,"firstByteLatency":7}}}}"#,
            reply.prompt_tokens, reply.completion_tokens
        ),
    };
    push("message_stop", stop);
    events
}

pub(super) fn body(reply: &Reply, opts: &RenderOptions, flavor: Flavor) -> Bytes {
    let mut out = format!(
        r#"{{"id":"{}","type":"message","role":"assistant","model":{},"content":["#,
        message_id(flavor),
        json_str(opts.model())
    );
    let mut first = true;
    if reply.visible_deltas().next().is_some() {
        out.push_str(r#"{"type":"text","text":"#);
        push_json_str(&mut out, &reply.text_content());
        out.push('}');
        first = false;
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&format!(
            r#"{{"type":"tool_use","id":"toolu_sim_{i}","name":{},"input":{}}}"#,
            json_str(&call.name),
            args_object(&call.arguments)
        ));
    }
    out.push_str(&format!(
        r#"],"stop_reason":"{}","stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{}}}}}"#,
        stop_reason(reply.finish),
        reply.prompt_tokens,
        reply.completion_tokens
    ));
    Bytes::from(out)
}

pub(super) fn error_body(status: u16, message: &str) -> Bytes {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    Bytes::from(format!(
        r#"{{"type":"error","error":{{"type":"{kind}","message":{}}},"request_id":"req_sim0001"}}"#,
        json_str(message)
    ))
}

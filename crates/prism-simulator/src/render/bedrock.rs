//! Bedrock: ConverseStream event-stream messages, the Converse body, InvokeModel `chunk` frames
//! wrapping base64 Anthropic events, exception frames and `{"message"}` error bodies.

use base64::Engine as _;
use bytes::Bytes;

use super::anthropic::{self, Flavor};
use super::{RenderOptions, arg_fragments, args_object, json_str, push_json_str};
use crate::eventstream;
use crate::{Finish, Reply};

/// Bedrock pads every payload with a `p` member; a short fixed one keeps the shape honest.
const P: &str = r#""p":"abcdefgh""#;

pub(super) const MIDSTREAM_ERROR: &str =
    r#"{"message":"Bedrock is unable to process your request. (simulated)"}"#;

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

fn usage(reply: &Reply) -> String {
    format!(
        r#"{{"inputTokens":{},"outputTokens":{},"totalTokens":{}}}"#,
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.prompt_tokens + reply.completion_tokens
    )
}

/// ConverseStream: `messageStart`, text `contentBlockDelta`s (no start event for text, as real
/// streams do), `contentBlockStop`, per tool a `contentBlockStart` + input deltas + stop,
/// `messageStop`, then `metadata` with usage.
pub(super) fn converse_stream(reply: &Reply) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(reply.deltas.len() + 4 * reply.tool_calls.len() + 4);
    frames.push(eventstream::event("messageStart", &format!(r#"{{{P},"role":"assistant"}}"#)));
    let mut index = 0usize;
    if reply.visible_deltas().next().is_some() {
        for text in reply.visible_deltas() {
            let mut json = String::with_capacity(text.len() + 64);
            json.push_str(r#"{"contentBlockIndex":0,"delta":{"text":"#);
            push_json_str(&mut json, text);
            json.push_str("},");
            json.push_str(P);
            json.push('}');
            frames.push(eventstream::event("contentBlockDelta", &json));
        }
        frames.push(eventstream::event(
            "contentBlockStop",
            &format!(r#"{{"contentBlockIndex":0,{P}}}"#),
        ));
        index += 1;
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        frames.push(eventstream::event(
            "contentBlockStart",
            &format!(
                r#"{{"contentBlockIndex":{index},{P},"start":{{"toolUse":{{"name":{},"toolUseId":"tooluse_sim_{i}"}}}}}}"#,
                json_str(&call.name)
            ),
        ));
        for frag in arg_fragments(&call.arguments).into_iter().filter(|f| !f.is_empty()) {
            frames.push(eventstream::event(
                "contentBlockDelta",
                &format!(
                    r#"{{"contentBlockIndex":{index},"delta":{{"toolUse":{{"input":{}}}}},{P}}}"#,
                    json_str(frag)
                ),
            ));
        }
        frames.push(eventstream::event(
            "contentBlockStop",
            &format!(r#"{{"contentBlockIndex":{index},{P}}}"#),
        ));
        index += 1;
    }
    frames.push(eventstream::event(
        "messageStop",
        &format!(r#"{{{P},"stopReason":"{}"}}"#, stop_reason(reply.finish)),
    ));
    frames.push(eventstream::event(
        "metadata",
        &format!(r#"{{"metrics":{{"latencyMs":42}},{P},"usage":{}}}"#, usage(reply)),
    ));
    frames
}

/// InvokeModelWithResponseStream for Claude: each Anthropic event (Bedrock flavour: no `ping`,
/// invocation metrics on `message_stop`) base64-encoded in a `chunk` frame.
pub(super) fn invoke_stream(reply: &Reply, opts: &RenderOptions) -> Vec<Bytes> {
    let b64 = base64::engine::general_purpose::STANDARD;
    anthropic::stream(reply, opts, Flavor::Bedrock)
        .into_iter()
        .map(|event| {
            let json = format!(r#"{{"bytes":"{}",{P}}}"#, b64.encode(event.data.as_bytes()));
            eventstream::event("chunk", &json)
        })
        .collect()
}

pub(super) fn converse_body(reply: &Reply) -> Bytes {
    let mut content = Vec::new();
    if reply.visible_deltas().next().is_some() {
        content.push(format!(r#"{{"text":{}}}"#, json_str(&reply.text_content())));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        content.push(format!(
            r#"{{"toolUse":{{"input":{},"name":{},"toolUseId":"tooluse_sim_{i}"}}}}"#,
            args_object(&call.arguments),
            json_str(&call.name)
        ));
    }
    Bytes::from(format!(
        r#"{{"metrics":{{"latencyMs":42}},"output":{{"message":{{"content":[{}],"role":"assistant"}}}},"stopReason":"{}","usage":{}}}"#,
        content.join(","),
        stop_reason(reply.finish),
        usage(reply)
    ))
}

/// The in-band error frame: `serviceUnavailableException`.
pub(super) fn midstream_exception() -> Bytes {
    eventstream::exception("serviceUnavailableException", MIDSTREAM_ERROR)
}

/// The error body and the `x-amzn-errortype` value for `status`.
pub(super) fn error_body(status: u16, message: &str) -> (Bytes, String) {
    let name = match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    };
    let body = Bytes::from(format!(r#"{{"message":{}}}"#, json_str(message)));
    (body, format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
}

//! OpenAI Chat Completions: `chat.completion.chunk` SSE events ending in `data: [DONE]`, the
//! `chat.completion` body, and `{"error":{…}}` bodies.

use bytes::Bytes;

use super::{RenderOptions, arg_fragments, json_str, push_json_str, sse_event};
use crate::{Finish, Reply};

const ID: &str = "chatcmpl-sim0001";
const CREATED: u64 = 1_735_689_600;

pub(super) const MIDSTREAM_ERROR: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that! (simulated)","type":"server_error","param":null,"code":null}}"#;

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

/// The chunk envelope up to and including `"choices":[`.
fn head(model: &str, object: &str) -> String {
    format!(
        r#"{{"id":"{ID}","object":"{object}","created":{CREATED},"model":{},"service_tier":"default","system_fingerprint":"fp_sim","choices":["#,
        json_str(model)
    )
}

pub(super) fn stream(reply: &Reply, opts: &RenderOptions) -> Vec<Bytes> {
    let head = head(opts.model(), "chat.completion.chunk");
    let tail = if opts.include_usage { r#"],"usage":null}"# } else { "]}" };
    let chunk = |choice: &str| {
        let mut data = String::with_capacity(head.len() + choice.len() + tail.len());
        data.push_str(&head);
        data.push_str(choice);
        data.push_str(tail);
        sse_event(None, &data)
    };
    let delta = |delta: &str| {
        format!(r#"{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}"#)
    };

    let mut events = Vec::with_capacity(reply.deltas.len() + 3 * reply.tool_calls.len() + 4);
    let has_text = reply.visible_deltas().next().is_some();
    let role = if has_text || reply.tool_calls.is_empty() {
        r#"{"role":"assistant","content":"","refusal":null}"#
    } else {
        r#"{"role":"assistant","content":null,"refusal":null}"#
    };
    events.push(chunk(&delta(role)));
    for text in reply.visible_deltas() {
        let mut d = String::with_capacity(text.len() + 16);
        d.push_str(r#"{"content":"#);
        push_json_str(&mut d, text);
        d.push('}');
        events.push(chunk(&delta(&d)));
    }
    for (i, call) in reply.tool_calls.iter().enumerate() {
        let open = format!(
            r#"{{"tool_calls":[{{"index":{i},"id":"call_sim_{i}","type":"function","function":{{"name":{},"arguments":""}}}}]}}"#,
            json_str(&call.name)
        );
        events.push(chunk(&delta(&open)));
        for frag in arg_fragments(&call.arguments).into_iter().filter(|f| !f.is_empty()) {
            let d = format!(
                r#"{{"tool_calls":[{{"index":{i},"function":{{"arguments":{}}}}}]}}"#,
                json_str(frag)
            );
            events.push(chunk(&delta(&d)));
        }
    }
    events.push(chunk(&format!(
        r#"{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{}"}}"#,
        finish_reason(reply.finish)
    )));
    if opts.include_usage {
        let mut data = head.clone();
        data.push_str("],\"usage\":");
        data.push_str(&usage(reply));
        data.push('}');
        events.push(sse_event(None, &data));
    }
    events.push(Bytes::from_static(prism_sse::DONE));
    events
}

fn usage(reply: &Reply) -> String {
    format!(
        r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.prompt_tokens + reply.completion_tokens
    )
}

pub(super) fn body(reply: &Reply, opts: &RenderOptions) -> Bytes {
    let mut out = head(opts.model(), "chat.completion");
    out.push_str(r#"{"index":0,"message":{"role":"assistant","content":"#);
    if reply.visible_deltas().next().is_some() || reply.tool_calls.is_empty() {
        push_json_str(&mut out, &reply.text_content());
    } else {
        out.push_str("null");
    }
    out.push_str(r#","refusal":null,"annotations":[]"#);
    if !reply.tool_calls.is_empty() {
        out.push_str(r#","tool_calls":["#);
        for (i, call) in reply.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"id":"call_sim_{i}","type":"function","function":{{"name":{},"arguments":{}}}}}"#,
                json_str(&call.name),
                json_str(&call.arguments)
            ));
        }
        out.push(']');
    }
    out.push_str(&format!(
        r#"}},"logprobs":null,"finish_reason":"{}"}}],"usage":{}}}"#,
        finish_reason(reply.finish),
        usage(reply)
    ));
    Bytes::from(out)
}

pub(super) fn error_body(status: u16, message: &str) -> Bytes {
    let (kind, code) = match status {
        400 => ("invalid_request_error", "null"),
        401 => ("invalid_request_error", r#""invalid_api_key""#),
        403 => ("invalid_request_error", r#""unsupported_country_region_territory""#),
        404 => ("invalid_request_error", r#""model_not_found""#),
        429 => ("requests", r#""rate_limit_exceeded""#),
        503 => ("server_error", r#""overloaded""#),
        s if s >= 500 => ("server_error", "null"),
        _ => ("invalid_request_error", "null"),
    };
    Bytes::from(format!(
        r#"{{"error":{{"message":{},"type":"{kind}","param":null,"code":{code}}}}}"#,
        json_str(message)
    ))
}

//! Gemini `GenerateContentResponse`s: `data:` events separated by `\r\n\r\n` with cumulative
//! `usageMetadata` and `finishReason` on the last chunk, the whole body, and `google.rpc.Status`
//! error bodies.

use bytes::Bytes;

use super::{RenderOptions, args_object, json_str, push_json_str};
use crate::{Finish, Reply};

pub(super) const MIDSTREAM_ERROR: &str = r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later. (simulated)","status":"UNAVAILABLE"}}"#;

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
    }
}

/// One SSE event the way Gemini frames it: `data: …` and a CRLF blank line.
pub(super) fn sse(json: &str) -> Bytes {
    let mut out = String::with_capacity(json.len() + 10);
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\r\n\r\n");
    Bytes::from(out)
}

fn usage(prompt: u64, candidates: u64) -> String {
    format!(
        r#"{{"promptTokenCount":{prompt},"candidatesTokenCount":{candidates},"totalTokenCount":{},"promptTokensDetails":[{{"modality":"TEXT","tokenCount":{prompt}}}]}}"#,
        prompt + candidates
    )
}

fn response(parts: &str, finish: Option<Finish>, usage: &str, model: &str) -> String {
    let finish = match finish {
        Some(f) => format!(r#","finishReason":"{}""#, finish_reason(f)),
        None => String::new(),
    };
    format!(
        r#"{{"candidates":[{{"content":{{"parts":[{parts}],"role":"model"}}{finish},"index":0}}],"usageMetadata":{usage},"modelVersion":{},"responseId":"sim0001"}}"#,
        json_str(model)
    )
}

fn text_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 12);
    out.push_str(r#"{"text":"#);
    push_json_str(&mut out, text);
    out.push('}');
    out
}

fn call_parts(reply: &Reply) -> String {
    let parts: Vec<String> = reply
        .tool_calls
        .iter()
        .map(|call| {
            format!(
                r#"{{"functionCall":{{"name":{},"args":{}}}}}"#,
                json_str(&call.name),
                args_object(&call.arguments)
            )
        })
        .collect();
    parts.join(",")
}

/// The stream's JSON payloads, one per event: one chunk per text delta, then one chunk with all
/// function calls; the last chunk carries `finishReason` and the final usage.
pub(super) fn stream_json(reply: &Reply, opts: &RenderOptions) -> Vec<String> {
    let model = opts.model();
    let mut parts: Vec<String> = reply.visible_deltas().map(text_part).collect();
    if !reply.tool_calls.is_empty() {
        parts.push(call_parts(reply));
    }
    if parts.is_empty() {
        parts.push(text_part(""));
    }
    let n = parts.len() as u64;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let last = i as u64 + 1 == n;
            // Cumulative snapshot, as Gemini sends: the candidates count grows to the total.
            let candidates = reply.completion_tokens * (i as u64 + 1) / n;
            let finish = last.then_some(reply.finish);
            response(part, finish, &usage(reply.prompt_tokens, candidates), model)
        })
        .collect()
}

pub(super) fn body(reply: &Reply, opts: &RenderOptions) -> Bytes {
    let mut parts = Vec::new();
    if reply.visible_deltas().next().is_some() || reply.tool_calls.is_empty() {
        parts.push(text_part(&reply.text_content()));
    }
    if !reply.tool_calls.is_empty() {
        parts.push(call_parts(reply));
    }
    let usage = usage(reply.prompt_tokens, reply.completion_tokens);
    Bytes::from(response(&parts.join(","), Some(reply.finish), &usage, opts.model()))
}

pub(super) fn error_body(status: u16, message: &str, retry_after: Option<u64>) -> Bytes {
    let code = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    };
    let details = match retry_after {
        Some(secs) => format!(
            r#","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{secs}s"}}]"#
        ),
        None => String::new(),
    };
    Bytes::from(format!(
        r#"{{"error":{{"code":{status},"message":{},"status":"{code}"{details}}}}}"#,
        json_str(message)
    ))
}

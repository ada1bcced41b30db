//! Google Gemini translator, for the Gemini API (`generativelanguage.googleapis.com`, key in
//! `x-goog-api-key`) and Vertex AI (`{location}-aiplatform.googleapis.com`, bearer token).
//!
//! Provider docs: <https://ai.google.dev/api/generate-content>,
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>.
//!
//! # Stream grammar (`streamGenerateContent?alt=sse`)
//!
//! ```text
//! stream := chunk* [raw-error-tail] EOF
//! chunk  := "data: " GenerateContentResponse "\r\n\r\n"     (no event names, no [DONE])
//! ```
//! Each chunk holds per-candidate `content.parts` increments and a cumulative `usageMetadata`
//! snapshot; a candidate's last chunk carries its `finishReason`. There is no terminal event: the
//! stream is complete once every candidate that produced output has a `finishReason` (or the
//! prompt was blocked). EOF before that is [`TranslateError::Truncated`], unless the server
//! appended a raw, non-SSE `{"error": …}` body (or sent `data: {"error": …}`), which becomes
//! [`TranslateError::Upstream`] with the mapped status.
//!
//! # Mapping
//!
//! | Gemini | OpenAI chunk |
//! |---|---|
//! | `candidates[].index` (absent = 0) | `choices[].index`, independent state per candidate |
//! | part `text` | `delta.content` (empty text, e.g. a signature-only part, is skipped) |
//! | part `text` + `thought: true` | `delta.reasoning_content` |
//! | part `functionCall` (always whole) | one `tool_calls` delta with id, name and all arguments; index counted per choice across chunks; no `args` → `"{}"` |
//! | `executableCode`, `codeExecutionResult`, `inlineData`, … | dropped (server-side tools and media are not client tool calls) |
//! | `finishReason` | see `response::map_finish_reason`: `STOP` → `stop`/`tool_calls`, `MAX_TOKENS` → `length`, safety family → `content_filter`, others → `stop` with the native reason in the summary |
//! | `usageMetadata` (last snapshot wins) | usage, see `response::map_usage` |
//! | no candidates + `promptFeedback.blockReason` | choice 0: role delta, then `finish_reason: content_filter`; native reason `prompt_blocked:<REASON>` |
//!
//! A blocked prompt is reported as a `content_filter` completion rather than an HTTP error so that
//! streaming and non-streaming answers agree and the translator needs no look-ahead.
//!
//! # Tool-call ids and thought signatures
//!
//! Gemini calls carry no id (usually) and, on thinking models, a `thoughtSignature` that must be
//! sent back with the call on the next turn (Gemini 3 answers 400 without it). OpenAI tool calls
//! have no field for it, so the signature travels inside the tool-call id: see `gemini/tool_id.rs`
//! (`call_<24 hex>__thought__<signature in URL-safe base64>`). Generated ids are derived from
//! the stream's chunk id, the choice and the call index, so translation stays deterministic.
//! When a request replays an assistant turn, each `functionCall` part gets its signature back; for
//! Gemini 3 models a turn whose first call has none (say, a conversation started on another
//! provider) gets Google's documented placeholder `skip_thought_signature_validator`. On the
//! Gemini API the call ids (without signature) are also sent as `functionCall.id` /
//! `functionResponse.id`; Vertex gets no ids.
//!
//! Request mapping is documented in `gemini/request.rs`, schema sanitising in `gemini/schema.rs`, error mapping
//! in `gemini/errors.rs`.

mod errors;
mod request;
mod response;
mod schema;
mod stream;
mod tool_id;
mod wire;

use bytes::Bytes;
use prism_types::{ChatCompletion, ChatRequest};

use self::response::{CompletionSink, ResponseMapper};
pub use self::stream::StreamPipeline;
use self::wire::GenerateContentResponse;
use crate::translate::StreamContext;
use crate::{BuildOptions, Deployment, ProviderError, TranslateError};

/// Builds the `generateContent` / `streamGenerateContent?alt=sse` request.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] when the request cannot be expressed for Gemini (a tool
/// message answering an unknown call, arguments that are not a JSON object, an unsupported image
/// URL, an unknown `reasoning_effort`) or the deployment is incomplete (Vertex without project or
/// location, AWS credentials).
pub fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    request::build_request(req, deployment, opts)
}

/// Translates a whole `generateContent` response body.
///
/// # Errors
/// [`TranslateError::InvalidJson`] when the body is not a `GenerateContentResponse`, and
/// [`TranslateError::Upstream`] when it carries an `error`.
pub fn translate_response(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    if let Some(rpc) = errors::parse_error_body(body) {
        return Err(TranslateError::Upstream(errors::map_status(500, &rpc)));
    }
    let resp: GenerateContentResponse<'_> =
        serde_json::from_slice(body).map_err(|source| TranslateError::InvalidJson {
            provider: "gemini",
            context: "generateContent response".into(),
            source,
        })?;
    let mut mapper = ResponseMapper::new(ctx.id.clone());
    let mut sink = CompletionSink::default();
    mapper.apply(&resp, &mut sink);
    let mut completion =
        sink.into_completion(ChatCompletion::new(ctx.id.clone(), ctx.created, ctx.model.clone()));
    if completion.choices.is_empty() {
        // Neither candidates nor a block reason: an empty answer, never an empty `choices`.
        completion.choices.push(prism_types::Choice {
            index: 0,
            message: prism_types::ResponseMessage {
                content: Some(String::new()),
                ..Default::default()
            },
            logprobs: None,
            finish_reason: Some(prism_types::FinishReason::Stop),
        });
    }
    Ok(completion)
}

/// Maps a non-2xx Gemini or Vertex response (table in `gemini/errors.rs`).
pub fn map_error(status: u16, body: &[u8]) -> ProviderError {
    errors::map_error(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> StreamContext {
        StreamContext::new("chatcmpl-t", 1, "gemini-flash")
    }

    #[test]
    fn whole_responses_with_errors_or_bad_json() {
        let err = translate_response(
            &ctx(),
            br#"{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}"#,
        );
        assert!(matches!(err, Err(TranslateError::Upstream(ref e)) if e.status == 429), "{err:?}");
        let err = translate_response(&ctx(), b"not json");
        assert!(matches!(err, Err(TranslateError::InvalidJson { .. })), "{err:?}");
        let empty = translate_response(&ctx(), b"{}").unwrap();
        assert_eq!(empty.choices.len(), 1);
        assert_eq!(empty.choices[0].message.content.as_deref(), Some(""));
    }

    #[test]
    fn whole_response_with_reasoning_calls_and_two_candidates() {
        let body = br#"{"candidates": [
            {"content": {"parts": [{"text": "Let me think.", "thought": true}, {"text": "Calling."},
                                   {"functionCall": {"name": "f", "args": {"b": 1, "a": 2}}, "thoughtSignature": "c2ln"}]},
             "finishReason": "STOP", "index": 1},
            {"content": {"parts": [{"text": "Plain."}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "thoughtsTokenCount": 5}}"#;
        let c = translate_response(&ctx(), body).unwrap();
        assert_eq!(c.choices.len(), 2);
        assert_eq!(c.choices[0].message.content.as_deref(), Some("Plain."));
        let second = &c.choices[1];
        assert_eq!(second.finish_reason, Some(prism_types::FinishReason::ToolCalls));
        assert_eq!(second.message.reasoning_content.as_deref(), Some("Let me think."));
        let calls = second.message.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].function.arguments, r#"{"b":1,"a":2}"#);
        assert!(calls[0].id.ends_with("__thought__c2ln"), "{}", calls[0].id);
        assert_eq!(c.usage.map(|u| u.total_tokens), Some(12));
    }
}

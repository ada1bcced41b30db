//! Anthropic Messages API translator (`POST /v1/messages`, `x-api-key`,
//! `anthropic-version: 2023-06-01`). Provider docs: <https://docs.anthropic.com/en/api/messages>,
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>.
//!
//! # Stream grammar
//!
//! ```text
//! stream  := message_start block* message_delta+ message_stop      (ping and error anywhere)
//! block   := content_block_start content_block_delta* content_block_stop
//! ```
//! Events are SSE with `event: <type>` lines; the JSON payload's `type` decides. There is no
//! `[DONE]`: `message_stop` is the terminal event, and EOF before it is
//! [`TranslateError::Truncated`]. An `error` event ends the stream with [`TranslateError::Upstream`].
//!
//! # Mapping
//!
//! | Anthropic | OpenAI chunk |
//! |---|---|
//! | `message_start` | the role delta `{"role":"assistant","content":""}`; usage recorded |
//! | `text` block, `text_delta` | `delta.content` |
//! | `thinking` block, `thinking_delta` | `delta.reasoning_content` |
//! | `signature_delta` | `delta.thinking_blocks: [{"type":"thinking","thinking":"","signature":…}]` (closes the block's text) |
//! | `redacted_thinking` block | `delta.thinking_blocks: [{"type":"redacted_thinking","data":…}]` |
//! | `tool_use` block start | first `tool_calls` fragment: id, name, `arguments:""`, index counted per response |
//! | `input_json_delta` | argument fragments (empty fragments skipped; none at all → `"{}"` at block stop) |
//! | `server_tool_use`, `mcp_tool_use`, `*_tool_result`, unknown blocks and deltas | dropped: not client tool calls |
//! | `message_delta` | stop reason and cumulative usage (later values replace earlier ones) |
//! | `message_stop` | the finish chunk, then usage per the [`StreamContext`] policy |
//! | `ping`, unknown events | ignored |
//! | `error` | [`TranslateError::Upstream`], status per [`error_status`] |
//!
//! `stop_reason`: `end_turn`, `stop_sequence`, `pause_turn`, `compaction` → `stop`; `max_tokens`,
//! `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls`; `refusal` →
//! `content_filter`. `pause_turn` (a server tool paused the turn; the client must send the turn
//! back to continue) and every reason without an exact equivalent are reported as the summary's
//! `native_stop_reason`.
//!
//! Usage: `prompt_tokens = input + cache_creation + cache_read`,
//! `prompt_tokens_details.cached_tokens = cache_read`, `completion_tokens = output` (thinking
//! included); cache writes are kept as the extension field `cache_creation_input_tokens`.
//!
//! Thinking round trip: responses expose thinking blocks with LiteLLM's `thinking_blocks`
//! extension (streams as described in [`crate::translate`]; whole messages with full blocks in
//! `message.thinking_blocks`), and an assistant message that echoes `thinking_blocks` gets them
//! back as its leading `thinking` / `redacted_thinking` content blocks (see [`build_body`]).
//!
//! `response_format` (`json_object`, `json_schema`) uses a synthetic tool, [`JSON_TOOL`], whose
//! input is streamed back as `delta.content` with `finish_reason: "stop"`.

mod request;
mod stream;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

pub use stream::{EventTranslator, StreamPipeline};

use bytes::Bytes;
use prism_types::{
    ChatCompletion, ChatRequest, Choice, ErrorObject, FinishReason, FunctionCall,
    PromptTokensDetails, ResponseMessage, ThinkingBlock, ToolCall, Usage,
};

use crate::deployment::Credentials;
use crate::translate::StreamContext;
use crate::{BuildOptions, Deployment, ProviderError, TranslateError};

/// The `anthropic-version` header value this translator speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Name of the synthetic tool that carries `response_format` JSON answers.
pub const JSON_TOOL: &str = "json_response";

const PROVIDER: &str = "anthropic";

/// Builds the Messages API request: `POST {base_url}/v1/messages`.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] when the request cannot be expressed for Anthropic (see
/// [`build_body`]), and [`TranslateError::Signing`] for AWS credentials on this deployment.
pub fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    let body = build_body(req, deployment, opts.stream)?;
    let body = serde_json::to_vec(&body).map_err(|e| TranslateError::InvalidRequest {
        param: None,
        message: format!("request could not be encoded: {e}"),
    })?;
    let mut builder = http::Request::post(format!("{}/v1/messages", deployment.base_url))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("anthropic-version", API_VERSION);
    if opts.stream {
        builder = builder.header(http::header::ACCEPT, "text/event-stream");
    }
    builder = match &deployment.credentials {
        Credentials::None => builder,
        Credentials::ApiKey(key) => builder.header("x-api-key", key.expose()),
        Credentials::Bearer(token) => {
            builder.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        }
        Credentials::Aws { .. } => {
            return Err(TranslateError::Signing(
                "aws credentials do not apply to the anthropic api".into(),
            ));
        }
    };
    builder.body(Bytes::from(body)).map_err(|e| TranslateError::InvalidRequest {
        param: None,
        message: format!("invalid upstream request: {e}"),
    })
}

/// The Messages request body for `req`, including `model` (and `"stream": true` when `stream`).
///
/// Mapping: all system and developer messages, in order, into `system`; consecutive same-role
/// turns merged; tool messages as `tool_result` blocks opening one user turn; images as base64 or
/// URL sources; `max_completion_tokens` ?? `max_tokens` ?? the deployment default as
/// `max_tokens`; temperature clamped to 0–1 (top_p dropped when both are set); `stop` →
/// `stop_sequences`; `tool_choice` auto/none/required/named → auto/none/any/tool;
/// `parallel_tool_calls: false` → `disable_parallel_tool_use`; `reasoning_effort` → a thinking
/// budget (minimal/low 1024, medium 2048, high 4096, xhigh 8192) that fits below `max_tokens`,
/// with temperature dropped; `user` → `metadata.user_id`. Penalties, seed, logprobs and
/// logit_bias have no Anthropic equivalent and are dropped.
///
/// An assistant message's `thinking_blocks` (LiteLLM's extension) become the first content
/// blocks of its turn, in order: `{"type":"thinking","thinking","signature"}` and
/// `{"type":"redacted_thinking","data"}`; thinking blocks without a signature are dropped, since
/// Anthropic rejects them. The blocks are sent whether or not this request asks for thinking.
///
/// Thinking stays off when it is requested but the last assistant turn made tool calls without
/// echoing any thinking blocks: with thinking on, Anthropic requires that turn to start with its
/// signed thinking blocks and would reject the request. Clients that echo `thinking_blocks` keep
/// thinking on through the tool loop.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] for `n > 1`, audio input, non-PDF files, images that are
/// neither http(s) nor data URLs, invalid tool-call arguments, invalid tool names, legacy function
/// messages, an unknown `reasoning_effort`, or a conversation without user/assistant messages.
pub fn build_body(
    req: &ChatRequest,
    deployment: &Deployment,
    stream: bool,
) -> Result<serde_json::Value, TranslateError> {
    request::build_body(req, deployment, stream)
}

/// Translates a whole successful (2xx) non-streaming response body.
///
/// # Errors
/// See [`translate_message`].
pub fn translate_response(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    translate_message(ctx, body)
}

/// Translates a whole Anthropic `Message` (non-streaming) into a completion stamped with `ctx`.
///
/// # Errors
/// [`TranslateError::Upstream`] when the body is an error envelope, and
/// [`TranslateError::InvalidJson`] when it is not a message.
pub fn translate_message(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    if let Ok(envelope) = serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        return Err(TranslateError::Upstream(error_from_wire(None, &envelope.error)));
    }
    let message: wire::Message = match body.trim_ascii_start().first() {
        // serde would also accept an array as a struct; a message is always an object.
        Some(b'{') => serde_json::from_slice(body),
        _ => serde_json::from_str::<wire::Message>("null"),
    }
    .map_err(|source| TranslateError::InvalidJson {
        provider: PROVIDER,
        context: "message".into(),
        source,
    })?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut calls = Vec::new();
    let mut json_answer = false;
    for block in &message.content {
        match block.kind.as_str() {
            "text" => text.push_str(block.text.as_deref().unwrap_or("")),
            "thinking" => {
                let thinking = block.thinking.clone().unwrap_or_default();
                reasoning.push_str(&thinking);
                let signature = block.signature.clone().filter(|s| !s.is_empty());
                thinking_blocks.push(ThinkingBlock::Thinking { thinking, signature });
            }
            "redacted_thinking" => {
                if let Some(data) = block.data.clone() {
                    thinking_blocks.push(ThinkingBlock::RedactedThinking { data });
                }
            }
            "tool_use" => {
                let name = block.name.clone().unwrap_or_default();
                let arguments = block
                    .input
                    .as_ref()
                    .map_or_else(|| "{}".to_owned(), |raw| raw.get().to_owned());
                if name == JSON_TOOL {
                    json_answer = true;
                    text.push_str(&arguments);
                } else {
                    calls.push(ToolCall {
                        id: block.id.clone().unwrap_or_default(),
                        kind: "function".into(),
                        function: FunctionCall { name, arguments },
                    });
                }
            }
            _ => {}
        }
    }
    let (mut finish, _) = map_stop_reason(message.stop_reason.as_deref());
    if json_answer && calls.is_empty() && finish == FinishReason::ToolCalls {
        finish = FinishReason::Stop;
    }
    let content = if text.is_empty() && !calls.is_empty() { None } else { Some(text) };
    let mut completion = ChatCompletion::new(ctx.id.clone(), ctx.created, ctx.model.clone());
    completion.choices.push(Choice {
        index: 0,
        message: ResponseMessage {
            content,
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
            tool_calls: (!calls.is_empty()).then_some(calls),
            ..ResponseMessage::default()
        },
        logprobs: None,
        finish_reason: Some(finish),
    });
    completion.usage = message.usage.as_ref().map(usage_from_wire);
    Ok(completion)
}

/// Maps a non-2xx Messages API response to the client's error.
pub fn map_error(status: u16, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        Ok(envelope) => error_from_wire(Some(status), &envelope.error),
        Err(_) => {
            crate::openai::error_for_status(status, format!("anthropic returned HTTP {status}"))
        }
    }
}

/// HTTP status and OpenAI `type`/`code` for an Anthropic error type; `None` for unknown types.
///
/// | Anthropic | status | type / code |
/// |---|---|---|
/// | `invalid_request_error` | 400 | `invalid_request_error` (`context_length_exceeded` for "prompt is too long") |
/// | `authentication_error` | 502 | `upstream_error` / `upstream_authentication_failed` (the gateway's key, not the client's) |
/// | `billing_error` | 429 | `insufficient_quota` / `insufficient_quota` |
/// | `permission_error` | 403 | `permission_error` |
/// | `not_found_error` | 404 | `invalid_request_error` / `model_not_found` |
/// | `request_too_large` | 413 | `invalid_request_error` / `request_too_large` |
/// | `rate_limit_error` | 429 | `rate_limit_error` / `rate_limit_exceeded` |
/// | `api_error` | 500 | `server_error` |
/// | `timeout_error` | 504 | `timeout_error` / `timeout` |
/// | `overloaded_error` | 503 | `server_error` / `overloaded` |
pub fn error_status(kind: &str) -> Option<(u16, &'static str, Option<&'static str>)> {
    Some(match kind {
        "invalid_request_error" => (400, "invalid_request_error", None),
        "authentication_error" => (502, "upstream_error", Some("upstream_authentication_failed")),
        "billing_error" => (429, "insufficient_quota", Some("insufficient_quota")),
        "permission_error" => (403, "permission_error", None),
        "not_found_error" => (404, "invalid_request_error", Some("model_not_found")),
        "request_too_large" => (413, "invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => (429, "rate_limit_error", Some("rate_limit_exceeded")),
        "api_error" => (500, "server_error", None),
        "timeout_error" => (504, "timeout_error", Some("timeout")),
        "overloaded_error" => (503, "server_error", Some("overloaded")),
        _ => return None,
    })
}

/// The client's error for an Anthropic error object; `status` is the HTTP status when there was
/// one (mid-stream errors have none).
fn error_from_wire(status: Option<u16>, err: &wire::WireError) -> ProviderError {
    let message = if err.message.is_empty() {
        format!("anthropic error {}", err.kind)
    } else {
        err.message.clone()
    };
    let Some((mapped, kind, code)) = error_status(&err.kind) else {
        return crate::openai::error_for_status(status.unwrap_or(502), message);
    };
    let mut object = ErrorObject::new(kind, message);
    object.code = code.map(str::to_owned);
    if err.kind == "invalid_request_error" && object.message.contains("prompt is too long") {
        object.code = Some("context_length_exceeded".into());
    }
    ProviderError::new(mapped, object)
}

/// The finish reason for an Anthropic `stop_reason`, and the native reason when it has no exact
/// OpenAI equivalent (reported in the summary). A missing reason is `stop`.
fn map_stop_reason(reason: Option<&str>) -> (FinishReason, Option<&str>) {
    match reason {
        None | Some("end_turn" | "stop_sequence") => (FinishReason::Stop, None),
        Some("max_tokens") => (FinishReason::Length, None),
        Some("tool_use") => (FinishReason::ToolCalls, None),
        Some("refusal") => (FinishReason::ContentFilter, None),
        Some(other @ "model_context_window_exceeded") => (FinishReason::Length, Some(other)),
        // `pause_turn`, `compaction` and reasons added later: the turn ended without an error.
        Some(other) => (FinishReason::Stop, Some(other)),
    }
}

/// OpenAI usage from Anthropic's counters.
pub(crate) fn usage_from_wire(u: &wire::WireUsage) -> Usage {
    let cache_read = u.cache_read_input_tokens.unwrap_or(0);
    let cache_creation = u.cache_creation_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens.unwrap_or(0) + cache_read + cache_creation;
    let mut usage = Usage::new(prompt, u.output_tokens.unwrap_or(0));
    usage.prompt_tokens_details =
        Some(PromptTokensDetails { cached_tokens: Some(cache_read), audio_tokens: None });
    if cache_creation > 0 {
        usage.extra.insert("cache_creation_input_tokens".into(), cache_creation.into());
    }
    usage
}

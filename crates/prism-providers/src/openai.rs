//! OpenAI Chat Completions pass-through, for OpenAI, Azure OpenAI's `/openai/v1` API and any
//! OpenAI-compatible server (`POST {base_url}/v1/chat/completions`, `authorization: Bearer`).
//! Provider docs: <https://platform.openai.com/docs/api-reference/chat/streaming>.
//!
//! # Stream grammar
//!
//! ```text
//! stream := ("data: " chunk "\n\n")* "data: [DONE]\n\n"
//! chunk  := chat.completion.chunk | {"choices":[],"usage":…} | {"choices":[],…} | {"error":…}
//! ```
//! `[DONE]` is the terminal event: EOF before it is [`TranslateError::Truncated`]. A payload with a
//! top-level `error` (or an `event: error`) is [`TranslateError::Upstream`].
//!
//! # Pass-through
//!
//! Every chunk is parsed (to know its choices, finish reasons and usage), but what goes to the
//! client is the upstream's own bytes ([`OutChunk::raw`]) with byte-level edits only: the `model`
//! value becomes the public name, `id` and `created` are pinned to the stream's first values, and
//! `usage` is removed or moved according to the [`StreamContext`] policy. Unknown fields
//! (`obfuscation`, `service_tier`, Azure's `content_filter_results`, `reasoning_content`, …) pass
//! unchanged. A chunk is rebuilt from its parsed form only where an invariant needs more than
//! that, which OpenAI itself never triggers:
//! - a choice whose first delta has no `role` gets a role chunk first;
//! - tool-call `index` values that are not dense from 0 per choice (Anthropic's OpenAI endpoint
//!   uses its content-block index) are renumbered; id/type/name stay in the first fragment only;
//!   empty argument fragments are dropped and a call without argument text ends with `"{}"`;
//! - a second `finish_reason` for a choice is dropped, and content that shares a chunk with the
//!   finish reason is split from it;
//! - empty-`choices` chunks without usage (Azure's `prompt_filter_results` opener, OpenAI's
//!   moderation chunk) are dropped.
//!
//! Usage policy, identical to [`crate::Emitter`]'s: with `include_usage` the last usage chunk is
//! forwarded at `[DONE]`; otherwise, with `usage_on_finish`, finish chunks are held until `[DONE]`
//! and the last one carries the usage (spliced in as the upstream's own bytes); otherwise usage
//! and every `"usage":null` are stripped and usage is only in the [`StreamSummary`].

mod scan;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use prism_sse::{Decoder, Frame};
use prism_types::{
    ChatChunk, ChatCompletion, ChatRequest, ChunkChoice, Delta, ErrorObject, FinishReason,
    ToolCallDelta, Usage,
};
use serde::Deserialize;

use self::scan::{Edits, Member};
use crate::deployment::Credentials;
use crate::translate::{ByteTranslator, OutChunk, StreamContext, StreamSummary};
use crate::{BuildOptions, Deployment, ProviderError, TranslateError};

const PROVIDER: &str = "openai";

/// Builds `POST {base_url}/v1/chat/completions` (or `{base_url}/chat/completions` when the base URL
/// already ends in `/v1`).
///
/// The body is the client's request with `model` replaced by the upstream model and `stream` set
/// per `opts`; unknown fields are kept. When streaming, `stream_options.include_usage` is set if
/// the client asked for usage or `opts.request_usage` is on, and the deployment supports it;
/// deployments without `supports_stream_usage` get no `stream_options` at all, and non-streaming
/// requests never carry them.
///
/// Credentials: an API key or bearer token goes in `authorization: Bearer`, except that Azure
/// hosts (`*.openai.azure.com`, `*.services.ai.azure.com`) take an API key in `api-key`.
///
/// # Errors
/// [`TranslateError::Signing`] for AWS credentials, [`TranslateError::InvalidRequest`] if the
/// request cannot be encoded.
pub fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    let mut body = req.clone();
    body.model.clone_from(&deployment.upstream_model);
    body.stream = Some(opts.stream);
    let want_usage = opts.stream
        && deployment.supports_stream_usage
        && (opts.request_usage || req.include_usage());
    if !opts.stream || !deployment.supports_stream_usage {
        body.stream_options = None;
    } else if want_usage {
        body.stream_options.get_or_insert_with(Default::default).include_usage = Some(true);
    } else if let Some(o) = body.stream_options.as_mut() {
        o.include_usage = None;
        if o.extra.is_empty() {
            body.stream_options = None;
        }
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| TranslateError::InvalidRequest {
        param: None,
        message: format!("request could not be encoded: {e}"),
    })?;
    let base = deployment.base_url.as_str();
    let url = if base.ends_with("/v1") {
        format!("{base}/chat/completions")
    } else {
        format!("{base}/v1/chat/completions")
    };
    let mut builder =
        http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
    if opts.stream {
        builder = builder.header(http::header::ACCEPT, "text/event-stream");
    }
    builder = match &deployment.credentials {
        Credentials::None => builder,
        Credentials::ApiKey(key) if is_azure(base) => builder.header("api-key", key.expose()),
        Credentials::ApiKey(token) | Credentials::Bearer(token) => {
            builder.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        }
        Credentials::Aws { .. } => {
            return Err(TranslateError::Signing(
                "aws credentials do not apply to openai deployments".into(),
            ));
        }
    };
    builder.body(Bytes::from(bytes)).map_err(|e| TranslateError::InvalidRequest {
        param: None,
        message: format!("invalid upstream request: {e}"),
    })
}

fn is_azure(base_url: &str) -> bool {
    let host =
        base_url.split("://").nth(1).unwrap_or(base_url).split(['/', ':']).next().unwrap_or("");
    host.ends_with(".openai.azure.com") || host.ends_with(".services.ai.azure.com")
}

/// Translates a whole successful (2xx) completion: the upstream's completion with the public model
/// name.
///
/// # Errors
/// [`TranslateError::Upstream`] when the body is an error object, [`TranslateError::InvalidJson`]
/// when it is not a completion.
pub fn translate_response(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) {
        return Err(TranslateError::Upstream(error_from_object(None, envelope.error)));
    }
    let (mut completion, _) =
        parse_lenient::<ChatCompletion>(body).map_err(|source| TranslateError::InvalidJson {
            provider: PROVIDER,
            context: "chat completion".into(),
            source,
        })?;
    completion.model.clone_from(&ctx.model);
    if completion.id.is_empty() {
        completion.id.clone_from(&ctx.id);
    }
    if completion.created == 0 {
        completion.created = ctx.created;
    }
    Ok(completion)
}

/// Maps a non-2xx response. The upstream's error object is kept (it already is OpenAI's shape);
/// only the status changes where it would mislead the client: 401 becomes 502 (the gateway's
/// credentials failed, not the client's), 529 becomes 503.
pub fn map_error(status: u16, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(envelope) => error_from_object(Some(status), envelope.error),
        Err(_) => error_for_status(status, format!("upstream returned HTTP {status}")),
    }
}

/// [`ProviderError::from_status`], except that an upstream 401 is the gateway's own credentials
/// failing, which the client cannot fix: 502 `upstream_authentication_failed` (retryable, so a
/// fallback deployment can serve the request).
pub(crate) fn error_for_status(status: u16, message: String) -> ProviderError {
    if status == 401 {
        return ProviderError::new(
            502,
            ErrorObject::new("upstream_error", "the upstream rejected the gateway's credentials")
                .with_code("upstream_authentication_failed"),
        );
    }
    ProviderError::from_status(status, message)
}

/// `{"error": {...}}`, loosely: OpenAI-compatible servers put numbers in `code` or leave out
/// `type`.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: LooseError,
}

#[derive(Debug, Default, Deserialize)]
struct LooseError {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    param: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

fn value_text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The client's error for an OpenAI error object; `status` is the HTTP status when there was one.
fn error_from_object(status: Option<u16>, err: LooseError) -> ProviderError {
    let kind = err.kind.unwrap_or_default();
    let code = value_text(err.code);
    let status = status.unwrap_or_else(|| status_for_error(&kind, code.as_deref()));
    if status == 401 {
        return error_for_status(401, String::new());
    }
    let base = ProviderError::from_status(status, "");
    let message = err
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("upstream error (HTTP {status})"));
    let mut object =
        ErrorObject::new(if kind.is_empty() { base.error.kind.clone() } else { kind }, message);
    object.code = code.or(base.error.code);
    object.param = value_text(err.param);
    ProviderError::new(base.status, object)
}

/// The HTTP status for a mid-stream error, which has none of its own.
fn status_for_error(kind: &str, code: Option<&str>) -> u16 {
    match (kind, code) {
        (_, Some("rate_limit_exceeded")) | ("rate_limit_error", _) => 429,
        (_, Some("insufficient_quota")) | ("insufficient_quota", _) => 429,
        (_, Some("context_length_exceeded")) | ("invalid_request_error", _) => 400,
        (_, Some("overloaded")) | ("overloaded_error" | "service_unavailable", _) => 503,
        (_, Some("timeout")) | ("timeout_error", _) => 504,
        ("server_error" | "api_error", _) => 500,
        _ => 502,
    }
}

/// What [`parse_lenient`] had to change.
#[derive(Debug, Default)]
struct Leniency {
    /// Something was rewritten, so the parsed value no longer matches the bytes.
    changed: bool,
    /// The last unknown `finish_reason`, reported as `stop`.
    reason: Option<String>,
}

const FINISH_REASONS: &[&str] =
    &["stop", "length", "tool_calls", "content_filter", "function_call"];

/// Parses a chunk or completion; when that fails only because an OpenAI-compatible server used a
/// `finish_reason` or `role` OpenAI does not define (`eos`, `end_turn`, `model`, …), parses it
/// again with those mapped to `stop` and `assistant`.
fn parse_lenient<T: serde::de::DeserializeOwned>(
    data: &[u8],
) -> Result<(T, Leniency), serde_json::Error> {
    let err = match serde_json::from_slice::<T>(data) {
        Ok(v) => return Ok((v, Leniency::default())),
        Err(e) => e,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Err(err);
    };
    let mut fixed = Leniency::default();
    for choice in value.get_mut("choices").and_then(|c| c.as_array_mut()).into_iter().flatten() {
        if let Some(reason) = choice.get_mut("finish_reason")
            && let Some(name) = reason.as_str().filter(|r| !FINISH_REASONS.contains(r))
        {
            fixed.reason = Some(name.to_owned());
            *reason = serde_json::Value::from("stop");
            fixed.changed = true;
        }
        for key in ["delta", "message"] {
            if let Some(role) = choice.get_mut(key).and_then(|d| d.get_mut("role"))
                && role.as_str().is_some_and(|r| r != "assistant")
            {
                *role = serde_json::Value::from("assistant");
                fixed.changed = true;
            }
        }
    }
    if !fixed.changed {
        return Err(err);
    }
    serde_json::from_value(value).map(|v| (v, fixed)).map_err(|_| err)
}

/// Where the pipeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Chunks are flowing.
    Streaming,
    /// `[DONE]` was handled.
    Done,
    /// An error ended the stream.
    Failed,
}

/// One tool call of a choice.
#[derive(Debug, Clone)]
struct ToolSlot {
    /// The `index` the upstream uses for it.
    upstream_index: u32,
    /// Its id, once seen.
    id: Option<String>,
    /// Whether any argument text went out.
    has_args: bool,
}

/// Per-choice bookkeeping, mirroring [`crate::Emitter`]'s.
#[derive(Debug, Clone, Default)]
struct ChoiceState {
    started: bool,
    finished: bool,
    /// Tool calls in OpenAI index order.
    tools: Vec<ToolSlot>,
}

/// How a tool-call fragment maps onto this stream's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A new call, with its OpenAI index.
    New(u32),
    /// More of the call with this OpenAI index.
    Existing(u32),
    /// A fragment of a call that never started (no id, unknown index): dropped.
    Orphan,
}

/// The OpenAI streaming pipeline: SSE decoding, pass-through with invariants, usage policy.
#[derive(Debug)]
pub struct StreamPipeline {
    ctx: StreamContext,
    decoder: Decoder,
    frames: Vec<Frame>,
    /// Scratch space for the current chunk's top-level members.
    members: Vec<Member>,
    /// The public model name as a JSON string literal.
    model_json: Vec<u8>,
    /// The stream's id (the upstream's first non-empty one), once known.
    id: Option<String>,
    /// `id` as a JSON string literal.
    id_json: Vec<u8>,
    /// The stream's `created` (the upstream's first non-zero one), once known.
    created: Option<u64>,
    /// `created` as JSON.
    created_json: Vec<u8>,
    choices: Vec<ChoiceState>,
    /// Finish chunks held until `[DONE]` so the last can carry usage.
    held: Vec<OutChunk>,
    /// The latest usage, parsed, with the upstream's bytes for it (empty if it had none).
    usage: Option<(Usage, Bytes)>,
    /// The latest usage-only chunk, forwarded at `[DONE]` when the client asked for usage.
    usage_chunk: Option<OutChunk>,
    finish_order: Vec<(u32, FinishReason)>,
    /// An unknown upstream finish reason that was reported as `stop`.
    native_stop_reason: Option<String>,
    state: State,
    summary: Option<StreamSummary>,
}

impl StreamPipeline {
    /// A pipeline for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        let model_json = serde_json::to_vec(&ctx.model).unwrap_or_else(|_| b"\"\"".to_vec());
        StreamPipeline {
            ctx,
            decoder: Decoder::new(),
            frames: Vec::new(),
            members: Vec::new(),
            model_json,
            id: None,
            id_json: Vec::new(),
            created: None,
            created_json: Vec::new(),
            choices: Vec::new(),
            held: Vec::new(),
            usage: None,
            usage_chunk: None,
            finish_order: Vec::new(),
            native_stop_reason: None,
            state: State::Streaming,
            summary: None,
        }
    }

    fn event(
        &mut self,
        error_event: bool,
        data: Bytes,
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        let text = data.trim_ascii();
        if text.is_empty() {
            return Ok(());
        }
        if text == b"[DONE]" {
            self.end(out);
            return Ok(());
        }
        self.members.clear();
        let scanned = scan::members(&data, &mut self.members);
        let has_error = self.members.iter().any(|m| m.key(&data) == b"error");
        if has_error || error_event {
            let err =
                serde_json::from_slice::<ErrorEnvelope>(&data).map(|e| e.error).unwrap_or_default();
            return Err(TranslateError::Upstream(error_from_object(None, err)));
        }
        let (chunk, native) =
            parse_lenient::<ChatChunk>(&data).map_err(|source| TranslateError::InvalidJson {
                provider: PROVIDER,
                context: "chat.completion.chunk".into(),
                source,
            })?;
        // A chunk that needed leniency no longer matches its bytes; neither does one whose
        // members the scanner could not follow (serde accepted it, so that never happens).
        let exact = scanned && !native.changed;
        if native.reason.is_some() {
            self.native_stop_reason = native.reason;
        }
        let members = std::mem::take(&mut self.members);
        self.chunk(chunk, &data, exact.then_some(members.as_slice()), out);
        self.members = members;
        Ok(())
    }

    /// Handles one parsed chunk; `members` are its top-level members when they could be found.
    fn chunk(
        &mut self,
        mut chunk: ChatChunk,
        data: &Bytes,
        members: Option<&[Member]>,
        out: &mut Vec<OutChunk>,
    ) {
        let usage_at = members.and_then(|ms| ms.iter().position(|m| m.key(data) == b"usage"));
        let has_usage = chunk.usage.is_some();
        if let Some(usage) = chunk.usage.take() {
            let bytes = match (members, usage_at) {
                (Some(ms), Some(i)) => data.slice(ms[i].value.clone()),
                _ => Bytes::new(),
            };
            self.usage = Some((usage, bytes));
            // A newer snapshot replaces the usage chunk seen before it.
            self.usage_chunk = None;
        }
        if chunk.choices.is_empty() {
            // Empty-choices chunks without usage carry only provider extras and are dropped.
            if has_usage && self.ctx.include_usage {
                self.pin_identity(&mut chunk);
                chunk.usage = self.usage.as_ref().map(|(u, _)| u.clone());
                let raw = members.and_then(|ms| {
                    let mut edits = self.identity_edits(data, ms);
                    // The usage chunk always says `choices: []`, never `null` or nothing.
                    match ms.iter().find(|m| m.key(data) == b"choices") {
                        Some(m) if m.value(data).first() == Some(&b'[') => {}
                        Some(m) => edits.replace(m.value.clone(), b"[]"),
                        None => edits.prepend_member(ms, b"\"choices\":", b"[]"),
                    }
                    self.render(data, &edits)
                });
                self.usage_chunk = Some(OutChunk { chunk, raw });
            }
            return;
        }
        self.pin_identity(&mut chunk);
        if chunk.choices.len() > 1 || members.is_none() {
            for c in &chunk.choices {
                let p = self.prepare(c);
                self.normalise(&chunk, c, &p, out);
            }
            return;
        }
        let p = self.prepare(&chunk.choices[0]);
        if !p.clean {
            self.normalise(&chunk, &chunk.choices[0], &p, out);
            return;
        }
        let raw = members.and_then(|ms| {
            let mut edits = self.identity_edits(data, ms);
            if let Some(i) = usage_at {
                // Usage moves to the end of the stream, and `usage: null` stays only when the
                // client asked for usage (as OpenAI sends it).
                if has_usage || !self.ctx.include_usage {
                    edits.remove_member(ms, i);
                }
            }
            self.render(data, &edits)
        });
        let choice = &chunk.choices[0];
        let (index, finish) = (choice.index, choice.finish_reason);
        if !p.was_started && choice.delta.role.is_none() {
            self.push_role(index, out);
        }
        self.commit(choice, &p);
        let forwarded = OutChunk { chunk, raw };
        match finish {
            Some(reason) => self.finish_choice(index, reason, forwarded, out),
            None => out.push(forwarded),
        }
    }

    /// Fixes the stream's id and created from the first chunk that has them, and stamps them and
    /// the public model on the parsed chunk.
    fn pin_identity(&mut self, chunk: &mut ChatChunk) {
        let id = self.id.get_or_insert_with(|| {
            if chunk.id.is_empty() { self.ctx.id.clone() } else { chunk.id.clone() }
        });
        if self.id_json.is_empty() {
            self.id_json = serde_json::to_vec(id).unwrap_or_default();
        }
        if chunk.id != *id {
            chunk.id.clone_from(id);
        }
        let created = *self.created.get_or_insert(if chunk.created == 0 {
            self.ctx.created
        } else {
            chunk.created
        });
        if self.created_json.is_empty() {
            self.created_json = created.to_string().into_bytes();
        }
        chunk.created = created;
        chunk.model.clone_from(&self.ctx.model);
    }

    /// Edits that make the raw bytes say the pinned id, created and public model.
    fn identity_edits<'a>(&'a self, data: &[u8], members: &[Member]) -> Edits<'a> {
        let mut edits = Edits::default();
        let (mut model, mut id, mut created) = (false, false, false);
        for m in members {
            let (seen, want) = match m.key(data) {
                b"model" => (&mut model, &self.model_json),
                b"id" => (&mut id, &self.id_json),
                b"created" => (&mut created, &self.created_json),
                _ => continue,
            };
            *seen = true;
            if m.value(data) != want.as_slice() {
                edits.replace(m.value.clone(), want);
            }
        }
        if !id {
            edits.prepend_member(members, b"\"id\":", &self.id_json);
        }
        if !created {
            edits.prepend_member(members, b"\"created\":", &self.created_json);
        }
        if !model {
            edits.prepend_member(members, b"\"model\":", &self.model_json);
        }
        edits
    }

    /// `data` with `edits` applied, or `None` when the edits did not fit (the chunk is then sent
    /// in its parsed form).
    fn render(&self, data: &Bytes, edits: &Edits<'_>) -> Option<Bytes> {
        if edits.overflowed() {
            None
        } else if edits.is_empty() {
            Some(data.clone())
        } else {
            Some(Bytes::from(edits.applied(data)))
        }
    }

    /// Looks at one choice before anything is committed: where its tool-call fragments go and
    /// whether the chunk can pass through as it is.
    fn prepare(&self, c: &ChunkChoice) -> Prepared {
        let state = self.choices.get(c.index as usize);
        let was_started = state.is_some_and(|s| s.started);
        let was_finished = state.is_some_and(|s| s.finished);
        let tools: &[ToolSlot] = state.map_or(&[], |s| &s.tools);
        let d = &c.delta;
        let mut clean = true;
        if was_started && d.role.is_some() {
            clean = false;
        }
        let is_role_delta = d.role.is_some();
        if (d.content.as_deref() == Some("") && !is_role_delta)
            || d.refusal.as_deref() == Some("")
            || d.reasoning_content.as_deref() == Some("")
        {
            clean = false;
        }
        let mut slots = Vec::new();
        if let Some(calls) = &d.tool_calls {
            if calls.is_empty() {
                clean = false;
            }
            let mut new_ids: Vec<(u32, Option<&str>)> = Vec::new();
            for tc in calls {
                let existing = new_ids
                    .iter()
                    .rposition(|(up, _)| *up == tc.index)
                    .map(|i| (tools.len() + i, new_ids[i].1))
                    .or_else(|| {
                        tools
                            .iter()
                            .rposition(|s| s.upstream_index == tc.index)
                            .map(|i| (i, tools[i].id.as_deref()))
                    });
                let slot = match (existing, tc.id.as_deref()) {
                    (Some((_, Some(known))), Some(id)) if known != id => {
                        new_ids.push((tc.index, Some(id)));
                        Slot::New((tools.len() + new_ids.len() - 1) as u32)
                    }
                    (Some((i, _)), _) => Slot::Existing(i as u32),
                    (None, Some(id)) => {
                        new_ids.push((tc.index, Some(id)));
                        Slot::New((tools.len() + new_ids.len() - 1) as u32)
                    }
                    (None, None) => Slot::Orphan,
                };
                let args = tc.function.as_ref().and_then(|f| f.arguments.as_deref());
                match slot {
                    Slot::New(i) | Slot::Existing(i) if i != tc.index => clean = false,
                    Slot::Orphan => clean = false,
                    Slot::Existing(_) if args == Some("") || tc.id.is_some() => clean = false,
                    _ => {}
                }
                slots.push(slot);
            }
        }
        let has_delta = !d.is_empty();
        if c.finish_reason.is_some() && (was_finished || has_delta) {
            clean = false;
        }
        Prepared { was_started, was_finished, slots, clean }
    }

    fn state_mut(&mut self, choice: u32) -> &mut ChoiceState {
        let i = choice as usize;
        if self.choices.len() <= i {
            self.choices.resize_with(i + 1, ChoiceState::default);
        }
        &mut self.choices[i]
    }

    /// Records what a choice's delta started or continued.
    fn commit(&mut self, c: &ChunkChoice, p: &Prepared) {
        let state = self.state_mut(c.index);
        state.started = true;
        for (tc, slot) in c.delta.tool_calls.iter().flatten().zip(&p.slots) {
            let has_args = tc
                .function
                .as_ref()
                .and_then(|f| f.arguments.as_deref())
                .is_some_and(|a| !a.is_empty());
            match *slot {
                Slot::New(_) => state.tools.push(ToolSlot {
                    upstream_index: tc.index,
                    id: tc.id.clone(),
                    has_args,
                }),
                Slot::Existing(i) => {
                    if let Some(s) = state.tools.get_mut(i as usize) {
                        s.has_args |= has_args;
                    }
                }
                Slot::Orphan => {}
            }
        }
    }

    fn new_chunk(&self) -> ChatChunk {
        let id = self.id.clone().unwrap_or_else(|| self.ctx.id.clone());
        ChatChunk::new(id, self.created.unwrap_or(self.ctx.created), self.ctx.model.clone())
    }

    fn push_role(&mut self, choice: u32, out: &mut Vec<OutChunk>) {
        let delta = Delta { content: Some(String::new()), ..Delta::role() };
        out.push(OutChunk::built(self.new_chunk().with_delta(choice, delta)));
        self.state_mut(choice).started = true;
    }

    /// Rebuilds one choice of a chunk that cannot pass through as it is.
    fn normalise(
        &mut self,
        src: &ChatChunk,
        c: &ChunkChoice,
        p: &Prepared,
        out: &mut Vec<OutChunk>,
    ) {
        if !p.was_started {
            self.push_role(c.index, out);
        }
        self.commit(c, p);
        let d = &c.delta;
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let mut delta = Delta {
            role: None,
            content: non_empty(&d.content),
            refusal: non_empty(&d.refusal),
            reasoning_content: non_empty(&d.reasoning_content),
            // LiteLLM-style upstreams' replay data passes through unchanged.
            thinking_blocks: d.thinking_blocks.clone(),
            tool_calls: None,
        };
        let mut calls = Vec::new();
        for (tc, slot) in d.tool_calls.iter().flatten().zip(&p.slots) {
            let args = tc.function.as_ref().and_then(|f| f.arguments.clone());
            match *slot {
                Slot::New(index) => {
                    let name =
                        tc.function.as_ref().and_then(|f| f.name.clone()).unwrap_or_default();
                    let mut call =
                        ToolCallDelta::start(index, tc.id.clone().unwrap_or_default(), name);
                    if let Some(f) = call.function.as_mut() {
                        f.arguments = Some(args.unwrap_or_default());
                    }
                    calls.push(call);
                }
                Slot::Existing(index) => {
                    if let Some(args) = args.filter(|a| !a.is_empty()) {
                        calls.push(ToolCallDelta::arguments(index, args));
                    }
                }
                Slot::Orphan => {}
            }
        }
        if !calls.is_empty() {
            delta.tool_calls = Some(calls);
        }
        if !delta.is_empty() || c.logprobs.is_some() {
            let mut chunk = self.new_chunk();
            chunk.system_fingerprint.clone_from(&src.system_fingerprint);
            chunk.service_tier.clone_from(&src.service_tier);
            chunk.choices.push(ChunkChoice {
                index: c.index,
                delta,
                logprobs: c.logprobs.clone(),
                finish_reason: None,
            });
            out.push(OutChunk::built(chunk));
        }
        if let Some(reason) = c.finish_reason
            && !p.was_finished
        {
            {
                let mut chunk = self.new_chunk().with_finish(c.index, reason);
                chunk.system_fingerprint.clone_from(&src.system_fingerprint);
                chunk.service_tier.clone_from(&src.service_tier);
                self.finish_choice(c.index, reason, OutChunk::built(chunk), out);
            }
        }
    }

    /// Ends a choice: `"{}"` for calls that streamed no arguments, then the finish chunk (held
    /// when usage must ride on it).
    fn finish_choice(
        &mut self,
        choice: u32,
        reason: FinishReason,
        chunk: OutChunk,
        out: &mut Vec<OutChunk>,
    ) {
        let empty: Vec<u32> = {
            let state = self.state_mut(choice);
            state.finished = true;
            let empty = state
                .tools
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.has_args)
                .map(|(i, _)| i as u32)
                .collect();
            for t in &mut state.tools {
                t.has_args = true;
            }
            empty
        };
        for index in empty {
            let delta = Delta {
                tool_calls: Some(vec![ToolCallDelta::arguments(index, "{}")]),
                ..Delta::default()
            };
            out.push(OutChunk::built(self.new_chunk().with_delta(choice, delta)));
        }
        self.finish_order.push((choice, reason));
        if !self.ctx.include_usage && self.ctx.usage_on_finish {
            self.held.push(chunk);
        } else {
            out.push(chunk);
        }
    }

    /// `[DONE]`: finishes open choices, releases held finish chunks (usage on the last), then the
    /// usage chunk when the client asked for it.
    fn end(&mut self, out: &mut Vec<OutChunk>) {
        let open: Vec<u32> = (0..self.choices.len() as u32)
            .filter(|&c| self.choices[c as usize].started && !self.choices[c as usize].finished)
            .collect();
        for choice in open {
            let chunk = OutChunk::built(self.new_chunk().with_finish(choice, FinishReason::Stop));
            self.finish_choice(choice, FinishReason::Stop, chunk, out);
        }
        let mut held = std::mem::take(&mut self.held);
        if let (Some(last), Some((usage, bytes))) = (held.last_mut(), &self.usage) {
            last.chunk.usage = Some(usage.clone());
            let serialised;
            let bytes: &[u8] = if bytes.is_empty() {
                serialised = serde_json::to_vec(usage).unwrap_or_default();
                &serialised
            } else {
                bytes
            };
            let mut members = Vec::new();
            let raw = last.raw.take().filter(|raw| scan::members(raw, &mut members));
            last.raw = raw.and_then(|raw| {
                let mut edits = Edits::default();
                if let Some(i) = members.iter().position(|m| m.key(&raw) == b"usage") {
                    edits.remove_member(&members, i);
                }
                edits.append_member(&raw, &members, b"\"usage\":", bytes);
                (!edits.overflowed()).then(|| Bytes::from(edits.applied(&raw)))
            });
        }
        out.append(&mut held);
        if self.ctx.include_usage {
            if let Some(chunk) = self.usage_chunk.take() {
                out.push(chunk);
            } else if let Some((usage, _)) = &self.usage {
                out.push(OutChunk::built(self.new_chunk().with_usage(usage.clone())));
            }
        }
        self.summary = Some(StreamSummary {
            usage: self.usage.as_ref().map(|(u, _)| u.clone()),
            finish_reasons: self.finish_order.clone(),
            native_stop_reason: self.native_stop_reason.clone(),
        });
        self.state = State::Done;
    }
}

/// The look at one choice taken before committing it.
#[derive(Debug)]
struct Prepared {
    was_started: bool,
    was_finished: bool,
    /// Where each tool-call fragment goes, in order.
    slots: Vec<Slot>,
    /// Whether the choice can pass through byte for byte (apart from identity and usage edits).
    clean: bool,
}

impl ByteTranslator for StreamPipeline {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        if self.state != State::Streaming {
            return Ok(());
        }
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let mut frames = std::mem::take(&mut self.frames);
        let mut result = Ok(());
        for frame in frames.drain(..) {
            if self.state != State::Streaming {
                break;
            }
            if let Frame::Event(event) = frame {
                let is_error = event.event_type() == "error";
                if let Err(e) = self.event(is_error, event.data.into_bytes(), out) {
                    self.state = State::Failed;
                    result = Err(e);
                    break;
                }
            }
        }
        self.frames = frames;
        result?;
        decoded.map_err(|e| {
            self.state = State::Failed;
            TranslateError::Framing { provider: PROVIDER, message: e.to_string() }
        })
    }

    fn finish(&mut self, _out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        self.decoder.finish();
        match (&self.summary, self.state) {
            (Some(summary), State::Done) => Ok(summary.clone()),
            _ => Err(TranslateError::Truncated { provider: PROVIDER }),
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

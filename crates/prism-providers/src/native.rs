//! Same-protocol lanes: when the client speaks the upstream's own protocol (Anthropic Messages to
//! the Anthropic API or to Bedrock's InvokeModel for Claude, OpenAI Responses to an OpenAI
//! upstream), the client's body goes upstream with only the model replaced, and the upstream's
//! events come back with only the model replaced. Nothing a translation would drop (signatures,
//! citations, server tools, cache-control, new event types) is lost.
//!
//! The relays still observe every event, through the same translators as the translated lane
//! (or, for Responses, an [`Emitter`]): their canonical chunks decide when a stream has real
//! content, and give the usage and finish reasons for metrics. Each [`OutChunk`] a relay emits
//! carries the native SSE bytes in `raw` (once per upstream event; the other chunks of the same
//! event carry empty bytes), so a lane's encoder writes `raw` verbatim.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use prism_sse::{EventRef, Frame};
use prism_types::{ChatChunk, FinishReason, PromptTokensDetails, Usage};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::anthropic::{self, EventTranslator};
use crate::bedrock::{self, eventstream};
use crate::translate::{ByteTranslator, Emitter, OutChunk, StreamContext, StreamSummary};
use crate::{BuildOptions, Credentials, Deployment, ProviderKind, TranslateError};

/// The native client protocols a lane can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeApi {
    /// `POST /v1/messages`.
    AnthropicMessages,
    /// `POST /v1/responses`.
    OpenAiResponses,
}

impl NativeApi {
    /// Whether `deployment` speaks this protocol natively.
    pub fn serves(self, deployment: &Deployment) -> bool {
        match self {
            NativeApi::AnthropicMessages => {
                deployment.kind == ProviderKind::Anthropic
                    || (deployment.kind == ProviderKind::Bedrock && deployment.bedrock_invoke)
            }
            NativeApi::OpenAiResponses => {
                deployment.kind == ProviderKind::OpenAi && deployment.supports_responses
            }
        }
    }
}

/// A client request for a same-protocol lane.
#[derive(Debug, Clone, Copy)]
pub struct NativeRequest<'a> {
    /// The protocol of `body`.
    pub api: NativeApi,
    /// The client's own JSON body.
    pub body: &'a [u8],
    /// The client's `anthropic-version` header (Messages).
    pub anthropic_version: Option<&'a str>,
    /// The client's `anthropic-beta` header (Messages): forwarded to the Anthropic API, and as
    /// the body's `anthropic_beta` list to Bedrock.
    pub anthropic_beta: Option<&'a str>,
}

fn invalid(message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest { param: None, message: message.into() }
}

/// Builds the upstream request of a same-protocol lane: the client's body with `model` (and
/// `stream`) set for `deployment`.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] when the body is not a JSON object or the deployment does
/// not speak the protocol, [`TranslateError::Signing`] when signing fails.
pub fn build_request(
    native: &NativeRequest<'_>,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    if !native.api.serves(deployment) {
        return Err(invalid("this deployment does not speak the client's protocol"));
    }
    let mut body: Map<String, Value> = serde_json::from_slice(native.body)
        .map_err(|e| invalid(format!("the request body is not a JSON object: {e}")))?;
    let json = |body: &Map<String, Value>| {
        serde_json::to_vec(body)
            .map(Bytes::from)
            .map_err(|e| invalid(format!("request could not be encoded: {e}")))
    };
    match (native.api, deployment.kind) {
        (NativeApi::AnthropicMessages, ProviderKind::Bedrock) => {
            body.remove("model");
            body.remove("stream");
            body.insert("anthropic_version".into(), Value::from("bedrock-2023-05-31"));
            if let Some(beta) = native.anthropic_beta {
                let betas: Vec<Value> = beta
                    .split(',')
                    .map(str::trim)
                    .filter(|b| !b.is_empty())
                    .map(Value::from)
                    .collect();
                body.insert("anthropic_beta".into(), Value::Array(betas));
            }
            let operation = if opts.stream { "invoke-with-response-stream" } else { "invoke" };
            let uri = format!(
                "{}/model/{}/{operation}",
                deployment.base_url,
                bedrock::model_path_segment(&deployment.upstream_model)
            );
            let accept =
                if opts.stream { "application/vnd.amazon.eventstream" } else { "application/json" };
            let mut request = http::Request::post(uri)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, accept)
                .body(json(&body)?)
                .map_err(|e| {
                    TranslateError::Signing(format!("invalid bedrock upstream URL: {e}"))
                })?;
            bedrock::sign::authenticate(&mut request, deployment, opts.now)?;
            Ok(request)
        }
        (NativeApi::AnthropicMessages, _) => {
            body.insert("model".into(), Value::from(deployment.upstream_model.as_str()));
            body.insert("stream".into(), Value::Bool(opts.stream));
            let version = native.anthropic_version.unwrap_or(anthropic::API_VERSION);
            let mut builder = http::Request::post(format!("{}/v1/messages", deployment.base_url))
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("anthropic-version", version);
            if let Some(beta) = native.anthropic_beta {
                builder = builder.header("anthropic-beta", beta);
            }
            if opts.stream {
                builder = builder.header(http::header::ACCEPT, "text/event-stream");
            }
            builder = match &deployment.credentials {
                Credentials::None => builder,
                Credentials::ApiKey(key) => builder.header("x-api-key", key.expose()),
                Credentials::Bearer(token) => builder
                    .header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose())),
                Credentials::Aws { .. } => {
                    return Err(TranslateError::Signing(
                        "aws credentials do not apply to the anthropic api".into(),
                    ));
                }
            };
            builder
                .body(json(&body)?)
                .map_err(|e| invalid(format!("invalid upstream request: {e}")))
        }
        (NativeApi::OpenAiResponses, _) => {
            body.insert("model".into(), Value::from(deployment.upstream_model.as_str()));
            body.insert("stream".into(), Value::Bool(opts.stream));
            let base = deployment.base_url.as_str();
            let url = if base.ends_with("/v1") {
                format!("{base}/responses")
            } else {
                format!("{base}/v1/responses")
            };
            let mut builder =
                http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
            if opts.stream {
                builder = builder.header(http::header::ACCEPT, "text/event-stream");
            }
            builder = match &deployment.credentials {
                Credentials::None => builder,
                Credentials::ApiKey(token) | Credentials::Bearer(token) => builder
                    .header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose())),
                Credentials::Aws { .. } => {
                    return Err(TranslateError::Signing(
                        "aws credentials do not apply to openai deployments".into(),
                    ));
                }
            };
            builder
                .body(json(&body)?)
                .map_err(|e| invalid(format!("invalid upstream request: {e}")))
        }
    }
}

/// The stream relay of a same-protocol lane.
pub fn relay(
    api: NativeApi,
    deployment: &Deployment,
    ctx: StreamContext,
) -> Box<dyn ByteTranslator> {
    match (api, deployment.kind) {
        (NativeApi::AnthropicMessages, ProviderKind::Bedrock) => {
            Box::new(BedrockInvokeRelay::new(ctx))
        }
        (NativeApi::AnthropicMessages, _) => Box::new(AnthropicRelay::new(ctx)),
        (NativeApi::OpenAiResponses, _) => Box::new(ResponsesRelay::new(ctx)),
    }
}

/// A whole non-streamed native answer with `model` replaced by the public name. Bodies that are
/// not JSON objects are returned as they came.
pub fn rewrite_response(api: NativeApi, body: &[u8], public_model: &str) -> Bytes {
    let _ = api;
    match serde_json::from_slice::<Map<String, Value>>(body) {
        Ok(mut map) => {
            if map.contains_key("model") {
                map.insert("model".into(), Value::from(public_model));
            }
            match prism_types::json::to_vec(&map) {
                Ok(json) => Bytes::from(json),
                Err(_) => Bytes::copy_from_slice(body),
            }
        }
        Err(_) => Bytes::from(prism_types::json::escape_separators(body).into_owned()),
    }
}

/// The usage of a whole non-streamed native answer, in canonical form (for the usage ledger);
/// `None` when the body carries none.
pub fn response_usage(api: NativeApi, body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct WithUsage<U> {
        usage: Option<U>,
    }
    match api {
        NativeApi::AnthropicMessages => {
            let parsed: WithUsage<anthropic::wire::WireUsage> =
                serde_json::from_slice(body).ok()?;
            parsed.usage.map(|u| anthropic::usage_from_wire(&u))
        }
        NativeApi::OpenAiResponses => {
            let parsed: WithUsage<ResponsesUsage> = serde_json::from_slice(body).ok()?;
            parsed.usage.map(|u| u.canonical())
        }
    }
}

/// Writes one native SSE event: `event: <name>` and the data.
fn write_native_event(out: &mut BytesMut, name: &str, data: &[u8]) {
    let data = prism_types::json::escape_separators(data);
    // Upstream event names and JSON data never hold line breaks that matter: JSON escapes them,
    // and a name with one is not an event this relay forwards.
    let text = String::from_utf8_lossy(&data);
    let event = EventRef {
        event: Some(name).filter(|n| !n.contains(['\r', '\n'])),
        data: &text,
        id: None,
        retry: None,
    };
    if prism_sse::write_event(out, &event).is_err() {
        debug_assert!(false, "native event could not be encoded");
    }
}

/// `data` with `obj_key.model` (or top-level `model` when `obj_key` is empty) set to `model`.
fn with_model(data: &[u8], obj_key: &str, model: &str) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let target = if obj_key.is_empty() { Some(&mut value) } else { value.get_mut(obj_key) };
    let obj = target?.as_object_mut()?;
    obj.insert("model".into(), Value::from(model));
    prism_types::json::to_vec(&value).ok()
}

/// Moves `scratch` into `out`, the first chunk carrying the event's native bytes and the rest
/// empty bytes; an event without canonical chunks gets an empty chunk of its own.
fn push_event(
    ctx: &StreamContext,
    raw: Bytes,
    scratch: &mut Vec<OutChunk>,
    out: &mut Vec<OutChunk>,
) {
    if scratch.is_empty() {
        let chunk = ChatChunk::new(ctx.id.as_str(), ctx.created, ctx.model.as_str());
        out.push(OutChunk { chunk, raw: Some(raw) });
        return;
    }
    let mut raw = Some(raw);
    for mut chunk in scratch.drain(..) {
        chunk.raw = Some(raw.take().unwrap_or_default());
        out.push(chunk);
    }
}

/// An Anthropic event's `type`.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// Handles one Anthropic event for a Messages lane: observes it through the translator, then
/// forwards it with the model rewritten in `message_start`. An `error` event is not forwarded:
/// the translator turns it into the stream's failure, which the lane's encoder writes once.
fn relay_anthropic_event(
    ctx: &StreamContext,
    events: &mut EventTranslator,
    data: &[u8],
    buf: &mut BytesMut,
    scratch: &mut Vec<OutChunk>,
    out: &mut Vec<OutChunk>,
) -> Result<(), TranslateError> {
    scratch.clear();
    events.feed_json(data, scratch)?;
    let kind =
        serde_json::from_slice::<Typed<'_>>(data).map(|t| t.kind.into_owned()).unwrap_or_default();
    let rewritten =
        (kind == "message_start").then(|| with_model(data, "message", &ctx.model)).flatten();
    write_native_event(buf, &kind, rewritten.as_deref().unwrap_or(data));
    push_event(ctx, buf.split().freeze(), scratch, out);
    Ok(())
}

/// Anthropic SSE → the same SSE, observed by [`EventTranslator`].
#[derive(Debug)]
struct AnthropicRelay {
    ctx: StreamContext,
    decoder: prism_sse::Decoder,
    frames: Vec<Frame>,
    events: EventTranslator,
    scratch: Vec<OutChunk>,
    buf: BytesMut,
}

impl AnthropicRelay {
    fn new(ctx: StreamContext) -> Self {
        AnthropicRelay {
            events: EventTranslator::new(ctx.clone()),
            ctx,
            decoder: prism_sse::Decoder::new(),
            frames: Vec::new(),
            scratch: Vec::new(),
            buf: BytesMut::new(),
        }
    }
}

impl ByteTranslator for AnthropicRelay {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let mut result = Ok(());
        for frame in self.frames.drain(..) {
            let Frame::Event(event) = frame else { continue };
            if event.data.as_bytes().iter().all(u8::is_ascii_whitespace) || self.events.is_done() {
                continue;
            }
            if let Err(e) = relay_anthropic_event(
                &self.ctx,
                &mut self.events,
                event.data.as_bytes(),
                &mut self.buf,
                &mut self.scratch,
                out,
            ) {
                result = Err(e);
                break;
            }
        }
        self.frames.clear();
        result?;
        decoded
            .map_err(|e| TranslateError::Framing { provider: "anthropic", message: e.to_string() })
    }

    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        self.decoder.finish();
        self.events.finish(out)
    }

    fn is_done(&self) -> bool {
        self.events.is_done()
    }
}

/// Bedrock InvokeModelWithResponseStream (`chunk` frames holding base64 Anthropic events) → the
/// Anthropic SSE a Messages client expects, observed by [`EventTranslator`].
#[derive(Debug)]
struct BedrockInvokeRelay {
    ctx: StreamContext,
    decoder: eventstream::Decoder,
    events: EventTranslator,
    decoded: Vec<u8>,
    scratch: Vec<OutChunk>,
    buf: BytesMut,
}

impl BedrockInvokeRelay {
    fn new(ctx: StreamContext) -> Self {
        BedrockInvokeRelay {
            events: EventTranslator::new(ctx.clone()),
            ctx,
            decoder: eventstream::Decoder::new(),
            decoded: Vec::new(),
            scratch: Vec::new(),
            buf: BytesMut::new(),
        }
    }
}

/// A `chunk` event's payload.
#[derive(Deserialize)]
struct InvokeChunk<'a> {
    #[serde(borrow)]
    bytes: std::borrow::Cow<'a, str>,
}

impl ByteTranslator for BedrockInvokeRelay {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let BedrockInvokeRelay { ctx, decoder, events, decoded, scratch, buf } = self;
        decoder.feed_with(bytes, |frame| {
            match frame.str_header(":message-type").unwrap_or("event") {
                "event" if frame.str_header(":event-type") == Some("chunk") => {}
                "exception" | "error" => {
                    return Err(TranslateError::Upstream(bedrock::frame_error(&frame)));
                }
                _ => return Ok(()),
            }
            if events.is_done() {
                return Ok(());
            }
            let chunk: InvokeChunk<'_> =
                serde_json::from_slice(frame.payload()).map_err(|source| {
                    TranslateError::InvalidJson {
                        provider: bedrock::PROVIDER,
                        context: "chunk event".into(),
                        source,
                    }
                })?;
            decoded.clear();
            B64.decode_vec(chunk.bytes.as_bytes(), decoded).map_err(|_| {
                TranslateError::Framing {
                    provider: bedrock::PROVIDER,
                    message: "chunk bytes are not valid base64".into(),
                }
            })?;
            relay_anthropic_event(ctx, events, decoded, buf, scratch, out)
        })
    }

    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        if !self.is_done() && self.decoder.buffered() > 0 {
            return Err(TranslateError::Truncated { provider: bedrock::PROVIDER });
        }
        self.events.finish(out)
    }

    fn is_done(&self) -> bool {
        self.events.is_done()
    }
}

/// The parts of a Responses event the relay observes.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesEvent {
    #[serde(rename = "type")]
    kind: String,
    delta: Option<String>,
    item: Option<ResponsesItem>,
    response: Option<ResponsesObject>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesItem {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    call_id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesObject {
    usage: Option<ResponsesUsage>,
    incomplete_details: Option<IncompleteDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IncompleteDetails {
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesUsage {
    input_tokens: u64,
    output_tokens: u64,
    input_tokens_details: Option<CachedTokens>,
    output_tokens_details: Option<ReasoningTokens>,
}

impl ResponsesUsage {
    fn canonical(&self) -> Usage {
        let mut usage = Usage::new(self.input_tokens, self.output_tokens);
        if let Some(cached) = self.input_tokens_details.as_ref().and_then(|d| d.cached_tokens) {
            usage.prompt_tokens_details =
                Some(PromptTokensDetails { cached_tokens: Some(cached), audio_tokens: None });
        }
        if let Some(reasoning) =
            self.output_tokens_details.as_ref().and_then(|d| d.reasoning_tokens)
        {
            usage.completion_tokens_details = Some(prism_types::CompletionTokensDetails {
                reasoning_tokens: Some(reasoning),
                ..Default::default()
            });
        }
        usage
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReasoningTokens {
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CachedTokens {
    cached_tokens: Option<u64>,
}

/// OpenAI Responses SSE → the same SSE, with the model rewritten in the events that carry the
/// response object; text, reasoning and function-call events are observed through an [`Emitter`].
#[derive(Debug)]
struct ResponsesRelay {
    emitter: Emitter,
    decoder: prism_sse::Decoder,
    frames: Vec<Frame>,
    scratch: Vec<OutChunk>,
    buf: BytesMut,
    /// Function-call item id → canonical tool-call index.
    calls: Vec<(String, u32)>,
    saw_tool_call: bool,
    /// The terminal event arrived (`response.completed`, `.incomplete` or `.failed`).
    summary: Option<StreamSummary>,
}

impl ResponsesRelay {
    fn new(ctx: StreamContext) -> Self {
        ResponsesRelay {
            emitter: Emitter::new(ctx),
            decoder: prism_sse::Decoder::new(),
            frames: Vec::new(),
            scratch: Vec::new(),
            buf: BytesMut::new(),
            calls: Vec::new(),
            saw_tool_call: false,
            summary: None,
        }
    }

    fn observe(&mut self, event: &ResponsesEvent) {
        let out = &mut self.scratch;
        match event.kind.as_str() {
            "response.created" => self.emitter.start(0, out),
            "response.output_text.delta" => {
                self.emitter.content(0, event.delta.as_deref().unwrap_or(""), out);
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.emitter.reasoning(0, event.delta.as_deref().unwrap_or(""), out);
            }
            "response.output_item.added" => {
                if let Some(item) = &event.item
                    && item.kind == "function_call"
                {
                    let id = item.call_id.as_deref().or(item.id.as_deref()).unwrap_or("");
                    let index = self.emitter.tool_call_start(
                        0,
                        id,
                        item.name.as_deref().unwrap_or(""),
                        out,
                    );
                    self.calls.push((item.id.clone().unwrap_or_default(), index));
                    self.saw_tool_call = true;
                }
            }
            "response.function_call_arguments.delta" => {
                // The item id is on the event; the last opened call is the usual case.
                if let Some(&(_, index)) = self.calls.last() {
                    self.emitter.tool_call_arguments(
                        0,
                        index,
                        event.delta.as_deref().unwrap_or(""),
                        out,
                    );
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let response = event.response.as_ref();
                if let Some(usage) = response.and_then(|r| r.usage.as_ref()) {
                    self.emitter.set_usage(usage.canonical());
                }
                let reason = match event.kind.as_str() {
                    "response.incomplete" => match response
                        .and_then(|r| r.incomplete_details.as_ref())
                        .and_then(|d| d.reason.as_deref())
                    {
                        Some("content_filter") => FinishReason::ContentFilter,
                        _ => FinishReason::Length,
                    },
                    _ if self.saw_tool_call => FinishReason::ToolCalls,
                    _ => FinishReason::Stop,
                };
                self.emitter.finish(0, reason, out);
                self.summary = Some(self.emitter.end(out));
            }
            _ => {}
        }
    }
}

impl ByteTranslator for ResponsesRelay {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let frames = std::mem::take(&mut self.frames);
        for frame in &frames {
            let Frame::Event(event) = frame else { continue };
            let data = event.data.as_bytes();
            if data.iter().all(u8::is_ascii_whitespace) || self.summary.is_some() {
                continue;
            }
            let parsed: ResponsesEvent =
                serde_json::from_slice(data).map_err(|source| TranslateError::InvalidJson {
                    provider: "openai",
                    context: "responses event".into(),
                    source,
                })?;
            self.scratch.clear();
            self.observe(&parsed);
            let carries_response = parsed.kind.starts_with("response.")
                && matches!(
                    parsed.kind.as_str(),
                    "response.created"
                        | "response.in_progress"
                        | "response.queued"
                        | "response.completed"
                        | "response.incomplete"
                        | "response.failed"
                );
            let model = self.emitter.context().model.clone();
            let rewritten =
                carries_response.then(|| with_model(data, "response", &model)).flatten();
            let name =
                if parsed.kind.is_empty() { event.event_type() } else { parsed.kind.as_str() };
            write_native_event(&mut self.buf, name, rewritten.as_deref().unwrap_or(data));
            let ctx = self.emitter.context().clone();
            push_event(&ctx, self.buf.split().freeze(), &mut self.scratch, out);
        }
        self.frames = frames;
        self.frames.clear();
        decoded.map_err(|e| TranslateError::Framing { provider: "openai", message: e.to_string() })
    }

    fn finish(&mut self, _out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        self.decoder.finish();
        self.summary.clone().ok_or(TranslateError::Truncated { provider: "openai" })
    }

    fn is_done(&self) -> bool {
        self.summary.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> StreamContext {
        let mut ctx = StreamContext::new("chatcmpl-t", 1, "public-model");
        ctx.include_usage = true;
        ctx
    }

    fn raw_text(out: &[OutChunk]) -> String {
        out.iter().map(|c| String::from_utf8(c.raw.clone().unwrap().to_vec()).unwrap()).collect()
    }

    const ANTHROPIC: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-upstream\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\",\"citations\":[]}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\\u2028there\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn anthropic_relay_forwards_events_with_only_the_model_rewritten() {
        let mut relay = AnthropicRelay::new(ctx());
        let mut out = Vec::new();
        relay.feed(ANTHROPIC.as_bytes(), &mut out).unwrap();
        assert!(relay.is_done());
        let summary = relay.finish(&mut out).unwrap();
        assert_eq!(summary.usage.as_ref().map(|u| u.completion_tokens), Some(3));
        let text = raw_text(&out);
        assert!(text.contains("\"model\":\"public-model\""), "{text}");
        assert!(!text.contains("claude-upstream"), "{text}");
        // Everything but message_start is byte-identical, citations and ping included.
        let untouched = ANTHROPIC.split("\n\n").skip(1).collect::<Vec<_>>().join("\n\n");
        assert!(text.ends_with(&untouched), "{text}");
        // Observed: the text reached the canonical chunks.
        assert!(out.iter().any(|c| {
            c.chunk.choices.iter().any(|ch| ch.delta.content.as_deref() == Some("Hi\u{2028}there"))
        }));
    }

    #[test]
    fn anthropic_relay_output_does_not_depend_on_read_sizes() {
        let whole = {
            let mut relay = AnthropicRelay::new(ctx());
            let mut out = Vec::new();
            relay.feed(ANTHROPIC.as_bytes(), &mut out).unwrap();
            raw_text(&out)
        };
        for piece in [1, 3, 17, 64] {
            let mut relay = AnthropicRelay::new(ctx());
            let mut out = Vec::new();
            for part in ANTHROPIC.as_bytes().chunks(piece) {
                relay.feed(part, &mut out).unwrap();
            }
            assert_eq!(raw_text(&out), whole, "piece {piece}");
        }
    }

    #[test]
    fn anthropic_relay_error_event_is_a_failure_not_forwarded() {
        let mut relay = AnthropicRelay::new(ctx());
        let mut out = Vec::new();
        let first = ANTHROPIC.split("\n\n").next().unwrap();
        let stream = format!(
            "{first}\n\nevent: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n"
        );
        let err = relay.feed(stream.as_bytes(), &mut out).unwrap_err();
        assert!(matches!(err, TranslateError::Upstream(_)), "{err:?}");
        assert!(!raw_text(&out).contains("overloaded_error"));
    }

    #[test]
    fn responses_relay_rewrites_the_response_model_and_observes_usage() {
        let stream = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-upstream\",\"output\":[]}}\n\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-upstream\",\"status\":\"completed\",\"usage\":{\"input_tokens\":7,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens\":1,\"total_tokens\":8}}}\n\n";
        let mut relay = ResponsesRelay::new(ctx());
        let mut out = Vec::new();
        relay.feed(stream.as_bytes(), &mut out).unwrap();
        assert!(relay.is_done());
        let summary = relay.finish(&mut out).unwrap();
        let usage = summary.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (7, 1));
        let text = raw_text(&out);
        assert_eq!(text.matches("\"model\":\"public-model\"").count(), 2, "{text}");
        assert!(!text.contains("gpt-upstream"));
        assert!(text.contains("\"delta\":\"Hello\""));
    }

    #[test]
    fn requests_keep_the_client_body_and_set_the_model() {
        let body = br#"{"model":"public","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#;
        let native = NativeRequest {
            api: NativeApi::AnthropicMessages,
            body,
            anthropic_version: None,
            anthropic_beta: Some("context-management-2025-06-27"),
        };
        let mut d = Deployment::new(ProviderKind::Anthropic, "http://127.0.0.1:9", "claude-up");
        d.credentials = Credentials::ApiKey(crate::Secret::new("sk-ant"));
        let opts =
            BuildOptions { stream: true, request_usage: true, now: std::time::SystemTime::now() };
        let req = build_request(&native, &d, &opts).unwrap();
        assert_eq!(req.uri(), "http://127.0.0.1:9/v1/messages");
        assert_eq!(req.headers()["anthropic-beta"], "context-management-2025-06-27");
        let sent: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(sent["model"], "claude-up");
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["tools"][0]["type"], "web_search_20250305");
        let openai = Deployment::new(ProviderKind::OpenAi, "http://127.0.0.1:9", "gpt");
        assert!(build_request(&native, &openai, &opts).is_err());
    }
}

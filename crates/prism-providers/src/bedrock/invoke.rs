//! InvokeModel / InvokeModelWithResponseStream for Claude: the Anthropic Messages body with
//! Bedrock's `anthropic_version`, and `chunk` events whose base64 `bytes` hold one Anthropic
//! stream event each, translated by [`crate::anthropic::EventTranslator`] (not a copy of it).
//!
//! The final `message_stop` also carries `amazon-bedrock-invocationMetrics`; its token counts
//! leave out cache reads and writes, so the Anthropic `usage` fields stay the source of truth
//! (the translator ignores the metrics).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prism_types::{ChatCompletion, ChatRequest};
use serde::Deserialize;
use serde_json::Value;

use crate::anthropic;
use crate::translate::{OutChunk, StreamContext, StreamSummary};
use crate::{Deployment, TranslateError};

const PROVIDER: &str = "bedrock";
/// The Messages API version Bedrock expects in the body (instead of a header).
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The Anthropic body as Bedrock's InvokeModel takes it: no `model` (it is in the path), no
/// `stream` (the operation decides), plus `anthropic_version`.
pub(crate) fn build_body(
    req: &ChatRequest,
    deployment: &Deployment,
    stream: bool,
) -> Result<Value, TranslateError> {
    let mut body = anthropic::build_body(req, deployment, stream)?;
    if let Some(obj) = body.as_object_mut() {
        obj.remove("model");
        obj.remove("stream");
        obj.insert("anthropic_version".into(), Value::String(ANTHROPIC_VERSION.into()));
    }
    Ok(body)
}

/// A `chunk` event's payload.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    bytes: Cow<'a, str>,
}

/// `chunk` events → Anthropic events → OpenAI chunks.
#[derive(Debug)]
pub(crate) struct StreamTranslator {
    inner: anthropic::EventTranslator,
    /// Reused buffer for the decoded event JSON.
    decoded: Vec<u8>,
}

impl StreamTranslator {
    pub(crate) fn new(ctx: StreamContext) -> Self {
        StreamTranslator { inner: anthropic::EventTranslator::new(ctx), decoded: Vec::new() }
    }

    /// Whether the Anthropic `message_stop` arrived.
    pub(crate) fn is_done(&self) -> bool {
        self.inner.is_done()
    }

    /// Handles one event; only `chunk` exists today, anything else is skipped.
    pub(crate) fn on_event(
        &mut self,
        event: &str,
        payload: &[u8],
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        if event != "chunk" {
            return Ok(());
        }
        let chunk: Chunk<'_> =
            serde_json::from_slice(payload).map_err(|source| TranslateError::InvalidJson {
                provider: PROVIDER,
                context: "chunk event".into(),
                source,
            })?;
        self.decoded.clear();
        B64.decode_vec(chunk.bytes.as_bytes(), &mut self.decoded).map_err(|_| {
            TranslateError::Framing {
                provider: PROVIDER,
                message: "chunk bytes are not valid base64".into(),
            }
        })?;
        self.inner.feed_json(&self.decoded, out)
    }

    /// Ends the stream: clean only after `message_stop`.
    pub(crate) fn finish(
        &mut self,
        out: &mut Vec<OutChunk>,
    ) -> Result<StreamSummary, TranslateError> {
        self.inner.finish(out)
    }
}

/// Translates an InvokeModel response: a whole Anthropic `Message`.
pub(crate) fn translate_response(
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    anthropic::translate_message(ctx, body)
}

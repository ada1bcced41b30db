//! The Anthropic Messages API (`POST /v1/messages`): request decoding, the stream encoder, the
//! non-streaming response and the error shape. (Being written: see the module's submodules.)

use bytes::BytesMut;
use prism_types::{ChatChunk, ChatCompletion, ErrorObject};

use crate::{Decoded, EncodeContext, IngressError, StreamEncoder};

/// Decodes a Messages request body into the canonical request.
///
/// # Errors
/// A 400 naming the parameter.
pub fn decode_request(body: &[u8]) -> Result<Decoded, IngressError> {
    let _ = body;
    Err(IngressError::body("the Messages API is not available yet"))
}

/// The Messages stream encoder.
#[derive(Debug)]
pub struct MessagesEncoder {
    ctx: EncodeContext,
}

impl MessagesEncoder {
    /// A new encoder.
    pub fn new(ctx: EncodeContext) -> Self {
        MessagesEncoder { ctx }
    }
}

impl StreamEncoder for MessagesEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, raw: Option<&[u8]>, out: &mut BytesMut) {
        let _ = (chunk, raw, out, &self.ctx);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        let _ = out;
    }
    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut) {
        let _ = (error, out);
    }
}

/// A whole Messages response.
pub fn encode_completion(completion: &ChatCompletion, ctx: &EncodeContext) -> Vec<u8> {
    let _ = (completion, ctx);
    Vec::new()
}

/// The Anthropic error response for a gateway error.
pub fn error_response(status: u16, error: &ErrorObject) -> (u16, Vec<u8>) {
    (status, crate::chat::error_body(error))
}

// LEAD PLACEHOLDERS (helper: replace these with the real implementations).
/// Decodes a count_tokens body.
///
/// # Errors
/// A 400 naming the parameter.
pub fn decode_count_tokens(body: &[u8]) -> Result<prism_types::ChatRequest, IngressError> {
    decode_request(body).map(|d| d.request)
}
/// Estimated input tokens.
pub fn estimate_input_tokens(req: &prism_types::ChatRequest) -> u64 {
    let _ = req;
    0
}
/// The count_tokens body.
pub fn count_tokens_body(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}

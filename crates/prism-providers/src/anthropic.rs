//! anthropic translator. PLACEHOLDER being replaced by the anthropic helper: every function errors.

use bytes::Bytes;
use prism_types::{ChatCompletion, ChatRequest};

use crate::translate::{ByteTranslator, Emitter, OutChunk, StreamContext, StreamSummary};
use crate::{BuildOptions, Deployment, ProviderError, TranslateError};

/// Builds the native request.
///
/// # Errors
/// Always, until implemented.
pub fn build_request(
    _req: &ChatRequest,
    _deployment: &Deployment,
    _opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    Err(TranslateError::InvalidRequest { param: None, message: "anthropic is not implemented yet".into() })
}

/// Translates a whole response.
///
/// # Errors
/// Always, until implemented.
pub fn translate_response(_ctx: &StreamContext, _body: &[u8]) -> Result<ChatCompletion, TranslateError> {
    Err(TranslateError::Truncated { provider: "anthropic" })
}

/// Maps an error response.
pub fn map_error(status: u16, _body: &[u8]) -> ProviderError {
    ProviderError::from_status(status, "upstream error")
}

/// The streaming pipeline.
#[derive(Debug)]
pub struct StreamPipeline {
    emitter: Emitter,
}

impl StreamPipeline {
    /// A pipeline for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        StreamPipeline { emitter: Emitter::new(ctx) }
    }
}

impl ByteTranslator for StreamPipeline {
    fn feed(&mut self, _bytes: &[u8], _out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        Err(TranslateError::Truncated { provider: "anthropic" })
    }

    fn finish(&mut self, _out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        let _ = self.emitter.summary();
        Err(TranslateError::Truncated { provider: "anthropic" })
    }

    fn is_done(&self) -> bool {
        false
    }
}

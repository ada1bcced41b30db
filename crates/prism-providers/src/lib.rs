#![doc = include_str!("../README.md")]

pub mod anthropic;
pub mod bedrock;
mod deployment;
mod error;
pub mod gemini;
pub mod native;
pub mod openai;
pub mod translate;

pub use deployment::{BuildOptions, Credentials, Deployment, ProviderKind, Secret};
pub use error::{ProviderError, TranslateError};
pub use translate::{ByteTranslator, Emitter, OutChunk, StreamContext, StreamSummary};

use bytes::Bytes;
use prism_types::{ChatCompletion, ChatRequest};

/// Builds the native upstream request for `req` on `deployment`.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] when the request cannot be expressed for this provider, and
/// [`TranslateError::Signing`] when request signing fails.
pub fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    match deployment.kind {
        ProviderKind::OpenAi => openai::build_request(req, deployment, opts),
        ProviderKind::Anthropic => anthropic::build_request(req, deployment, opts),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::build_request(req, deployment, opts),
        ProviderKind::Bedrock => bedrock::build_request(req, deployment, opts),
    }
}

/// A byte-level stream translator for `deployment`'s streaming response.
pub fn stream_translator(deployment: &Deployment, ctx: StreamContext) -> Box<dyn ByteTranslator> {
    match deployment.kind {
        ProviderKind::OpenAi => Box::new(openai::StreamPipeline::new(ctx)),
        ProviderKind::Anthropic => Box::new(anthropic::StreamPipeline::new(ctx)),
        ProviderKind::Gemini | ProviderKind::Vertex => Box::new(gemini::StreamPipeline::new(ctx)),
        ProviderKind::Bedrock => Box::new(bedrock::StreamPipeline::new(deployment, ctx)),
    }
}

/// Translates a whole successful (2xx) non-streaming response body.
///
/// # Errors
/// [`TranslateError::InvalidJson`] when the body is not the provider's response shape, and
/// [`TranslateError::Upstream`] when a 2xx body nevertheless carries an error.
pub fn translate_response(
    deployment: &Deployment,
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    match deployment.kind {
        ProviderKind::OpenAi => openai::translate_response(ctx, body),
        ProviderKind::Anthropic => anthropic::translate_response(ctx, body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::translate_response(ctx, body),
        ProviderKind::Bedrock => bedrock::translate_response(deployment, ctx, body),
    }
}

/// Maps a non-2xx upstream response to the OpenAI error the client should see.
///
/// `retry_after` is the upstream's `retry-after` header in seconds, when it sent one.
pub fn map_error_response(
    kind: ProviderKind,
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
) -> ProviderError {
    let mut err = match kind {
        ProviderKind::OpenAi => openai::map_error(status, body),
        ProviderKind::Anthropic => anthropic::map_error(status, body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::map_error(status, body),
        ProviderKind::Bedrock => bedrock::map_error(status, body),
    };
    if err.retry_after_secs.is_none() {
        err.retry_after_secs = retry_after;
    }
    // An upstream that rejects the gateway's own credentials is a gateway fault the client cannot
    // fix: every provider reports it the same way, and another deployment may still serve.
    if status == 401
        || err.status == 401
        || err.error.code.as_deref() == Some("upstream_authentication_failed")
    {
        err.status = 502;
        err.error.kind = "upstream_error".to_owned();
        err.error.code = Some("upstream_authentication_failed".to_owned());
        err.retryable = true;
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_gateway_credentials_look_the_same_for_every_provider() {
        let bodies: [(ProviderKind, &[u8]); 4] = [
            (ProviderKind::OpenAi, br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#),
            (ProviderKind::Anthropic, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
            (ProviderKind::Gemini, br#"{"error":{"code":401,"message":"API key not valid","status":"UNAUTHENTICATED"}}"#),
            (ProviderKind::Bedrock, br#"{"message":"The security token included in the request is invalid."}"#),
        ];
        for (kind, body) in bodies {
            let err = map_error_response(kind, 401, body, None);
            assert_eq!(err.status, 502, "{kind:?}");
            assert_eq!(
                err.error.code.as_deref(),
                Some("upstream_authentication_failed"),
                "{kind:?}"
            );
            assert!(err.retryable, "{kind:?}");
        }
        // Other statuses keep their provider mapping, and retry-after falls back to the header.
        let err = map_error_response(ProviderKind::Anthropic, 429, b"{}", Some(7));
        assert_eq!((err.status, err.retry_after_secs), (429, Some(7)));
    }
}

//! AWS Bedrock: ConverseStream / Converse for every model, and InvokeModelWithResponseStream /
//! InvokeModel with the Anthropic Messages body for Claude when `Deployment::bedrock_invoke` is set.
//!
//! Both streaming APIs answer with `application/vnd.amazon.eventstream` binary frames
//! ([`eventstream`]). Each frame carries `:message-type` (`event`, `exception` or `error`) and
//! `:event-type` / `:exception-type`; the JSON payload is the bare event member plus a random `p`
//! padding field.
//!
//! | frame | OpenAI output |
//! |---|---|
//! | `messageStart` | role delta |
//! | `contentBlockStart` with `toolUse` | first tool-call fragment (index from the emitter, never `contentBlockIndex`) |
//! | `contentBlockDelta` `text` / `toolUse.input` / `reasoningContent.text` | `content` / `arguments` / `reasoning_content` (empty text skipped) |
//! | `messageStop` | finish reason (held until usage when the usage policy asks) |
//! | `metadata` | usage (after `messageStop` in real streams) |
//! | `chunk` (invoke) | base64 Anthropic event, translated by [`crate::anthropic`] |
//! | exception / error frame | [`TranslateError::Upstream`] |
//!
//! A Converse stream is complete after `messageStop` and `metadata`; EOF right after
//! `messageStop` without `metadata` is still a clean end (no usage), EOF before `messageStop` is
//! [`TranslateError::Truncated`].
//!
//! References: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html>,
//! <https://smithy.io/2.0/aws/amazon-eventstream.html> (the event-stream framing of all AWS
//! streaming APIs).

mod converse;
pub mod eventstream;
mod invoke;
pub(crate) mod sign;
mod wire;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use prism_types::{ChatCompletion, ChatRequest, ErrorObject};

use self::eventstream::{FrameError, FrameRef, Header};
use crate::translate::{ByteTranslator, OutChunk, StreamContext, StreamSummary};
use crate::{BuildOptions, Deployment, ProviderError, TranslateError};

pub(crate) const PROVIDER: &str = "bedrock";

/// Everything but RFC 3986 unreserved characters is escaped in a model id path segment
/// (`:` → `%3A`, `/` → `%2F` for ARNs).
const PATH_SEGMENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The model id as one percent-encoded path segment.
pub fn model_path_segment(model: &str) -> String {
    utf8_percent_encode(model, PATH_SEGMENT).to_string()
}

/// Builds the signed (or bearer-authenticated) Bedrock request.
///
/// # Errors
/// [`TranslateError::InvalidRequest`] for requests Bedrock cannot express (http image URLs,
/// `n > 1`, JSON output formats, …), [`TranslateError::Signing`] when the credentials or the
/// upstream URL are unusable.
pub fn build_request(
    req: &ChatRequest,
    deployment: &Deployment,
    opts: &BuildOptions,
) -> Result<http::Request<Bytes>, TranslateError> {
    let (operation, body) = if deployment.bedrock_invoke {
        (
            if opts.stream { "invoke-with-response-stream" } else { "invoke" },
            invoke::build_body(req, deployment, opts.stream)?,
        )
    } else {
        (
            if opts.stream { "converse-stream" } else { "converse" },
            converse::build_body(req, deployment)?,
        )
    };
    let uri = format!(
        "{}/model/{}/{operation}",
        deployment.base_url,
        model_path_segment(&deployment.upstream_model)
    );
    let body = serde_json::to_vec(&body).map_err(|e| TranslateError::InvalidRequest {
        param: None,
        message: format!("request body could not be serialised: {e}"),
    })?;
    let accept =
        if opts.stream { "application/vnd.amazon.eventstream" } else { "application/json" };
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, accept)
        .body(Bytes::from(body))
        .map_err(|e| TranslateError::Signing(format!("invalid bedrock upstream URL: {e}")))?;
    sign::authenticate(&mut request, deployment, opts.now)?;
    Ok(request)
}

/// Translates a whole successful Converse (or InvokeModel) response.
///
/// # Errors
/// [`TranslateError::InvalidJson`] for a body of the wrong shape, [`TranslateError::Upstream`]
/// for a 2xx body without output.
pub fn translate_response(
    deployment: &Deployment,
    ctx: &StreamContext,
    body: &[u8],
) -> Result<ChatCompletion, TranslateError> {
    if deployment.bedrock_invoke {
        return invoke::translate_response(ctx, body);
    }
    converse::translate_response(ctx, body)
}

/// Maps a non-2xx Bedrock response (`{"message": …}`, sometimes with `__type`) to the client error.
pub fn map_error(status: u16, body: &[u8]) -> ProviderError {
    let parsed = wire::ErrorBody::parse(body);
    let message =
        parsed.message.clone().unwrap_or_else(|| format!("bedrock returned HTTP {status}"));
    let kind = parsed.kind.as_deref().map(exception_name).unwrap_or("");
    error_for(kind, Some(status), message)
}

/// `com.amazon.coral.validate#ValidationException` and `ValidationException:http://…` → `ValidationException`.
fn exception_name(raw: &str) -> &str {
    let name = raw.rsplit('#').next().unwrap_or(raw);
    name.split(':').next().unwrap_or(name)
}

/// The client-facing error for a Bedrock exception type (either capitalisation) or, when the
/// type is unknown, for the HTTP status.
fn error_for(kind: &str, status: Option<u16>, message: String) -> ProviderError {
    let lower = kind.to_ascii_lowercase();
    let code = |status: u16, kind: &str, code: Option<&str>| {
        let mut error = ErrorObject::new(kind, message.clone());
        error.code = code.map(str::to_owned);
        ProviderError::new(status, error)
    };
    match lower.as_str() {
        "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception" => {
            code(429, "rate_limit_error", Some("rate_limit_exceeded"))
        }
        "validationexception" => {
            let m = message.to_ascii_lowercase();
            let too_long =
                ["too long", "too many tokens", "context length", "context window", "input length"]
                    .iter()
                    .any(|needle| m.contains(needle));
            code(400, "invalid_request_error", too_long.then_some("context_length_exceeded"))
        }
        "accessdeniedexception" => code(403, "permission_error", None),
        "resourcenotfoundexception" => code(404, "not_found_error", Some("model_not_found")),
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "expiredtokenexception"
        | "missingauthenticationtokenexception" => {
            // The gateway's own AWS credentials were refused: nothing the client can fix, but
            // another deployment may work.
            code(500, "server_error", Some("upstream_authentication_failed"))
        }
        "internalserverexception" => code(500, "server_error", None),
        "modelstreamerrorexception" | "modelerrorexception" => {
            code(502, "server_error", Some("upstream_model_error"))
        }
        "serviceunavailableexception" | "modelnotreadyexception" => {
            code(503, "server_error", Some("overloaded"))
        }
        "modeltimeoutexception" => code(504, "timeout_error", Some("timeout")),
        "conflictexception" => code(409, "invalid_request_error", None),
        _ => match status {
            Some(408) => code(504, "timeout_error", Some("timeout")),
            Some(424) => code(502, "server_error", Some("upstream_model_error")),
            Some(s) if (400..600).contains(&s) => ProviderError::from_status(s, message),
            _ => code(502, "upstream_error", Some("bad_upstream_response")),
        },
    }
}

/// The error an `exception` or `error` frame stands for.
pub(crate) fn frame_error(msg: &FrameRef<'_>) -> ProviderError {
    if msg.str_header(":message-type") == Some("error") {
        let code = msg.str_header(":error-code").unwrap_or("unknown");
        let text = msg.str_header(":error-message").unwrap_or("bedrock stream error");
        return error_for(code, None, text.to_owned());
    }
    let kind = msg.str_header(":exception-type").unwrap_or("");
    let body = wire::ErrorBody::parse(msg.payload());
    let mut message = body.message.unwrap_or_else(|| format!("bedrock stream exception {kind}"));
    if let Some(original) = body.original_message {
        let status = body.original_status.map(|s| format!("{s}: ")).unwrap_or_default();
        message = format!("{message} (model said {status}{original})");
    }
    error_for(kind, None, message)
}

/// Encodes a Bedrock `event` frame (`:event-type`, `:content-type`, `:message-type` headers, in
/// the order Bedrock sends them), for the simulator and fixtures.
///
/// # Errors
/// An event type longer than 65535 bytes or a payload over 4 GiB.
pub fn encode_event(event_type: &str, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    eventstream::encode_message(
        &[
            Header::string(":event-type", event_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "event"),
        ],
        payload,
    )
}

/// Encodes a Bedrock `exception` frame such as `throttlingException` with a `{"message": …}` payload.
///
/// # Errors
/// As [`encode_event`].
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    eventstream::encode_message(
        &[
            Header::string(":exception-type", exception_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "exception"),
        ],
        payload,
    )
}

/// The translator behind a pipeline.
#[derive(Debug)]
enum Translator {
    /// Boxed like `Invoke`: both hold an emitter of a few hundred bytes.
    Converse(Box<converse::StreamTranslator>),
    /// The Anthropic translator, twice the size of the Converse one.
    Invoke(Box<invoke::StreamTranslator>),
}

/// The streaming pipeline: event-stream decoder plus the Converse or Invoke translator.
#[derive(Debug)]
pub struct StreamPipeline {
    decoder: eventstream::Decoder,
    translator: Translator,
}

impl StreamPipeline {
    /// A pipeline for one stream of `deployment`'s API (Converse, or Invoke when `bedrock_invoke`).
    pub fn new(deployment: &Deployment, ctx: StreamContext) -> Self {
        let translator = if deployment.bedrock_invoke {
            Translator::Invoke(Box::new(invoke::StreamTranslator::new(ctx)))
        } else {
            Translator::Converse(Box::new(converse::StreamTranslator::new(ctx)))
        };
        StreamPipeline { decoder: eventstream::Decoder::new(), translator }
    }
}

impl Translator {
    /// Dispatches one frame by `:message-type`; unknown message types are skipped.
    fn handle(
        &mut self,
        frame: FrameRef<'_>,
        out: &mut Vec<OutChunk>,
    ) -> Result<(), TranslateError> {
        match frame.str_header(":message-type").unwrap_or("event") {
            "event" => {
                let event = frame.str_header(":event-type").unwrap_or("");
                match self {
                    Translator::Converse(t) => t.on_event(event, frame.payload(), out),
                    Translator::Invoke(t) => t.on_event(event, frame.payload(), out),
                }
            }
            "exception" | "error" => Err(TranslateError::Upstream(frame_error(&frame))),
            _ => Ok(()),
        }
    }
}

/// Framing failures reach the client as [`TranslateError::Framing`].
impl From<FrameError> for TranslateError {
    fn from(e: FrameError) -> Self {
        TranslateError::Framing { provider: PROVIDER, message: e.to_string() }
    }
}

impl ByteTranslator for StreamPipeline {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        // Frames are translated as they complete, so those before a framing error in the same
        // piece still reach the client: they passed their checksums.
        let translator = &mut self.translator;
        self.decoder.feed_with(bytes, |frame| translator.handle(frame, out))
    }

    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        // A frame cut off before the terminal events is a truncated stream, even after
        // `messageStop`: its bytes were lost. After them, leftovers are ignored.
        if !self.is_done() && self.decoder.buffered() > 0 {
            return Err(TranslateError::Truncated { provider: PROVIDER });
        }
        match &mut self.translator {
            Translator::Converse(t) => t.finish(out),
            Translator::Invoke(t) => t.finish(out),
        }
    }

    fn is_done(&self) -> bool {
        match &self.translator {
            Translator::Converse(t) => t.is_done(),
            Translator::Invoke(t) => t.is_done(),
        }
    }
}

#[cfg(test)]
mod tests {
    use prism_types::FinishReason;

    use super::*;
    use crate::ProviderKind;

    fn pipeline() -> StreamPipeline {
        let d = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:1", "m");
        StreamPipeline::new(&d, StreamContext::new("chatcmpl-t", 1, "pub"))
    }

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode_event(kind, payload.as_bytes()).unwrap()
    }

    fn feed(
        p: &mut StreamPipeline,
        frames: &[Vec<u8>],
    ) -> (Vec<OutChunk>, Result<(), TranslateError>) {
        let mut out = Vec::new();
        let res = p.feed(&frames.concat(), &mut out);
        (out, res)
    }

    fn upstream(res: Result<(), TranslateError>) -> ProviderError {
        match res {
            Err(TranslateError::Upstream(e)) => e,
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    #[test]
    fn model_ids_are_one_encoded_path_segment() {
        assert_eq!(
            model_path_segment("anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1%3A0"
        );
        assert_eq!(
            model_path_segment(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude"
            ),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude"
        );
    }

    #[test]
    fn exception_frames_map_to_openai_errors() {
        let cases = [
            ("throttlingException", 429, "rate_limit_error", Some("rate_limit_exceeded")),
            ("modelStreamErrorException", 502, "server_error", Some("upstream_model_error")),
            ("validationException", 400, "invalid_request_error", None),
            ("serviceUnavailableException", 503, "server_error", Some("overloaded")),
            ("internalServerException", 500, "server_error", None),
            ("modelTimeoutException", 504, "timeout_error", Some("timeout")),
            ("brandNewException", 502, "upstream_error", Some("bad_upstream_response")),
        ];
        for (kind, status, openai_kind, code) in cases {
            let mut p = pipeline();
            let frame = encode_exception(kind, br#"{"message":"it broke"}"#).unwrap();
            let err = upstream(
                feed(&mut p, &[event("messageStart", r#"{"role":"assistant"}"#), frame]).1,
            );
            assert_eq!(
                (err.status, err.error.kind.as_str(), err.error.code.as_deref()),
                (status, openai_kind, code),
                "{kind}"
            );
            assert_eq!(err.error.message, "it broke");
        }
    }

    #[test]
    fn model_stream_error_keeps_the_model_message_and_error_frames_are_errors() {
        let mut p = pipeline();
        let frame = encode_exception(
            "modelStreamErrorException",
            br#"{"message":"Model failed","originalStatusCode":400,"originalMessage":"bad input"}"#,
        )
        .unwrap();
        let err = upstream(feed(&mut p, &[frame]).1);
        assert_eq!(err.error.message, "Model failed (model said 400: bad input)");

        let mut p = pipeline();
        let frame = eventstream::encode_message(
            &[
                Header::string(":message-type", "error"),
                Header::string(":error-code", "InternalFailure"),
                Header::string(":error-message", "stream broke"),
            ],
            b"",
        )
        .unwrap();
        let err = upstream(feed(&mut p, &[frame]).1);
        assert_eq!((err.status, err.error.message.as_str()), (502, "stream broke"));
    }

    #[test]
    fn http_errors_map_from_body_type_or_status() {
        let e = map_error(400, br#"{"message":"The provided model identifier is invalid."}"#);
        assert_eq!(
            (e.status, e.error.kind.as_str(), e.error.message.as_str()),
            (400, "invalid_request_error", "The provided model identifier is invalid.")
        );
        let e = map_error(400, br#"{"message":"Input is too long for requested model.","__type":"com.amazon.coral.validate#ValidationException"}"#);
        assert_eq!(e.error.code.as_deref(), Some("context_length_exceeded"));
        let e = map_error(403, br#"{"Message":"The security token included in the request is invalid.","__type":"UnrecognizedClientException:http://internal.amazon.com/coral/"}"#);
        assert_eq!(
            (e.status, e.error.code.as_deref(), e.retryable),
            (500, Some("upstream_authentication_failed"), true)
        );
        let e = map_error(400, br#"{"message":"quota","__type":"ServiceQuotaExceededException"}"#);
        assert_eq!((e.status, e.retryable), (429, true));
        let e = map_error(429, b"not json");
        assert_eq!((e.status, e.error.message.as_str()), (429, "bedrock returned HTTP 429"));
        assert_eq!(map_error(424, b"{}").status, 502);
        assert_eq!(map_error(408, b"{}").status, 504);
        assert_eq!(map_error(403, br#"{"message":"no access"}"#).error.kind, "permission_error");
        // Both spellings at once must not lose the message or the type.
        let e = map_error(
            400,
            br#"{"message":"m","Message":"m","__type":"ThrottlingException","code":"x"}"#,
        );
        assert_eq!((e.status, e.error.message.as_str()), (429, "m"));
    }

    #[test]
    fn tool_delta_without_an_open_tool_block_is_a_protocol_error() {
        let mut p = pipeline();
        let (_, res) = feed(
            &mut p,
            &[event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#,
            )],
        );
        assert!(matches!(res, Err(TranslateError::UnexpectedEvent { .. })), "{res:?}");
    }

    #[test]
    fn server_tool_blocks_never_become_client_tool_calls() {
        let mut p = pipeline();
        let frames = [
            event(
                "contentBlockStart",
                r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"s1","name":"web_search","type":"server_tool_use"}}}"#,
            ),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"q\":1}"}}}"#,
            ),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event(
                "contentBlockStart",
                r#"{"contentBlockIndex":1,"start":{"toolResult":{"toolUseId":"s1"}}}"#,
            ),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":1,"delta":{"toolResult":[{"text":"r"}]}}"#,
            ),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"text":"Found it."}}"#),
            event("messageStop", r#"{"stopReason":"end_turn"}"#),
            event("metadata", r#"{"usage":{"inputTokens":1,"outputTokens":2}}"#),
        ];
        let (mut out, res) = feed(&mut p, &frames);
        res.unwrap();
        assert!(p.is_done());
        p.finish(&mut out).unwrap();
        assert!(out.iter().all(|c| c.chunk.choices.iter().all(|ch| ch.delta.tool_calls.is_none())));
        assert_eq!(out.last().unwrap().chunk.choices[0].finish_reason, Some(FinishReason::Stop));
    }

    #[test]
    fn frames_after_the_end_are_ignored_and_invalid_json_is_an_error() {
        let mut p = pipeline();
        let (mut out, res) = feed(
            &mut p,
            &[
                event("messageStop", r#"{"stopReason":"end_turn"}"#),
                event("metadata", r#"{"usage":{"inputTokens":1,"outputTokens":2}}"#),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"late"}}"#),
            ],
        );
        res.unwrap();
        p.finish(&mut out).unwrap();
        assert!(
            out.iter().all(|c| c
                .chunk
                .choices
                .iter()
                .all(|ch| ch.delta.content.as_deref() != Some("late")))
        );

        let mut p = pipeline();
        let (_, res) = feed(&mut p, &[event("contentBlockDelta", "{not json")]);
        assert!(matches!(res, Err(TranslateError::InvalidJson { .. })), "{res:?}");
    }

    #[test]
    fn frames_before_a_bad_crc_in_the_same_piece_are_still_translated() {
        let mut p = pipeline();
        let mut bad = event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"b"}}"#);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let (out, res) = feed(
            &mut p,
            &[event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"a"}}"#), bad],
        );
        assert!(matches!(res, Err(TranslateError::Framing { .. })), "{res:?}");
        assert_eq!(out.last().unwrap().chunk.choices[0].delta.content.as_deref(), Some("a"));
    }

    #[test]
    fn invoke_chunk_with_bad_base64_is_a_framing_error() {
        let mut d = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:1", "m");
        d.bedrock_invoke = true;
        let mut p = StreamPipeline::new(&d, StreamContext::new("chatcmpl-t", 1, "pub"));
        let (_, res) = feed(&mut p, &[event("chunk", r#"{"bytes":"!!!"}"#)]);
        assert!(matches!(res, Err(TranslateError::Framing { .. })), "{res:?}");
    }
}

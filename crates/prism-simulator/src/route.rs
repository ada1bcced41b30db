//! Which provider endpoint a request path names.

use std::borrow::Cow;

use crate::Wire;

/// What the path says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The wire to answer in.
    pub(crate) wire: Wire,
    /// Streaming as the path says (`None`: the body's `stream` field decides).
    pub(crate) stream: Option<bool>,
    /// The model named in the path, if any.
    pub(crate) model: Option<String>,
    /// Gemini only: `alt=sse` was in the query (else a streamed JSON array).
    pub(crate) sse: bool,
}

/// Routes `POST` requests by path; anything else is `None`.
pub(crate) fn route(method: &http::Method, path: &str, query: Option<&str>) -> Option<Route> {
    if method != http::Method::POST {
        return None;
    }
    let body_decides = |wire| Some(Route { wire, stream: None, model: None, sse: true });
    if path.ends_with("/chat/completions") {
        return body_decides(Wire::OpenAi);
    }
    if path.ends_with("/responses") {
        return body_decides(Wire::OpenAiResponses);
    }
    if path == "/v1/messages" || path.ends_with("/v1/messages") {
        return body_decides(Wire::Anthropic);
    }
    if let Some(rest) = path.strip_prefix("/model/") {
        let (id, op) = rest.rsplit_once('/')?;
        let (wire, stream) = match op {
            "converse-stream" => (Wire::BedrockConverse, true),
            "converse" => (Wire::BedrockConverse, false),
            "invoke-with-response-stream" => (Wire::BedrockInvoke, true),
            "invoke" => (Wire::BedrockInvoke, false),
            _ => return None,
        };
        let model = percent_encoding::percent_decode_str(id).decode_utf8().map(Cow::into_owned);
        return Some(Route { wire, stream: Some(stream), model: model.ok(), sse: true });
    }
    let (prefix, model_and_op) = path.rsplit_once("/models/")?;
    let (model, op) = model_and_op.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let anthropic_on_vertex = prefix.ends_with("/publishers/anthropic");
    let (wire, stream) = match op {
        "streamGenerateContent" if !anthropic_on_vertex => (Wire::Gemini, true),
        "generateContent" if !anthropic_on_vertex => (Wire::Gemini, false),
        "streamRawPredict" if anthropic_on_vertex => (Wire::Anthropic, true),
        "rawPredict" if anthropic_on_vertex => (Wire::Anthropic, false),
        _ => return None,
    };
    let sse = wire != Wire::Gemini || query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    Some(Route { wire, stream: Some(stream), model: Some(model.to_owned()), sse })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path_and_query: &str) -> Option<(Wire, Option<bool>, Option<String>, bool)> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        route(&http::Method::POST, path, query).map(|r| (r.wire, r.stream, r.model, r.sse))
    }

    #[test]
    fn routes_every_provider_path() {
        assert_eq!(check("/v1/chat/completions"), Some((Wire::OpenAi, None, None, true)));
        assert_eq!(
            check("/openai/deployments/gpt/chat/completions"),
            Some((Wire::OpenAi, None, None, true))
        );
        assert_eq!(check("/v1/responses"), Some((Wire::OpenAiResponses, None, None, true)));
        assert_eq!(check("/openai/v1/responses"), Some((Wire::OpenAiResponses, None, None, true)));
        assert_eq!(check("/v1/messages"), Some((Wire::Anthropic, None, None, true)));
        assert_eq!(
            check("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            Some((Wire::Gemini, Some(true), Some("gemini-2.5-flash".into()), true))
        );
        assert_eq!(
            check("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            Some((Wire::Gemini, Some(true), Some("gemini-2.5-flash".into()), false))
        );
        assert_eq!(
            check("/v1beta/models/gemini-2.5-flash:generateContent"),
            Some((Wire::Gemini, Some(false), Some("gemini-2.5-flash".into()), false))
        );
        assert_eq!(
            check(
                "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
            ),
            Some((Wire::Gemini, Some(true), Some("gemini-2.5-pro".into()), true))
        );
        assert_eq!(
            check(
                "/v1/projects/p/locations/global/publishers/anthropic/models/claude:streamRawPredict"
            ),
            Some((Wire::Anthropic, Some(true), Some("claude".into()), true))
        );
        assert_eq!(
            check("/model/anthropic.claude-sonnet-4-5-v1%3A0/converse-stream"),
            Some((
                Wire::BedrockConverse,
                Some(true),
                Some("anthropic.claude-sonnet-4-5-v1:0".into()),
                true
            ))
        );
        assert_eq!(
            check("/model/m/converse"),
            Some((Wire::BedrockConverse, Some(false), Some("m".into()), true))
        );
        assert_eq!(
            check(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/invoke-with-response-stream"
            ),
            Some((
                Wire::BedrockInvoke,
                Some(true),
                Some("arn:aws:bedrock:us-east-1:1:inference-profile/x".into()),
                true
            ))
        );
        assert_eq!(
            check("/model/m/invoke"),
            Some((Wire::BedrockInvoke, Some(false), Some("m".into()), true))
        );
    }

    #[test]
    fn rejects_unknown_paths_and_methods() {
        for path in [
            "/",
            "/v1/models",
            "/model/m/other",
            "/v1beta/models/g:countTokens",
            "/v1beta/models/:generateContent",
        ] {
            assert_eq!(check(path), None, "{path}");
        }
        assert_eq!(route(&http::Method::GET, "/v1/chat/completions", None), None);
    }
}

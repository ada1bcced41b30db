//! Chat Completions, the canonical protocol: requests decode as they are (400s name the field); chunks go out as they are (the upstream's own JSON
//! when it is a pass-through), `data: [DONE]` ends a clean stream, and a failure is one
//! `data: {"error":…}` event with no `[DONE]`.

use bytes::BytesMut;
use prism_types::{ChatChunk, ChatCompletion, ChatRequest, ErrorBody, ErrorObject, Message};
use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::{Decoded, IngressError, StreamEncoder};

/// The Chat Completions stream encoder.
#[derive(Debug, Default)]
pub struct ChatEncoder {
    /// Reused JSON scratch.
    json: Vec<u8>,
}

impl ChatEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        ChatEncoder { json: Vec::with_capacity(512) }
    }
}

impl StreamEncoder for ChatEncoder {
    fn chunk(&mut self, chunk: &ChatChunk, raw: Option<&[u8]>, out: &mut BytesMut) {
        match raw {
            Some(raw) => {
                let raw = prism_types::json::escape_separators(raw);
                prism_sse::write_data(out, &raw);
            }
            None => {
                self.json.clear();
                prism_types::json::extend(&mut self.json, chunk);
                prism_sse::write_data(out, &self.json);
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        prism_sse::write_done(out);
    }

    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut) {
        self.json.clear();
        prism_types::json::extend(&mut self.json, &ErrorBody { error: error.clone() });
        prism_sse::write_data(out, &self.json);
    }
}

/// A whole `chat.completion`.
pub fn encode_completion(completion: &ChatCompletion) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    prism_types::json::extend(&mut out, completion);
    out
}

/// The OpenAI error body.
pub fn error_body(error: &ErrorObject) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    prism_types::json::extend(&mut out, &ErrorBody { error: error.clone() });
    out
}

/// Decodes and validates a Chat Completions body. On a parse failure, works out which field is
/// at fault, so the 400 names it.
///
/// # Errors
/// The 400 to send, naming the parameter.
pub fn decode_request(body: &[u8]) -> Result<Decoded, IngressError> {
    let request: ChatRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return Err(explain(body, &e)),
    };
    validate(&request)?;
    Ok(Decoded { request, native_only: None })
}

/// Finds the field behind a deserialisation error by checking each top-level field on its own.
/// Only runs on the error path.
fn explain(bytes: &[u8], err: &serde_json::Error) -> IngressError {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            return IngressError::body(format!("the body is not valid JSON: {e}"));
        }
    };
    let Value::Object(map) = value else {
        return IngressError::body("the body must be a JSON object");
    };
    for required in ["model", "messages"] {
        if !map.contains_key(required) {
            return IngressError::invalid(required, format!("missing required field `{required}`"));
        }
    }
    let mut probe = Map::new();
    probe.insert("model".to_owned(), Value::String("probe".to_owned()));
    probe.insert("messages".to_owned(), Value::Array(Vec::new()));
    for (field, value) in &map {
        if field == "messages" {
            let Value::Array(messages) = value else {
                return IngressError::invalid(
                    "messages",
                    "`messages` must be an array of messages",
                );
            };
            for (i, message) in messages.iter().enumerate() {
                if let Err(e) = Message::deserialize(message) {
                    return IngressError::invalid(
                        format!("messages[{i}]"),
                        format!("invalid message: {e}"),
                    );
                }
            }
            continue;
        }
        let mut one = probe.clone();
        one.insert(field.clone(), value.clone());
        if let Err(e) = ChatRequest::deserialize(Value::Object(one)) {
            return IngressError::invalid(field.clone(), format!("invalid `{field}`: {e}"));
        }
    }
    IngressError::body(format!("invalid request: {err}"))
}

/// Range checks OpenAI applies, so a bad value is a 400 here rather than an upstream error.
pub fn validate(req: &ChatRequest) -> Result<(), IngressError> {
    if req.model.is_empty() {
        return Err(IngressError::invalid("model", "`model` must not be empty"));
    }
    if req.messages.is_empty() {
        return Err(IngressError::invalid(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let range = |param: &str, value: Option<f64>, lo: f64, hi: f64| match value {
        Some(v) if !(lo..=hi).contains(&v) => Err(IngressError::invalid(
            param,
            format!("`{param}` must be between {lo} and {hi}, got {v}"),
        )),
        _ => Ok(()),
    };
    range("temperature", req.temperature, 0.0, 2.0)?;
    range("top_p", req.top_p, 0.0, 1.0)?;
    range("presence_penalty", req.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", req.frequency_penalty, -2.0, 2.0)?;
    if let Some(n) = req.n
        && !(1..=128).contains(&n)
    {
        return Err(IngressError::invalid("n", format!("`n` must be between 1 and 128, got {n}")));
    }
    for (param, value) in
        [("max_tokens", req.max_tokens), ("max_completion_tokens", req.max_completion_tokens)]
    {
        if value == Some(0) {
            return Err(IngressError::invalid(param, format!("`{param}` must be at least 1")));
        }
    }
    if let Some(top) = req.top_logprobs
        && top > 20
    {
        return Err(IngressError::invalid(
            "top_logprobs",
            format!("`top_logprobs` must be between 0 and 20, got {top}"),
        ));
    }
    if let Some(stop) = &req.stop
        && stop.to_vec().len() > 4
    {
        return Err(IngressError::invalid("stop", "`stop` takes at most 4 sequences"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn param(body: &str) -> (Option<String>, String) {
        let e = decode_request(body.as_bytes()).unwrap_err();
        (e.param, e.message)
    }

    #[test]
    fn parse_errors_name_the_field() {
        let ok = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert!(decode_request(ok.as_bytes()).is_ok());
        assert_eq!(param("{nope").0, None);
        assert!(param("{nope").1.starts_with("the body is not valid JSON"));
        assert_eq!(param("[1]").1, "the body must be a JSON object");
        assert_eq!(param(r#"{"model":"m"}"#).0.as_deref(), Some("messages"));
        assert_eq!(param(r#"{"messages":[]}"#).0.as_deref(), Some("model"));
        assert_eq!(param(r#"{"model":"m","messages":[]}"#).0.as_deref(), Some("messages"));
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"nobody","content":"x"}]}"#).0.as_deref(),
            Some("messages[0]")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":"two"}"#)
                .0
                .as_deref(),
            Some("n")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#).0.as_deref(),
            Some("n")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":129}"#)
                .0
                .as_deref(),
            Some("n")
        );
        let (p, m) =
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}"#);
        assert_eq!(p.as_deref(), Some("temperature"));
        assert_eq!(m, "`temperature` must be between 0 and 2, got 2.5");
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":-1}"#)
                .0
                .as_deref(),
            Some("top_p")
        );
        assert_eq!(
            param(r#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#).0.as_deref(),
            Some("model")
        );
    }
}

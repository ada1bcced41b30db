//! Chat Completions, the canonical protocol: chunks go out as they are (the upstream's own JSON
//! when it is a pass-through), `data: [DONE]` ends a clean stream, and a failure is one
//! `data: {"error":…}` event with no `[DONE]`.

use bytes::BytesMut;
use prism_types::{ChatChunk, ChatCompletion, ErrorBody, ErrorObject};

use crate::StreamEncoder;

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

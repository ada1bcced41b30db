//! Encoders for the same-protocol lanes (`prism_providers::native`): the upstream's own events
//! arrive in each chunk's `raw` bytes and are written as they are. Only a failure after the
//! first byte is Prism's to write, in the protocol's own shape: Anthropic's `event: error`, or
//! Responses' `error` then `response.failed`, numbered on from the upstream's last
//! `sequence_number`.

use bytes::BytesMut;
use memchr::memmem;
use prism_sse::EventRef;
use prism_types::{ChatChunk, ErrorObject};
use serde_json::json;

use crate::{Protocol, StreamEncoder};

/// The encoder of a same-protocol lane for `protocol` (Messages or Responses).
pub fn encoder(protocol: Protocol) -> Box<dyn StreamEncoder> {
    Box::new(NativeEncoder { protocol, next_sequence: 0, response_id: None })
}

#[derive(Debug)]
struct NativeEncoder {
    protocol: Protocol,
    /// Responses: one past the last `sequence_number` forwarded.
    next_sequence: u64,
    /// Responses: the upstream's response id, from its first event.
    response_id: Option<String>,
}

fn write(out: &mut BytesMut, name: &str, value: &serde_json::Value) {
    let data = prism_types::json::to_vec(value).unwrap_or_default();
    let text = String::from_utf8_lossy(&data);
    let event = EventRef { event: Some(name), data: &text, id: None, retry: None };
    let _ = prism_sse::write_event(out, &event);
}

/// The number after the last `"sequence_number":` in `raw`.
fn last_sequence(raw: &[u8]) -> Option<u64> {
    let key = b"\"sequence_number\":";
    let at = memmem::rfind(raw, key)? + key.len();
    let digits: Vec<u8> = raw[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The response id in the first event (`"response":{"id":"…"`).
fn response_id(raw: &[u8]) -> Option<String> {
    let key = b"\"response\":{\"id\":\"";
    let at = memmem::find(raw, key)? + key.len();
    let end = memchr::memchr(b'"', &raw[at..])?;
    Some(String::from_utf8_lossy(&raw[at..at + end]).into_owned())
}

impl StreamEncoder for NativeEncoder {
    fn chunk(&mut self, _chunk: &ChatChunk, raw: Option<&[u8]>, out: &mut BytesMut) {
        let Some(raw) = raw else { return };
        if self.protocol == Protocol::Responses && !raw.is_empty() {
            if let Some(seq) = last_sequence(raw) {
                self.next_sequence = seq + 1;
            }
            if self.response_id.is_none() {
                self.response_id = response_id(raw);
            }
        }
        out.extend_from_slice(&prism_types::json::escape_separators(raw));
    }

    fn finish(&mut self, _out: &mut BytesMut) {
        // The upstream's own terminal events already went out.
    }

    fn fail(&mut self, error: &ErrorObject, out: &mut BytesMut) {
        match self.protocol {
            Protocol::Responses => {
                let code = error.code.clone().unwrap_or_else(|| "server_error".to_owned());
                let seq = self.next_sequence;
                write(
                    out,
                    "error",
                    &json!({
                        "type": "error",
                        "sequence_number": seq,
                        "code": code,
                        "message": error.message,
                        "param": error.param,
                        "error": {"type": error.kind, "code": code, "message": error.message, "param": error.param},
                    }),
                );
                write(
                    out,
                    "response.failed",
                    &json!({
                        "type": "response.failed",
                        "sequence_number": seq + 1,
                        "response": {
                            "id": self.response_id,
                            "object": "response",
                            "status": "failed",
                            "error": {"code": code, "message": error.message},
                        },
                    }),
                );
                self.next_sequence = seq + 2;
            }
            _ => {
                let (_, body) = crate::error_response(self.protocol, 500, error);
                let value: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                write(out, "error", &value);
            }
        }
    }

    fn keepalive(&mut self, out: &mut BytesMut) {
        match self.protocol {
            Protocol::Messages => write(out, "ping", &json!({"type": "ping"})),
            _ => prism_sse::write_comment(out, "keep-alive"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn responses_failure_numbers_on_from_the_upstream() {
        let mut enc = encoder(Protocol::Responses);
        let mut out = BytesMut::new();
        let chunk = ChatChunk::new("c", 1, "m");
        let first = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"object\":\"response\"}}\n\n";
        enc.chunk(&chunk, Some(first), &mut out);
        enc.chunk(&chunk, Some(b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":7,\"delta\":\"x\"}\n\n"), &mut out);
        enc.fail(&ErrorObject::new("server_error", "upstream cut"), &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("event: response.created\n"));
        let error = text.split("\n\n").find(|e| e.starts_with("event: error\n")).unwrap();
        let data: serde_json::Value =
            serde_json::from_str(error.lines().nth(1).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["type"], "error", "{text}");
        assert_eq!(data["sequence_number"], 8, "{text}");
        assert!(text.contains("\"sequence_number\":9"), "{text}");
        assert!(text.contains("\"id\":\"resp_up\""), "{text}");
        assert!(text.trim_end().ends_with('}'));
    }

    #[test]
    fn raw_events_pass_verbatim_and_messages_pings_are_events() {
        let mut enc = encoder(Protocol::Messages);
        let mut out = BytesMut::new();
        let raw = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        enc.chunk(&ChatChunk::new("c", 1, "m"), Some(raw), &mut out);
        enc.chunk(&ChatChunk::new("c", 1, "m"), Some(b""), &mut out);
        assert_eq!(&out[..], raw);
        out.clear();
        enc.keepalive(&mut out);
        assert_eq!(&out[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

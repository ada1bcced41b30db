//! AWS event-stream messages for the Bedrock wires, through the workspace encoder in
//! `prism_providers::bedrock::eventstream` (the same framing the gateway decodes).

use bytes::Bytes;
use prism_providers::bedrock::eventstream::{Header, encode_message};

/// Encodes one message with string headers. The encoder only fails for header values over
/// 65,535 bytes or messages over 4 GiB; such a message becomes a protocol `error` message, so a
/// decoder reports it instead of silently missing an event.
fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers: Vec<Header> =
        headers.iter().map(|(name, value)| Header::string(*name, *value)).collect();
    match encode_message(&headers, payload) {
        Ok(message) => Bytes::from(message),
        Err(_) => {
            let error = [
                Header::string(":message-type", "error"),
                Header::string(":error-code", "SimulatorEncodingError"),
                Header::string(":error-message", "event too large to encode"),
            ];
            encode_message(&error, b"").map(Bytes::from).unwrap_or_default()
        }
    }
}

/// An `event` message with `:event-type` and a JSON payload.
pub(crate) fn event(event_type: &str, json: &str) -> Bytes {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.as_bytes(),
    )
}

/// An `exception` message with `:exception-type` and a JSON payload.
pub(crate) fn exception(exception_type: &str, json: &str) -> Bytes {
    encode(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json.as_bytes(),
    )
}

/// The 12-byte prelude of a message announcing `total_length` bytes in all and `headers_length`
/// bytes of headers, with a valid prelude CRC (for frames whose length is the fault).
pub(crate) fn prelude(total_length: u32, headers_length: u32) -> Bytes {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&total_length.to_be_bytes());
    out.extend_from_slice(&headers_length.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// The length of the first complete message in `buf`, if its prelude is readable (for cutting
/// replayed bodies into events).
pub(crate) fn message_len(buf: &[u8]) -> Option<usize> {
    let prelude: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let total = usize::try_from(u32::from_be_bytes(prelude)).ok()?;
    (total >= 16 && total <= buf.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use prism_providers::bedrock::eventstream::Decoder;

    use super::*;

    #[test]
    fn layout_matches_the_spec() {
        let msg = event("messageStart", r#"{"role":"assistant"}"#);
        let total = u32::from_be_bytes(msg[..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(msg[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, msg.len());
        assert_eq!(headers_len, 82, "the same header block as real Bedrock messageStart frames");
        assert_eq!(&msg[8..12], &crc32fast::hash(&msg[..8]).to_be_bytes());
        assert_eq!(&msg[total - 4..], &crc32fast::hash(&msg[..total - 4]).to_be_bytes());
        assert_eq!(&msg[12..13], &[11]);
        assert_eq!(&msg[13..24], b":event-type");
        assert_eq!(&msg[12 + headers_len..total - 4], br#"{"role":"assistant"}"#);
        assert_eq!(message_len(&msg), Some(total));
        assert_eq!(message_len(&msg[..total - 1]), None);
    }

    #[test]
    fn the_workspace_decoder_reads_events_and_exceptions() {
        let mut bytes = event("contentBlockDelta", r#"{"x":1}"#).to_vec();
        bytes.extend_from_slice(&exception("throttlingException", r#"{"message":"m"}"#));
        let mut out = Vec::new();
        Decoder::new().feed(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].str_header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(out[1].str_header(":exception-type"), Some("throttlingException"));
        assert_eq!(out[1].payload, r#"{"message":"m"}"#);
    }
}

//! AWS event-stream framing (`application/vnd.amazon.eventstream`): a sans-IO, bounded push
//! decoder and the matching encoder, used by the Bedrock translator, the upstream simulator,
//! fixture generation and fuzzing.
//!
//! A stream is a sequence of self-delimiting messages, all integers big-endian:
//!
//! ```text
//! [total_length u32][headers_length u32][prelude_crc u32][headers][payload][message_crc u32]
//! ```
//!
//! `prelude_crc` covers bytes `[0, 8)`, `message_crc` covers everything before it (prelude CRC
//! included). Both are the ordinary CRC-32 of zlib (IEEE, reflected 0xEDB88320), not CRC-32C. A
//! header is `[name_len u8][name][type u8][value]` with the ten value types of [`HeaderValue`].
//!
//! Why not `aws-smithy-eventstream`: its `MessageFrameDecoder` is a pull decoder over a `Buf` the
//! caller must own and grow (the SDK uses `bytes_utils::SegmentedBuf`); it consumes the prelude
//! from that buffer but only verifies the prelude CRC once the whole message has arrived, and it
//! has no message size limit, so a corrupted `total_length` makes the caller buffer up to 4 GiB
//! before anything fails. Its `Message`/`HeaderValue` types come from `aws-smithy-types` and its
//! error kinds are opaque. What we need is the opposite shape: feed pieces of any size, get whole
//! messages, never hold more than one partial message, reject a bad prelude after 12 bytes and an
//! oversized one before allocating, and hand frames over borrowed ([`Decoder::feed_with`]) so
//! the hot path allocates nothing per frame. That is a few hundred lines, so we own them.

use bytes::{BufMut, Bytes};

/// Bytes before the headers: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// The smallest valid message: a prelude and a message CRC, no headers, no payload.
pub const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// The default bound on one message (AWS SDKs use the same order of magnitude).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

const CRC_LEN: usize = 4;
/// A buffer that grew beyond this for one large message is released afterwards.
const KEEP_CAPACITY: usize = 64 * 1024;

const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_INT16: u8 = 3;
const TYPE_INT32: u8 = 4;
const TYPE_INT64: u8 = 5;
const TYPE_BYTE_ARRAY: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// A typed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6, at most 65535 bytes.
    ByteArray(Bytes),
    /// Type 7, UTF-8, at most 65535 bytes. The only type Bedrock sends.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The wire type code.
    pub fn type_code(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => TYPE_TRUE,
            HeaderValue::Bool(false) => TYPE_FALSE,
            HeaderValue::Byte(_) => TYPE_BYTE,
            HeaderValue::Int16(_) => TYPE_INT16,
            HeaderValue::Int32(_) => TYPE_INT32,
            HeaderValue::Int64(_) => TYPE_INT64,
            HeaderValue::ByteArray(_) => TYPE_BYTE_ARRAY,
            HeaderValue::String(_) => TYPE_STRING,
            HeaderValue::Timestamp(_) => TYPE_TIMESTAMP,
            HeaderValue::Uuid(_) => TYPE_UUID,
        }
    }

    /// The value when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One header: a name of 1 to 255 bytes and a typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name, e.g. `:event-type`.
    pub name: String,
    /// The value.
    pub value: HeaderValue,
}

impl Header {
    /// A string header, the kind Bedrock uses for everything.
    pub fn string(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header { name: name.into(), value: HeaderValue::String(value.into()) }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// The payload bytes.
    pub payload: Bytes,
}

impl Message {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|h| h.name == name).map(|h| &h.value)
    }

    /// The first header called `name` when it is a string.
    pub fn str_header(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }
}

/// A header value borrowed from the frame it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValueRef<'a> {
    /// Types 0 and 1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6.
    ByteArray(&'a [u8]),
    /// Type 7.
    String(&'a str),
    /// Type 8.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

impl HeaderValueRef<'_> {
    /// The owned value.
    pub fn into_owned(self) -> HeaderValue {
        match self {
            HeaderValueRef::Bool(v) => HeaderValue::Bool(v),
            HeaderValueRef::Byte(v) => HeaderValue::Byte(v),
            HeaderValueRef::Int16(v) => HeaderValue::Int16(v),
            HeaderValueRef::Int32(v) => HeaderValue::Int32(v),
            HeaderValueRef::Int64(v) => HeaderValue::Int64(v),
            HeaderValueRef::ByteArray(v) => HeaderValue::ByteArray(Bytes::copy_from_slice(v)),
            HeaderValueRef::String(v) => HeaderValue::String(v.to_owned()),
            HeaderValueRef::Timestamp(v) => HeaderValue::Timestamp(v),
            HeaderValueRef::Uuid(v) => HeaderValue::Uuid(v),
        }
    }
}

/// One decoded message, borrowed from the bytes it was decoded from (no allocation). Its
/// checksums and headers were validated when it was decoded.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// The headers block, known to be well formed.
    headers: &'a [u8],
    payload: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// The payload bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The headers in wire order.
    pub fn headers(&self) -> Headers<'a> {
        Headers { cur: Cursor { bytes: self.headers, pos: 0, header_start: 0 } }
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<HeaderValueRef<'a>> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The first header called `name` when it is a string.
    pub fn str_header(&self, name: &str) -> Option<&'a str> {
        match self.header(name)? {
            HeaderValueRef::String(s) => Some(s),
            _ => None,
        }
    }

    /// The owned message.
    pub fn to_message(&self) -> Message {
        Message {
            headers: self
                .headers()
                .map(|(name, value)| Header { name: name.to_owned(), value: value.into_owned() })
                .collect(),
            payload: Bytes::copy_from_slice(self.payload),
        }
    }
}

/// Iterator over the headers of a [`FrameRef`]: `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    cur: Cursor<'a>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, HeaderValueRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.cur.pos >= self.cur.bytes.len() {
            return None;
        }
        // The block was validated when the frame was decoded, so this never fails.
        parse_header(&mut self.cur).ok()
    }
}

/// A framing failure. Decoding errors are fatal: the format has no resynchronisation marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The CRC of the first 8 bytes does not match the prelude CRC.
    #[error("prelude checksum mismatch (computed {computed:#010x}, sent {sent:#010x})")]
    PreludeChecksum {
        /// CRC of the received bytes.
        computed: u32,
        /// CRC the message carried.
        sent: u32,
    },
    /// The CRC of the message does not match its trailing CRC.
    #[error("message checksum mismatch (computed {computed:#010x}, sent {sent:#010x})")]
    MessageChecksum {
        /// CRC of the received bytes.
        computed: u32,
        /// CRC the message carried.
        sent: u32,
    },
    /// `total_length` is below the 16-byte minimum.
    #[error("message length {total_length} is below the 16-byte minimum")]
    MessageTooShort {
        /// The length the prelude claimed.
        total_length: u32,
    },
    /// `total_length` is above the configured bound (or, when encoding, above `u32::MAX`).
    #[error("message length {total_length} exceeds the limit of {limit} bytes")]
    MessageTooLong {
        /// The length the prelude claimed, or the length of the message being encoded.
        total_length: u64,
        /// The bound.
        limit: u64,
    },
    /// `headers_length` does not fit in the message.
    #[error("headers length {headers_length} does not fit in a message of {total_length} bytes")]
    HeadersLength {
        /// The headers length the prelude claimed.
        headers_length: u32,
        /// The message length the prelude claimed.
        total_length: u32,
    },
    /// A header inside a message with valid checksums is malformed.
    #[error("malformed header at byte {offset} of the headers: {reason}")]
    InvalidHeader {
        /// Offset of the header within the headers block.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The stream ended inside a message.
    #[error("stream ended inside a message ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the incomplete message.
        buffered: usize,
    },
    /// Encoding: a header name is empty or longer than 255 bytes.
    #[error("header name of {len} bytes is not 1 to 255 bytes long")]
    HeaderNameLength {
        /// The name's length.
        len: usize,
    },
    /// Encoding: a string or byte-array header value is longer than 65535 bytes.
    #[error("header value of {len} bytes exceeds 65535 bytes")]
    HeaderValueTooLong {
        /// The value's length.
        len: usize,
    },
    /// The decoder was fed again after it reported an error.
    #[error("decoder used after a framing error")]
    Poisoned,
}

/// Incremental decoder: feed it the body in pieces of any size, get whole messages.
///
/// Memory is bounded by one message: complete messages are decoded straight from the piece
/// being fed, and only the incomplete tail (at most `max_message_len` bytes) is kept. A prelude
/// is checked as soon as its 12 bytes are in, so a corrupted or absurd length fails before any
/// of the message is buffered.
#[derive(Debug)]
pub struct Decoder {
    /// The bytes of the one message that is not complete yet.
    partial: Vec<u8>,
    /// The partial message's total length, once its prelude has been checked (0 before).
    partial_len: usize,
    /// The largest message accepted.
    max_message_len: usize,
    /// Set after an error; every later call fails.
    poisoned: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder accepting messages up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        Decoder::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A decoder accepting messages up to `max` bytes (never less than the 16-byte minimum).
    pub fn with_max_message_len(max: usize) -> Self {
        Decoder {
            partial: Vec::new(),
            partial_len: 0,
            max_message_len: max.max(MIN_MESSAGE_LEN),
            poisoned: false,
        }
    }

    /// Bytes of an incomplete message held right now.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Consumes `input`, appending every message it completes to `out`.
    ///
    /// # Errors
    /// Any [`FrameError`] but `Truncated`; after one, the decoder is poisoned.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        self.feed_with(input, |frame| {
            out.push(frame.to_message());
            Ok::<(), FrameError>(())
        })
    }

    /// Consumes `input`, calling `on_frame` with every message it completes, in order, borrowed
    /// from the input or the decoder's buffer: the allocation-free form of [`Decoder::feed`].
    ///
    /// # Errors
    /// A [`FrameError`] (converted into `E`), or the first error `on_frame` returns; either way
    /// the rest of `input` is not consumed and the decoder is poisoned.
    pub fn feed_with<E: From<FrameError>>(
        &mut self,
        input: &[u8],
        mut on_frame: impl FnMut(FrameRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.poisoned {
            return Err(FrameError::Poisoned.into());
        }
        let res = self.feed_inner(input, &mut on_frame);
        if res.is_err() {
            self.poisoned = true;
            self.partial = Vec::new();
            self.partial_len = 0;
        }
        res
    }

    /// Checks that the stream ended on a message boundary.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when part of a message is buffered; [`FrameError::Poisoned`]
    /// after an earlier error.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.poisoned {
            return Err(FrameError::Poisoned);
        }
        if self.partial.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated { buffered: self.partial.len() })
        }
    }

    fn feed_inner<E: From<FrameError>>(
        &mut self,
        mut input: &[u8],
        on_frame: &mut impl FnMut(FrameRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.partial.is_empty() {
            if self.partial.len() < PRELUDE_LEN {
                let take = (PRELUDE_LEN - self.partial.len()).min(input.len());
                self.partial.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.partial.len() < PRELUDE_LEN {
                    return Ok(());
                }
                self.partial_len = check_prelude(&self.partial, self.max_message_len)?;
            }
            let take = (self.partial_len - self.partial.len()).min(input.len());
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.partial.len() < self.partial_len {
                return Ok(());
            }
            on_frame(decode_frame(&self.partial)?)?;
            self.partial.clear();
            self.partial_len = 0;
            if self.partial.capacity() > KEEP_CAPACITY {
                self.partial = Vec::new();
            }
        }
        while !input.is_empty() {
            if input.len() < PRELUDE_LEN {
                self.partial.extend_from_slice(input);
                return Ok(());
            }
            let total = check_prelude(input, self.max_message_len)?;
            if input.len() < total {
                self.partial.extend_from_slice(input);
                self.partial_len = total;
                return Ok(());
            }
            on_frame(decode_frame(&input[..total])?)?;
            input = &input[total..];
        }
        Ok(())
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

/// Validates the prelude at the start of `bytes` (at least 12 long) and returns the total length.
fn check_prelude(bytes: &[u8], max: usize) -> Result<usize, FrameError> {
    let total_length = be_u32(bytes, 0);
    let headers_length = be_u32(bytes, 4);
    let sent = be_u32(bytes, 8);
    let computed = crc32fast::hash(&bytes[..8]);
    if computed != sent {
        return Err(FrameError::PreludeChecksum { computed, sent });
    }
    let total = total_length as usize;
    if total < MIN_MESSAGE_LEN {
        return Err(FrameError::MessageTooShort { total_length });
    }
    if total > max {
        return Err(FrameError::MessageTooLong {
            total_length: u64::from(total_length),
            limit: max as u64,
        });
    }
    if headers_length as usize > total - MIN_MESSAGE_LEN {
        return Err(FrameError::HeadersLength { headers_length, total_length });
    }
    Ok(total)
}

/// Checks one whole message whose prelude was checked, and borrows its parts.
fn decode_frame(frame: &[u8]) -> Result<FrameRef<'_>, FrameError> {
    let crc_at = frame.len() - CRC_LEN;
    let sent = be_u32(frame, crc_at);
    let computed = crc32fast::hash(&frame[..crc_at]);
    if computed != sent {
        return Err(FrameError::MessageChecksum { computed, sent });
    }
    let headers_end = PRELUDE_LEN + be_u32(frame, 4) as usize;
    let headers = &frame[PRELUDE_LEN..headers_end];
    let mut cur = Cursor { bytes: headers, pos: 0, header_start: 0 };
    while cur.pos < headers.len() {
        parse_header(&mut cur)?;
    }
    Ok(FrameRef { headers, payload: &frame[headers_end..crc_at] })
}

/// A cursor over the headers block that turns running out of bytes into an error.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where the header being read starts, for error reports.
    header_start: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.bytes.len() - self.pos < n {
            return Err(self.invalid("header runs past the end of the headers block"));
        }
        let taken = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn invalid(&self, reason: &'static str) -> FrameError {
        FrameError::InvalidHeader { offset: self.header_start, reason }
    }
}

/// Reads the header at the cursor.
fn parse_header<'a>(cur: &mut Cursor<'a>) -> Result<(&'a str, HeaderValueRef<'a>), FrameError> {
    cur.header_start = cur.pos;
    let [name_len] = cur.array::<1>()?;
    if name_len == 0 {
        return Err(cur.invalid("empty header name"));
    }
    let name = std::str::from_utf8(cur.take(usize::from(name_len))?)
        .map_err(|_| cur.invalid("header name is not UTF-8"))?;
    let [kind] = cur.array::<1>()?;
    let value = match kind {
        TYPE_TRUE => HeaderValueRef::Bool(true),
        TYPE_FALSE => HeaderValueRef::Bool(false),
        TYPE_BYTE => HeaderValueRef::Byte(i8::from_be_bytes(cur.array()?)),
        TYPE_INT16 => HeaderValueRef::Int16(i16::from_be_bytes(cur.array()?)),
        TYPE_INT32 => HeaderValueRef::Int32(i32::from_be_bytes(cur.array()?)),
        TYPE_INT64 => HeaderValueRef::Int64(i64::from_be_bytes(cur.array()?)),
        TYPE_BYTE_ARRAY => {
            let len = usize::from(u16::from_be_bytes(cur.array()?));
            HeaderValueRef::ByteArray(cur.take(len)?)
        }
        TYPE_STRING => {
            let len = usize::from(u16::from_be_bytes(cur.array()?));
            let raw = cur.take(len)?;
            HeaderValueRef::String(
                std::str::from_utf8(raw).map_err(|_| cur.invalid("string value is not UTF-8"))?,
            )
        }
        TYPE_TIMESTAMP => HeaderValueRef::Timestamp(i64::from_be_bytes(cur.array()?)),
        TYPE_UUID => HeaderValueRef::Uuid(cur.array()?),
        _ => return Err(cur.invalid("unknown value type")),
    };
    Ok((name, value))
}

/// Encodes one message.
///
/// # Errors
/// A header name outside 1..=255 bytes, a string or byte-array value over 65535 bytes, or a
/// message over `u32::MAX` bytes.
pub fn encode_message(headers: &[Header], payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::with_capacity(MIN_MESSAGE_LEN + 64 * headers.len() + payload.len());
    encode_message_into(headers, payload, &mut buf)?;
    Ok(buf)
}

/// Encodes one message into `buf`; nothing is written when encoding fails.
///
/// # Errors
/// As [`encode_message`].
pub fn encode_message_into<B: BufMut>(
    headers: &[Header],
    payload: &[u8],
    buf: &mut B,
) -> Result<(), FrameError> {
    let mut block = Vec::new();
    for header in headers {
        encode_header(header, &mut block)?;
    }
    let total = (MIN_MESSAGE_LEN + block.len()) as u64 + payload.len() as u64;
    let too_long =
        || FrameError::MessageTooLong { total_length: total, limit: u64::from(u32::MAX) };
    let total_length = u32::try_from(total).map_err(|_| too_long())?;
    let headers_length = u32::try_from(block.len()).map_err(|_| too_long())?;

    let mut prelude = [0u8; PRELUDE_LEN];
    prelude[..4].copy_from_slice(&total_length.to_be_bytes());
    prelude[4..8].copy_from_slice(&headers_length.to_be_bytes());
    let prelude_crc = crc32fast::hash(&prelude[..8]);
    prelude[8..].copy_from_slice(&prelude_crc.to_be_bytes());

    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&prelude);
    hasher.update(&block);
    hasher.update(payload);
    let message_crc = hasher.finalize();

    buf.put_slice(&prelude);
    buf.put_slice(&block);
    buf.put_slice(payload);
    buf.put_u32(message_crc);
    Ok(())
}

fn encode_header(header: &Header, block: &mut Vec<u8>) -> Result<(), FrameError> {
    let name = header.name.as_bytes();
    let name_len = u8::try_from(name.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or(FrameError::HeaderNameLength { len: name.len() })?;
    block.push(name_len);
    block.extend_from_slice(name);
    block.push(header.value.type_code());
    match &header.value {
        HeaderValue::Bool(_) => {}
        HeaderValue::Byte(v) => block.extend_from_slice(&v.to_be_bytes()),
        HeaderValue::Int16(v) => block.extend_from_slice(&v.to_be_bytes()),
        HeaderValue::Int32(v) => block.extend_from_slice(&v.to_be_bytes()),
        HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => {
            block.extend_from_slice(&v.to_be_bytes())
        }
        HeaderValue::ByteArray(v) => put_sized(block, v)?,
        HeaderValue::String(v) => put_sized(block, v.as_bytes())?,
        HeaderValue::Uuid(v) => block.extend_from_slice(v),
    }
    Ok(())
}

fn put_sized(block: &mut Vec<u8>, value: &[u8]) -> Result<(), FrameError> {
    let len = u16::try_from(value.len())
        .map_err(|_| FrameError::HeaderValueTooLong { len: value.len() })?;
    block.extend_from_slice(&len.to_be_bytes());
    block.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use proptest::prelude::*;

    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<Message>, FrameError> {
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        for piece in pieces {
            dec.feed(piece, &mut out)?;
        }
        dec.finish()?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        let headers = [
            Header::string(":event-type", "contentBlockDelta"),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "event"),
        ];
        encode_message(&headers, br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#).unwrap()
    }

    #[test]
    fn crc_is_plain_crc32_not_castagnoli() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn empty_message_is_sixteen_bytes() {
        let bytes = encode_message(&[], b"").unwrap();
        assert_eq!(bytes.len(), MIN_MESSAGE_LEN);
        assert_eq!(decode_all(&[&bytes]).unwrap(), vec![Message::default()]);
    }

    #[test]
    fn round_trip_every_header_type() {
        let headers = vec![
            Header { name: "t".into(), value: HeaderValue::Bool(true) },
            Header { name: "f".into(), value: HeaderValue::Bool(false) },
            Header { name: "b".into(), value: HeaderValue::Byte(-3) },
            Header { name: "s".into(), value: HeaderValue::Int16(-300) },
            Header { name: "i".into(), value: HeaderValue::Int32(70_000) },
            Header { name: "l".into(), value: HeaderValue::Int64(-5_000_000_000) },
            Header {
                name: "a".into(),
                value: HeaderValue::ByteArray(Bytes::from_static(b"\x00\xff")),
            },
            Header::string("str", "héllo"),
            Header { name: "ts".into(), value: HeaderValue::Timestamp(1_735_689_600_000) },
            Header { name: "u".into(), value: HeaderValue::Uuid([7; 16]) },
        ];
        let bytes = encode_message(&headers, b"payload").unwrap();
        let msgs = decode_all(&[&bytes]).unwrap();
        assert_eq!(msgs, vec![Message { headers, payload: Bytes::from_static(b"payload") }]);
    }

    #[test]
    fn every_corrupted_byte_is_detected() {
        let good = sample();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            let err = decode_all(&[&bad]).unwrap_err();
            let expected_kind = if at < PRELUDE_LEN {
                matches!(err, FrameError::PreludeChecksum { .. })
            } else {
                matches!(err, FrameError::MessageChecksum { .. })
            };
            assert!(expected_kind, "flip at {at}: {err:?}");
        }
    }

    #[test]
    fn truncated_message_is_reported_at_finish() {
        let good = sample();
        for cut in 1..good.len() {
            let mut dec = Decoder::new();
            let mut out = Vec::new();
            dec.feed(&good[..cut], &mut out).unwrap();
            assert!(out.is_empty());
            assert_eq!(dec.finish(), Err(FrameError::Truncated { buffered: cut }));
        }
    }

    #[test]
    fn absurd_length_is_rejected_after_the_prelude_without_buffering() {
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&u32::MAX.to_be_bytes());
        prelude.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        let mut dec = Decoder::with_max_message_len(1024);
        let mut out = Vec::new();
        dec.feed(&prelude[..11], &mut out).unwrap();
        let err = dec.feed(&prelude[11..], &mut out).unwrap_err();
        assert_eq!(
            err,
            FrameError::MessageTooLong { total_length: u64::from(u32::MAX), limit: 1024 }
        );
        assert_eq!(dec.buffered(), 0);
        assert_eq!(dec.feed(b"more", &mut out), Err(FrameError::Poisoned));
    }

    #[test]
    fn short_and_inconsistent_lengths_are_rejected() {
        let prelude = |total: u32, headers: u32| {
            let mut p = Vec::new();
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&p);
            p.extend_from_slice(&crc.to_be_bytes());
            p.extend_from_slice(&[0; 16]);
            p
        };
        assert_eq!(
            decode_all(&[&prelude(15, 0)]),
            Err(FrameError::MessageTooShort { total_length: 15 })
        );
        assert_eq!(
            decode_all(&[&prelude(20, 5)]),
            Err(FrameError::HeadersLength { headers_length: 5, total_length: 20 })
        );
    }

    /// Re-signs a message after its headers block was edited, so only the header parser can object.
    fn with_headers_block(block: &[u8]) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&((MIN_MESSAGE_LEN + block.len()) as u32).to_be_bytes());
        msg.extend_from_slice(&(block.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&msg);
        msg.extend_from_slice(&crc.to_be_bytes());
        msg.extend_from_slice(block);
        let crc = crc32fast::hash(&msg);
        msg.extend_from_slice(&crc.to_be_bytes());
        msg
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x00", "empty header name"),
            (b"\x05ab", "header runs past the end of the headers block"),
            (b"\x01a\x0a", "unknown value type"),
            (b"\x01a\x07\x00\x05ab", "header runs past the end of the headers block"),
            (b"\x01a\x07\x00\x01\xff", "string value is not UTF-8"),
            (b"\x01\xff\x00", "header name is not UTF-8"),
            (b"\x01a\x04\x00\x00", "header runs past the end of the headers block"),
        ];
        for (block, reason) in cases {
            let err = decode_all(&[&with_headers_block(block)]).unwrap_err();
            assert_eq!(err, FrameError::InvalidHeader { offset: 0, reason }, "{block:?}");
        }
        // The offset names the header at fault, not the first one.
        let err = decode_all(&[&with_headers_block(b"\x01a\x00\x01b\x0b")]).unwrap_err();
        assert_eq!(err, FrameError::InvalidHeader { offset: 3, reason: "unknown value type" });
    }

    #[test]
    fn encoder_rejects_what_the_format_cannot_hold() {
        let long_name = Header::string("x".repeat(256), "v");
        assert_eq!(
            encode_message(&[long_name], b""),
            Err(FrameError::HeaderNameLength { len: 256 })
        );
        assert_eq!(
            encode_message(&[Header::string("", "v")], b""),
            Err(FrameError::HeaderNameLength { len: 0 })
        );
        let long_value = Header::string("n", "v".repeat(65_536));
        assert_eq!(
            encode_message(&[long_value], b""),
            Err(FrameError::HeaderValueTooLong { len: 65_536 })
        );
    }

    #[test]
    fn borrowed_frames_match_owned_messages_and_a_callback_error_poisons() {
        let bytes = [sample(), encode_message(&[], b"x").unwrap(), sample()].concat();
        let mut dec = Decoder::new();
        let mut seen = Vec::new();
        dec.feed_with(&bytes[..50], |f| {
            seen.push(f.to_message());
            Ok::<(), FrameError>(())
        })
        .unwrap();
        dec.feed_with(&bytes[50..], |f| {
            seen.push(f.to_message());
            Ok::<(), FrameError>(())
        })
        .unwrap();
        assert_eq!(seen, decode_all(&[&bytes]).unwrap());
        assert_eq!(seen.len(), 3);

        #[derive(Debug, PartialEq)]
        enum Stop {
            Frame(FrameError),
            Callback,
        }
        impl From<FrameError> for Stop {
            fn from(e: FrameError) -> Self {
                Stop::Frame(e)
            }
        }
        let mut dec = Decoder::new();
        let mut calls = 0;
        let err = dec.feed_with(&bytes, |f| {
            calls += 1;
            assert_eq!(f.str_header(":message-type"), Some("event"));
            Err(Stop::Callback)
        });
        assert_eq!((err, calls), (Err(Stop::Callback), 1));
        assert_eq!(dec.feed_with(&bytes, |_| Ok(())), Err(Stop::Frame(FrameError::Poisoned)));
    }

    #[test]
    fn big_message_buffer_is_released() {
        let big = encode_message(&[], &vec![b'x'; 200_000]).unwrap();
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        for piece in big.chunks(1000) {
            dec.feed(piece, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(dec.partial.capacity(), 0);
    }

    fn vectors_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference-streams/eventstream-testvectors");
        dir.is_dir().then_some(dir)
    }

    fn header_value_from_json(kind: u64, value: &serde_json::Value) -> HeaderValue {
        let int = || value.as_i64().unwrap();
        let b64 = || B64.decode(value.as_str().unwrap()).unwrap();
        match kind {
            0 | 1 => HeaderValue::Bool(value.as_bool().unwrap()),
            2 => HeaderValue::Byte(int() as i8),
            3 => HeaderValue::Int16(int() as i16),
            4 => HeaderValue::Int32(int() as i32),
            5 => HeaderValue::Int64(int()),
            6 => HeaderValue::ByteArray(Bytes::from(b64())),
            7 => HeaderValue::String(String::from_utf8(b64()).unwrap()),
            8 => HeaderValue::Timestamp(int()),
            9 => HeaderValue::Uuid(b64().try_into().unwrap()),
            other => panic!("unknown type {other}"),
        }
    }

    /// The AWS SDK conformance vectors, when the shared reference directory is present.
    #[test]
    fn aws_test_vectors() {
        let Some(dir) = vectors_dir() else { return };
        let mut positives = 0;
        let mut negatives = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(case) = name.strip_prefix("encoded_").and_then(|n| n.strip_suffix(".bin"))
            else {
                continue;
            };
            let bytes = std::fs::read(&path).unwrap();
            if let Some(case) = case.strip_prefix("positive_") {
                let json: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(dir.join(format!("decoded_positive_{case}.json"))).unwrap(),
                )
                .unwrap();
                let expected = Message {
                    headers: json["headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| Header {
                            name: h["name"].as_str().unwrap().to_owned(),
                            value: header_value_from_json(h["type"].as_u64().unwrap(), &h["value"]),
                        })
                        .collect(),
                    payload: Bytes::from(B64.decode(json["payload"].as_str().unwrap()).unwrap()),
                };
                assert_eq!(json["total_length"].as_u64().unwrap() as usize, bytes.len(), "{case}");
                assert_eq!(decode_all(&[&bytes]).unwrap(), vec![expected.clone()], "{case}");
                let singles: Vec<&[u8]> = bytes.chunks(1).collect();
                assert_eq!(
                    decode_all(&singles).unwrap(),
                    vec![expected.clone()],
                    "{case} byte by byte"
                );
                // Our encoder reproduces the vector byte for byte.
                assert_eq!(
                    encode_message(&expected.headers, &expected.payload).unwrap(),
                    bytes,
                    "{case}"
                );
                positives += 1;
            } else if let Some(case) = case.strip_prefix("negative_") {
                let text =
                    std::fs::read_to_string(dir.join(format!("decoded_negative_{case}.txt")))
                        .unwrap();
                let err = decode_all(&[&bytes]).unwrap_err();
                match text.trim() {
                    "Prelude checksum mismatch" => {
                        assert!(
                            matches!(err, FrameError::PreludeChecksum { .. }),
                            "{case}: {err:?}"
                        )
                    }
                    "Message checksum mismatch" => {
                        assert!(
                            matches!(err, FrameError::MessageChecksum { .. }),
                            "{case}: {err:?}"
                        )
                    }
                    other => panic!("{case}: unexpected expectation {other:?}"),
                }
                negatives += 1;
            }
        }
        assert_eq!((positives, negatives), (5, 4));
    }

    fn header_strategy() -> impl Strategy<Value = Header> {
        let value = prop_oneof![
            any::<bool>().prop_map(HeaderValue::Bool),
            any::<i8>().prop_map(HeaderValue::Byte),
            any::<i16>().prop_map(HeaderValue::Int16),
            any::<i32>().prop_map(HeaderValue::Int32),
            any::<i64>().prop_map(HeaderValue::Int64),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|v| HeaderValue::ByteArray(Bytes::from(v))),
            ".{0,20}".prop_map(HeaderValue::String),
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
        ];
        ("[:a-z-]{1,20}", value).prop_map(|(name, value)| Header { name, value })
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        (
            proptest::collection::vec(header_strategy(), 0..5),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(headers, payload)| Message { headers, payload: Bytes::from(payload) })
    }

    proptest! {
        /// Any sequence of messages, encoded and cut into any pieces, decodes to itself.
        #[test]
        fn any_split_of_any_messages_round_trips(
            msgs in proptest::collection::vec(message_strategy(), 0..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut stream = Vec::new();
            for m in &msgs {
                encode_message_into(&m.headers, &m.payload, &mut stream).unwrap();
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for p in points {
                pieces.push(&stream[start..p]);
                start = p;
            }
            pieces.push(&stream[start..]);
            prop_assert_eq!(decode_all(&pieces).unwrap(), msgs);
        }

        /// Arbitrary bytes never panic, and the decoder never holds more than one bounded message.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), split in any::<prop::sample::Index>()) {
            let mut dec = Decoder::with_max_message_len(256);
            let mut out = Vec::new();
            let (a, b) = bytes.split_at(split.index(bytes.len() + 1));
            let _ = dec.feed(a, &mut out).and_then(|()| dec.feed(b, &mut out));
            prop_assert!(dec.buffered() <= 256);
            let _ = dec.finish();
        }
    }
}

//! A minimal HTTP/1.1 client: one request at a time on one kept-alive TCP connection, with
//! `content-length`, chunked and close-delimited bodies handed to a [`Sink`] straight from the
//! read buffer, so the load generator spends as little CPU per chunk as possible.

use std::fmt;
use std::net::SocketAddr;

use memchr::memmem;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Receives a response body as it arrives.
pub(crate) trait Sink {
    /// The response head arrived (before any body bytes).
    fn head(&mut self, _head: &Head) {}
    /// The next piece of the decoded body (chunked framing removed).
    fn data(&mut self, bytes: &[u8]);
}

/// What the client keeps of a response head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// `x-prism-cache: hit`.
    pub(crate) cache_hit: bool,
    body: BodyKind,
    close: bool,
}

impl Head {
    /// A head with only a status, for tests of the sinks.
    #[cfg(test)]
    pub(crate) fn with_status(status: u16) -> Head {
        Head { status, ..Head::default() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum BodyKind {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    #[default]
    Close,
}

/// Why a request failed at the HTTP level.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// A socket error.
    Io(std::io::Error),
    /// The server closed the connection before the response ended.
    Closed,
    /// The response is not HTTP/1.1 as this client reads it.
    Malformed(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "i/o error: {e}"),
            HttpError::Closed => f.write_str("connection closed before the response ended"),
            HttpError::Malformed(what) => write!(f, "malformed response: {what}"),
        }
    }
}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Set when the connection cannot carry another request.
    spent: bool,
}

impl Conn {
    /// Connects to `addr` with `TCP_NODELAY` (requests go out in one write anyway, but the
    /// gateway and simulator set it too) and a read buffer of `buf_size` bytes.
    pub(crate) async fn connect(addr: SocketAddr, buf_size: usize) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: vec![0; buf_size.max(1024)], spent: false })
    }

    /// Whether another request may be sent on this connection.
    pub(crate) fn reusable(&self) -> bool {
        !self.spent
    }

    /// Sends `request` (a whole HTTP/1.1 request, head and body) and reads the response,
    /// handing its head and body to `sink`. On error the connection is spent.
    pub(crate) async fn request(
        &mut self,
        request: &[u8],
        sink: &mut impl Sink,
    ) -> Result<Head, HttpError> {
        // Spent until proven otherwise: a cancelled or failed request leaves the stream mid-response.
        self.spent = true;
        self.stream.write_all(request).await?;
        let mut len = 0;
        let (head, head_len) = loop {
            if let Some(end) = memmem::find(&self.buf[..len], b"\r\n\r\n") {
                break (parse_head(&self.buf[..end])?, end + 4);
            }
            if len == self.buf.len() {
                if len >= MAX_HEAD {
                    return Err(HttpError::Malformed("response head too large"));
                }
                self.buf.resize((len * 2).min(MAX_HEAD), 0);
            }
            let n = self.stream.read(&mut self.buf[len..]).await?;
            if n == 0 {
                return Err(HttpError::Closed);
            }
            len += n;
        };
        sink.head(&head);
        let mut decoder = Decoder::new(head.body);
        let mut done = decoder.feed(&self.buf[head_len..len], sink)?;
        while !done {
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                if decoder.ends_at_close() {
                    return Ok(head);
                }
                return Err(HttpError::Closed);
            }
            done = decoder.feed(&self.buf[..n], sink)?;
        }
        self.spent = head.close || decoder.leftover;
        Ok(head)
    }
}

fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let http11 = status_line.starts_with(b"HTTP/1.1 ");
    if !http11 && !status_line.starts_with(b"HTTP/1.0 ") {
        return Err(HttpError::Malformed("status line"));
    }
    let status = status_line
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("status code"))?;
    let mut out = Head { status, cache_hit: false, body: BodyKind::Close, close: !http11 };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(HttpError::Malformed("header line"));
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let text =
                std::str::from_utf8(value).map_err(|_| HttpError::Malformed("content-length"))?;
            length = Some(text.parse::<u64>().map_err(|_| HttpError::Malformed("content-length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = contains_token(value, b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            out.close = contains_token(value, b"close");
        } else if name.eq_ignore_ascii_case(b"x-prism-cache") {
            out.cache_hit = value.eq_ignore_ascii_case(b"hit");
        }
    }
    // RFC 9112 §6.3: chunked wins over content-length; 1xx, 204 and 304 carry no body.
    out.body = if matches!(status, 100..=199 | 204 | 304) {
        BodyKind::Length(0)
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        out.close = true;
        BodyKind::Close
    };
    Ok(out)
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The body framing state machine.
#[derive(Debug)]
struct Decoder {
    state: State,
    /// Bytes arrived after the end of the response (this client never pipelines).
    leftover: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Close,
    /// Reading a chunk-size line: the value so far and how many hex digits it had.
    Size {
        value: u64,
        digits: u8,
    },
    /// Skipping chunk extensions (or the CR) up to the LF ending the size line.
    SizeRest {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

impl Decoder {
    fn new(kind: BodyKind) -> Self {
        let state = match kind {
            BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Size { value: 0, digits: 0 },
            BodyKind::Close => State::Close,
        };
        Decoder { state, leftover: false }
    }

    fn ends_at_close(&self) -> bool {
        self.state == State::Close
    }

    /// Feeds received bytes; returns whether the body is complete.
    fn feed(&mut self, mut input: &[u8], sink: &mut impl Sink) -> Result<bool, HttpError> {
        while !input.is_empty() {
            match self.state {
                State::Done => {
                    self.leftover = true;
                    return Ok(true);
                }
                State::Close => {
                    sink.data(input);
                    return Ok(false);
                }
                State::Length(rem) | State::Data(rem) => {
                    let n = usize::try_from(rem).unwrap_or(usize::MAX).min(input.len());
                    sink.data(&input[..n]);
                    input = &input[n..];
                    let rem = rem - n as u64;
                    self.state = match (self.state, rem) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(rem),
                        (_, 0) => State::DataCr,
                        _ => State::Data(rem),
                    };
                }
                _ => {
                    self.step(input[0])?;
                    input = &input[1..];
                }
            }
        }
        Ok(self.state == State::Done)
    }

    /// One byte of chunk framing.
    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        self.state = match self.state {
            State::Size { value, digits } => match hex(b) {
                Some(d) if digits < 15 => {
                    State::Size { value: (value << 4) | u64::from(d), digits: digits + 1 }
                }
                Some(_) => return Err(HttpError::Malformed("chunk size too large")),
                None if digits == 0 => return Err(HttpError::Malformed("chunk size")),
                None if b == b'\n' => after_size(value),
                None if matches!(b, b'\r' | b';' | b' ' | b'\t') => State::SizeRest { value },
                None => return Err(HttpError::Malformed("chunk size")),
            },
            State::SizeRest { value } if b == b'\n' => after_size(value),
            State::SizeRest { value } => State::SizeRest { value },
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataCr | State::DataLf if b == b'\n' => State::Size { value: 0, digits: 0 },
            State::DataCr | State::DataLf => {
                return Err(HttpError::Malformed("chunk data not followed by CRLF"));
            }
            State::TrailerStart if b == b'\r' => State::TrailerLf,
            State::TrailerStart | State::TrailerLf if b == b'\n' => State::Done,
            State::TrailerLf => return Err(HttpError::Malformed("trailer")),
            State::TrailerStart | State::TrailerLine if b == b'\n' => State::TrailerStart,
            State::TrailerStart | State::TrailerLine => State::TrailerLine,
            other => other,
        };
        Ok(())
    }
}

fn after_size(value: u64) -> State {
    if value == 0 { State::TrailerStart } else { State::Data(value) }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A POST request's bytes: head and JSON body.
pub(crate) fn post(
    host: SocketAddr,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\naccept: */*\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some((name, value)) = auth {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<u8>);

    impl Sink for Collect {
        fn data(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn decode_split(kind: BodyKind, wire: &[u8], split: usize) -> (Vec<u8>, bool, bool) {
        let mut decoder = Decoder::new(kind);
        let mut sink = Collect::default();
        let mut done = false;
        for piece in wire.chunks(split.max(1)) {
            done = decoder.feed(piece, &mut sink).unwrap();
        }
        (sink.0, done, decoder.leftover)
    }

    #[test]
    fn chunked_bodies_decode_identically_at_every_split() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 1..=wire.len() {
            let (body, done, leftover) = decode_split(BodyKind::Chunked, wire, split);
            assert_eq!(body, b"hello 0123456789", "split {split}");
            assert!(done, "split {split}");
            assert!(!leftover);
        }
    }

    #[test]
    fn chunked_without_trailers_and_lf_only_lines() {
        let (body, done, _) = decode_split(BodyKind::Chunked, b"3\nabc\n0\n\n", 2);
        assert_eq!(body, b"abc");
        assert!(done);
    }

    #[test]
    fn chunked_body_not_finished_is_not_done() {
        let (body, done, _) = decode_split(BodyKind::Chunked, b"3\r\nabc\r\n", 4);
        assert_eq!(body, b"abc");
        assert!(!done);
    }

    #[test]
    fn bad_chunk_framing_is_an_error() {
        for wire in [&b"zz\r\n"[..], b"3\r\nabcX", b"\r\n", b"ffffffffffffffffff\r\n"] {
            let mut decoder = Decoder::new(BodyKind::Chunked);
            assert!(decoder.feed(wire, &mut Collect::default()).is_err(), "{wire:?}");
        }
    }

    #[test]
    fn content_length_bodies_stop_at_the_length() {
        let (body, done, leftover) = decode_split(BodyKind::Length(5), b"helloEXTRA", 3);
        assert_eq!(body, b"hello");
        assert!(done);
        assert!(leftover);
    }

    #[test]
    fn heads_parse() {
        let head =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Prism-Cache: hit")
                .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.body, BodyKind::Chunked);
        assert!(head.cache_hit);
        assert!(!head.close);
        let head = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\nconnection: close")
            .unwrap();
        assert_eq!((head.status, head.body, head.close), (404, BodyKind::Length(12), true));
        let head = parse_head(b"HTTP/1.0 200 OK").unwrap();
        assert_eq!((head.body, head.close), (BodyKind::Close, true));
        assert!(parse_head(b"SSH-2.0").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon").is_err());
    }

    #[test]
    fn post_requests_carry_length_and_auth() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let req = post(addr, "/v1/x", Some(("authorization", "Bearer k")), "{}");
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("content-length: 2\r\n"));
        assert!(text.ends_with("authorization: Bearer k\r\n\r\n{}"));
    }
}

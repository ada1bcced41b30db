//! The raw HTTP/1.1 server of a simulator started with
//! [`SimConfig::with_raw_http`](crate::SimConfig::with_raw_http): the simulator reads each
//! request and writes each response itself, so a [`Fault`](crate::Fault) can break the HTTP
//! framing (a malformed chunk size, a cut inside a chunk, a reset). Every other behaviour is
//! served as hyper would serve it (a `content-length` for whole bodies, chunked otherwise).
//!
//! While a response is being written the connection is also read, so a client that goes away
//! ends the response (and the connection count) at once, even one held open on purpose.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;

use crate::body::SimBody;
use crate::server::{Answer, OpenGuard, Shared};

/// The largest request head read; a bigger one closes the connection.
const MAX_HEAD: usize = 64 * 1024;

/// A response written byte for byte.
#[derive(Debug)]
pub(crate) struct Script {
    /// The steps, in order (the head is the first write).
    pub(crate) ops: Vec<Op>,
    /// What happens to the connection after the last step.
    pub(crate) end: End,
}

/// One step of a [`Script`].
#[derive(Debug)]
pub(crate) enum Op {
    /// Write these bytes as they are.
    Write(Bytes),
    /// Pause.
    Sleep(Duration),
    /// Write `bytes` one at a time, `interval` before each (as a one-byte chunk each when
    /// `chunked`).
    Drip { bytes: Bytes, interval: Duration, chunked: bool },
}

/// The end of a [`Script`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Close the connection (a FIN).
    Close,
    /// Reset the connection (`SO_LINGER` 0, then close: an RST).
    Reset,
    /// Keep the connection open, sending nothing, until the client closes it.
    Hold,
}

/// What to do with the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    KeepAlive,
    Close,
    Reset,
}

/// Serves one connection until the client closes it, a response ends it, or the simulator
/// stops.
pub(crate) async fn serve(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    guard: OpenGuard,
) {
    let _ = stream.set_nodelay(true);
    tokio::select! {
        _ = serve_requests(&mut stream, &shared) => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    drop(stream);
    drop(guard);
}

async fn serve_requests(stream: &mut TcpStream, shared: &Shared) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let Some(head) = read_head(stream, &mut buf).await else { return };
        shared.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body =
            read_body(stream, &mut buf, &head.parts.headers, shared.config.max_body_bytes).await;
        let Some(body) = body else { return };
        // A body that was not read leaves the connection out of step: close after answering.
        let close = head.close || body.is_err();
        let (rd, mut wr) = stream.split();
        let respond = async {
            match crate::server::answer(shared, &head.parts, body).await {
                Answer::Response(response) => write_response(&mut wr, response, close).await,
                Answer::Script(script) => run_script(&mut wr, script).await,
            }
        };
        let flow = tokio::select! {
            flow = respond => flow,
            () = until_eof(rd, &mut buf) => Flow::Close,
        };
        match flow {
            Flow::KeepAlive => {}
            Flow::Close => return,
            Flow::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
        }
    }
}

/// A parsed request head.
struct Head {
    parts: http::request::Parts,
    /// The client asked to close after this request (`connection: close` or HTTP/1.0).
    close: bool,
}

/// Reads and parses the next request head; `None` at EOF, on a read error or a malformed head.
async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<Head> {
    let end = loop {
        if let Some(at) = find(buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD || stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    };
    let head = buf.split_to(end + 4);
    let text = std::str::from_utf8(&head[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) =
        (request_line.next()?, request_line.next()?, request_line.next()?);
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    let connection = parts.headers.get(http::header::CONNECTION).and_then(|v| v.to_str().ok());
    let close =
        version != "HTTP/1.1" || connection.is_some_and(|c| c.eq_ignore_ascii_case("close"));
    Some(Head { parts, close })
}

/// Reads the request body (by `content-length` or chunked). `Err(413)` when it is over `limit`
/// (and left unread), `Err(400)` when its framing is broken; `None` when the connection ended.
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    headers: &HeaderMap,
    limit: usize,
) -> Option<Result<Bytes, u16>> {
    let chunked = headers
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let len = match headers.get(http::header::CONTENT_LENGTH) {
            None => 0,
            Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()) {
                Some(len) => len,
                None => return Some(Err(400)),
            },
        };
        if len > limit {
            return Some(Err(413));
        }
        fill(stream, buf, len).await?;
        return Some(Ok(buf.split_to(len).freeze()));
    }
    let mut body = BytesMut::new();
    loop {
        let line_end = loop {
            if let Some(at) = find(buf, b"\r\n") {
                break at;
            }
            if buf.len() > MAX_HEAD {
                return Some(Err(400));
            }
            fill(stream, buf, buf.len() + 1).await?;
        };
        let line = std::str::from_utf8(&buf[..line_end]).unwrap_or_default();
        let size = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size, 16) else { return Some(Err(400)) };
        buf.advance(line_end + 2);
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let at = loop {
                    if let Some(at) = find(buf, b"\r\n") {
                        break at;
                    }
                    fill(stream, buf, buf.len() + 1).await?;
                };
                buf.advance(at + 2);
                if at == 0 {
                    return Some(Ok(body.freeze()));
                }
            }
        }
        if body.len() + size > limit {
            return Some(Err(413));
        }
        fill(stream, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        buf.advance(size + 2);
    }
}

/// Reads until `buf` holds at least `n` bytes; `None` if the connection ends first.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, n: usize) -> Option<()> {
    while buf.len() < n {
        buf.reserve(n - buf.len());
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
    Some(())
}

/// Returns when the client closes its side (or the connection fails); anything it sends in the
/// meantime is kept in `buf` for the next request.
async fn until_eof(mut rd: ReadHalf<'_>, buf: &mut BytesMut) {
    loop {
        buf.reserve(1024);
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes a behaviour's response: a `content-length` body when its size is known, else chunked;
/// a body that fails closes the connection without the last chunk (as hyper does).
async fn write_response(wr: &mut WriteHalf<'_>, response: Response<SimBody>, close: bool) -> Flow {
    let (parts, mut body) = response.into_parts();
    let length = body.size_hint().exact().and_then(|n| usize::try_from(n).ok());
    let mut head = head_bytes(parts.status, &parts.headers, length, close).to_vec();
    if length.is_some() {
        while let Some(frame) = body.frame().await {
            match frame.map(http_body::Frame::into_data) {
                Ok(Ok(data)) => head.extend_from_slice(&data),
                Ok(Err(_)) => {}
                Err(_) => return Flow::Close,
            }
        }
        return written(wr.write_all(&head).await, close);
    }
    if wr.write_all(&head).await.is_err() {
        return Flow::Close;
    }
    while let Some(frame) = body.frame().await {
        let data = match frame.map(http_body::Frame::into_data) {
            Ok(Ok(data)) => data,
            Ok(Err(_)) => continue,
            Err(_) => return Flow::Close,
        };
        if data.is_empty() {
            continue;
        }
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        if wr.write_all(&chunk).await.is_err() {
            return Flow::Close;
        }
    }
    written(wr.write_all(b"0\r\n\r\n").await, close)
}

fn written(result: std::io::Result<()>, close: bool) -> Flow {
    if result.is_err() || close { Flow::Close } else { Flow::KeepAlive }
}

/// Runs a fault's script.
async fn run_script(wr: &mut WriteHalf<'_>, script: Script) -> Flow {
    for op in script.ops {
        let ok = match op {
            Op::Write(bytes) => wr.write_all(&bytes).await.is_ok(),
            Op::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                true
            }
            Op::Drip { bytes, interval, chunked } => drip(wr, &bytes, interval, chunked).await,
        };
        if !ok {
            return Flow::Close;
        }
    }
    match script.end {
        End::Close => Flow::Close,
        End::Reset => Flow::Reset,
        End::Hold => std::future::pending().await,
    }
}

async fn drip(wr: &mut WriteHalf<'_>, bytes: &[u8], interval: Duration, chunked: bool) -> bool {
    for &byte in bytes {
        tokio::time::sleep(interval).await;
        let written = if chunked {
            wr.write_all(&[b'1', b'\r', b'\n', byte, b'\r', b'\n']).await
        } else {
            wr.write_all(&[byte]).await
        };
        if written.is_err() {
            return false;
        }
    }
    true
}

/// A response head: the status line, `headers`, the framing (`content-length` when `length`,
/// else `transfer-encoding: chunked`) and `connection: close` when `close`.
pub(crate) fn head_bytes(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<usize>,
    close: bool,
) -> Bytes {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    );
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(value.to_str().unwrap_or_default());
        out.push_str("\r\n");
    }
    match length {
        Some(len) => out.push_str(&format!("content-length: {len}\r\n")),
        None => out.push_str("transfer-encoding: chunked\r\n"),
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::{Behavior, Fault, Reply, SimConfig, Simulator};

    const REQUEST: &str = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\
        content-type: application/json\r\ncontent-length: 15\r\n\r\n{\"stream\":true}";

    async fn raw_exchange(sim: &Simulator) -> Vec<u8> {
        let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        tcp.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = tcp.read_to_end(&mut out);
        let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
        out
    }

    #[tokio::test]
    async fn behaviours_and_faults_are_served_over_raw_http() {
        let sim = Simulator::start_with(SimConfig::default().with_raw_http(true)).await.unwrap();
        let client = reqwest::Client::new();
        sim.push_behavior(Reply::text("raw hello").into());
        let url = format!("{}/v1/chat/completions", sim.base_url());
        let body = r#"{"model":"m","stream":true}"#;
        let resp = client.post(&url).body(body).send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let text = resp.text().await.unwrap();
        assert!(text.contains("\"content\":\"raw \"") && text.ends_with("data: [DONE]\n\n"));
        // A keep-alive connection serves the next request too.
        let resp = client.post(&url).body(body).send().await.unwrap();
        assert!(resp.text().await.unwrap().ends_with("data: [DONE]\n\n"));
        assert_eq!(sim.requests(), 2);

        sim.push_behavior(Behavior::fault(Reply::text("a b"), Fault::BadChunkSize { events: 1 }));
        let raw = String::from_utf8_lossy(&raw_exchange(&sim).await).into_owned();
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(raw.contains("transfer-encoding: chunked\r\n"), "{raw}");
        assert!(raw.contains("\r\nzz\r\ndata: "), "{raw}");
        sim.push_behavior(Behavior::fault(
            Reply::text("a"),
            Fault::Redirect { location: "http://elsewhere/".into() },
        ));
        let raw = String::from_utf8_lossy(&raw_exchange(&sim).await).into_owned();
        assert!(raw.starts_with("HTTP/1.1 302 Found\r\n"), "{raw}");
        assert!(raw.contains("location: http://elsewhere/\r\n"), "{raw}");
        assert!(sim.wait_open_connections_at_most(1, Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_held_open_answer_closes_when_the_client_goes() {
        let sim = Simulator::start_with(SimConfig::default().with_raw_http(true)).await.unwrap();
        sim.push_behavior(Behavior::fault(Reply::text("a"), Fault::HoldOpen));
        let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        tcp.write_all(REQUEST.as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sim.open_connections(), 1);
        drop(tcp);
        assert!(sim.wait_open_connections_at_most(0, Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_hyper_served_simulator_refuses_faults() {
        let sim = Simulator::start().await.unwrap();
        sim.push_behavior(Behavior::fault(Reply::text("a"), Fault::Html));
        let url = format!("{}/v1/chat/completions", sim.base_url());
        let resp = reqwest::Client::new().post(url).body("{}").send().await.unwrap();
        assert_eq!(resp.status(), 500);
        assert!(resp.text().await.unwrap().contains("with_raw_http"));
    }
}

//! The client against a canned SSE server with tricky framing: CRLF, comments, events split in the
//! middle of a UTF-8 character, error events, a missing `[DONE]`, retries, and disconnects.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use prism_client::{Error, Prism, RetryPolicy};
use prism_types::{ChatRequest, FinishReason, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One scripted HTTP response: a status line + headers, then body pieces written with a pause
/// between them (so they arrive as separate reads), then the connection closes.
#[derive(Clone)]
struct Script {
    status: u16,
    content_type: &'static str,
    extra_headers: Vec<(&'static str, &'static str)>,
    pieces: Vec<Vec<u8>>,
    /// Keep the connection open after the pieces (for disconnect tests).
    hold_open: bool,
}

impl Script {
    fn sse(pieces: Vec<Vec<u8>>) -> Self {
        Script {
            status: 200,
            content_type: "text/event-stream",
            extra_headers: vec![],
            pieces,
            hold_open: false,
        }
    }
}

struct Canned {
    url: String,
    connections: Arc<AtomicUsize>,
    bodies: mpsc::UnboundedReceiver<String>,
    closed: mpsc::UnboundedReceiver<()>,
}

/// Serves `scripts` in order, one per connection (the last one repeats).
async fn canned(scripts: Vec<Script>) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let (body_tx, bodies) = mpsc::unbounded_channel();
    let (closed_tx, closed) = mpsc::unbounded_channel();
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let script = scripts[n.min(scripts.len() - 1)].clone();
            let body_tx = body_tx.clone();
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move { serve(socket, script, body_tx, closed_tx).await });
        }
    });
    Canned { url, connections, bodies, closed }
}

async fn serve(
    mut socket: TcpStream,
    script: Script,
    body_tx: mpsc::UnboundedSender<String>,
    closed_tx: mpsc::UnboundedSender<()>,
) {
    socket.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    // Read the request head and its content-length body.
    let body = loop {
        let n = socket.read(&mut tmp).await.unwrap();
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = socket.read(&mut tmp).await.unwrap();
                buf.extend_from_slice(&tmp[..n]);
            }
            break String::from_utf8(buf[end + 4..end + 4 + len].to_vec()).unwrap();
        }
    };
    body_tx.send(body).unwrap();
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\nconnection: close\r\n",
        script.status, script.content_type
    );
    for (k, v) in &script.extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    for piece in &script.pieces {
        if socket.write_all(piece).await.is_err() {
            break;
        }
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if script.hold_open {
        // Wait for the client to go away: a read returns 0 (or fails) when it closed.
        let _ = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut tmp)).await;
        let _ = closed_tx.send(());
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "demo/openai".into(),
        messages: vec![Message::User { content: "hi".into(), name: None }],
        ..ChatRequest::default()
    }
}

fn client(url: &str) -> Prism {
    Prism::new("sk-prism-test").base_url(url).retry_policy(RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    })
}

fn chunk(content: &str) -> String {
    format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}}"#,
        serde_json::to_string(content).unwrap()
    )
}

const FINISH: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#;

/// A stream with CRLF endings, a comment, and "é" and "🙂" split across writes.
fn tricky_pieces() -> Vec<Vec<u8>> {
    let first = format!("data: {}\r\n\r\n: keep-alive\r\n\r\n", chunk("Caf"));
    let second = format!("data: {}\r\n\r\n", chunk("é 🙂!"));
    let split_at = second.find('é').unwrap() + 1; // inside the two bytes of 'é'
    let emoji_at = second.find('🙂').unwrap() + 2; // inside the four bytes of the emoji
    let b = second.as_bytes();
    vec![
        first.into_bytes(),
        b[..split_at].to_vec(),
        b[split_at..emoji_at].to_vec(),
        b[emoji_at..].to_vec(),
        format!("data: {FINISH}\r\n\r\n").into_bytes(),
        b"data: [DONE]\r\n\r\n".to_vec(),
    ]
}

#[tokio::test]
async fn chunks_survive_crlf_comments_and_split_utf8() {
    let server = canned(vec![Script::sse(tricky_pieces())]).await;
    let mut stream =
        client(&server.url).chat().completions().create_stream(request()).await.unwrap();
    let mut text = String::new();
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for c in &chunk.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(c.finish_reason);
        }
    }
    assert_eq!(text, "Café 🙂!");
    assert_eq!(finish, Some(FinishReason::Stop));
}

#[tokio::test]
async fn stream_manager_text_then_final_completion_and_asks_for_usage() {
    let mut server = canned(vec![Script::sse(tricky_pieces())]).await;
    let mut s = client(&server.url).chat().completions().stream(request()).await.unwrap();
    let mut text = String::new();
    while let Some(t) = s.text_stream().next().await {
        text.push_str(&t.unwrap());
    }
    assert_eq!(text, "Café 🙂!");
    let completion = s.final_completion().await.unwrap();
    assert_eq!(completion.choices[0].message.content.as_deref(), Some("Café 🙂!"));
    assert_eq!(completion.usage.unwrap().total_tokens, 5);
    let body: serde_json::Value =
        serde_json::from_str(&server.bodies.recv().await.unwrap()).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn final_completion_without_consuming_first() {
    let server = canned(vec![Script::sse(tricky_pieces())]).await;
    let mut s = client(&server.url).chat().completions().stream(request()).await.unwrap();
    let completion = s.get_final_completion().await.unwrap();
    assert_eq!(completion.choices[0].message.content.as_deref(), Some("Café 🙂!"));
    assert_eq!(completion.choices[0].finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn error_event_is_a_typed_item_then_the_end() {
    let pieces = vec![
        format!("data: {}\n\n", chunk("partial")).into_bytes(),
        br#"data: {"error":{"message":"blocked by guardrail 'no-pii'","type":"guardrail_error","param":null,"code":"content_blocked"}}"#.to_vec(),
        b"\n\n".to_vec(),
    ];
    let server = canned(vec![Script::sse(pieces)]).await;
    let mut stream =
        client(&server.url).chat().completions().create_stream(request()).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    match stream.next().await.unwrap() {
        Err(Error::Stream(e)) => {
            assert_eq!(e.kind.as_deref(), Some("guardrail_error"));
            assert_eq!(e.code.as_deref(), Some("content_blocked"));
            assert!(e.status.is_none());
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
    assert!(stream.next().await.is_none());

    let server = canned(vec![Script::sse(vec![
        format!("data: {}\n\n", chunk("partial")).into_bytes(),
        b"data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n"
            .to_vec(),
    ])])
    .await;
    let mut s = client(&server.url).chat().completions().stream(request()).await.unwrap();
    let err = s.final_completion().await.unwrap_err();
    assert!(matches!(&err, Error::Stream(e) if e.message == "upstream overloaded"), "{err:?}");
}

#[tokio::test]
async fn missing_done_is_truncation_not_success() {
    let pieces = vec![
        format!("data: {}\n\n", chunk("cut")).into_bytes(),
        format!("data: {FINISH}\n\n").into_bytes(),
    ];
    let server = canned(vec![Script::sse(pieces)]).await;
    let mut stream =
        client(&server.url).chat().completions().create_stream(request()).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    assert!(stream.next().await.unwrap().is_ok());
    assert!(matches!(stream.next().await, Some(Err(Error::Truncated))));
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn api_errors_are_typed_and_not_retried_when_final() {
    let body = br#"{"error":{"message":"unknown model 'x'","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#;
    let script = Script {
        status: 404,
        content_type: "application/json",
        extra_headers: vec![],
        pieces: vec![body.to_vec()],
        hold_open: false,
    };
    let server = canned(vec![script]).await;
    let err = client(&server.url).chat().completions().create(request()).await.unwrap_err();
    match err {
        Error::Api(e) => {
            assert_eq!(e.status, Some(404));
            assert_eq!(e.code.as_deref(), Some("model_not_found"));
            assert_eq!(e.param.as_deref(), Some("model"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retryable_status_is_retried_before_the_response_starts() {
    let overloaded = Script {
        status: 503,
        content_type: "application/json",
        extra_headers: vec![("retry-after", "0")],
        pieces: vec![
            br#"{"error":{"message":"busy","type":"server_error","code":"overloaded"}}"#.to_vec(),
        ],
        hold_open: false,
    };
    let ok = Script {
        status: 200,
        content_type: "application/json",
        extra_headers: vec![],
        pieces: vec![br#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#.to_vec()],
        hold_open: false,
    };
    let server = canned(vec![overloaded.clone(), ok]).await;
    let completion = client(&server.url).chat().completions().create(request()).await.unwrap();
    assert_eq!(completion.choices[0].message.content.as_deref(), Some("ok"));
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);

    // With retries exhausted the last error is returned.
    let server = canned(vec![overloaded]).await;
    let err = client(&server.url).chat().completions().create(request()).await.unwrap_err();
    assert!(matches!(&err, Error::Api(e) if e.status == Some(503)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let mut script = Script::sse(vec![format!("data: {}\n\n", chunk("first")).into_bytes()]);
    script.hold_open = true;
    let mut server = canned(vec![script]).await;
    let mut stream =
        client(&server.url).chat().completions().create_stream(request()).await.unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    tokio::time::timeout(Duration::from_secs(1), server.closed.recv())
        .await
        .expect("server did not see the connection close within 1 s");
}

//! Stage 6 for streams, the committed stream: a response body that pulls the upstream body
//! directly, so a slow client slows the upstream reads and a gone client drops the upstream
//! connection (hyper drops the body). Each upstream read is fed to the provider translator, the
//! canonical chunks pass the output filter, and the client protocol's encoder turns them into
//! whole events; every batch goes out in one frame and events are never split across frames.
//!
//! Endings: a clean upstream end is the encoder's `finish` (Chat Completions: `data: [DONE]`);
//! anything else (upstream error event, early EOF, broken framing, idle or total timeout, a
//! filter's refusal) is the encoder's one error event (Chat Completions: `data: {"error":…}`
//! and no `[DONE]`).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame};
use prism_ingress::StreamEncoder;
use prism_ledger::Outcome;
use prism_providers::{ByteTranslator, Credentials, OutChunk, StreamSummary, TranslateError};
use prism_types::{ErrorObject, Usage};
use tokio::time::{Instant, Sleep};
use tracing::Span;

use crate::admission::Slot;
use crate::attempts::{Primed, redact};
use crate::error::GatewayError;
use crate::hooks::OutputFilter;
use crate::metrics::StreamTotals;
use crate::state::AppState;
use crate::usage::{Ending, Ticket};

/// Initial capacity of the per-stream output buffer; it grows only for unusually large batches.
const BUF_CAPACITY: usize = 1024;
/// A frame goes out once this much is encoded even if the upstream has more ready, which bounds
/// the buffer and keeps a fast upstream from delaying the first bytes of a batch.
const BATCH_BYTES: usize = 16 * 1024;

/// Everything about a committed stream that is not the byte pipeline itself.
pub(crate) struct StreamMeta {
    pub(crate) state: Arc<AppState>,
    pub(crate) model: String,
    pub(crate) provider: String,
    pub(crate) started: Instant,
    pub(crate) total_deadline: Instant,
    pub(crate) span: Span,
    pub(crate) permit: Option<Slot>,
    /// The deployment's credentials, only to scrub them from upstream error messages.
    pub(crate) credentials: Credentials,
    /// The deployment's upstream model id, for the price.
    pub(crate) upstream_model: String,
    /// `gen_ai.provider.name` of the deployment.
    pub(crate) provider_kind: &'static str,
    /// The usage ledger's hold on this request, finished when the stream ends.
    pub(crate) ticket: Option<Ticket>,
    pub(crate) ttft: Duration,
    pub(crate) attempts: u32,
}

/// A live SSE response body.
pub(crate) struct SseBody {
    /// `None` once the upstream is finished or abandoned (dropping it closes the connection).
    upstream: Option<reqwest::Body>,
    translator: Box<dyn ByteTranslator>,
    filter: Option<Box<dyn OutputFilter>>,
    /// The client protocol's encoder.
    encoder: Box<dyn StreamEncoder>,
    /// Reused translator output.
    out: Vec<OutChunk>,
    /// Encoded events not yet handed to hyper.
    buf: BytesMut,
    /// No more events will be produced; the body ends once `buf` is drained.
    ended: bool,
    /// One timer for keep-alive, idle and total deadlines, re-armed lazily.
    timer: Pin<Box<Sleep>>,
    last_upstream: Instant,
    last_keepalive: Instant,
    idle: Duration,
    keepalive: Duration,
    totals: StreamTotals,
    /// Upstream reads and frames written, for the end-of-stream log.
    reads: u64,
    frames: u64,
    /// Why the stream ended, for metrics and the log; `None` while open.
    end_reason: Option<&'static str>,
    /// Text bytes encoded for the client, for the usage estimate when the upstream's usage
    /// never arrives.
    streamed_text_bytes: u64,
    /// The upstream's usage, from the clean end.
    usage: Option<Usage>,
    finish_reasons: Vec<String>,
    /// The streamed text, only when the operator opted in to content capture (bounded).
    captured: Option<String>,
    /// When the upstream's first content arrived; taken when the client's first byte goes.
    first_content_at: Option<Instant>,
    meta: StreamMeta,
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("model", &self.meta.model)
            .field("provider", &self.meta.provider)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What the timer found.
enum Tick {
    KeepAlive,
    Idle,
    Total,
}

impl SseBody {
    /// Commits a primed attempt: encodes the held chunks (and, when the upstream already ended,
    /// the closing chunks and `[DONE]`).
    pub(crate) fn new(
        primed: Primed,
        encoder: Box<dyn StreamEncoder>,
        filter: Option<Box<dyn OutputFilter>>,
        meta: StreamMeta,
    ) -> SseBody {
        let timeouts = &meta.state.config.timeouts;
        let now = Instant::now();
        let idle = timeouts.idle;
        let keepalive = timeouts.keepalive;
        let first = (now + keepalive).min(now + idle).min(meta.total_deadline);
        meta.state.metrics.stream_started();
        let mut body = SseBody {
            upstream: Some(primed.body),
            translator: primed.translator,
            filter,
            encoder,
            out: primed.held,
            buf: BytesMut::with_capacity(BUF_CAPACITY),
            ended: false,
            timer: Box::pin(tokio::time::sleep_until(first)),
            last_upstream: now,
            last_keepalive: now,
            idle,
            keepalive,
            totals: StreamTotals {
                upstream_bytes: primed.upstream_bytes,
                ..StreamTotals::default()
            },
            reads: 0,
            frames: 0,
            end_reason: None,
            streamed_text_bytes: 0,
            usage: None,
            finish_reasons: Vec::new(),
            captured: None,
            first_content_at: Some(primed.first_content_at),
            meta,
        };
        if body.meta.state.config.telemetry.capture_content {
            body.captured = Some(String::new());
        }
        match primed.finished {
            Some(summary) => {
                if body.encode_out() {
                    body.close_clean(&summary);
                }
            }
            None => {
                if body.encode_out() && body.translator.is_done() {
                    body.finish_upstream();
                }
            }
        }
        body
    }

    fn end_of_stream(&self) -> bool {
        self.ended && self.buf.is_empty()
    }

    fn next_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        loop {
            if self.ended || self.buf.len() >= BATCH_BYTES {
                return Poll::Ready(self.take_frame());
            }
            let Some(upstream) = self.upstream.as_mut() else {
                // Unreachable in practice: the upstream is only dropped together with `ended`.
                self.fail(GatewayError::Internal.to_error_object(), "internal");
                continue;
            };
            match Pin::new(upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.on_upstream_bytes(&data);
                    }
                    // Keep reading while the upstream has more ready: several events in one
                    // frame cost one write instead of many, and add no latency.
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(parent: &self.meta.span, error = %e.without_url(), "upstream read failed mid-stream");
                    let error = ErrorObject::new(
                        "upstream_error",
                        "the connection to the upstream provider failed mid-stream",
                    )
                    .with_code("upstream_connection_lost");
                    self.fail(error, "upstream_error");
                    continue;
                }
                Poll::Ready(None) => {
                    self.finish_upstream();
                    continue;
                }
                Poll::Pending => {}
            }
            // The upstream has nothing more right now: flush what is encoded.
            if !self.buf.is_empty() {
                return Poll::Ready(self.take_frame());
            }
            match self.poll_timer(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Tick::KeepAlive) => self.encoder.keepalive(&mut self.buf),
                Poll::Ready(Tick::Idle) => {
                    self.fail(
                        GatewayError::UpstreamTimeout { stage: "idle" }.to_error_object(),
                        "idle_timeout",
                    );
                }
                Poll::Ready(Tick::Total) => {
                    self.fail(
                        GatewayError::UpstreamTimeout { stage: "total" }.to_error_object(),
                        "total_timeout",
                    );
                }
            }
        }
    }

    /// The encoded events as one frame, or the end of the body when there are none.
    fn take_frame(&mut self) -> Option<Result<Frame<Bytes>, Infallible>> {
        if self.buf.is_empty() {
            return None;
        }
        self.frames += 1;
        if let Some(first) = self.first_content_at.take() {
            // Prism's own time between the upstream's first content and the client's first byte.
            let meta = &self.meta;
            meta.state.metrics.added_latency(
                &meta.model,
                &meta.provider,
                "first_byte",
                first.elapsed(),
            );
        }
        Some(Ok(Frame::data(self.buf.split().freeze())))
    }

    fn on_upstream_bytes(&mut self, data: &[u8]) {
        self.totals.upstream_bytes += data.len() as u64;
        self.reads += 1;
        self.last_upstream = Instant::now();
        let fed = self.translator.feed(data, &mut self.out);
        // Chunks completed before an error still go out, ahead of the error event.
        if !self.encode_out() {
            return;
        }
        match fed {
            Err(e) => {
                let error = self.client_error(&e);
                tracing::warn!(parent: &self.meta.span, error = %error.message, "upstream failed mid-stream");
                self.fail(error, "upstream_error");
            }
            Ok(()) if self.translator.is_done() => self.finish_upstream(),
            Ok(()) => {}
        }
    }

    /// The upstream ended (EOF or its terminal event): closing chunks and `[DONE]`, or the error.
    fn finish_upstream(&mut self) {
        match self.translator.finish(&mut self.out) {
            Ok(summary) => {
                if self.encode_out() {
                    self.close_clean(&summary);
                }
            }
            Err(e) => {
                let error = self.client_error(&e);
                tracing::warn!(parent: &self.meta.span, error = %error.message, "upstream stream ended badly");
                if self.encode_out() {
                    self.fail(error, "upstream_error");
                }
            }
        }
    }

    /// The error object for a translation failure, with any credential scrubbed from the
    /// upstream's own message.
    fn client_error(&self, e: &TranslateError) -> ErrorObject {
        let mut error = e.to_provider_error().error;
        redact(&mut error.message, &self.meta.credentials);
        error
    }

    fn close_clean(&mut self, summary: &StreamSummary) {
        if let Some(filter) = self.filter.as_mut() {
            let finished = filter.finish(&mut self.out);
            self.encode_chunks();
            if let Err(rejection) = finished {
                self.fail(rejection.error, "filtered");
                return;
            }
        }
        self.finish_reasons =
            summary.finish_reasons.iter().map(|(_, r)| r.as_str().to_owned()).collect();
        if let Some(usage) = &summary.usage {
            self.totals.prompt_tokens = usage.prompt_tokens;
            self.totals.completion_tokens = usage.completion_tokens;
            self.usage = Some(usage.clone());
        }
        self.encoder.finish(&mut self.buf);
        self.end("done");
    }

    /// Runs the output filter over `out` and encodes what it lets through. Returns `false` when
    /// the filter ended the stream (after the chunks it kept, which precede the violation).
    fn encode_out(&mut self) -> bool {
        let filtered = match self.filter.as_mut() {
            Some(filter) => filter.filter(&mut self.out),
            None => Ok(()),
        };
        self.encode_chunks();
        if let Err(rejection) = filtered {
            self.fail(rejection.error, "filtered");
            return false;
        }
        true
    }

    fn encode_chunks(&mut self) {
        self.totals.chunks += self.out.len() as u64;
        for chunk in self.out.drain(..) {
            self.streamed_text_bytes += text_bytes(&chunk.chunk);
            if let Some(captured) = self.captured.as_mut() {
                capture(captured, &chunk.chunk);
            }
            self.encoder.chunk(&chunk.chunk, chunk.raw.as_deref(), &mut self.buf);
        }
    }

    /// Ends the stream with the protocol's one error event.
    fn fail(&mut self, error: ErrorObject, reason: &'static str) {
        self.encoder.fail(&error, &mut self.buf);
        self.end(reason);
    }

    fn end(&mut self, reason: &'static str) {
        self.ended = true;
        // Dropping the upstream body closes (or returns to the pool) the upstream connection now,
        // not when the client finishes reading.
        self.upstream = None;
        if self.end_reason.is_none() {
            self.end_reason = Some(reason);
            self.record(reason);
        }
    }

    fn record(&mut self, reason: &'static str) {
        if let Some(mut ticket) = self.meta.ticket.take() {
            let outcome = match reason {
                "done" => Outcome::Completed,
                "client_closed" => Outcome::ClientGone,
                "filtered" => Outcome::Guardrail,
                "idle_timeout" | "total_timeout" => Outcome::Timeout,
                _ => Outcome::UpstreamError,
            };
            ticket.finish(Ending {
                outcome,
                status: 200,
                usage: self.usage.as_ref(),
                streamed_text_bytes: self.streamed_text_bytes,
                provider: Some(&self.meta.provider),
                provider_kind: Some(self.meta.provider_kind),
                upstream_model: Some(&self.meta.upstream_model),
                attempts: self.meta.attempts,
                ttft: Some(self.meta.ttft),
                finish_reasons: &self.finish_reasons,
                output: self.captured.take(),
            });
        }
        let meta = &self.meta;
        let elapsed = meta.started.elapsed();
        meta.state.metrics.stream_ended(&meta.model, &meta.provider, reason, elapsed, self.totals);
        tracing::info!(
            parent: &meta.span,
            reason,
            chunks = self.totals.chunks,
            upstream_bytes = self.totals.upstream_bytes,
            upstream_reads = self.reads,
            frames = self.frames,
            prompt_tokens = self.totals.prompt_tokens,
            completion_tokens = self.totals.completion_tokens,
            duration_ms = elapsed.as_millis() as u64,
            "stream ended"
        );
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Tick> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if now >= self.meta.total_deadline {
                return Poll::Ready(Tick::Total);
            }
            let idle_at = self.last_upstream + self.idle;
            if now >= idle_at {
                return Poll::Ready(Tick::Idle);
            }
            let keepalive_at = self.last_upstream.max(self.last_keepalive) + self.keepalive;
            let fire = now >= keepalive_at;
            if fire {
                self.last_keepalive = now;
            }
            let next = (self.last_upstream.max(self.last_keepalive) + self.keepalive)
                .min(idle_at)
                .min(self.meta.total_deadline);
            self.timer.as_mut().reset(next);
            if fire {
                return Poll::Ready(Tick::KeepAlive);
            }
        }
    }
}

/// Appends a chunk's content to the captured output, up to 64 KiB.
fn capture(captured: &mut String, chunk: &prism_types::ChatChunk) {
    const LIMIT: usize = 64 * 1024;
    for choice in &chunk.choices {
        if let Some(text) = &choice.delta.content
            && captured.len() + text.len() <= LIMIT
        {
            captured.push_str(text);
        }
    }
}

/// The text a chunk carries to the client: content, refusal, reasoning, tool-call names and
/// arguments.
fn text_bytes(chunk: &prism_types::ChatChunk) -> u64 {
    let mut n = 0;
    for choice in &chunk.choices {
        let d = &choice.delta;
        n += d.content.as_ref().map_or(0, String::len);
        n += d.refusal.as_ref().map_or(0, String::len);
        n += d.reasoning_content.as_ref().map_or(0, String::len);
        for call in d.tool_calls.iter().flatten() {
            if let Some(f) = &call.function {
                n += f.name.as_ref().map_or(0, String::len)
                    + f.arguments.as_ref().map_or(0, String::len);
            }
        }
    }
    n as u64
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut().next_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.end_of_stream()
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if self.end_reason.is_none() {
            // hyper drops the body when the client goes away; the upstream goes with it.
            self.end_reason = Some("client_closed");
            self.record("client_closed");
        }
        let _ = self.meta.permit.take();
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use prism_providers::{Deployment, ProviderKind, StreamContext};
    use prism_simulator::{RenderOptions, Reply, Wire};

    use super::*;
    use crate::config::{Config, EmbeddedOptions};
    use crate::hooks::Hooks;
    use crate::state::UpstreamClient;

    fn state() -> Arc<AppState> {
        let env = |_: &str| None;
        let config = Config::embedded(EmbeddedOptions {
            simulator_url: "http://127.0.0.1:9",
            dev_key: "sk-prism-k",
            env: &env,
        });
        let upstream = UpstreamClient::new(&config.timeouts).unwrap();
        Arc::new(AppState::new(config, upstream, Hooks::default()))
    }

    /// Feeds a rendered upstream stream cut into `piece`-byte reads and returns every frame.
    async fn frames(upstream: &[u8], piece: usize) -> Vec<Bytes> {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            upstream.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let deployment = Deployment::new(ProviderKind::Anthropic, "http://127.0.0.1:9", "m");
        let ctx = StreamContext::new("chatcmpl-t", 1, "pub");
        let primed = Primed {
            body: reqwest::Body::wrap_stream(futures::stream::iter(pieces)),
            translator: prism_providers::stream_translator(&deployment, ctx),
            held: Vec::new(),
            finished: None,
            upstream_bytes: 0,
            first_content_at: Instant::now(),
            native: false,
        };
        let state = state();
        let meta = StreamMeta {
            total_deadline: Instant::now() + Duration::from_secs(10),
            state,
            model: "pub".into(),
            provider: "p".into(),
            started: Instant::now(),
            span: Span::none(),
            permit: None,
            credentials: Credentials::None,
            upstream_model: "m".into(),
            provider_kind: "anthropic",
            ticket: None,
            ttft: Duration::ZERO,
            attempts: 1,
        };
        let mut body = crate::body::ResponseBody::sse(SseBody::new(
            primed,
            Box::new(prism_ingress::chat::ChatEncoder::new()),
            None,
            meta,
        ));
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn every_frame_holds_whole_events_whatever_the_upstream_reads() {
        let reply = Reply::text("Split me into many small pieces, please.");
        let upstream: Vec<u8> =
            prism_simulator::render_stream(Wire::Anthropic, &reply, &RenderOptions::new("m"))
                .concat();
        let mut transcripts = Vec::new();
        for piece in [1, 2, 7, 64, upstream.len()] {
            let frames = frames(&upstream, piece).await;
            for f in &frames {
                assert!(
                    f.starts_with(b"data: ") && f.ends_with(b"\n\n"),
                    "piece {piece}: split event {f:?}"
                );
            }
            let text: String = frames.iter().map(|f| std::str::from_utf8(f).unwrap()).collect();
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            transcripts.push(text);
        }
        assert!(
            transcripts.windows(2).all(|w| w[0] == w[1]),
            "the output must not depend on the read sizes"
        );
        assert!(transcripts[0].contains("\"content\":\"Split \""));
    }

    #[tokio::test]
    async fn a_truncated_upstream_ends_with_one_error_event() {
        let reply = Reply::text("cut short here");
        let mut events =
            prism_simulator::render_stream(Wire::Anthropic, &reply, &RenderOptions::new("m"));
        events.truncate(events.len() - 2);
        let frames = frames(&events.concat(), 5).await;
        let text: String = frames.iter().map(|f| std::str::from_utf8(f).unwrap()).collect();
        assert!(!text.contains("[DONE]"), "{text}");
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.starts_with("data: {\"error\":"), "{text}");
        assert_eq!(text.matches("\"error\"").count(), 1);
    }
}

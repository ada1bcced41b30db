//! The Gemini streaming pipeline: SSE bytes (`alt=sse`) → `GenerateContentResponse` chunks →
//! OpenAI chunks, plus detection of in-band errors (an `error` payload, or a raw JSON error body
//! appended to the 200 stream).

use prism_sse::{Decoder, Frame};

use super::errors::{map_status, parse_error_body};
use super::response::{EmitSink, ResponseMapper};
use super::wire::GenerateContentResponse;
use crate::TranslateError;
use crate::translate::{ByteTranslator, Emitter, OutChunk, StreamContext, StreamSummary};

/// Provider label in errors.
const PROVIDER: &str = "gemini";

/// At most this many bytes of non-SSE lines are kept to look for a raw JSON error tail; Google's
/// error bodies are well under 4 KiB.
const MAX_TAIL: usize = 64 * 1024;

/// Bytes → OpenAI chunks for `streamGenerateContent?alt=sse` (Gemini API and Vertex AI).
#[derive(Debug)]
pub struct StreamPipeline {
    decoder: Decoder,
    /// Reused frame buffer.
    frames: Vec<Frame>,
    emitter: Emitter,
    mapper: ResponseMapper,
    /// Non-SSE lines, joined with `'\n'`: a raw JSON error body shows up here.
    tail: String,
    /// An error was returned; the stream is over and further input is ignored.
    failed: bool,
}

impl StreamPipeline {
    /// A pipeline for one stream.
    pub fn new(ctx: StreamContext) -> Self {
        let mapper = ResponseMapper::new(ctx.id.clone());
        StreamPipeline {
            decoder: Decoder::new().emit_unknown_lines(true),
            frames: Vec::new(),
            emitter: Emitter::new(ctx),
            mapper,
            tail: String::new(),
            failed: false,
        }
    }

    fn frames(&mut self, out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let mut frames = std::mem::take(&mut self.frames);
        let mut result = Ok(());
        for frame in frames.drain(..) {
            if result.is_err() {
                continue;
            }
            match frame {
                Frame::Event(event) => result = self.event(event.data.as_str(), out),
                Frame::Unknown(line) => {
                    if self.tail.len() + line.len() < MAX_TAIL {
                        self.tail.push_str(line.as_str());
                        self.tail.push('\n');
                    }
                }
                Frame::Comment(_) => {}
            }
        }
        self.frames = frames;
        result
    }

    fn event(&mut self, data: &str, out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data.starts_with('[') {
            // Not a chunk shape Gemini streams with alt=sse, but error bodies come wrapped in arrays.
            return match parse_error_body(data.as_bytes()) {
                Some(rpc) => Err(TranslateError::Upstream(map_status(500, &rpc))),
                None => Err(TranslateError::UnexpectedEvent {
                    provider: PROVIDER,
                    event: "a JSON array".into(),
                    state: "streaming",
                }),
            };
        }
        let resp: GenerateContentResponse<'_> =
            serde_json::from_str(data).map_err(|source| TranslateError::InvalidJson {
                provider: PROVIDER,
                context: "streamGenerateContent chunk".into(),
                source,
            })?;
        if let Some(rpc) = &resp.error {
            return Err(TranslateError::Upstream(map_status(500, rpc)));
        }
        let mut sink = EmitSink { emitter: &mut self.emitter, out };
        self.mapper.apply(&resp, &mut sink);
        Ok(())
    }

    fn fail(&mut self, err: TranslateError) -> Result<StreamSummary, TranslateError> {
        self.failed = true;
        Err(err)
    }
}

impl ByteTranslator for StreamPipeline {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<OutChunk>) -> Result<(), TranslateError> {
        if self.failed {
            return Ok(());
        }
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let mapped = self.frames(out);
        let result = decoded
            .map_err(|e| TranslateError::Framing { provider: PROVIDER, message: e.to_string() })
            .and(mapped);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn finish(&mut self, out: &mut Vec<OutChunk>) -> Result<StreamSummary, TranslateError> {
        if self.failed {
            return Err(TranslateError::Truncated { provider: PROVIDER });
        }
        // The last line may be a raw JSON error without a final newline.
        let mut frames = std::mem::take(&mut self.frames);
        self.decoder.finish_into(&mut frames);
        self.frames = frames;
        if let Err(e) = self.frames(out) {
            return self.fail(e);
        }
        if !self.mapper.is_complete() || self.mapper.unfinished().next().is_some() {
            // Gemini has no terminal event: without a finishReason the stream was cut short,
            // unless the server appended its error body.
            let err = match parse_error_body(self.tail.as_bytes()) {
                Some(rpc) => TranslateError::Upstream(map_status(500, &rpc)),
                None => TranslateError::Truncated { provider: PROVIDER },
            };
            return self.fail(err);
        }
        Ok(self.emitter.end(out))
    }

    fn is_done(&self) -> bool {
        self.mapper.is_complete() && self.mapper.unfinished().next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use prism_types::FinishReason;

    use super::*;

    fn ctx() -> StreamContext {
        StreamContext { include_usage: true, ..StreamContext::new("chatcmpl-t", 1, "gemini-flash") }
    }

    fn event(json: &str) -> String {
        format!("data: {json}\r\n\r\n")
    }

    fn text(t: &str, finish: Option<&str>) -> String {
        let finish = finish.map(|f| format!(",\"finishReason\": \"{f}\"")).unwrap_or_default();
        event(&format!(
            r#"{{"candidates": [{{"content": {{"parts": [{{"text": "{t}"}}],"role": "model"}}{finish},"index": 0}}]}}"#
        ))
    }

    /// Feeds `pieces`, then finishes; returns the chunks and the outcome.
    fn run(pieces: &[&[u8]]) -> (Vec<OutChunk>, Result<StreamSummary, TranslateError>) {
        let mut p = StreamPipeline::new(ctx());
        let mut out = Vec::new();
        for piece in pieces {
            if let Err(e) = p.feed(piece, &mut out) {
                return (out, Err(e));
            }
        }
        let res = p.finish(&mut out);
        (out, res)
    }

    fn contents(out: &[OutChunk]) -> String {
        out.iter()
            .flat_map(|c| c.chunk.choices.iter())
            .filter_map(|c| c.delta.content.clone())
            .collect()
    }

    #[test]
    fn raw_error_tail_without_final_newline_is_an_upstream_error_with_retry_delay() {
        let tail = "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Quota exceeded.\",\n    \"status\": \"RESOURCE_EXHAUSTED\",\n    \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"7.2s\"}]\n  }\n}";
        let stream = format!("{}{tail}", text("Hi", None));
        let (out, res) = run(&[stream.as_bytes()]);
        assert_eq!(contents(&out), "Hi");
        match res {
            Err(TranslateError::Upstream(err)) => {
                assert_eq!(
                    (err.status, err.retry_after_secs, err.error.message.as_str()),
                    (429, Some(8), "Quota exceeded.")
                );
            }
            other => panic!("expected an upstream error, got {other:?}"),
        }
    }

    #[test]
    fn error_payloads_in_data_events() {
        let (_, res) = run(&[event(r#"{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}"#).as_bytes()]);
        assert!(matches!(res, Err(TranslateError::Upstream(ref e)) if e.status == 500), "{res:?}");
        let (_, res) = run(&[event(
            r#"[{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]"#,
        )
        .as_bytes()]);
        assert!(matches!(res, Err(TranslateError::Upstream(ref e)) if e.status == 503), "{res:?}");
        let (_, res) = run(&[event("[1, 2]").as_bytes()]);
        assert!(matches!(res, Err(TranslateError::UnexpectedEvent { .. })), "{res:?}");
        let (_, res) = run(&[event(r#"{"candidates": [{"content": "#).as_bytes()]);
        assert!(matches!(res, Err(TranslateError::InvalidJson { .. })), "{res:?}");
    }

    #[test]
    fn non_error_garbage_after_an_unfinished_stream_is_truncation() {
        let stream = format!("{}<html>502 Bad Gateway</html>\n: keep-alive\n", text("Hi", None));
        let (_, res) = run(&[stream.as_bytes()]);
        assert!(matches!(res, Err(TranslateError::Truncated { provider: "gemini" })), "{res:?}");
        // The same garbage after a finished stream is ignored.
        let stream = format!("{}{}<html>oops</html>\n", text("Hi", None), text("!", Some("STOP")));
        let (out, res) = run(&[stream.as_bytes()]);
        assert_eq!(contents(&out), "Hi!");
        assert_eq!(res.unwrap().finish_reasons, vec![(0, FinishReason::Stop)]);
    }

    #[test]
    fn done_after_finish_and_late_parts_are_dropped() {
        let mut p = StreamPipeline::new(ctx());
        let mut out = Vec::new();
        p.feed(text("Hi", None).as_bytes(), &mut out).unwrap();
        assert!(!p.is_done());
        p.feed(text("", Some("STOP")).as_bytes(), &mut out).unwrap();
        assert!(p.is_done());
        p.feed(text("late", None).as_bytes(), &mut out).unwrap();
        let late_usage = r#"{"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}}"#;
        p.feed(event(late_usage).as_bytes(), &mut out).unwrap();
        let summary = p.finish(&mut out).unwrap();
        assert_eq!(contents(&out), "Hi");
        assert_eq!(summary.usage.map(|u| u.total_tokens), Some(4));
    }

    #[test]
    fn every_started_candidate_must_finish() {
        let two = event(
            r#"{"candidates": [{"content": {"parts": [{"text": "a"}]},"index": 0,"finishReason": "STOP"},{"content": {"parts": [{"text": "b"}]},"index": 1}]}"#,
        );
        let mut p = StreamPipeline::new(ctx());
        let mut out = Vec::new();
        p.feed(two.as_bytes(), &mut out).unwrap();
        assert!(!p.is_done(), "candidate 1 is still open");
        assert!(matches!(p.finish(&mut out), Err(TranslateError::Truncated { .. })));
    }

    #[test]
    fn huge_candidate_indices_are_ignored() {
        let stream = format!(
            "{}{}",
            event(
                r#"{"candidates": [{"content": {"parts": [{"text": "x"}]},"index": 4294967295,"finishReason": "STOP"}]}"#
            ),
            text("ok", Some("STOP"))
        );
        let (out, res) = run(&[stream.as_bytes()]);
        assert_eq!(contents(&out), "ok");
        assert_eq!(res.unwrap().finish_reasons, vec![(0, FinishReason::Stop)]);
    }

    #[test]
    fn vertex_traffic_type_only_usage_keeps_the_last_real_snapshot() {
        let stream = format!(
            "{}{}",
            event(
                r#"{"candidates": [{"content": {"parts": [{"text": "a"}]}}],"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1}}"#
            ),
            event(
                r#"{"candidates": [{"content": {"parts": [{"text": "b"}]},"finishReason": "STOP"}],"usageMetadata": {"trafficType": "ON_DEMAND"}}"#
            ),
        );
        let (_, res) = run(&[stream.as_bytes()]);
        let usage = res.unwrap().usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 1));
    }

    #[test]
    fn eof_without_any_event_is_truncation_and_errors_end_the_stream() {
        let (out, res) = run(&[]);
        assert!(out.is_empty());
        assert!(matches!(res, Err(TranslateError::Truncated { .. })));
        let mut p = StreamPipeline::new(ctx());
        let mut out = Vec::new();
        assert!(p.feed(event("{nope").as_bytes(), &mut out).is_err());
        assert!(p.feed(text("more", Some("STOP")).as_bytes(), &mut out).is_ok());
        assert!(out.is_empty());
        assert!(p.finish(&mut out).is_err());
    }

    /// Replays the real recordings (read-only, when present) through the pipeline.
    #[test]
    fn reference_recordings_translate() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference-streams/gemini");
        if !dir.exists() {
            return;
        }
        // Byte-exact SSE: a Gemini 3 call with a thought signature, STOP on a separate chunk.
        let raw = std::fs::read(dir.join("gemini3-toolcall-thought-signature.raw.sse")).unwrap();
        let (out, res) = run(&raw.chunks(7).collect::<Vec<_>>());
        assert_eq!(res.unwrap().finish_reasons, vec![(0, FinishReason::ToolCalls)]);
        let call = out
            .iter()
            .flat_map(|c| c.chunk.choices.iter())
            .find_map(|c| c.delta.tool_calls.as_ref())
            .and_then(|calls| calls.first())
            .unwrap();
        let id = call.id.as_deref().unwrap();
        let (_, signature) = super::super::tool_id::decode(id);
        assert!(signature.unwrap().starts_with("EpwICpkIAXLI2nx"), "{id}");
        assert_eq!(call.function.as_ref().unwrap().arguments.as_deref(), Some("{}"));

        // One payload per line: re-frame as SSE.
        for (file, finish, text) in [
            (
                "google-text.chunks.txt",
                FinishReason::Stop,
                "There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y",
            ),
            ("google-tool-call.chunks.txt", FinishReason::ToolCalls, ""),
        ] {
            let lines = std::fs::read_to_string(dir.join(file)).unwrap();
            let sse: String = lines.lines().map(event).collect();
            let (out, res) = run(&[sse.as_bytes()]);
            assert_eq!(res.unwrap().finish_reasons, vec![(0, finish)], "{file}");
            assert_eq!(contents(&out), text, "{file}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), cut in 0usize..512) {
            let cut = cut.min(bytes.len());
            let _ = run(&[&bytes[..cut], &bytes[cut..]]);
        }

        #[test]
        fn arbitrary_chunk_json_never_panics(
            index in proptest::option::of(0u32..40),
            finish in proptest::option::of("[A-Z_]{1,12}"),
            text in ".{0,12}",
            args in proptest::option::of("\\{[a-z0-9:\" ,\\[\\]]{0,20}\\}"),
        ) {
            let mut parts = vec![serde_json::json!({"text": text, "thought": index.is_some_and(|i| i % 2 == 0)})];
            if let Some(a) = &args {
                let mut call = serde_json::json!({"name": "f"});
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(a) { call["args"] = v; }
                parts.push(serde_json::json!({"functionCall": call}));
            }
            let mut cand = serde_json::json!({"content": {"parts": parts}});
            if let Some(i) = index { cand["index"] = i.into(); }
            if let Some(f) = &finish { cand["finishReason"] = f.clone().into(); }
            let body = event(&serde_json::json!({"candidates": [cand]}).to_string());
            let (out, res) = run(&[body.as_bytes()]);
            // Every emitted choice is announced by its role delta first.
            let mut started = std::collections::HashSet::new();
            for c in out.iter().flat_map(|c| c.chunk.choices.iter()) {
                if c.delta.role.is_some() { started.insert(c.index); }
                proptest::prop_assert!(started.contains(&c.index));
            }
            if finish.is_some() && index.is_none_or(|i| i < 16) {
                proptest::prop_assert!(res.is_ok(), "{res:?}");
            }
        }
    }
}

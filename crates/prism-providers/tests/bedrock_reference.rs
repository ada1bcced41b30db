//! Replays the real recorded Bedrock ConverseStream bodies in `shared/reference-streams/bedrock`
//! (read-only, outside the repository) when that directory exists; passes without it.

#![expect(
    clippy::unwrap_used,
    reason = "a recording that does not translate should fail the test loudly"
)]

use std::path::PathBuf;

use prism_providers::{ByteTranslator, Deployment, OutChunk, ProviderKind, StreamContext, bedrock};
use prism_types::{FinishReason, ThinkingBlock};

fn reference_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference-streams/bedrock");
    dir.is_dir().then_some(dir)
}

/// What the client would get, rendered compactly: the concatenated content, reasoning and tool
/// calls, plus the finish reason and usage.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    content: String,
    reasoning: String,
    tools: Vec<(u32, String, String)>,
    finish: Option<FinishReason>,
    prompt_tokens: Option<u64>,
    /// `thinking_blocks` entries: signature-only thinking blocks and redacted blocks.
    signatures: usize,
    redacted: usize,
}

fn run(bytes: &[u8], piece: usize) -> Outcome {
    let deployment = Deployment::new(ProviderKind::Bedrock, "http://127.0.0.1:1", "m");
    let ctx = StreamContext { include_usage: true, ..StreamContext::new("chatcmpl-r", 1, "pub") };
    let mut pipeline = bedrock::StreamPipeline::new(&deployment, ctx);
    let mut out: Vec<OutChunk> = Vec::new();
    for chunk in bytes.chunks(piece) {
        pipeline.feed(chunk, &mut out).unwrap();
    }
    assert!(pipeline.is_done(), "recorded streams end with messageStop and metadata");
    let summary = pipeline.finish(&mut out).unwrap();
    let mut o =
        Outcome { prompt_tokens: summary.usage.map(|u| u.prompt_tokens), ..Outcome::default() };
    for c in &out {
        for choice in &c.chunk.choices {
            let d = &choice.delta;
            if d.role.is_none() {
                assert_ne!(d.content.as_deref(), Some(""), "empty content delta");
            }
            o.content.push_str(d.content.as_deref().unwrap_or(""));
            o.reasoning.push_str(d.reasoning_content.as_deref().unwrap_or(""));
            for block in d.thinking_blocks.iter().flatten() {
                match block {
                    ThinkingBlock::Thinking { thinking, signature } => {
                        assert!(thinking.is_empty() && signature.is_some(), "{block:?}");
                        o.signatures += 1;
                    }
                    ThinkingBlock::RedactedThinking { .. } => o.redacted += 1,
                }
            }
            for call in d.tool_calls.iter().flatten() {
                let f = call.function.as_ref().unwrap();
                match &call.id {
                    Some(id) => o.tools.push((
                        call.index,
                        id.clone(),
                        f.arguments.clone().unwrap_or_default(),
                    )),
                    None => o
                        .tools
                        .iter_mut()
                        .find(|t| t.0 == call.index)
                        .unwrap()
                        .2
                        .push_str(f.arguments.as_deref().unwrap()),
                }
            }
            o.finish = o.finish.or(choice.finish_reason);
        }
    }
    o
}

#[test]
fn recorded_converse_streams_translate_cleanly_in_any_piece_size() {
    let Some(dir) = reference_dir() else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("eventstream") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let whole = run(&bytes, bytes.len());
        for piece in [1, 7, 64] {
            assert_eq!(run(&bytes, piece), whole, "{}: piece size {piece}", path.display());
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(whole.prompt_tokens.is_some(), "{name}: usage");
        match name {
            "converse-stream-nova-tooluse.eventstream" => {
                assert_eq!(whole.finish, Some(FinishReason::ToolCalls), "{name}");
                assert_eq!(whole.tools.len(), 1, "{name}");
                assert_eq!(whole.tools[0].0, 0, "{name}: OpenAI index, not contentBlockIndex 1");
                assert!(whole.tools[0].1.starts_with("tooluse_"), "{name}");
                serde_json::from_str::<serde_json::Value>(&whole.tools[0].2).unwrap();
            }
            "converse-stream-claude-reasoning.eventstream"
            | "converse-stream-gptoss-empty-text-then-reasoning.eventstream" => {
                assert!(!whole.reasoning.is_empty(), "{name}");
                assert!(!whole.content.is_empty(), "{name}");
                assert_eq!(whole.finish, Some(FinishReason::Stop), "{name}");
                // Claude signs its reasoning block; gpt-oss reasoning carries no signature.
                let signed = usize::from(name.contains("claude"));
                assert_eq!((whole.signatures, whole.redacted), (signed, 0), "{name}");
            }
            "converse-stream-claude-redacted-reasoning.eventstream" => {
                assert!(!whole.content.is_empty(), "{name}");
                assert_eq!((whole.signatures, whole.redacted), (0, 2), "{name}");
                assert_eq!(whole.finish, Some(FinishReason::Stop), "{name}");
            }
            _ => {
                assert!(!whole.content.is_empty(), "{name}");
                assert_eq!(whole.finish, Some(FinishReason::Stop), "{name}");
                assert_eq!((whole.signatures, whole.redacted), (0, 0), "{name}");
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}

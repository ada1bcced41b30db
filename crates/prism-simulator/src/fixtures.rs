//! The fixture streams the demo replays, embedded at build time from the workspace's
//! `fixtures/<provider>/text_basic/` (real native bytes, written for the translators' golden
//! tests), so `prism serve`'s demo sends exactly what the providers send.

use crate::Wire;

const OPENAI: &[u8] = include_bytes!("../../../fixtures/openai/text_basic/upstream.sse");
const ANTHROPIC: &[u8] = include_bytes!("../../../fixtures/anthropic/text_basic/upstream.sse");
const GEMINI: &[u8] = include_bytes!("../../../fixtures/gemini/text_basic/upstream.sse");
const BEDROCK_CONVERSE: &[u8] =
    include_bytes!("../../../fixtures/bedrock/text_basic/upstream.eventstream");

/// The fixture stream [`Behavior::Demo`](crate::Behavior::Demo) replays for streaming requests on
/// `wire`, if this build embeds one. OpenAI Responses and Bedrock InvokeModel have none: their demo streams are rendered
/// from [`demo_reply`](crate::demo_reply), as are all non-streaming demo answers.
pub fn demo_fixture(wire: Wire) -> Option<&'static [u8]> {
    match wire {
        Wire::OpenAi => Some(OPENAI),
        Wire::Anthropic => Some(ANTHROPIC),
        Wire::Gemini => Some(GEMINI),
        Wire::BedrockConverse => Some(BEDROCK_CONVERSE),
        Wire::OpenAiResponses | Wire::BedrockInvoke => None,
    }
}

//! The incremental output scanner: one per response stream, fed every chunk, holding a bounded
//! tail per choice and channel so matches spanning chunk boundaries are caught at the same offset
//! as in the unchunked text, with per-chunk cost independent of the stream's length.

use std::sync::Arc;

use prism_types::{
    ChatChunk, ChatCompletion, ChunkChoice, Delta, FunctionCallDelta, Role, ThinkingBlock,
    ToolCallDelta,
};

use crate::config::Mode;
use crate::engine::{CONTEXT_CHARS, Cursor, MatchCache, Matcher, back_chars};
use crate::set::{GuardrailSet, RuleBody};
use crate::verdict::{Channel, Detector, Finding, Location, Verdict};

/// Buffered text already released and decided is dropped once it passes this size (or half the
/// buffer), keeping the copy cost amortised O(1) per byte.
const TRIM_THRESHOLD: usize = 4096;

/// What one [`OutputScanner::scan_delta`] (or [`OutputScanner::end_channel`]) call decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ScanOutcome {
    /// Text of this channel that may be forwarded now, in order. Without hold-back rules it is the
    /// delta itself; with them it may be shorter, empty, or include text withheld earlier. When
    /// the verdict blocks, it is the text before the violation (possibly empty).
    pub release: String,
    /// Findings decided by this call. If it blocks, forward `release`, then end the stream.
    pub verdict: Verdict,
}

/// Text released when channels are flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The choice index.
    pub choice: u32,
    /// The channel.
    pub channel: Channel,
    /// The text to forward.
    pub text: String,
}

/// What [`OutputScanner::finish`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct FinishOutcome {
    /// Remaining text per channel, in channel creation order.
    pub releases: Vec<Release>,
    /// Findings decided at the end of the text.
    pub verdict: Verdict,
}

/// What [`OutputScanner::scan_chunk`] (or [`OutputScanner::finish_stream`]) decided.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ChunkOutcome {
    /// The chunk to send to the client, with each text replaced by the released text; `None` when
    /// nothing is left to send. Unchanged (equal to the input) when no rule holds text back.
    pub forward: Option<ChatChunk>,
    /// Findings decided by this chunk. When it blocks: send `forward` (if any), then the error
    /// event, and end the stream without `[DONE]`.
    pub verdict: Verdict,
}

/// Scans one streamed response. Create one per stream with [`OutputScanner::new`], feed every
/// chunk to [`OutputScanner::scan_chunk`] (or every text delta to
/// [`OutputScanner::scan_delta`]), and call [`OutputScanner::finish_stream`] (or
/// [`OutputScanner::finish`]) when the upstream ends. Cloning copies the scanner's state.
#[derive(Clone)]
pub struct OutputScanner {
    /// Keeps the compiled rules alive.
    _set: GuardrailSet,
    matchers: Vec<OutMatcher>,
    caches: Vec<Option<MatchCache>>,
    limits: Vec<CharLimit>,
    choices: Vec<ChoiceState>,
    blocked: Option<Finding>,
    envelope: Option<Envelope>,
}

#[derive(Clone)]
struct OutMatcher {
    matcher: Arc<Matcher>,
    rule: Arc<str>,
    mode: Mode,
    hold_back: bool,
    reasoning: bool,
}

#[derive(Clone)]
struct CharLimit {
    rule: Arc<str>,
    mode: Mode,
    limit: usize,
    reasoning: bool,
    /// Characters counted so far across all choices and channels.
    used: usize,
    fired: bool,
}

#[derive(Clone)]
struct ChoiceState {
    index: u32,
    /// The channel that received the last delta; a delta on another channel ends its segment.
    active: Option<Channel>,
    streams: Vec<Stream>,
}

/// One channel of one choice.
#[derive(Clone)]
struct Stream {
    channel: Channel,
    /// Undecided and unreleased text plus a little context; never the whole stream.
    buf: String,
    /// Absolute byte offset of `buf[0]` within the channel's text.
    base: usize,
    /// `buf[..released]` has been handed out.
    released: usize,
    /// Characters received on this channel.
    chars: usize,
    /// Per applicable matcher (index into `OutputScanner::matchers`).
    cursors: Vec<(usize, Cursor)>,
}

#[derive(Clone)]
struct Envelope {
    id: String,
    object: String,
    created: u64,
    model: String,
    system_fingerprint: Option<String>,
    service_tier: Option<String>,
}

/// A finding before ordering: resolution point, absolute start, tie-break order.
struct Hit {
    resolved_at: usize,
    start: usize,
    order: usize,
    finding: Finding,
}

impl OutputScanner {
    /// A scanner for one stream with the set's output rules. Cheap: DFA caches are created on
    /// first use.
    pub fn new(set: &GuardrailSet) -> OutputScanner {
        let mut matchers = Vec::new();
        let mut limits = Vec::new();
        for rule in set.rules().iter().filter(|r| r.stage.checks_output()) {
            match &rule.body {
                RuleBody::Matchers(ms) => matchers.extend(ms.iter().map(|m| OutMatcher {
                    matcher: Arc::clone(m),
                    rule: Arc::clone(&rule.name),
                    mode: rule.mode,
                    hold_back: rule.hold_back,
                    reasoning: rule.scan_reasoning,
                })),
                RuleBody::MaxChars(limit) => limits.push(CharLimit {
                    rule: Arc::clone(&rule.name),
                    mode: rule.mode,
                    limit: *limit,
                    reasoning: rule.scan_reasoning,
                    used: 0,
                    fired: false,
                }),
                RuleBody::Phrases(_) => {}
            }
        }
        OutputScanner {
            _set: set.clone(),
            caches: vec![None; matchers.len()],
            matchers,
            limits,
            choices: Vec::new(),
            blocked: None,
            envelope: None,
        }
    }

    /// Whether any output rule is configured; when not, the server may skip the scanner.
    pub fn is_active(&self) -> bool {
        !self.matchers.is_empty() || !self.limits.is_empty()
    }

    /// The blocking finding, once a scan has blocked. Every later call returns it again.
    pub fn blocked(&self) -> Option<&Finding> {
        self.blocked.as_ref()
    }

    /// Feeds one text delta of `channel` of choice `choice`.
    pub fn scan_delta(&mut self, choice: u32, channel: Channel, text: &str) -> ScanOutcome {
        if let Some(outcome) = self.blocked_outcome() {
            return outcome;
        }
        let (ci, si) = self.stream_slot(choice, channel);
        self.process(ci, si, text, false)
    }

    /// Ends the current segment of a channel: decides everything pending as if the text ended
    /// here and releases the rest. A later delta on the channel starts a new segment (offsets
    /// continue; a match spanning the two segments is not looked for).
    pub fn end_channel(&mut self, choice: u32, channel: Channel) -> ScanOutcome {
        if let Some(outcome) = self.blocked_outcome() {
            return outcome;
        }
        match self.find_stream(choice, channel) {
            Some((ci, si)) => self.process(ci, si, "", true),
            None => ScanOutcome { release: String::new(), verdict: Verdict::pass() },
        }
    }

    /// End of the stream: ends every channel of every choice.
    pub fn finish(&mut self) -> FinishOutcome {
        if let Some(outcome) = self.blocked_outcome() {
            return FinishOutcome { releases: Vec::new(), verdict: outcome.verdict };
        }
        let mut releases = Vec::new();
        let mut verdict = Verdict::pass();
        for ci in 0..self.choices.len() {
            let (more, v) = self.end_choice_at(ci);
            releases.extend(more);
            verdict.extend(v);
            if self.blocked.is_some() {
                break;
            }
        }
        FinishOutcome { releases, verdict }
    }

    /// Feeds one chunk and returns the chunk to forward. Handles everything the wire needs:
    /// text, refusal, reasoning and tool-call argument deltas; a delta on a new channel (content
    /// after reasoning, the next tool call) flushes the previous channel first; a choice's
    /// `finish_reason` flushes all its channels into that same chunk, so withheld text always
    /// precedes the finish. Role, ids, names, logprobs and usage pass through.
    pub fn scan_chunk(&mut self, mut chunk: ChatChunk) -> ChunkOutcome {
        if let Some(outcome) = self.blocked_outcome() {
            return ChunkOutcome { forward: None, verdict: outcome.verdict };
        }
        self.envelope = Some(Envelope {
            id: chunk.id.clone(),
            object: chunk.object.clone(),
            created: chunk.created,
            model: chunk.model.clone(),
            system_fingerprint: chunk.system_fingerprint.clone(),
            service_tier: chunk.service_tier.clone(),
        });
        let choices = std::mem::take(&mut chunk.choices);
        let had_choices = !choices.is_empty();
        let mut verdict = Verdict::pass();
        for choice in choices {
            if let Some(rebuilt) = self.scan_choice(choice, &mut verdict) {
                chunk.choices.push(rebuilt);
            }
            if self.blocked.is_some() {
                break;
            }
        }
        if self.blocked.is_some() {
            chunk.usage = None;
        }
        let empty = had_choices && chunk.choices.is_empty() && chunk.usage.is_none();
        ChunkOutcome { forward: (!empty).then_some(chunk), verdict }
    }

    /// End of the stream for [`OutputScanner::scan_chunk`] users: the text still withheld (when a
    /// choice never sent `finish_reason`) as one last chunk with the stream's id and model.
    pub fn finish_stream(&mut self) -> ChunkOutcome {
        let FinishOutcome { releases, verdict } = self.finish();
        let Some(envelope) = self.envelope.clone() else {
            return ChunkOutcome { forward: None, verdict };
        };
        let mut builders: Vec<(u32, DeltaBuilder)> = Vec::new();
        for release in releases {
            let slot = match builders.iter().position(|(i, _)| *i == release.choice) {
                Some(slot) => slot,
                None => {
                    builders.push((release.choice, DeltaBuilder::default()));
                    builders.len() - 1
                }
            };
            builders[slot].1.append(release.channel, &release.text);
        }
        if builders.is_empty() {
            return ChunkOutcome { forward: None, verdict };
        }
        let mut chunk = ChatChunk::new(envelope.id, envelope.created, envelope.model);
        chunk.object = envelope.object;
        chunk.system_fingerprint = envelope.system_fingerprint;
        chunk.service_tier = envelope.service_tier;
        for (index, builder) in builders {
            chunk = chunk.with_delta(index, builder.build());
        }
        ChunkOutcome { forward: Some(chunk), verdict }
    }

    fn blocked_outcome(&self) -> Option<ScanOutcome> {
        self.blocked.as_ref().map(|b| ScanOutcome {
            release: String::new(),
            verdict: Verdict::from_findings(vec![b.clone()]),
        })
    }

    fn find_stream(&self, choice: u32, channel: Channel) -> Option<(usize, usize)> {
        let ci = self.choices.iter().position(|c| c.index == choice)?;
        let si = self.choices[ci].streams.iter().position(|s| s.channel == channel)?;
        Some((ci, si))
    }

    fn stream_slot(&mut self, choice: u32, channel: Channel) -> (usize, usize) {
        if let Some(slot) = self.find_stream(choice, channel) {
            return slot;
        }
        let ci = match self.choices.iter().position(|c| c.index == choice) {
            Some(ci) => ci,
            None => {
                self.choices.push(ChoiceState { index: choice, active: None, streams: Vec::new() });
                self.choices.len() - 1
            }
        };
        let cursors = self
            .matchers
            .iter()
            .enumerate()
            .filter(|(_, m)| channel != Channel::Reasoning || m.reasoning)
            .map(|(i, _)| (i, Cursor::at(0, 0, 0)))
            .collect();
        let streams = &mut self.choices[ci].streams;
        streams.push(Stream {
            channel,
            buf: String::new(),
            base: 0,
            released: 0,
            chars: 0,
            cursors,
        });
        (ci, streams.len() - 1)
    }

    /// Appends `text` to a stream, decides what can be decided, releases what is safe.
    fn process(&mut self, ci: usize, si: usize, text: &str, is_final: bool) -> ScanOutcome {
        let OutputScanner { matchers, caches, limits, choices, blocked, .. } = self;
        let choice = choices[ci].index;
        let stream = &mut choices[ci].streams[si];
        let location = Location::Output { choice, channel: stream.channel };
        let text_start = stream.buf.len();
        stream.buf.push_str(text);
        let first_char = stream.chars;
        let text_chars = text.chars().count();
        stream.chars += text_chars;

        let mut hits: Vec<Hit> = Vec::new();
        for (mi, cursor) in stream.cursors.iter_mut() {
            let m = &matchers[*mi];
            let cache = caches[*mi].get_or_insert_with(|| m.matcher.new_cache());
            let order = *mi;
            m.matcher.advance(cache, &stream.buf, stream.base, cursor, is_final, &mut |raw| {
                hits.push(Hit {
                    resolved_at: raw.resolved_at,
                    start: raw.start,
                    order,
                    finding: Finding {
                        rule: Arc::clone(&m.rule),
                        mode: m.mode,
                        detector: m.matcher.detector,
                        location,
                        offset: raw.char_offset,
                        len: raw.char_len,
                    },
                })
            });
        }
        for (li, limit) in limits.iter_mut().enumerate() {
            if limit.fired
                || text_chars == 0
                || (stream.channel == Channel::Reasoning && !limit.reasoning)
            {
                continue;
            }
            if limit.used + text_chars <= limit.limit {
                limit.used += text_chars;
                continue;
            }
            let within = limit.limit - limit.used;
            let byte = text_start + text.char_indices().nth(within).map_or(text.len(), |(i, _)| i);
            limit.used = limit.limit;
            limit.fired = true;
            hits.push(Hit {
                resolved_at: stream.base + byte,
                start: byte,
                order: matchers.len() + li,
                finding: Finding {
                    rule: Arc::clone(&limit.rule),
                    mode: limit.mode,
                    detector: Detector::MaxOutputChars,
                    location,
                    offset: first_char + within,
                    len: 0,
                },
            });
        }

        let base = stream.base;
        hits.sort_by_key(|h| (h.resolved_at, base + h.start, h.order));
        let mut findings = Vec::with_capacity(hits.len());
        let mut block_at = None;
        for hit in hits {
            let blocks = hit.finding.is_blocking();
            if blocks {
                *blocked = Some(hit.finding.clone());
                block_at = Some(hit.start);
            }
            findings.push(hit.finding);
            if blocks {
                break;
            }
        }

        let mut release_end = if is_final {
            stream.buf.len()
        } else {
            stream
                .cursors
                .iter()
                .filter(|(mi, _)| matchers[*mi].hold_back)
                .map(|(_, c)| c.pos)
                .min()
                .unwrap_or(stream.buf.len())
        };
        if let Some(at) = block_at {
            release_end = release_end.min(at);
        }
        let release = match stream.buf.get(stream.released..release_end) {
            Some(text) if release_end > stream.released => text.to_owned(),
            _ => String::new(),
        };
        stream.released = stream.released.max(release_end);

        if is_final {
            stream.base += stream.buf.len();
            stream.buf.clear();
            stream.released = 0;
            for (_, cursor) in stream.cursors.iter_mut() {
                *cursor = Cursor::at(0, stream.chars, stream.base);
            }
        } else {
            stream.trim();
        }
        ScanOutcome { release, verdict: Verdict::from_findings(findings) }
    }

    /// Ends every channel of the choice at `ci`; stops at a block.
    fn end_choice_at(&mut self, ci: usize) -> (Vec<Release>, Verdict) {
        let mut releases = Vec::new();
        let mut verdict = Verdict::pass();
        let choice = self.choices[ci].index;
        self.choices[ci].active = None;
        for si in 0..self.choices[ci].streams.len() {
            let channel = self.choices[ci].streams[si].channel;
            let out = self.process(ci, si, "", true);
            if !out.release.is_empty() {
                releases.push(Release { choice, channel, text: out.release });
            }
            verdict.extend(out.verdict);
            if self.blocked.is_some() {
                break;
            }
        }
        (releases, verdict)
    }

    /// Makes `channel` the choice's active channel, ending the previous one into `builder`.
    fn switch_to(
        &mut self,
        choice: u32,
        channel: Channel,
        builder: &mut DeltaBuilder,
        verdict: &mut Verdict,
    ) {
        let previous = self.choices.iter_mut().find(|c| c.index == choice).and_then(|c| {
            let previous = c.active.filter(|&a| a != channel);
            c.active = Some(channel);
            previous
        });
        if let Some(previous) = previous {
            let out = self.end_channel(choice, previous);
            builder.append(previous, &out.release);
            verdict.extend(out.verdict);
        }
    }

    /// Scans one choice of a chunk; `None` when nothing of it is left to forward.
    fn scan_choice(&mut self, choice: ChunkChoice, verdict: &mut Verdict) -> Option<ChunkChoice> {
        let ChunkChoice { index, delta, logprobs, finish_reason } = choice;
        let originally_empty = delta.is_empty();
        let Delta { role, content, refusal, reasoning_content, thinking_blocks, tool_calls } =
            delta;
        let mut builder = DeltaBuilder { role, thinking_blocks, ..DeltaBuilder::default() };
        builder.tools_given = tool_calls.is_some();
        for (channel, text) in [
            (Channel::Reasoning, reasoning_content),
            (Channel::Content, content),
            (Channel::Refusal, refusal),
        ] {
            let Some(text) = text else { continue };
            self.switch_to(index, channel, &mut builder, verdict);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
            let out = self.scan_delta(index, channel, &text);
            self.set_active(index, channel);
            builder.field(channel).set_original(text, &out.release);
            verdict.extend(out.verdict);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
        }
        // A thinking block (signature or redacted data) closes the reasoning before it: release
        // any held-back reasoning into this same delta, so clients that rebuild blocks from the
        // reasoning text seen before each block get the whole text with its signature.
        if builder.thinking_blocks.is_some()
            && let Some(c) = self.choices.iter_mut().find(|c| c.index == index)
            && c.active == Some(Channel::Reasoning)
        {
            c.active = None;
            let out = self.end_channel(index, Channel::Reasoning);
            builder.append(Channel::Reasoning, &out.release);
            verdict.extend(out.verdict);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
        }
        for call in tool_calls.into_iter().flatten() {
            let channel = Channel::ToolArguments(call.index);
            self.switch_to(index, channel, &mut builder, verdict);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
            let args = call.function.as_ref().and_then(|f| f.arguments.as_deref()).unwrap_or("");
            let out = self.scan_delta(index, channel, args);
            self.set_active(index, channel);
            builder.tool_fragment(call, out.release);
            verdict.extend(out.verdict);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
        }
        if finish_reason.is_some()
            && let Some(ci) = self.choices.iter().position(|c| c.index == index)
        {
            let (releases, v) = self.end_choice_at(ci);
            for release in releases {
                builder.append(release.channel, &release.text);
            }
            verdict.extend(v);
            if self.blocked.is_some() {
                return builder.blocked(index);
            }
        }
        let delta = builder.build();
        if delta.is_empty() && !originally_empty && finish_reason.is_none() && logprobs.is_none() {
            return None;
        }
        Some(ChunkChoice { index, delta, logprobs, finish_reason })
    }

    fn set_active(&mut self, choice: u32, channel: Channel) {
        if let Some(c) = self.choices.iter_mut().find(|c| c.index == choice) {
            c.active = Some(channel);
        }
    }
}

impl Stream {
    /// Drops text that is released and that no matcher needs any more (keeping
    /// [`CONTEXT_CHARS`] before each undecided position for the validators).
    fn trim(&mut self) {
        let mut keep = self.released;
        for (_, cursor) in &self.cursors {
            keep = keep.min(back_chars(&self.buf, cursor.pos, CONTEXT_CHARS));
        }
        if keep == 0 || (keep < TRIM_THRESHOLD && keep * 2 < self.buf.len()) {
            return;
        }
        self.buf.drain(..keep);
        self.base += keep;
        self.released -= keep;
        for (_, cursor) in &mut self.cursors {
            cursor.pos -= keep;
        }
    }
}

/// Rebuilds a delta from released text, keeping fields byte-identical when nothing changed.
#[derive(Default)]
struct DeltaBuilder {
    role: Option<Role>,
    content: Field,
    refusal: Field,
    reasoning: Field,
    /// Thinking-block replay data (signatures, redacted blocks): no text to scan, kept as is.
    thinking_blocks: Option<Vec<ThinkingBlock>>,
    tools: Vec<ToolCallDelta>,
    tools_given: bool,
}

#[derive(Default)]
struct Field {
    original: Option<String>,
    out: String,
}

impl Field {
    fn set_original(&mut self, original: String, release: &str) {
        self.original = Some(original);
        self.out.push_str(release);
    }

    fn finish(self) -> Option<String> {
        match self.original {
            Some(original) if original == self.out => Some(original),
            _ if self.out.is_empty() => None,
            _ => Some(self.out),
        }
    }
}

impl DeltaBuilder {
    fn field(&mut self, channel: Channel) -> &mut Field {
        match channel {
            Channel::Reasoning => &mut self.reasoning,
            Channel::Refusal => &mut self.refusal,
            Channel::Content | Channel::ToolArguments(_) => &mut self.content,
        }
    }

    /// Adds flushed text of `channel` (a previous channel, or this chunk's finish).
    fn append(&mut self, channel: Channel, text: &str) {
        if text.is_empty() {
            return;
        }
        let Channel::ToolArguments(index) = channel else {
            self.field(channel).out.push_str(text);
            return;
        };
        match self.tools.last_mut() {
            Some(last) if last.index == index => {
                let function = last.function.get_or_insert_with(FunctionCallDelta::default);
                function.arguments.get_or_insert_with(String::new).push_str(text);
            }
            _ => self.tools.push(ToolCallDelta::arguments(index, text)),
        }
    }

    /// Adds an original tool-call fragment whose arguments were scanned, carrying `release`.
    fn tool_fragment(&mut self, mut call: ToolCallDelta, release: String) {
        let original = call.function.as_ref().and_then(|f| f.arguments.as_deref()).unwrap_or("");
        if original == release {
            self.tools.push(call);
            return;
        }
        let header = call.id.is_some()
            || call.kind.is_some()
            || call.function.as_ref().is_some_and(|f| f.name.is_some());
        if release.is_empty() && !header {
            return;
        }
        call.function.get_or_insert_with(FunctionCallDelta::default).arguments = Some(release);
        self.tools.push(call);
    }

    fn build(self) -> Delta {
        Delta {
            role: self.role,
            content: self.content.finish(),
            refusal: self.refusal.finish(),
            reasoning_content: self.reasoning.finish(),
            thinking_blocks: self.thinking_blocks,
            tool_calls: if self.tools.is_empty() && !self.tools_given {
                None
            } else {
                Some(self.tools)
            },
        }
    }

    /// The choice as forwarded just before a block: released text only, no finish.
    fn blocked(self, index: u32) -> Option<ChunkChoice> {
        let delta = self.build();
        let has_text = delta.content.as_deref().is_some_and(|t| !t.is_empty())
            || delta.refusal.as_deref().is_some_and(|t| !t.is_empty())
            || delta.reasoning_content.as_deref().is_some_and(|t| !t.is_empty())
            || delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            || delta.role.is_some();
        has_text.then_some(ChunkChoice { index, delta, logprobs: None, finish_reason: None })
    }
}

/// Checks a whole (non-streaming) completion with the set's output rules, exactly as if each
/// choice had been streamed: reasoning (for `scan_reasoning` rules), content, refusal, then each
/// tool call's arguments. When [`Verdict::is_blocked`], replace the completion with
/// [`Verdict::to_error_object`] (HTTP [`crate::BLOCKED_STATUS`]); otherwise put
/// [`Verdict::warning_header`] in [`crate::WARNINGS_HEADER`].
pub fn check_completion(set: &GuardrailSet, completion: &ChatCompletion) -> Verdict {
    let mut scanner = OutputScanner::new(set);
    let mut verdict = Verdict::pass();
    if !scanner.is_active() {
        return verdict;
    }
    for choice in &completion.choices {
        let message = &choice.message;
        let mut texts: Vec<(Channel, &str)> = Vec::new();
        if let Some(reasoning) = &message.reasoning_content {
            texts.push((Channel::Reasoning, reasoning));
        }
        if let Some(content) = &message.content {
            texts.push((Channel::Content, content));
        }
        if let Some(refusal) = &message.refusal {
            texts.push((Channel::Refusal, refusal));
        }
        for (i, call) in message.tool_calls.iter().flatten().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            texts.push((Channel::ToolArguments(index), &call.function.arguments));
        }
        for (channel, text) in texts {
            let out = scanner.scan_delta(choice.index, channel, text);
            verdict.extend(out.verdict);
            if verdict.is_blocked() {
                return verdict;
            }
            let out = scanner.end_channel(choice.index, channel);
            verdict.extend(out.verdict);
            if verdict.is_blocked() {
                return verdict;
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PiiType, RuleConfig, RuleKind, SecretType};

    fn all_rules(hold_back: bool) -> GuardrailSet {
        GuardrailSet::new(&[
            RuleConfig::new("pii", Mode::Enforce, RuleKind::pii(PiiType::ALL))
                .with_hold_back(hold_back),
            RuleConfig::new("secrets", Mode::Enforce, RuleKind::secrets(SecretType::ALL))
                .with_hold_back(hold_back),
            RuleConfig::new("re", Mode::Enforce, RuleKind::regex(r"zz+top"))
                .with_hold_back(hold_back),
        ])
        .unwrap()
    }

    /// Largest buffer held while feeding `text` in `size`-byte deltas (no violation expected).
    fn peak_buffer(text: &str, size: usize) -> usize {
        let mut scanner = OutputScanner::new(&all_rules(true));
        let mut peak = 0;
        let mut released = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = size.min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let out = scanner.scan_delta(0, Channel::Content, &rest[..cut]);
            assert!(out.verdict.is_pass(), "{:?}", out.verdict);
            released += out.release.len();
            rest = &rest[cut..];
            peak = peak.max(scanner.choices[0].streams[0].buf.len());
        }
        released += scanner.finish().releases.iter().map(|r| r.text.len()).sum::<usize>();
        assert_eq!(released, text.len());
        peak
    }

    #[test]
    fn buffer_stays_bounded_on_long_prose() {
        let prose =
            "The quick brown fox (call 555-0100 ext. 12) jumps over 3.14 lazy dogs; see v1.2.3. ";
        let text = prose.repeat(5_000);
        assert!(peak_buffer(&text, 20) <= 2 * TRIM_THRESHOLD, "prose");
    }

    #[test]
    fn buffer_stays_bounded_on_adversarial_runs() {
        // Endless almost-matches: a digit run, a base64 run after a JWT-like prefix, a long
        // "zzzz…" run for the user regex; each stays undecided until its window is exhausted.
        for text in [
            "7".repeat(200_000),
            format!("eyJ{}", "A".repeat(200_000)),
            format!("{} end", "z".repeat(200_000)),
        ] {
            let peak = peak_buffer(&text, 20);
            assert!(peak <= 2 * crate::detect::secrets::JWT_MAX_CHARS + TRIM_THRESHOLD, "{peak}");
        }
    }
}

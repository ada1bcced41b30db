//! The matching engine shared by request checks and the stream scanner: each detector is an
//! anchored automaton walked from candidate start positions, which tells not only where a match
//! ends but also whether a position could still start one once more text arrives.
//!
//! Semantics (identical for one-shot and incremental use): positions are tried left to right; at
//! each, the automaton's leftmost-first (regex) or leftmost-longest (keywords) anchored match is
//! taken, capped at `max_chars` characters; a validated match is a finding and scanning resumes at
//! its end, otherwise at the next character. Because a position is only decided once the
//! automaton is dead (or the cap or the end of text is reached) and its context characters are
//! known, feeding the text in any chunking yields the same findings at the same offsets.

use aho_corasick::automaton::Automaton as _;
use regex_automata::dfa::{Automaton as _, StartKind, dense};
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::util::start;
use regex_automata::{Anchored, Input, meta};

use crate::verdict::Detector;

/// Characters of context a validator may look at on each side of a match. The scanner keeps this
/// many characters before every undecided position and waits for this many after a match.
pub(crate) const CONTEXT_CHARS: usize = 2;

/// Caps the compiled size of a user regex so a hostile config cannot exhaust memory.
const NFA_SIZE_LIMIT: usize = 4 << 20;
/// A regex whose fully compiled DFA fits this size is compiled once and shared by every stream;
/// a larger one runs as a lazy DFA with a cache per stream.
const DENSE_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache per detector and stream; the DFA clears and rebuilds it when full.
const DFA_CACHE_CAPACITY: usize = 512 << 10;

/// Accepts or trims a candidate `hay[start..end]`; returns the accepted end. May read up to
/// [`CONTEXT_CHARS`] characters either side of the candidate.
pub(crate) type CheckFn = fn(hay: &str, start: usize, end: usize) -> Option<usize>;

/// What a candidate must satisfy besides matching the automaton.
#[derive(Clone, Copy)]
pub(crate) enum Validator {
    /// Nothing: every match is a finding.
    Any,
    /// The match must not be glued to letters or digits on a side where it begins or ends with one.
    WholeWord,
    /// A detector-specific check (context, checksum, ...).
    Check(CheckFn),
}

enum Automaton {
    /// A regex as a fully compiled DFA, shared by all streams. `fallback` answers when the DFA
    /// must give up (Unicode `\b` on non-ASCII text) and is only present for user regexes.
    Dense { dfa: Box<dense::DFA<Vec<u32>>>, fallback: Option<meta::Regex> },
    /// A regex too large for [`DENSE_SIZE_LIMIT`], as a lazy DFA with a cache per stream.
    Lazy { dfa: Box<DFA>, fallback: Option<meta::Regex> },
    /// A keyword list.
    Keywords { dfa: Box<aho_corasick::dfa::DFA> },
}

/// One compiled detector.
pub(crate) struct Matcher {
    /// Reported in findings.
    pub(crate) detector: Detector,
    automaton: Automaton,
    /// Bytes that can begin a match (with any preceding byte); lets the walk skip the rest cheaply.
    first: Box<[bool; 256]>,
    /// Longest match, in characters, that is guaranteed to be found across chunk boundaries.
    pub(crate) max_chars: usize,
    validator: Validator,
}

/// Why a regex could not become a matcher.
pub(crate) enum BuildFailure {
    /// Syntax error or size limit; the engine's explanation.
    Invalid(String),
    /// The regex matches the empty string.
    Empty,
}

/// Per-stream (or per-check) mutable state of one matcher: the lazy DFA's cache.
pub(crate) struct MatchCache(Option<DfaCache>);

impl Clone for MatchCache {
    fn clone(&self) -> Self {
        MatchCache(self.0.clone())
    }
}

/// Where one matcher is in one text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    /// Byte index (into the current buffer) of the first position not yet decided.
    pub(crate) pos: usize,
    /// Absolute character offset of `pos`.
    pub(crate) char_pos: usize,
    /// Absolute byte offset up to which text had to be seen to decide the positions before `pos`;
    /// orders findings identically whatever the chunking.
    pub(crate) floor: usize,
}

impl Cursor {
    pub(crate) fn at(pos: usize, char_pos: usize, floor: usize) -> Self {
        Cursor { pos, char_pos, floor }
    }
}

/// A decided match, in buffer coordinates plus its absolute resolution point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMatch {
    /// Byte range in the buffer.
    pub(crate) start: usize,
    /// Character offset (absolute) of `start`.
    pub(crate) char_offset: usize,
    /// Length in characters.
    pub(crate) char_len: usize,
    /// Absolute byte offset of the text needed to decide it.
    pub(crate) resolved_at: usize,
}

enum Walk {
    /// The position could still start a match: more text is needed.
    Pending,
    /// Decided: the match end if any, and how far the text had to be read (exclusive byte index).
    Resolved { end: Option<usize>, needed: usize },
    /// The DFA gave up (quit byte); answer with the fallback engine.
    GaveUp,
}

impl Matcher {
    /// Compiles a regex detector. `window` overrides the match-length cap; otherwise the
    /// pattern's own maximum length is used, or `default_window` when it has none.
    pub(crate) fn regex(
        detector: Detector,
        pattern: &str,
        window: Option<usize>,
        default_window: usize,
        validator: Validator,
        with_fallback: bool,
    ) -> Result<Matcher, BuildFailure> {
        let hir = regex_automata::util::syntax::parse(pattern)
            .map_err(|e| BuildFailure::Invalid(e.to_string()))?;
        let props = hir.properties();
        if props.minimum_len() == Some(0) {
            return Err(BuildFailure::Empty);
        }
        // maximum_len counts bytes, an upper bound on characters.
        let max_chars = window.unwrap_or_else(|| {
            props
                .maximum_len()
                .map_or(default_window, |n| n.min(crate::RuleKind::MAX_MATCH_CHARS_LIMIT))
        });
        let fallback = if with_fallback {
            Some(
                meta::Regex::builder()
                    .configure(meta::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
                    .build(pattern)
                    .map_err(|e| BuildFailure::Invalid(e.to_string()))?,
            )
        } else {
            None
        };
        let nfa_config =
            regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT));
        let dense = dense::Builder::new()
            .configure(
                dense::DFA::config()
                    .start_kind(StartKind::Anchored)
                    .unicode_word_boundary(true)
                    .dfa_size_limit(Some(DENSE_SIZE_LIMIT))
                    .determinize_size_limit(Some(2 * DENSE_SIZE_LIMIT)),
            )
            .thompson(nfa_config.clone())
            .build(pattern);
        let (automaton, first) = match dense {
            Ok(dfa) => {
                let first = Box::new(dense_first_bytes(&dfa));
                (Automaton::Dense { dfa: Box::new(dfa), fallback }, first)
            }
            Err(_) => {
                let dfa = DFA::builder()
                    .configure(
                        DFA::config()
                            .unicode_word_boundary(true)
                            .cache_capacity(DFA_CACHE_CAPACITY)
                            .skip_cache_capacity_check(true),
                    )
                    .thompson(nfa_config)
                    .build(pattern)
                    .map_err(|e| BuildFailure::Invalid(e.to_string()))?;
                let first = Box::new(lazy_first_bytes(&dfa));
                (Automaton::Lazy { dfa: Box::new(dfa), fallback }, first)
            }
        };
        Ok(Matcher { detector, automaton, first, max_chars: max_chars.max(1), validator })
    }

    /// Compiles a keyword detector from non-empty patterns.
    pub(crate) fn keywords(
        patterns: &[String],
        ascii_case_insensitive: bool,
        whole_word: bool,
    ) -> Result<Matcher, String> {
        let dfa = aho_corasick::dfa::Builder::new()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .start_kind(aho_corasick::StartKind::Anchored)
            .ascii_case_insensitive(ascii_case_insensitive)
            .build(patterns)
            .map_err(|e| e.to_string())?;
        let mut first = Box::new([true; 256]);
        if let Ok(sid) = dfa.start_state(aho_corasick::Anchored::Yes) {
            for (byte, slot) in first.iter_mut().enumerate() {
                let next = dfa.next_state(aho_corasick::Anchored::Yes, sid, byte as u8);
                *slot = !dfa.is_dead(next);
            }
        }
        let max_chars = patterns.iter().map(|p| p.chars().count()).max().unwrap_or(1);
        Ok(Matcher {
            detector: Detector::Keywords,
            automaton: Automaton::Keywords { dfa: Box::new(dfa) },
            first,
            max_chars,
            validator: if whole_word { Validator::WholeWord } else { Validator::Any },
        })
    }

    /// A fresh cache for one stream or check.
    pub(crate) fn new_cache(&self) -> MatchCache {
        match &self.automaton {
            Automaton::Lazy { dfa, .. } => MatchCache(Some(dfa.create_cache())),
            Automaton::Dense { .. } | Automaton::Keywords { .. } => MatchCache(None),
        }
    }

    /// Decides every position from `cursor.pos` that can be decided with `hay` (all of them when
    /// `is_final`: `hay` then ends where the text ends), reporting findings to `out`.
    /// `base` is the absolute byte offset of `hay[0]`. Stops at the first undecidable position,
    /// which is where a hold-back must begin.
    pub(crate) fn advance(
        &self,
        cache: &mut MatchCache,
        hay: &str,
        base: usize,
        cursor: &mut Cursor,
        is_final: bool,
        out: &mut dyn FnMut(RawMatch),
    ) {
        let bytes = hay.as_bytes();
        loop {
            while let Some(&b) = bytes.get(cursor.pos) {
                if self.first[usize::from(b)] {
                    break;
                }
                cursor.pos += utf8_len(b);
                cursor.char_pos += 1;
            }
            if cursor.pos >= bytes.len() {
                return;
            }
            let (end, needed) = match self.walk(cache, hay, cursor.pos, is_final) {
                Walk::Pending => return,
                Walk::Resolved { end, needed } => (end, needed),
                Walk::GaveUp => match self.fallback(hay, cursor.pos, is_final) {
                    Some(resolved) => resolved,
                    None => return,
                },
            };
            let Some(end) = end.filter(|&e| e > cursor.pos) else {
                cursor.floor = cursor.floor.max(base + needed);
                step(hay, cursor);
                continue;
            };
            let needed = match nth_char_end(hay, end, CONTEXT_CHARS) {
                Some(ctx_end) => needed.max(ctx_end),
                None if is_final => bytes.len(),
                None => return,
            };
            cursor.floor = cursor.floor.max(base + needed);
            match self.validate(hay, cursor.pos, end) {
                Some(accepted) if accepted > cursor.pos => {
                    let char_len = hay[cursor.pos..accepted].chars().count();
                    out(RawMatch {
                        start: cursor.pos,
                        char_offset: cursor.char_pos,
                        char_len,
                        resolved_at: cursor.floor,
                    });
                    cursor.pos = accepted;
                    cursor.char_pos += char_len;
                }
                _ => step(hay, cursor),
            }
        }
    }

    fn validate(&self, hay: &str, start: usize, end: usize) -> Option<usize> {
        match self.validator {
            Validator::Any => Some(end),
            Validator::WholeWord => whole_word(hay, start, end).then_some(end),
            Validator::Check(check) => check(hay, start, end).filter(|&e| e <= end),
        }
    }

    fn walk(&self, cache: &mut MatchCache, hay: &str, at: usize, is_final: bool) -> Walk {
        match (&self.automaton, cache.0.as_mut()) {
            (Automaton::Dense { dfa, .. }, _) => {
                walk_dense(dfa, hay.as_bytes(), at, self.max_chars, is_final)
                    .unwrap_or(Walk::GaveUp)
            }
            (Automaton::Lazy { dfa, .. }, Some(cache)) => {
                walk_lazy(dfa, cache, hay.as_bytes(), at, self.max_chars, is_final)
                    .unwrap_or(Walk::GaveUp)
            }
            (Automaton::Keywords { dfa }, _) => {
                walk_keywords(dfa, hay.as_bytes(), at, self.max_chars, is_final)
            }
            // A regex matcher always gets a DFA cache from `new_cache`; without one, treat the
            // position as undecidable by the DFA.
            (Automaton::Lazy { .. }, None) => Walk::GaveUp,
        }
    }

    /// Decides `at` with the backtracking-free meta engine once the window is full or the text
    /// has ended; `None` while more text could still change the answer.
    fn fallback(&self, hay: &str, at: usize, is_final: bool) -> Option<(Option<usize>, usize)> {
        let horizon = nth_char_end(hay, at, self.max_chars);
        if !is_final && horizon.is_none_or(|h| h >= hay.len()) {
            return None;
        }
        let stop = horizon.unwrap_or(hay.len());
        let needed = if stop < hay.len() { stop + utf8_len(hay.as_bytes()[stop]) } else { stop };
        let end = match &self.automaton {
            Automaton::Dense { fallback: Some(re), .. }
            | Automaton::Lazy { fallback: Some(re), .. } => {
                re.search(&Input::new(hay).span(at..stop).anchored(Anchored::Yes)).map(|m| m.end())
            }
            _ => None,
        };
        Some((end, needed))
    }
}

/// Walks the dense DFA anchored at `at`. Matches are reported one byte late by the DFA, so the
/// byte that ends the window is consumed only to flush them.
fn walk_dense(
    dfa: &dense::DFA<Vec<u32>>,
    hay: &[u8],
    at: usize,
    max_chars: usize,
    is_final: bool,
) -> Result<Walk, ()> {
    let input = Input::new(hay).span(at..hay.len()).anchored(Anchored::Yes);
    let mut sid = dfa.start_state_forward(&input).map_err(drop)?;
    let mut mat = None;
    let mut chars = 0usize;
    let mut i = at;
    while i < hay.len() {
        let b = hay[i];
        let window_full = is_char_start(b) && {
            chars += 1;
            chars > max_chars
        };
        sid = dfa.next_state(sid, b);
        if dfa.is_special_state(sid) {
            if dfa.is_match_state(sid) {
                mat = Some(i);
            } else if dfa.is_dead_state(sid) {
                return Ok(Walk::Resolved { end: mat, needed: i + 1 });
            } else if dfa.is_quit_state(sid) {
                return Err(());
            }
        }
        if window_full {
            return Ok(Walk::Resolved { end: mat, needed: i + 1 });
        }
        i += 1;
    }
    if !is_final {
        return Ok(Walk::Pending);
    }
    if dfa.is_match_state(dfa.next_eoi_state(sid)) {
        mat = Some(hay.len());
    }
    Ok(Walk::Resolved { end: mat, needed: hay.len() })
}

/// [`walk_dense`] for the lazy DFA.
fn walk_lazy(
    dfa: &DFA,
    cache: &mut DfaCache,
    hay: &[u8],
    at: usize,
    max_chars: usize,
    is_final: bool,
) -> Result<Walk, ()> {
    let input = Input::new(hay).span(at..hay.len()).anchored(Anchored::Yes);
    let mut sid = dfa.start_state_forward(cache, &input).map_err(drop)?;
    let mut mat = None;
    let mut chars = 0usize;
    let mut i = at;
    while i < hay.len() {
        let b = hay[i];
        let window_full = is_char_start(b) && {
            chars += 1;
            chars > max_chars
        };
        sid = dfa.next_state(cache, sid, b).map_err(drop)?;
        if sid.is_match() {
            mat = Some(i);
        } else if sid.is_dead() {
            return Ok(Walk::Resolved { end: mat, needed: i + 1 });
        } else if sid.is_quit() {
            return Err(());
        }
        if window_full {
            return Ok(Walk::Resolved { end: mat, needed: i + 1 });
        }
        i += 1;
    }
    if !is_final {
        return Ok(Walk::Pending);
    }
    sid = dfa.next_eoi_state(cache, sid).map_err(drop)?;
    if sid.is_match() {
        mat = Some(hay.len());
    }
    Ok(Walk::Resolved { end: mat, needed: hay.len() })
}

/// Walks the keyword automaton anchored at `at` (leftmost-longest).
fn walk_keywords(
    dfa: &aho_corasick::dfa::DFA,
    hay: &[u8],
    at: usize,
    max_chars: usize,
    is_final: bool,
) -> Walk {
    let anchored = aho_corasick::Anchored::Yes;
    let Ok(mut sid) = dfa.start_state(anchored) else {
        return Walk::Resolved { end: None, needed: at + 1 };
    };
    let mut mat = None;
    let mut chars = 0usize;
    let mut i = at;
    while i < hay.len() {
        let b = hay[i];
        if is_char_start(b) {
            chars += 1;
            if chars > max_chars {
                return Walk::Resolved { end: mat, needed: i };
            }
        }
        sid = dfa.next_state(anchored, sid, b);
        if dfa.is_special(sid) {
            if dfa.is_dead(sid) {
                return Walk::Resolved { end: mat, needed: i + 1 };
            }
            if dfa.is_match(sid) {
                mat = Some(i + 1);
            }
        }
        i += 1;
    }
    if is_final { Walk::Resolved { end: mat, needed: hay.len() } } else { Walk::Pending }
}

/// Which bytes can start a match after any look-behind byte; errs on the side of `true`.
fn dense_first_bytes(dfa: &dense::DFA<Vec<u32>>) -> [bool; 256] {
    let mut table = [false; 256];
    let mut seen = Vec::new();
    let look_behinds = std::iter::once(None).chain((0..=255u8).map(Some));
    for look_behind in look_behinds {
        let config = start::Config::new().anchored(Anchored::Yes).look_behind(look_behind);
        let Ok(sid) = dfa.start_state(&config) else {
            return [true; 256];
        };
        if seen.contains(&sid) {
            continue;
        }
        seen.push(sid);
        for (byte, slot) in table.iter_mut().enumerate() {
            let next = dfa.next_state(sid, byte as u8);
            *slot |= !dfa.is_dead_state(next);
        }
    }
    table
}

/// [`dense_first_bytes`] for the lazy DFA.
fn lazy_first_bytes(dfa: &DFA) -> [bool; 256] {
    let mut table = [false; 256];
    let mut cache = dfa.create_cache();
    let mut seen = Vec::new();
    let look_behinds = std::iter::once(None).chain((0..=255u8).map(Some));
    for look_behind in look_behinds {
        let config = start::Config::new().anchored(Anchored::Yes).look_behind(look_behind);
        let Ok(sid) = dfa.start_state(&mut cache, &config) else {
            return [true; 256];
        };
        if seen.contains(&sid) {
            continue;
        }
        seen.push(sid);
        for (byte, slot) in table.iter_mut().enumerate() {
            if *slot {
                continue;
            }
            *slot = match dfa.next_state(&mut cache, sid, byte as u8) {
                Ok(next) => !next.is_dead(),
                Err(_) => true,
            };
        }
    }
    table
}

fn step(hay: &str, cursor: &mut Cursor) {
    if let Some(&b) = hay.as_bytes().get(cursor.pos) {
        cursor.pos += utf8_len(b);
        cursor.char_pos += 1;
    }
}

fn is_char_start(b: u8) -> bool {
    b & 0xC0 != 0x80
}

/// Length of the UTF-8 sequence a leading byte starts (1 for stray continuation bytes, which a
/// `str` never has at a char boundary).
pub(crate) fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Byte index just after the `n`th character from `at`, if `hay` holds that many.
pub(crate) fn nth_char_end(hay: &str, at: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(at);
    }
    hay.get(at..)?.char_indices().nth(n - 1).map(|(i, c)| at + i + c.len_utf8())
}

/// Byte index `n` characters before `at` (or 0).
pub(crate) fn back_chars(hay: &str, at: usize, n: usize) -> usize {
    match n {
        0 => at,
        _ => hay.get(..at).and_then(|h| h.char_indices().rev().nth(n - 1)).map_or(0, |(i, _)| i),
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn whole_word(hay: &str, start: usize, end: usize) -> bool {
    let m = &hay[start..end];
    let begins_word = m.chars().next().is_some_and(is_word);
    let ends_word = m.chars().next_back().is_some_and(is_word);
    let before = hay[..start].chars().next_back();
    let after = hay[end..].chars().next();
    !(begins_word && before.is_some_and(is_word) || ends_word && after.is_some_and(is_word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(pattern: &str, window: Option<usize>) -> Matcher {
        match Matcher::regex(Detector::Regex, pattern, window, 256, Validator::Any, true) {
            Ok(m) => m,
            Err(BuildFailure::Invalid(e)) => panic!("{e}"),
            Err(BuildFailure::Empty) => panic!("empty"),
        }
    }

    fn one_shot(m: &Matcher, text: &str) -> Vec<(usize, usize)> {
        let mut cache = m.new_cache();
        let mut cursor = Cursor::at(0, 0, 0);
        let mut found = Vec::new();
        m.advance(&mut cache, text, 0, &mut cursor, true, &mut |r| {
            found.push((r.char_offset, r.char_len))
        });
        found
    }

    #[test]
    fn leftmost_first_like_find_iter() {
        let m = regex("abc|b", None);
        assert_eq!(one_shot(&m, "xabcxb"), vec![(1, 3), (5, 1)]);
        let m = regex("a+", None);
        assert_eq!(one_shot(&m, "caaat aa"), vec![(1, 3), (6, 2)]);
        let m = regex(r"\bcat\b", None);
        assert_eq!(one_shot(&m, "cat concat cat."), vec![(0, 3), (11, 3)]);
    }

    #[test]
    fn offsets_are_characters() {
        let m = regex("é+x", None);
        assert_eq!(one_shot(&m, "日本éééx"), vec![(2, 4)]);
    }

    #[test]
    fn window_caps_unbounded_matches() {
        let m = regex("a+", Some(4));
        assert_eq!(one_shot(&m, "aaaaaaa"), vec![(0, 4), (4, 3)]);
    }

    #[test]
    fn unicode_word_boundary_falls_back_on_non_ascii() {
        let m = regex(r"\bnaïve\b", None);
        assert_eq!(one_shot(&m, "so naïve, très naïveté"), vec![(3, 5)]);
    }

    #[test]
    fn large_regexes_run_on_the_lazy_dfa_with_the_same_semantics() {
        // Sixty Unicode word characters do not fit the dense size limit.
        let m = regex(r"\w{60}!", None);
        assert!(matches!(m.automaton, Automaton::Lazy { .. }));
        assert!(m.new_cache().0.is_some());
        let word = "é".repeat(61);
        let text = format!("x {word}! y");
        assert_eq!(one_shot(&m, &text), vec![(3, 61)]);
        // Fed one character at a time, the position stays undecided until the "!" decides it.
        let mut cache = m.new_cache();
        let mut cursor = Cursor::at(0, 0, 0);
        let mut found = Vec::new();
        let mut end = 0;
        for (i, c) in text.char_indices() {
            end = i + c.len_utf8();
            m.advance(&mut cache, &text[..end], 0, &mut cursor, false, &mut |r| {
                found.push((r.char_offset, r.char_len))
            });
        }
        m.advance(&mut cache, &text[..end], 0, &mut cursor, true, &mut |r| {
            found.push((r.char_offset, r.char_len))
        });
        assert_eq!(found, vec![(3, 61)]);
        let small = regex("abc", None);
        assert!(matches!(small.automaton, Automaton::Dense { .. }));
    }

    #[test]
    fn incremental_pending_until_decided() {
        let m = regex("ab+c?", None);
        let mut cache = m.new_cache();
        let mut cursor = Cursor::at(0, 0, 0);
        let mut found = Vec::new();
        m.advance(&mut cache, "xxabb", 0, &mut cursor, false, &mut |r| found.push(r.char_offset));
        assert!(found.is_empty());
        assert_eq!(cursor.pos, 2, "the undecided position is where hold-back starts");
        m.advance(&mut cache, "xxabbc  ", 0, &mut cursor, false, &mut |r| {
            found.push(r.char_offset)
        });
        assert_eq!(found, vec![2]);
    }

    #[test]
    fn keywords_leftmost_longest_whole_word() {
        let words = vec!["secret".to_owned(), "secret plan".to_owned()];
        let m = Matcher::keywords(&words, true, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one_shot(&m, "the SECRET PLAN, secrets, secret"), vec![(4, 11), (26, 6)]);
    }

    #[test]
    fn char_helpers() {
        assert_eq!(nth_char_end("aébc", 0, 2), Some(3));
        assert_eq!(nth_char_end("ab", 1, 2), None);
        assert_eq!(nth_char_end("ab", 2, 0), Some(2));
        assert_eq!(back_chars("aébc", 4, 2), 1);
        assert_eq!(back_chars("ab", 1, 5), 0);
    }
}

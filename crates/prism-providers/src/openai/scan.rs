//! Finds the top-level members of a JSON object without parsing it, and splices byte edits into
//! it, so a pass-through chunk can have its `model` rewritten without being re-serialised.
//!
//! The scanner assumes the input is valid JSON (the caller parses it with serde as well) and
//! only has to be right for valid input; on anything else it returns `false` and never panics.

use std::ops::Range;

use memchr::memchr2;

/// One top-level `"key": value` member, as byte ranges into the object's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    /// The key's text between its quotes (escapes not decoded).
    pub(super) key: Range<usize>,
    /// The value's text, from its first to its last byte.
    pub(super) value: Range<usize>,
}

impl Member {
    /// The key's raw bytes.
    pub(super) fn key<'a>(&self, json: &'a [u8]) -> &'a [u8] {
        json.get(self.key.clone()).unwrap_or_default()
    }

    /// The value's raw bytes.
    pub(super) fn value<'a>(&self, json: &'a [u8]) -> &'a [u8] {
        json.get(self.value.clone()).unwrap_or_default()
    }
}

/// Appends the top-level members of the object `json` to `out`. Returns `false` (with `out` in an
/// unspecified state) when `json` is not a well-formed object.
pub(super) fn members(json: &[u8], out: &mut Vec<Member>) -> bool {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        return true;
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return false;
        }
        let Some(key_end) = skip_string(json, i) else {
            return false;
        };
        let key = i + 1..key_end - 1;
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(json, i + 1);
        let Some(value_end) = skip_value(json, i) else {
            return false;
        };
        out.push(Member { key, value: i..value_end });
        i = skip_ws(json, value_end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => return true,
            _ => return false,
        }
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `json[start]` is `"`; returns the index after the closing quote.
fn skip_string(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let rest = json.get(i..)?;
        let at = i + memchr2(b'"', b'\\', rest)?;
        if json.get(at) == Some(&b'\\') {
            i = at + 2;
        } else {
            return Some(at + 1);
        }
    }
}

/// Returns the index after the value starting at `start`.
fn skip_value(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => skip_string(json, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = start;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

/// The most edits one chunk needs: model, id, created, usage, choices, and one spare.
const MAX_EDITS: usize = 6;

/// One edit: replace `range` with the concatenation of `with`.
#[derive(Debug, Clone, Default)]
struct Edit<'a> {
    range: Range<usize>,
    with: [&'a [u8]; 3],
}

/// Byte edits to one JSON text, applied in one pass. Replacements are borrowed and the edit list
/// has a fixed capacity, so building edits never allocates; an edit past the capacity is ignored
/// and reported by [`Edits::overflowed`].
#[derive(Debug, Default)]
pub(super) struct Edits<'a> {
    /// Sorted by position.
    edits: [Edit<'a>; MAX_EDITS],
    len: usize,
    overflowed: bool,
}

impl<'a> Edits<'a> {
    /// Whether there is nothing to change.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether an edit was dropped because the list was full (callers then rebuild the chunk).
    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn push(&mut self, range: Range<usize>, with: [&'a [u8]; 3]) {
        if self.len == MAX_EDITS {
            self.overflowed = true;
            return;
        }
        let at = self.edits[..self.len].partition_point(|e| e.range.start <= range.start);
        self.edits[at..=self.len].rotate_right(1);
        self.edits[at] = Edit { range, with };
        self.len += 1;
    }

    /// Replaces `range` with `with`.
    pub(super) fn replace(&mut self, range: Range<usize>, with: &'a [u8]) {
        self.push(range, [with, b"", b""]);
    }

    /// Removes member `index` of `members` together with one separating comma.
    pub(super) fn remove_member(&mut self, members: &[Member], index: usize) {
        let Some(member) = members.get(index) else {
            return;
        };
        let range =
            match (index.checked_sub(1).and_then(|p| members.get(p)), members.get(index + 1)) {
                // `, "key": value` after the previous member.
                (Some(prev), _) => prev.value.end..member.value.end,
                // `"key": value, ` before the next member.
                (None, Some(next)) => member.key.start - 1..next.key.start - 1,
                (None, None) => member.key.start - 1..member.value.end,
            };
        self.push(range, [b"", b"", b""]);
    }

    /// Adds a member as the last of the object whose members are `members`; `key` is the quoted
    /// key with its colon, e.g. `"usage":`.
    pub(super) fn append_member(
        &mut self,
        json: &[u8],
        members: &[Member],
        key: &'a [u8],
        value: &'a [u8],
    ) {
        match members.last() {
            Some(last) => self.push(last.value.end..last.value.end, [b",", key, value]),
            None => {
                if let Some(open) = json.iter().position(|&b| b == b'{') {
                    self.push(open + 1..open + 1, [key, value, b""]);
                }
            }
        }
    }

    /// Adds a member as the first of a non-empty object; `key` as for [`Edits::append_member`].
    pub(super) fn prepend_member(&mut self, members: &[Member], key: &'a [u8], value: &'a [u8]) {
        if let Some(first) = members.first() {
            let at = first.key.start - 1;
            self.push(at..at, [key, value, b","]);
        }
    }

    /// `json` with every edit applied, appended to `out`. Overlapping edits (which callers never
    /// make) keep the first.
    pub(super) fn apply(&self, json: &[u8], out: &mut Vec<u8>) {
        let edits = &self.edits[..self.len];
        let extra: usize =
            edits.iter().map(|e| e.with.iter().map(|w| w.len()).sum::<usize>()).sum();
        out.reserve(json.len() + extra);
        let mut pos = 0;
        for edit in edits {
            if edit.range.start < pos {
                continue;
            }
            out.extend_from_slice(json.get(pos..edit.range.start).unwrap_or_default());
            for part in edit.with {
                out.extend_from_slice(part);
            }
            pos = edit.range.end;
        }
        out.extend_from_slice(json.get(pos..).unwrap_or_default());
    }

    /// `json` with every edit applied, in a vector of exactly that length (so that turning it
    /// into `Bytes` needs no second allocation).
    pub(super) fn applied(&self, json: &[u8]) -> Vec<u8> {
        let edits = &self.edits[..self.len];
        let added: usize =
            edits.iter().map(|e| e.with.iter().map(|w| w.len()).sum::<usize>()).sum();
        let removed: usize = edits.iter().map(|e| e.range.len()).sum();
        let mut out = Vec::with_capacity((json.len() + added).saturating_sub(removed));
        self.apply(json, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Vec<(String, String)> {
        let mut m = Vec::new();
        assert!(members(json.as_bytes(), &mut m), "{json}");
        m.iter()
            .map(|m| {
                (
                    String::from_utf8(m.key(json.as_bytes()).to_vec()).unwrap(),
                    String::from_utf8(m.value(json.as_bytes()).to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn finds_top_level_members_only() {
        let json =
            r#" { "a" : 1 , "b":{"x":"}\"{","y":[1,{"z":null}]},"c":"q\\","d":[] ,"e":true}  "#;
        assert_eq!(
            keys(json),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), r#"{"x":"}\"{","y":[1,{"z":null}]}"#.into()),
                ("c".into(), r#""q\\""#.into()),
                ("d".into(), "[]".into()),
                ("e".into(), "true".into()),
            ]
        );
        assert_eq!(keys("{}"), vec![]);
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":"x}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1}"#,
            "null",
        ] {
            let mut m = Vec::new();
            assert!(!members(bad.as_bytes(), &mut m), "{bad}");
        }
    }

    #[test]
    fn edits_splice_members() {
        let json = br#"{"id":"x","model":"up","usage":null,"z":1}"#;
        let mut m = Vec::new();
        assert!(members(json, &mut m));
        let mut e = Edits::default();
        e.replace(m[1].value.clone(), br#""pub""#);
        e.remove_member(&m, 2);
        assert_eq!(e.applied(json), br#"{"id":"x","model":"pub","z":1}"#);

        let mut e = Edits::default();
        e.remove_member(&m, 0);
        e.append_member(json, &m, br#""usage":"#, br#"{"t":1}"#);
        assert_eq!(e.applied(json), br#"{"model":"up","usage":null,"z":1,"usage":{"t":1}}"#);

        let mut e = Edits::default();
        e.remove_member(&m, 3);
        e.prepend_member(&m, br#""created":"#, b"7");
        assert_eq!(e.applied(json), br#"{"created":7,"id":"x","model":"up","usage":null}"#);

        let single = br#"{"only":1}"#;
        let mut m = Vec::new();
        assert!(members(single, &mut m));
        let mut e = Edits::default();
        e.remove_member(&m, 0);
        assert_eq!(e.applied(single), b"{}");

        let mut e = Edits::default();
        for _ in 0..MAX_EDITS + 1 {
            e.replace(0..0, b"x");
        }
        assert!(e.overflowed());
        assert_eq!(e.applied(b"{}").len(), 2 + MAX_EDITS);
    }
}

//! JSON as Prism emits it: standard JSON, except that U+2028, U+2029 and U+0085 are always
//! written as `\u2028`, `\u2029` and `\u0085`. They are legal raw in JSON strings, but clients
//! that split lines with Python's `str.splitlines()` (or JavaScript line-terminator rules) break
//! a stream that carries them raw, so every byte Prism sends escapes them, pass-through included.

use std::borrow::Cow;
use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// The three characters, as their UTF-8 bytes and their JSON escapes.
const SEPARATORS: [(&[u8], &[u8]); 3] =
    [(b"\xE2\x80\xA8", b"\\u2028"), (b"\xE2\x80\xA9", b"\\u2029"), (b"\xC2\x85", b"\\u0085")];

/// The compact formatter, escaping the line separators inside strings.
#[derive(Debug, Clone, Copy, Default)]
struct SafeFormatter;

impl Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_escaped(writer, fragment.as_bytes())
    }
}

fn write_escaped<W: ?Sized + io::Write>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    while let Some((at, escape, len)) = find_separator(rest) {
        writer.write_all(&rest[..at])?;
        writer.write_all(escape)?;
        rest = &rest[at + len..];
    }
    writer.write_all(rest)
}

/// The first separator in `bytes`: its offset, its escape and its length in bytes. Both lead
/// bytes (0xE2, 0xC2) are rare in text, so a `memchr2` scan keeps the common case fast.
fn find_separator(bytes: &[u8]) -> Option<(usize, &'static [u8], usize)> {
    let mut from = 0;
    while let Some(offset) = memchr::memchr2(0xE2, 0xC2, &bytes[from..]) {
        let at = from + offset;
        for (raw, escape) in SEPARATORS {
            if bytes[at..].starts_with(raw) {
                return Some((at, escape, raw.len()));
            }
        }
        from = at + 1;
    }
    None
}

/// Serialises `value` as compact JSON onto `writer`, escaping the line separators.
///
/// # Errors
/// What `serde_json` reports (an I/O error of `writer`, or a map with non-string keys).
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, SafeFormatter);
    value.serialize(&mut ser)
}

/// Serialises `value` as compact JSON, escaping the line separators.
///
/// # Errors
/// As [`to_writer`].
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// Appends `value` as JSON to `out`. For Prism's own types, which always serialise.
pub fn extend<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) {
    if to_writer(&mut *out, value).is_err() {
        debug_assert!(false, "serialisation of a Prism type failed");
    }
}

/// Escapes raw line separators in JSON bytes from elsewhere (an upstream's pass-through JSON).
/// Outside strings JSON allows only ASCII whitespace, so every occurrence is inside a string and
/// the escape keeps the text identical. Borrows when there is nothing to escape.
pub fn escape_separators(json: &[u8]) -> Cow<'_, [u8]> {
    if find_separator(json).is_none() {
        return Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len() + 8);
    // Writing into a Vec cannot fail.
    let _ = write_escaped(&mut out, json);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_escaped_and_other_text_is_untouched() {
        let text = "a\u{2028}b\u{2029}c\u{0085}d é ✓ \u{00C2}";
        let json = to_vec(&serde_json::json!({ "t": text })).unwrap_or_default();
        let json = String::from_utf8(json).unwrap_or_default();
        assert_eq!(json, "{\"t\":\"a\\u2028b\\u2029c\\u0085d é ✓ \u{00C2}\"}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back["t"], text);
    }

    #[test]
    fn raw_pass_through_bytes_are_escaped_and_borrowed_when_clean() {
        let raw = "{\"t\":\"x\u{2028}y\"}".as_bytes();
        assert_eq!(&*escape_separators(raw), b"{\"t\":\"x\\u2028y\"}");
        let clean = "{\"t\":\"é\"}".as_bytes();
        assert!(matches!(escape_separators(clean), Cow::Borrowed(_)));
    }
}

//! OpenAI tool-call ids for Gemini function calls, with the Gemini thought signature carried
//! inside the id so that it survives an OpenAI-format round trip (see the module docs of `gemini`).
//!
//! Form: `<base>` or `<base>__thought__<signature>`, where `<base>` is Gemini's own call id when it
//! sent one, else `call_` + 24 hex digits derived from the stream id, the choice and the call
//! index (translators are deterministic), and `<signature>` is the thought signature's base64 in
//! the URL-safe alphabet without padding, so the id stays within `[A-Za-z0-9_-]`.

use sha2::{Digest, Sha256};

/// Separates the call id from the embedded thought signature.
const SIGNATURE_SEPARATOR: &str = "__thought__";

/// Prefix of ids Prism generates.
const GENERATED_PREFIX: &str = "call_";

/// Hex digits of the digest kept in a generated id (96 bits).
const GENERATED_HEX_LEN: usize = 24;

/// The id of call `index` of `choice` in the response `stream_id`: Gemini's own id when present,
/// else a generated one; with `signature` embedded when there is one that can be carried.
pub(crate) fn encode(
    stream_id: &str,
    choice: u32,
    index: u32,
    native_id: Option<&str>,
    signature: Option<&str>,
) -> String {
    let mut id = match native_id.filter(|s| !s.is_empty()) {
        Some(native) => native.to_owned(),
        None => generated(stream_id, choice, index),
    };
    if let Some(sig) = signature.and_then(to_url_safe) {
        id.push_str(SIGNATURE_SEPARATOR);
        id.push_str(&sig);
    }
    id
}

/// Splits a tool-call id into the call id proper and the thought signature it carries (restored
/// to standard base64 with padding, exactly as Gemini sent it).
pub(crate) fn decode(id: &str) -> (&str, Option<String>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, sig)) => match from_url_safe(sig) {
            Some(sig) => (base, Some(sig)),
            None => (id, None),
        },
        None => (id, None),
    }
}

fn generated(stream_id: &str, choice: u32, index: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(stream_id.as_bytes());
    hasher.update(choice.to_be_bytes());
    hasher.update(index.to_be_bytes());
    let digest = hasher.finalize();
    let mut id = String::with_capacity(GENERATED_PREFIX.len() + GENERATED_HEX_LEN);
    id.push_str(GENERATED_PREFIX);
    id.push_str(&hex::encode(&digest[..GENERATED_HEX_LEN / 2]));
    id
}

/// Standard base64 → URL-safe alphabet without padding; `None` when `sig` is not base64 text
/// (it could not be restored exactly, so it is not carried).
fn to_url_safe(sig: &str) -> Option<String> {
    let body = sig.trim_end_matches('=');
    if body.is_empty() || sig.len() - body.len() > 2 {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        out.push(match c {
            '+' => '-',
            '/' => '_',
            c if c.is_ascii_alphanumeric() => c,
            _ => return None,
        });
    }
    // Padding is restored from the length on the way back, so only canonical padding round-trips.
    if padded_len(out.len()) != sig.len() {
        return None;
    }
    Some(out)
}

/// URL-safe base64 without padding → standard base64 with padding.
fn from_url_safe(sig: &str) -> Option<String> {
    if sig.is_empty() || sig.len() % 4 == 1 {
        return None;
    }
    let mut out = String::with_capacity(padded_len(sig.len()));
    for c in sig.chars() {
        out.push(match c {
            '-' => '+',
            '_' => '/',
            c if c.is_ascii_alphanumeric() => c,
            _ => return None,
        });
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

fn padded_len(unpadded: usize) -> usize {
    unpadded.div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let a = encode("chatcmpl-1", 0, 0, None, None);
        assert_eq!(a, encode("chatcmpl-1", 0, 0, None, None));
        assert_ne!(a, encode("chatcmpl-1", 0, 1, None, None));
        assert_ne!(a, encode("chatcmpl-1", 1, 0, None, None));
        assert_ne!(a, encode("chatcmpl-2", 0, 0, None, None));
        assert!(a.starts_with("call_") && a.len() == 29, "{a}");
        assert!(a[5..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn signature_round_trips_through_the_id() {
        for sig in [
            "EpwICpkIAXLI2nx+lU6g/sW=",
            "AY89a18a8/Loc2wl5oft+F3q",
            "CiQBjz1rX+z7CAOCNB0aLI7=",
            "QQ==",
        ] {
            let id = encode("chatcmpl-1", 0, 0, None, Some(sig));
            assert!(
                id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{id}"
            );
            let (base, back) = decode(&id);
            assert_eq!(base, encode("chatcmpl-1", 0, 0, None, None));
            assert_eq!(back.as_deref(), Some(sig));
        }
    }

    #[test]
    fn native_ids_are_kept_and_odd_signatures_are_not_carried() {
        assert_eq!(encode("s", 0, 0, Some("fc_1"), None), "fc_1");
        assert_eq!(encode("s", 0, 0, Some(""), None), encode("s", 0, 0, None, None));
        // Not base64: carrying it would not restore it exactly.
        assert_eq!(encode("s", 0, 0, Some("fc_1"), Some("a b")), "fc_1");
        assert_eq!(encode("s", 0, 0, Some("fc_1"), Some("QQ")), "fc_1");
        // Ids from other providers, or with a broken suffix, pass through untouched.
        assert_eq!(decode("toolu_01A"), ("toolu_01A", None));
        assert_eq!(decode("call_x__thought__a!b"), ("call_x__thought__a!b", None));
        assert_eq!(decode("call_x__thought__A"), ("call_x__thought__A", None));
    }
}

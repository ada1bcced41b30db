//! `Utf8Bytes`: a cheaply cloneable, sliceable text buffer backed by `bytes::Bytes`.
//! Decoded events hand out slices of the decoder's buffer instead of allocating a `String` each.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Reference-counted UTF-8 text stored in [`Bytes`].
///
/// The invariant (the bytes are valid UTF-8) is established by every constructor. Because the
/// workspace forbids `unsafe`, [`as_str`](Self::as_str) re-checks it with `std::str::from_utf8`,
/// which is a linear but very fast pass (an ASCII fast path over whole words); call it once and
/// keep the `&str` rather than dereferencing in a loop. Byte-level accessors
/// ([`as_bytes`](Self::as_bytes), [`into_bytes`](Self::into_bytes)) cost nothing, and equality,
/// ordering and hashing work on the bytes without re-checking.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps a static string without copying it.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text. See the type docs for the cost of this call.
    pub fn as_str(&self) -> &str {
        // Every constructor validates, so the fallback is unreachable; it exists so that this
        // function cannot panic even if that reasoning were ever wrong.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The underlying bytes (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The text as bytes (no check, no copy).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wraps `bytes` if they are valid UTF-8 (no copy), otherwise returns them unchanged.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Bytes> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(bytes),
        }
    }

    /// Wraps `bytes` without copying when they are valid UTF-8; otherwise copies them with each
    /// invalid sequence replaced by U+FFFD, as the SSE spec's UTF-8 decode does.
    pub fn from_bytes_lossy(bytes: Bytes) -> Self {
        match Self::try_from_bytes(bytes) {
            Ok(text) => text,
            Err(bytes) => Self(Bytes::from(String::from_utf8_lossy(&bytes).into_owned())),
        }
    }

    /// Copies `bytes`, replacing invalid UTF-8 sequences with U+FFFD.
    pub fn copy_from_slice_lossy(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(_) => Self(Bytes::copy_from_slice(bytes)),
            Err(_) => Self(Bytes::from(String::from_utf8_lossy(bytes).into_owned())),
        }
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s.into_bytes()))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Bytes;

    fn try_from(bytes: Bytes) -> Result<Self, Bytes> {
        Self::try_from_bytes(bytes)
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == self
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_the_text() {
        let owned = Utf8Bytes::from(String::from("héllo"));
        assert_eq!(owned, "héllo");
        assert_eq!(owned.as_str(), "héllo");
        assert_eq!(owned.len(), 6);
        assert_eq!(&*owned, "héllo");
        assert_eq!(format!("{owned}"), "héllo");
        assert_eq!(format!("{owned:?}"), "\"héllo\"");
        assert_eq!(Utf8Bytes::from_static("x"), Utf8Bytes::from("x"));
        assert!(Utf8Bytes::default().is_empty());
        assert_eq!(Bytes::from(owned.clone()), Bytes::from_static("héllo".as_bytes()));
    }

    #[test]
    fn lossy_conversion_replaces_invalid_sequences() {
        let text = Utf8Bytes::from_bytes_lossy(Bytes::from_static(b"a\xffb\xe2\x82"));
        assert_eq!(text, "a\u{fffd}b\u{fffd}");
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xc3")).is_err());
        assert_eq!(Utf8Bytes::copy_from_slice_lossy(b"ok"), "ok");
    }
}

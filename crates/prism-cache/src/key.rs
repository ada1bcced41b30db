//! Cache keys: SHA-256 over a canonical form of the answer-changing part of a request, scoped to
//! a tenant namespace.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use prism_types::ChatRequest;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use crate::CacheError;

/// Version tag at the front of every key. Bump it whenever the canonical form or the stored
/// value format changes, so old entries simply stop matching instead of being misread.
pub const KEY_VERSION: &str = "v1";

/// Top-level request fields that never change the answer and are left out of the key.
///
/// Everything else — typed or unknown (`extra`) — is part of the key, so a parameter Prism does
/// not know about can only cause an extra miss, never a wrong hit. `service_tier` stays in the key
/// because the response body reports it.
pub const TRANSPORT_FIELDS: &[&str] = &[
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
];

/// Domain separation for the namespace digest.
const NAMESPACE_DOMAIN: &[u8] = b"prism-cache namespace\0";
/// Domain separation for the request digest.
const REQUEST_DOMAIN: &[u8] = b"prism-cache request v1\0";
/// Hex characters of the namespace digest kept in the key (128 bits).
const NAMESPACE_HEX_LEN: usize = 32;

/// The key of one cached response: `v1:<namespace digest>:<request digest>`, lowercase hex.
///
/// The namespace (a tenant: by default the API key's id) is hashed, so any string is a safe
/// namespace — no escaping, no way to forge another tenant's prefix — and ids never reach the
/// backend in clear. The namespace is also mixed into the request digest. The key is made of
/// hashes only, so it may be shown in `Debug` output; it reveals nothing about the request.
/// Cloning is cheap (reference counted).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    rendered: Arc<str>,
}

impl CacheKey {
    /// The key for `request` in `namespace`.
    ///
    /// Fields in [`TRANSPORT_FIELDS`] and top-level `null`s are ignored; object keys are sorted
    /// at every depth; numbers are written canonically (`1`, `1.0` and `1e0` are the same); arrays
    /// keep their order (message and tool order matter).
    ///
    /// # Errors
    /// [`CacheError::KeyEncoding`] if the request cannot be represented as JSON, which the
    /// `prism-types` types do not allow in practice; treat it as "do not cache this request".
    pub fn new(namespace: &str, request: &ChatRequest) -> Result<CacheKey, CacheError> {
        let mut value = serde_json::to_value(request)
            .map_err(|e| CacheError::KeyEncoding { source: Box::new(e) })?;
        // The non-Chat ingresses' extensions change the answer but are never serialised with
        // the request; they join the key under a name no Chat request field can take.
        if !request.ext.is_empty()
            && let Value::Object(map) = &mut value
        {
            let ext = serde_json::to_value(&request.ext)
                .map_err(|e| CacheError::KeyEncoding { source: Box::new(e) })?;
            map.insert("\u{0}prism_ext".to_owned(), ext);
        }
        Ok(CacheKey::from_value(namespace, &value))
    }

    /// The key for a request already parsed into a JSON value (the raw request body).
    ///
    /// Same canonical form as [`CacheKey::new`]. Keys from the two constructors agree when the
    /// value is what `ChatRequest` serializes to; prefer [`CacheKey::new`] in the server, where the
    /// typed request is the one that is forwarded.
    pub fn from_value(namespace: &str, request: &Value) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(REQUEST_DOMAIN);
        hasher.update((namespace.len() as u64).to_be_bytes());
        hasher.update(namespace.as_bytes());
        let mut sink = HashSink(&mut hasher);
        match request {
            Value::Object(fields) => {
                let kept = fields.iter().filter(|(name, value)| {
                    !value.is_null() && !TRANSPORT_FIELDS.contains(&name.as_str())
                });
                write_object(&mut sink, kept);
            }
            other => write_value(&mut sink, other),
        }
        let digest = hasher.finalize();

        let mut rendered = CacheKey::namespace_prefix(namespace);
        rendered.push_str(&hex::encode(digest));
        CacheKey { rendered: rendered.into() }
    }

    /// `v1:<namespace digest>:`, the prefix every key of `namespace` starts with (for operators
    /// who want to find or purge one tenant's entries in Redis).
    pub fn namespace_prefix(namespace: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(NAMESPACE_DOMAIN);
        hasher.update(namespace.as_bytes());
        let digest = hex::encode(hasher.finalize());
        let mut out = String::with_capacity(KEY_VERSION.len() + NAMESPACE_HEX_LEN + 66);
        out.push_str(KEY_VERSION);
        out.push(':');
        out.push_str(digest.get(..NAMESPACE_HEX_LEN).unwrap_or(&digest));
        out.push(':');
        out
    }

    /// The rendered key.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheKey").field(&&*self.rendered).finish()
    }
}

impl AsRef<str> for CacheKey {
    fn as_ref(&self) -> &str {
        &self.rendered
    }
}

/// Feeds formatted text straight into the hasher, so the canonical form is never materialised.
struct HashSink<'a>(&'a mut Sha256);

impl HashSink<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update(b);
    }
}

impl fmt::Write for HashSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

fn write_value(out: &mut HashSink<'_>, value: &Value) {
    match value {
        Value::Null => out.bytes(b"null"),
        Value::Bool(true) => out.bytes(b"true"),
        Value::Bool(false) => out.bytes(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.bytes(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.bytes(b",");
                }
                write_value(out, item);
            }
            out.bytes(b"]");
        }
        Value::Object(fields) => write_object(out, fields.iter()),
    }
}

/// Writes an object with its keys in byte order, whatever order the map iterates in (serde_json
/// may be built with `preserve_order` by another crate in the workspace).
fn write_object<'v>(out: &mut HashSink<'_>, fields: impl Iterator<Item = (&'v String, &'v Value)>) {
    let mut sorted: Vec<(&String, &Value)> = fields.collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.bytes(b"{");
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.bytes(b",");
        }
        write_string(out, name);
        out.bytes(b":");
        write_value(out, value);
    }
    out.bytes(b"}");
}

/// Integers as plain decimals; floats with an integral value below 2^53 as integers (so `1.0`
/// equals `1`); other floats in Rust's shortest round-trip form. JSON values hold no NaN or
/// infinity.
fn write_number(out: &mut HashSink<'_>, n: &Number) {
    const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    // Writing into a hasher cannot fail, so the fmt::Results below are always Ok.
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < EXACT_INT_LIMIT {
            #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
            let i = f as i64;
            let _ = write!(out, "{i}");
        } else {
            let _ = write!(out, "{f}");
        }
    }
}

/// A JSON string with the minimal escapes: quote, backslash, control characters.
fn write_string(out: &mut HashSink<'_>, s: &str) {
    out.bytes(b"\"");
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.bytes(&bytes[start..i]);
            match b {
                b'"' => out.bytes(b"\\\""),
                b'\\' => out.bytes(b"\\\\"),
                _ => {
                    let _ = write!(out, "\\u{b:04x}");
                }
            }
            start = i + 1;
        }
    }
    out.bytes(&bytes[start..]);
    out.bytes(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is 2+2?"}
            ]
        })
    }

    fn key_of(ns: &str, body: &Value) -> CacheKey {
        let req: ChatRequest = serde_json::from_value(body.clone()).expect("valid request");
        CacheKey::new(ns, &req).expect("key")
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = base();
        body.as_object_mut().expect("object").insert(field.to_owned(), value);
        body
    }

    #[test]
    fn format_is_versioned_hex() {
        let key = key_of("tenant-a", &base());
        let parts: Vec<&str> = key.as_str().split(':').collect();
        assert_eq!(parts.len(), 3, "{key}");
        assert_eq!(parts[0], "v1");
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 64);
        assert!(parts[1..].iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())));
        assert!(key.as_str().starts_with(&CacheKey::namespace_prefix("tenant-a")));
        assert!(!key.as_str().contains("tenant"));
    }

    #[test]
    fn field_order_and_whitespace_do_not_matter() {
        let a = r#"{"model":"m","temperature":0.5,"messages":[{"role":"user","content":"hi"}],
            "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":
            {"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer"}}}}}}"#;
        let b = r#"{
            "response_format": {"json_schema": {"schema": {"properties": {"a": {"type": "integer"},
                "b": {"type": "string"}}, "type": "object"}, "name": "x"}, "type": "json_schema"},
            "messages": [ { "content": "hi", "role": "user" } ],
            "temperature": 0.50,
            "model": "m"
        }"#;
        let ra: ChatRequest = serde_json::from_str(a).unwrap();
        let rb: ChatRequest = serde_json::from_str(b).unwrap();
        assert_eq!(CacheKey::new("t", &ra).unwrap(), CacheKey::new("t", &rb).unwrap());
    }

    #[test]
    fn unknown_fields_are_sorted_recursively_and_numbers_canonical() {
        let a = with("vendor_opts", json!({"z": 1, "a": {"y": [1.0, 2], "x": 1e2}}));
        let b = with("vendor_opts", json!({"a": {"x": 100, "y": [1, 2.0]}, "z": 1.0}));
        assert_eq!(key_of("t", &a), key_of("t", &b));
        let c = with("vendor_opts", json!({"a": {"x": 100, "y": [2, 1]}, "z": 1}));
        assert_ne!(key_of("t", &a), key_of("t", &c), "array order is significant");
        // A decoded escape and the literal character are the same string.
        let d: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"\u0041"}]}"#,
        )
        .unwrap();
        let e: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"A"}]}"#)
                .unwrap();
        assert_eq!(CacheKey::new("t", &d).unwrap(), CacheKey::new("t", &e).unwrap());
    }

    #[test]
    fn every_answer_changing_field_changes_the_key() {
        let tool = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
        let variants: Vec<(&str, Value)> = vec![
            ("model", json!("gpt-4o")),
            ("messages", json!([{"role": "user", "content": "What is 2+3?"}])),
            ("tools", tool.clone()),
            ("tool_choice", json!("required")),
            ("response_format", json!({"type": "json_object"})),
            ("temperature", json!(0.7)),
            ("top_p", json!(0.9)),
            ("n", json!(2)),
            ("stop", json!(["\n"])),
            ("seed", json!(42)),
            ("max_tokens", json!(64)),
            ("max_completion_tokens", json!(64)),
            ("presence_penalty", json!(0.5)),
            ("frequency_penalty", json!(0.5)),
            ("logit_bias", json!({"50256": -100})),
            ("logprobs", json!(true)),
            ("top_logprobs", json!(3)),
            ("reasoning_effort", json!("high")),
            ("parallel_tool_calls", json!(false)),
            ("service_tier", json!("flex")),
            ("some_future_param", json!({"k": 1})),
        ];
        let base_key = key_of("t", &base());
        let mut seen = std::collections::HashSet::new();
        seen.insert(base_key.clone());
        for (field, value) in variants {
            let key = key_of("t", &with(field, value));
            assert_ne!(key, base_key, "{field} must change the key");
            assert!(seen.insert(key), "{field} collides with another variant");
        }
        // Values of the same field differ too, not only presence.
        assert_ne!(
            key_of("t", &with("temperature", json!(0.7))),
            key_of("t", &with("temperature", json!(0.8)))
        );
        // A tools list with one more tool is a different request.
        let mut two = tool.as_array().unwrap().clone();
        two.push(json!({"type": "function", "function": {"name": "g"}}));
        assert_ne!(key_of("t", &with("tools", tool)), key_of("t", &with("tools", json!(two))));
    }

    #[test]
    fn ingress_extensions_change_the_key() {
        let plain: ChatRequest = serde_json::from_value(base()).unwrap();
        let mut budget = plain.clone();
        budget.ext.thinking_budget = Some(2048);
        let mut top_k = plain.clone();
        top_k.ext.top_k = Some(5);
        let keys: Vec<CacheKey> = [&plain, &budget, &top_k]
            .into_iter()
            .map(|r| CacheKey::new("ns", r).unwrap())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
        assert_eq!(keys[0], CacheKey::new("ns", &plain).unwrap());
    }

    #[test]
    fn transport_fields_do_not_change_the_key() {
        let base_key = key_of("t", &base());
        let variants: Vec<(&str, Value)> = vec![
            ("stream", json!(true)),
            ("stream", json!(false)),
            ("stream_options", json!({"include_usage": true})),
            ("user", json!("user-123")),
            ("metadata", json!({"trace": "abc"})),
            ("store", json!(true)),
            ("safety_identifier", json!("hash")),
            ("prompt_cache_key", json!("pk")),
            ("prompt_cache_retention", json!("24h")),
            ("unknown_but_null", Value::Null),
        ];
        for (field, value) in variants {
            assert_eq!(key_of("t", &with(field, value)), base_key, "{field} must be ignored");
        }
    }

    #[test]
    fn tenants_never_share_keys() {
        let a = key_of("key_a", &base());
        let b = key_of("key_b", &base());
        assert_ne!(a, b);
        assert_ne!(a.as_str().split(':').nth(1), b.as_str().split(':').nth(1));
        // Separator-like characters in a namespace cannot forge another namespace.
        assert_ne!(key_of("a:b", &base()), key_of("a", &base()));
        assert_ne!(key_of("", &base()), key_of("shared", &base()));
    }

    #[test]
    fn same_request_same_key_is_stable() {
        // Golden value: changing it means every deployed cache entry is orphaned, so bump
        // KEY_VERSION along with it.
        let key = key_of("tenant", &base());
        assert_eq!(key, key_of("tenant", &base()));
        insta::assert_snapshot!(
            key.as_str(),
            @"v1:663c5a5ec3ac4d39b498e3d3bb4feefc:a002823186f7a9efae0f72172bebcfb3c5dca23f93342f9663058745bc3128da"
        );
    }

    #[test]
    fn string_escapes_are_canonical() {
        let mut hasher = Sha256::new();
        write_string(&mut HashSink(&mut hasher), "a\"b\\c\nd\u{1}é");
        let mut expected = Sha256::new();
        expected.update("\"a\\\"b\\\\c\\u000ad\\u0001é\"".as_bytes());
        assert_eq!(hasher.finalize(), expected.finalize());
    }

    #[test]
    fn numbers_are_canonical() {
        fn canon(v: Value) -> Vec<u8> {
            let mut hasher = Sha256::new();
            write_value(&mut HashSink(&mut hasher), &v);
            hasher.finalize().to_vec()
        }
        fn text(s: &str) -> Vec<u8> {
            let mut hasher = Sha256::new();
            hasher.update(s.as_bytes());
            hasher.finalize().to_vec()
        }
        assert_eq!(canon(json!(1.0)), text("1"));
        assert_eq!(canon(json!(-0.0)), text("0"));
        assert_eq!(canon(json!(-3)), text("-3"));
        assert_eq!(canon(json!(0.1)), text("0.1"));
        assert_eq!(canon(json!(u64::MAX)), text("18446744073709551615"));
        assert_eq!(canon(json!(2.5e-8)), canon(serde_json::from_str("0.000000025").unwrap()));
    }
}

//! The binary `fixtures/bedrock/*/upstream.eventstream` files are generated from the readable
//! `events.json` beside them with our own encoder: this test checks they agree, and rewrites them
//! when `PRISM_REGEN_FIXTURES=1` is set.
//!
//! `events.json`: `{"frames": [...], "corrupt_message_crc_of_frame"?: N, "truncate_last_bytes"?: N}`;
//! a frame is `{"event": type, "payload": json}`, `{"exception": type, "payload": json}`,
//! `{"chunk": anthropic_event}` (InvokeModelWithResponseStream: base64 in `bytes`), or any of the
//! first two with `"payload_raw": "<exact payload text>"`. JSON payloads get Bedrock's random-length
//! `p` padding field and are written with sorted keys, as Bedrock writes them.

#![expect(clippy::unwrap_used, reason = "a broken fixture file should fail the test loudly")]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prism_providers::bedrock;
use serde_json::Value;

fn bedrock_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bedrock")
}

/// JSON text with object keys sorted at every level, independent of serde_json's map features.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap(), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(","))
        }
        other => serde_json::to_string(other).unwrap(),
    }
}

/// Bedrock's traffic-analysis padding: a prefix of the alphabet whose length varies per frame.
fn padded(payload: &Value, frame: usize) -> String {
    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut obj = payload.as_object().cloned().unwrap_or_default();
    obj.insert("p".into(), Value::String(ALPHABET[..1 + (frame * 17) % 40].to_owned()));
    canonical(&Value::Object(obj))
}

fn payload_text(frame: &Value, index: usize) -> String {
    match frame.get("payload_raw") {
        Some(raw) => raw.as_str().unwrap().to_owned(),
        None => padded(&frame["payload"], index),
    }
}

fn encode(case: &Path, spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let frames =
        spec["frames"].as_array().unwrap_or_else(|| panic!("{}: no frames", case.display()));
    for (i, frame) in frames.iter().enumerate() {
        let mut bytes = if let Some(event) = frame.get("event") {
            bedrock::encode_event(event.as_str().unwrap(), payload_text(frame, i).as_bytes())
                .unwrap()
        } else if let Some(exception) = frame.get("exception") {
            bedrock::encode_exception(
                exception.as_str().unwrap(),
                payload_text(frame, i).as_bytes(),
            )
            .unwrap()
        } else if let Some(event) = frame.get("chunk") {
            let wrapped = serde_json::json!({"bytes": B64.encode(canonical(event))});
            bedrock::encode_event("chunk", padded(&wrapped, i).as_bytes()).unwrap()
        } else {
            panic!("{}: frame {i} is neither event, exception nor chunk", case.display());
        };
        if spec.get("corrupt_message_crc_of_frame").and_then(Value::as_u64) == Some(i as u64) {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x5a;
        }
        out.extend_from_slice(&bytes);
    }
    if let Some(n) = spec.get("truncate_last_bytes").and_then(Value::as_u64) {
        out.truncate(out.len() - n as usize);
    }
    out
}

#[test]
fn eventstream_fixtures_match_their_event_lists() {
    let regen = std::env::var("PRISM_REGEN_FIXTURES").is_ok_and(|v| v == "1");
    let mut checked = 0;
    for entry in std::fs::read_dir(bedrock_fixtures()).unwrap() {
        let case = entry.unwrap().path();
        let events = case.join("events.json");
        if !events.exists() {
            continue;
        }
        let spec: Value = serde_json::from_slice(&std::fs::read(&events).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", events.display()));
        let bytes = encode(&case, &spec);
        let target = case.join("upstream.eventstream");
        if regen {
            std::fs::write(&target, &bytes).unwrap();
        } else {
            let on_disk = std::fs::read(&target).unwrap_or_default();
            assert!(
                on_disk == bytes,
                "{} is stale: run PRISM_REGEN_FIXTURES=1 cargo nextest run -p prism-providers --test bedrock_fixtures",
                target.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} bedrock fixtures with events.json");
}

//! Fuzz target `requests`: the client request decoders (Chat Completions, Anthropic Messages and
//! `count_tokens`, OpenAI Responses) never panic on any body, and every request they accept is a
//! canonical request that Chat Completions accepts again: its JSON decodes to the same request
//! (but for the extensions JSON never carries).
//!
//! Input: a selector byte (which decoder), then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_ingress::{chat, messages, responses};
use prism_types::ChatRequest;

/// The canonical request re-validates and survives a JSON round trip through the chat decoder
/// (all but `ext`, which the Messages and Responses ingresses fill and JSON never carries).
fn check_canonical(request: &ChatRequest, what: &str) {
    let mut expected = request.clone();
    expected.ext = Default::default();
    let json = match serde_json::to_vec(request) {
        Ok(json) => json,
        Err(e) => panic!("{what}: an accepted request does not serialize: {e}"),
    };
    match chat::decode_request(&json) {
        Ok(again) => assert_eq!(again.request, expected, "{what}: round trip changed the request"),
        Err(e) => panic!("{what}: the canonical request is rejected by the chat decoder: {e:?}"),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else { return };
    match selector % 4 {
        0 => {
            if let Ok(decoded) = chat::decode_request(body) {
                check_canonical(&decoded.request, "chat");
            }
        }
        1 => {
            if let Ok(decoded) = messages::decode_request(body) {
                check_canonical(&decoded.request, "messages");
            }
        }
        2 => {
            let _ = messages::decode_count_tokens(body);
        }
        _ => {
            if let Ok(decoded) = responses::decode_request(body) {
                check_canonical(&decoded.request, "responses");
            }
        }
    }
});

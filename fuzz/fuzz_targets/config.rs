//! Fuzz target `config`: the configuration loader (`Config::from_toml`) returns a config or a
//! typed error for any text, and never panics. Seeded with the example configs and the TOML of
//! the config tests, so it starts from deep, valid files.
//!
//! Input: the TOML text (invalid UTF-8 is replaced, so every input is a text).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prism_server::Config;

/// A fixed environment: some variables set (credentials, a port), the rest unset.
fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" | "GEMINI_API_KEY" | "PRISM_KEY" => {
            Some(format!("sk-fuzz-{name}"))
        }
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let _ = Config::from_toml(&text, &env);
});

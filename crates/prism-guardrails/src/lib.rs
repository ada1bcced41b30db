//! Guardrails for Prism: rule configuration, PII/secret/keyword/regex/prompt-injection detectors,
//! request checks, and the incremental scanner for streamed responses. Pure and sans-IO: no
//! clock, no tasks, no I/O; the server owns logging, metrics, HTTP and SSE.
//!
//! # Configuration
//!
//! [`RuleConfig`] deserializes from flat TOML tables (see `docs/guardrails.md`):
//!
//! ```toml
//! [[guardrails.rules]]
//! name = "no-secrets"
//! kind = "secrets"          # regex | keywords | pii | secrets | prompt_injection | max_output_chars
//! mode = "enforce"          # enforce | monitor
//! stage = "both"            # input | output | both (default per kind)
//! hold_back = true          # enforce output rules only
//! ```
//!
//! Compile each layer once at config load with [`GuardrailSet::new`] (or
//! [`GuardrailSet::from_config`] for the `[guardrails]` table): the global list, each model's
//! `guardrails = [...]`, each key's. Per request, combine them with
//! `GuardrailSet::merge([&global, &model, &key])` — no recompilation, a later layer's rule
//! replaces an earlier one of the same name.
//!
//! # Wiring it into the server
//!
//! Requests — before the cache and any upstream call:
//!
//! ```
//! # use prism_guardrails::*;
//! # use prism_types::{ChatRequest, Message};
//! # let set = GuardrailSet::new(&[RuleConfig::new("no-pii", Mode::Enforce,
//! #     RuleKind::pii(PiiType::ALL))]).unwrap();
//! # let request = ChatRequest { model: "m".into(), messages: vec![Message::User {
//! #     content: "card 4111 1111 1111 1111".into(), name: None }], ..Default::default() };
//! let verdict = check_request(&set, &request);
//! for warning in verdict.warnings() {
//!     // log rule, request id and position (`warning` displays all three but never the
//!     // matched text), count a metric labelled by `warning.rule` and `warning.detector`
//! }
//! if let Some(error) = verdict.to_error_object() {
//!     // respond BLOCKED_STATUS (403) with `error.into_body()`; make no upstream call
//!     assert_eq!(error.message, "request blocked by guardrail 'no-pii' (pii:card)");
//! }
//! ```
//!
//! Streams — one [`OutputScanner`] per response, every translated chunk through it:
//!
//! ```
//! # use prism_guardrails::*;
//! # use prism_types::{ChatChunk, Delta, FinishReason};
//! # let set = GuardrailSet::new(&[RuleConfig::new("no-pii", Mode::Enforce,
//! #     RuleKind::pii(PiiType::ALL)).with_hold_back(true)]).unwrap();
//! # let upstream = vec![
//! #     ChatChunk::new("c", 1, "m").with_delta(0, Delta::content("card 4111 1111 ")),
//! #     ChatChunk::new("c", 1, "m").with_delta(0, Delta::content("1111 1111 ok")),
//! #     ChatChunk::new("c", 1, "m").with_finish(0, FinishReason::Stop),
//! # ];
//! # let mut sent = String::new();
//! let mut scanner = OutputScanner::new(&set);
//! for chunk in upstream {
//!     let outcome = scanner.scan_chunk(chunk);
//!     if let Some(chunk) = outcome.forward {
//!         // encode and send `chunk`
//! #       for c in &chunk.choices { sent.push_str(c.delta.content.as_deref().unwrap_or("")); }
//!     }
//!     // log + count each of outcome.verdict.warnings()
//!     if let Some(error) = outcome.verdict.to_error_object() {
//!         // send `data: {"error":{…}}` (error.into_body()), no [DONE]; drop the upstream
//! #       assert_eq!(error.message, "response blocked by guardrail 'no-pii' (pii:card)");
//!         break;
//!     }
//! }
//! // on a normal upstream end: send scanner.finish_stream().forward (if any), then [DONE]
//! # assert_eq!(sent, "card ");
//! ```
//!
//! Non-streaming responses: [`check_completion`]; on block replace the completion with the error
//! (403), otherwise set [`WARNINGS_HEADER`] to [`Verdict::warning_header`].
//!
//! # Streaming guarantees
//!
//! - A match split across any number of deltas is found, at the same character offset, as in the
//!   unchunked text, provided it is no longer than its detector's window (built-ins: their own
//!   maximum length, JWTs 10,240 characters; regex rules: the pattern's bounded length, else
//!   `max_match_chars`, default 256).
//! - Each delta costs O(delta + window) work: the scanner keeps only undecided text plus two
//!   characters of context per channel, never the whole response.
//! - With `hold_back`, the scanner withholds only the shortest suffix that could still grow into a
//!   match of a hold-back rule, so violating text is never released; without it, text is released
//!   immediately and a violation is reported as soon as it is certain.

mod config;
mod detect;
mod engine;
mod error;
mod input;
mod scanner;
mod set;
mod verdict;

pub use config::{GuardrailsConfig, Mode, PiiType, RuleConfig, RuleKind, SecretType, Stage};
pub use detect::injection::DEFAULT_PHRASES as DEFAULT_INJECTION_PHRASES;
pub use error::GuardrailError;
pub use input::check_request;
pub use scanner::{
    ChunkOutcome, FinishOutcome, OutputScanner, Release, ScanOutcome, check_completion,
};
pub use set::GuardrailSet;
pub use verdict::{
    BLOCKED_STATUS, Channel, Detector, ERROR_CODE, ERROR_TYPE, Finding, InputField, Location,
    Verdict, WARNINGS_HEADER,
};

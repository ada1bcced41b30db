//! The crate's one error type: a rule configuration that cannot be compiled.
//!
//! Every variant names the rule at fault; none carries guarded text (there is none at config time).

use crate::config::Stage;

/// Why a rule set could not be built. Returned by [`crate::GuardrailSet::new`] and by the serde
/// conversion of a raw `[[guardrails.rules]]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardrailError {
    /// A rule has an empty (or all-whitespace) name.
    #[error("guardrail rule has an empty name")]
    EmptyName,
    /// Two rules of the same layer share a name.
    #[error("guardrail rule '{rule}' is defined twice")]
    DuplicateRule {
        /// The repeated name.
        rule: String,
    },
    /// A field was given that the rule's kind does not use.
    #[error("guardrail rule '{rule}': field `{field}` does not apply to kind {kind}")]
    FieldNotApplicable {
        /// The rule.
        rule: String,
        /// The stray field.
        field: &'static str,
        /// The rule's kind.
        kind: &'static str,
    },
    /// A field the rule's kind needs is missing.
    #[error("guardrail rule '{rule}': kind {kind} needs field `{field}`")]
    MissingField {
        /// The rule.
        rule: String,
        /// The missing field.
        field: &'static str,
        /// The rule's kind.
        kind: &'static str,
    },
    /// An entry of `types` names no known detector.
    #[error("guardrail rule '{rule}': unknown {kind} type '{value}' (known: {known})")]
    UnknownType {
        /// The rule.
        rule: String,
        /// `pii` or `secrets`.
        kind: &'static str,
        /// The unknown entry.
        value: String,
        /// The accepted names, comma-separated.
        known: &'static str,
    },
    /// The regex does not compile.
    #[error("guardrail rule '{rule}': invalid regex: {reason}")]
    InvalidRegex {
        /// The rule.
        rule: String,
        /// The regex engine's explanation.
        reason: String,
    },
    /// The regex can match the empty string, which would flag every position.
    #[error("guardrail rule '{rule}': regex can match empty text")]
    EmptyMatch {
        /// The rule.
        rule: String,
    },
    /// `max_match_chars` is out of range.
    #[error("guardrail rule '{rule}': max_match_chars must be between 1 and {max}, got {value}")]
    InvalidWindow {
        /// The rule.
        rule: String,
        /// The value given.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A list field (`words`, `types`, `phrases`) is empty.
    #[error("guardrail rule '{rule}': `{field}` is empty")]
    EmptyList {
        /// The rule.
        rule: String,
        /// The empty field.
        field: &'static str,
    },
    /// One entry of a list field is empty after trimming.
    #[error("guardrail rule '{rule}': entry {index} of `{field}` is empty")]
    EmptyEntry {
        /// The rule.
        rule: String,
        /// The list field.
        field: &'static str,
        /// Zero-based position of the entry.
        index: usize,
    },
    /// `max_output_chars` with a zero limit.
    #[error("guardrail rule '{rule}': limit must be at least 1")]
    ZeroLimit {
        /// The rule.
        rule: String,
    },
    /// The kind cannot run at the configured stage (prompt injection is input only,
    /// `max_output_chars` is output only).
    #[error("guardrail rule '{rule}': kind {kind} cannot run at stage {stage}")]
    StageNotSupported {
        /// The rule.
        rule: String,
        /// The rule's kind.
        kind: &'static str,
        /// The configured stage.
        stage: Stage,
    },
    /// `hold_back` on a Monitor rule: monitor never withholds text.
    #[error("guardrail rule '{rule}': hold_back needs mode enforce")]
    HoldBackNeedsEnforce {
        /// The rule.
        rule: String,
    },
    /// `hold_back` on an input-only rule: there is no stream to hold back.
    #[error("guardrail rule '{rule}': hold_back applies to output, but the rule's stage is input")]
    HoldBackOnInput {
        /// The rule.
        rule: String,
    },
    /// `scan_reasoning` on an input-only rule.
    #[error(
        "guardrail rule '{rule}': scan_reasoning applies to output, but the rule's stage is input"
    )]
    ReasoningOnInput {
        /// The rule.
        rule: String,
    },
    /// The keyword or phrase automaton could not be built (for example, too large).
    #[error("guardrail rule '{rule}': `{field}` could not be compiled: {reason}")]
    AutomatonBuild {
        /// The rule.
        rule: String,
        /// `words` or `phrases`.
        field: &'static str,
        /// The builder's explanation.
        reason: String,
    },
}

impl GuardrailError {
    /// The rule the error is about, when it names one.
    pub fn rule(&self) -> Option<&str> {
        match self {
            GuardrailError::EmptyName => None,
            GuardrailError::DuplicateRule { rule }
            | GuardrailError::FieldNotApplicable { rule, .. }
            | GuardrailError::MissingField { rule, .. }
            | GuardrailError::UnknownType { rule, .. }
            | GuardrailError::InvalidRegex { rule, .. }
            | GuardrailError::EmptyMatch { rule }
            | GuardrailError::InvalidWindow { rule, .. }
            | GuardrailError::EmptyList { rule, .. }
            | GuardrailError::EmptyEntry { rule, .. }
            | GuardrailError::ZeroLimit { rule }
            | GuardrailError::StageNotSupported { rule, .. }
            | GuardrailError::HoldBackNeedsEnforce { rule }
            | GuardrailError::HoldBackOnInput { rule }
            | GuardrailError::ReasoningOnInput { rule }
            | GuardrailError::AutomatonBuild { rule, .. } => Some(rule),
        }
    }
}

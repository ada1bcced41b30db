//! Findings and verdicts, and their OpenAI error shape. A finding records where a rule fired and
//! how long the match is — never the matched text, so it is safe to log, count and display.

use std::fmt;
use std::sync::Arc;

use prism_types::ErrorObject;

use crate::config::{Mode, PiiType, SecretType};

/// `type` of the error object a blocking verdict becomes.
pub const ERROR_TYPE: &str = "guardrail_error";
/// `code` of the error object a blocking verdict becomes.
pub const ERROR_CODE: &str = "content_blocked";
/// HTTP status of a blocked request or non-streaming response.
pub const BLOCKED_STATUS: u16 = 403;
/// Response header listing the Monitor rules that fired on a non-streaming response.
pub const WARNINGS_HEADER: &str = "x-prism-guardrail-warnings";

/// Which detector of a rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detector {
    /// A `regex` rule.
    Regex,
    /// A `keywords` rule.
    Keywords,
    /// One detector of a `pii` rule.
    Pii(PiiType),
    /// One detector of a `secrets` rule.
    Secret(SecretType),
    /// A `prompt_injection` rule.
    PromptInjection,
    /// A `max_output_chars` rule.
    MaxOutputChars,
}

impl fmt::Display for Detector {
    /// Low-cardinality label, e.g. `pii:card`, `secrets:aws_access_key`; fit for metrics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detector::Regex => f.write_str("regex"),
            Detector::Keywords => f.write_str("keywords"),
            Detector::Pii(t) => write!(f, "pii:{}", t.as_str()),
            Detector::Secret(t) => write!(f, "secrets:{}", t.as_str()),
            Detector::PromptInjection => f.write_str("prompt_injection"),
            Detector::MaxOutputChars => f.write_str("max_output_chars"),
        }
    }
}

/// A text channel of a streamed (or whole) response choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `delta.content` / `message.content`.
    Content,
    /// `delta.refusal` / `message.refusal`.
    Refusal,
    /// `delta.reasoning_content`; scanned only by rules with `scan_reasoning`.
    Reasoning,
    /// The JSON arguments of tool call `index`.
    ToolArguments(u32),
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Content => f.write_str("content"),
            Channel::Refusal => f.write_str("refusal"),
            Channel::Reasoning => f.write_str("reasoning"),
            Channel::ToolArguments(i) => write!(f, "tool call {i} arguments"),
        }
    }
}

/// A text field of a request message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputField {
    /// String content.
    Content,
    /// Text (or refusal) part `n` of array content.
    ContentPart(usize),
    /// An assistant message's `refusal`.
    Refusal,
    /// An assistant message's echoed `reasoning_content`.
    Reasoning,
    /// The arguments of an assistant message's tool call `n`.
    ToolCallArguments(usize),
}

impl fmt::Display for InputField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputField::Content => f.write_str("content"),
            InputField::ContentPart(i) => write!(f, "content part {i}"),
            InputField::Refusal => f.write_str("refusal"),
            InputField::Reasoning => f.write_str("reasoning"),
            InputField::ToolCallArguments(i) => write!(f, "tool call {i} arguments"),
        }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// In the request.
    Input {
        /// Index into `messages`.
        message: usize,
        /// Which text of that message.
        field: InputField,
    },
    /// In the response.
    Output {
        /// The choice index.
        choice: u32,
        /// Which text of that choice.
        channel: Channel,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Input { message, field } => write!(f, "message {message} {field}"),
            Location::Output { choice, channel } => write!(f, "choice {choice} {channel}"),
        }
    }
}

/// One rule firing. Carries no matched text: only where it is and how long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Finding {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The rule's mode.
    pub mode: Mode,
    /// The detector that fired.
    pub detector: Detector,
    /// The message field or response channel.
    pub location: Location,
    /// Offset of the match in characters (Unicode scalar values) from the start of that text.
    /// For `max_output_chars`, the offset of the first character over the limit.
    pub offset: usize,
    /// Length of the match in characters (0 for `max_output_chars`).
    pub len: usize,
}

impl Finding {
    /// Whether this finding blocks (its rule is Enforce).
    pub fn is_blocking(&self) -> bool {
        self.mode == Mode::Enforce
    }

    /// The error object sent to the client when this finding blocks: `type` `guardrail_error`,
    /// `code` `content_blocked`, a message naming the rule and detector (never the matched text).
    /// Send it with HTTP [`BLOCKED_STATUS`], or as the final SSE event of a stream.
    pub fn to_error_object(&self) -> ErrorObject {
        let what = match self.location {
            Location::Input { .. } => "request",
            Location::Output { .. } => "response",
        };
        ErrorObject::new(
            ERROR_TYPE,
            format!("{what} blocked by guardrail '{}' ({})", self.rule, self.detector),
        )
        .with_code(ERROR_CODE)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guardrail '{}' ({}, {}) at {}, char {} ({} chars)",
            self.rule, self.detector, self.mode, self.location, self.offset, self.len
        )
    }
}

/// The findings of one check (a request, a completion, or one scanner step), in order.
///
/// [`Verdict::block`] is the first Enforce finding. A request check lists every finding; a stream
/// scan stops at the first Enforce finding, so nothing after it is reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Verdict {
    findings: Vec<Finding>,
}

impl Verdict {
    /// No findings.
    pub fn pass() -> Self {
        Verdict::default()
    }

    pub(crate) fn from_findings(findings: Vec<Finding>) -> Self {
        Verdict { findings }
    }

    /// Every finding, Monitor and Enforce, in order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Consumes the verdict, returning its findings.
    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// Whether nothing fired.
    pub fn is_pass(&self) -> bool {
        self.findings.is_empty()
    }

    /// Whether an Enforce rule fired.
    pub fn is_blocked(&self) -> bool {
        self.block().is_some()
    }

    /// The first Enforce finding: the one the client is told about.
    pub fn block(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.is_blocking())
    }

    /// The Monitor findings: log each and count it, then carry on.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.is_blocking())
    }

    /// Value for the [`WARNINGS_HEADER`] of a non-streaming response: the distinct names of the
    /// Monitor rules that fired, comma-separated in first-fired order; `None` when none did.
    pub fn warning_header(&self) -> Option<String> {
        let mut names: Vec<&str> = Vec::new();
        for finding in self.warnings() {
            if !names.contains(&&*finding.rule) {
                names.push(&finding.rule);
            }
        }
        (!names.is_empty()).then(|| names.join(","))
    }

    /// The error object for a blocked verdict; `None` when nothing blocks.
    pub fn to_error_object(&self) -> Option<ErrorObject> {
        self.block().map(Finding::to_error_object)
    }

    pub(crate) fn extend(&mut self, other: Verdict) {
        self.findings.extend(other.findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, mode: Mode, location: Location) -> Finding {
        Finding {
            rule: rule.into(),
            mode,
            detector: Detector::Pii(PiiType::Card),
            location,
            offset: 14,
            len: 19,
        }
    }

    #[test]
    fn error_object_names_rule_and_detector_only() {
        let input = finding(
            "no-pii",
            Mode::Enforce,
            Location::Input { message: 2, field: InputField::ContentPart(1) },
        );
        let error = input.to_error_object();
        assert_eq!(error.kind, "guardrail_error");
        assert_eq!(error.code.as_deref(), Some("content_blocked"));
        assert_eq!(error.message, "request blocked by guardrail 'no-pii' (pii:card)");
        let json = serde_json::to_string(&error.into_body()).unwrap();
        assert_eq!(
            json,
            r#"{"error":{"message":"request blocked by guardrail 'no-pii' (pii:card)","type":"guardrail_error","param":null,"code":"content_blocked"}}"#
        );
        let output = finding(
            "no-pii",
            Mode::Enforce,
            Location::Output { choice: 0, channel: Channel::ToolArguments(1) },
        );
        assert_eq!(
            output.to_error_object().message,
            "response blocked by guardrail 'no-pii' (pii:card)"
        );
        assert_eq!(
            output.to_string(),
            "guardrail 'no-pii' (pii:card, enforce) at choice 0 tool call 1 arguments, char 14 (19 chars)"
        );
    }

    #[test]
    fn verdict_blocks_on_first_enforce_and_lists_warning_rules_once() {
        let at = Location::Output { choice: 0, channel: Channel::Content };
        let verdict = Verdict::from_findings(vec![
            finding("watch", Mode::Monitor, at),
            finding("stop", Mode::Enforce, at),
            finding("watch", Mode::Monitor, at),
            finding("audit", Mode::Monitor, at),
        ]);
        assert!(verdict.is_blocked());
        assert_eq!(&*verdict.block().unwrap().rule, "stop");
        assert_eq!(verdict.warning_header().as_deref(), Some("watch,audit"));
        assert_eq!(verdict.warnings().count(), 3);
        assert!(Verdict::pass().warning_header().is_none());
        assert!(Verdict::pass().to_error_object().is_none());
    }
}

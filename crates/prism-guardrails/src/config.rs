//! Rule configuration: what `[[guardrails.rules]]` tables (and the per-model and per-key
//! `guardrails = [...]` arrays) deserialize into. Structural checks happen here; semantic checks
//! (regex syntax, stage and mode combinations) happen when a [`crate::GuardrailSet`] is built.

use std::fmt;

use serde::Deserialize;

use crate::error::GuardrailError;

/// The `[guardrails]` table of the server config: the global rule list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardrailsConfig {
    /// The rules, in order; `[[guardrails.rules]]` in TOML.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

impl GuardrailsConfig {
    /// A config holding `rules`.
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        GuardrailsConfig { rules }
    }
}

/// Where a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// On the request, before any upstream call.
    Input,
    /// On the response (streamed or whole).
    Output,
    /// On both.
    Both,
}

impl Stage {
    /// Whether the rule checks requests.
    pub fn checks_input(self) -> bool {
        matches!(self, Stage::Input | Stage::Both)
    }

    /// Whether the rule checks responses.
    pub fn checks_output(self) -> bool {
        matches!(self, Stage::Output | Stage::Both)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Output => "output",
            Stage::Both => "both",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse the request, or end the stream with an error.
    Enforce,
    /// Log, count and continue unchanged.
    Monitor,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of personal data the `pii` rule detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiType {
    /// E-mail addresses.
    Email,
    /// Phone numbers: E.164 and common national formats.
    Phone,
    /// Payment card numbers (Luhn-checked).
    Card,
    /// US social security numbers.
    Ssn,
    /// IBANs (mod-97 checked).
    Iban,
    /// IPv4 and IPv6 addresses.
    Ip,
}

impl PiiType {
    /// Every type, the default of a `pii` rule.
    pub const ALL: [PiiType; 6] =
        [PiiType::Email, PiiType::Phone, PiiType::Card, PiiType::Ssn, PiiType::Iban, PiiType::Ip];
    const KNOWN: &'static str = "email, phone, card, ssn, iban, ip";

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiType::Email => "email",
            PiiType::Phone => "phone",
            PiiType::Card => "card",
            PiiType::Ssn => "ssn",
            PiiType::Iban => "iban",
            PiiType::Ip => "ip",
        }
    }

    fn parse(s: &str) -> Option<PiiType> {
        PiiType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A kind of credential the `secrets` rule detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretType {
    /// OpenAI API keys (`sk-…`, `sk-proj-…`).
    Openai,
    /// Anthropic API keys (`sk-ant-…`).
    Anthropic,
    /// AWS access key ids (`AKIA…`, `ASIA…`).
    AwsAccessKey,
    /// Google API keys (`AIza…`).
    GoogleApiKey,
    /// GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// PEM private-key blocks (`-----BEGIN … PRIVATE KEY-----`).
    PrivateKey,
    /// JSON Web Tokens.
    Jwt,
}

impl SecretType {
    /// Every type, the default of a `secrets` rule.
    pub const ALL: [SecretType; 7] = [
        SecretType::Openai,
        SecretType::Anthropic,
        SecretType::AwsAccessKey,
        SecretType::GoogleApiKey,
        SecretType::GithubToken,
        SecretType::PrivateKey,
        SecretType::Jwt,
    ];
    const KNOWN: &'static str =
        "openai, anthropic, aws_access_key, google_api_key, github_token, private_key, jwt";

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Openai => "openai",
            SecretType::Anthropic => "anthropic",
            SecretType::AwsAccessKey => "aws_access_key",
            SecretType::GoogleApiKey => "google_api_key",
            SecretType::GithubToken => "github_token",
            SecretType::PrivateKey => "private_key",
            SecretType::Jwt => "jwt",
        }
    }

    fn parse(s: &str) -> Option<SecretType> {
        SecretType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One rule: a name, where it runs, what it does when it fires, and what it looks for.
///
/// Deserializes from a flat table (`name`, `kind`, `mode`, optional `stage`, `hold_back`,
/// `scan_reasoning`, and the kind's own fields). Build one in code with [`RuleConfig::new`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRule")]
#[non_exhaustive]
pub struct RuleConfig {
    /// Unique within its layer; names the rule in findings, errors, logs and metrics.
    pub name: String,
    /// Where the rule runs.
    pub stage: Stage,
    /// Enforce or Monitor.
    pub mode: Mode,
    /// Enforce output rules only: withhold the shortest suffix of the stream that could still
    /// grow into a match, so violating text never reaches the client.
    pub hold_back: bool,
    /// Output rules only: also scan the model's reasoning text (off by default).
    pub scan_reasoning: bool,
    /// What the rule looks for.
    pub kind: RuleKind,
}

impl RuleConfig {
    /// A rule with the kind's default stage, no hold-back and no reasoning scan.
    pub fn new(name: impl Into<String>, mode: Mode, kind: RuleKind) -> Self {
        RuleConfig {
            name: name.into(),
            stage: kind.default_stage(),
            mode,
            hold_back: false,
            scan_reasoning: false,
            kind,
        }
    }

    /// Sets the stage.
    pub fn with_stage(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }

    /// Sets `hold_back`.
    pub fn with_hold_back(mut self, hold_back: bool) -> Self {
        self.hold_back = hold_back;
        self
    }

    /// Sets `scan_reasoning`.
    pub fn with_scan_reasoning(mut self, scan_reasoning: bool) -> Self {
        self.scan_reasoning = scan_reasoning;
        self
    }
}

/// What a rule looks for, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleKind {
    /// A regular expression (Rust `regex` syntax).
    Regex {
        /// The pattern.
        pattern: String,
        /// How long a match may be and still be caught when a stream splits it. `None`: the
        /// regex's own bound when it has one, else [`RuleKind::DEFAULT_MAX_MATCH_CHARS`].
        max_match_chars: Option<usize>,
    },
    /// A keyword blocklist, all words matched in one pass.
    Keywords {
        /// The words or phrases.
        words: Vec<String>,
        /// Fold case (ASCII letters in any mix; other letters as written, all-lower or all-upper).
        case_insensitive: bool,
        /// Match only where the keyword is not glued to other letters or digits.
        whole_word: bool,
    },
    /// Personal data.
    Pii {
        /// Which detectors to run.
        types: Vec<PiiType>,
    },
    /// Credentials.
    Secrets {
        /// Which detectors to run.
        types: Vec<SecretType>,
    },
    /// Prompt-injection phrases; input only.
    PromptInjection {
        /// The phrases, matched with case and whitespace runs normalised.
        phrases: Vec<String>,
    },
    /// A ceiling on output characters across the whole response; output only.
    MaxOutputChars {
        /// The largest number of characters allowed.
        limit: usize,
    },
}

impl RuleKind {
    /// Window of a regex rule whose pattern has no upper length bound.
    pub const DEFAULT_MAX_MATCH_CHARS: usize = 256;
    /// Largest accepted `max_match_chars`.
    pub const MAX_MATCH_CHARS_LIMIT: usize = 16_384;

    /// A regex rule with the default window.
    pub fn regex(pattern: impl Into<String>) -> Self {
        RuleKind::Regex { pattern: pattern.into(), max_match_chars: None }
    }

    /// A case-insensitive, whole-word keyword rule.
    pub fn keywords<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Self {
        RuleKind::Keywords {
            words: words.into_iter().map(Into::into).collect(),
            case_insensitive: true,
            whole_word: true,
        }
    }

    /// A PII rule with the given detectors.
    pub fn pii(types: impl IntoIterator<Item = PiiType>) -> Self {
        RuleKind::Pii { types: types.into_iter().collect() }
    }

    /// A secrets rule with the given detectors.
    pub fn secrets(types: impl IntoIterator<Item = SecretType>) -> Self {
        RuleKind::Secrets { types: types.into_iter().collect() }
    }

    /// A prompt-injection rule with the built-in phrase list.
    pub fn prompt_injection() -> Self {
        RuleKind::PromptInjection {
            phrases: crate::detect::injection::DEFAULT_PHRASES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }

    /// A `max_output_chars` rule.
    pub fn max_output_chars(limit: usize) -> Self {
        RuleKind::MaxOutputChars { limit }
    }

    /// The config spelling of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Regex { .. } => "regex",
            RuleKind::Keywords { .. } => "keywords",
            RuleKind::Pii { .. } => "pii",
            RuleKind::Secrets { .. } => "secrets",
            RuleKind::PromptInjection { .. } => "prompt_injection",
            RuleKind::MaxOutputChars { .. } => "max_output_chars",
        }
    }

    /// The stage a rule of this kind gets when the config names none.
    pub fn default_stage(&self) -> Stage {
        match self {
            RuleKind::PromptInjection { .. } => Stage::Input,
            RuleKind::MaxOutputChars { .. } => Stage::Output,
            _ => Stage::Both,
        }
    }
}

/// The `kind` tag of a raw rule table.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindTag {
    Regex,
    Keywords,
    Pii,
    Secrets,
    PromptInjection,
    MaxOutputChars,
}

impl KindTag {
    fn name(self) -> &'static str {
        match self {
            KindTag::Regex => "regex",
            KindTag::Keywords => "keywords",
            KindTag::Pii => "pii",
            KindTag::Secrets => "secrets",
            KindTag::PromptInjection => "prompt_injection",
            KindTag::MaxOutputChars => "max_output_chars",
        }
    }
}

/// A rule table exactly as written; every kind-specific field is optional here and
/// [`RuleConfig::try_from`] checks which ones the kind allows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: KindTag,
    mode: Mode,
    #[serde(default)]
    stage: Option<Stage>,
    #[serde(default)]
    hold_back: bool,
    #[serde(default)]
    scan_reasoning: bool,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    max_match_chars: Option<usize>,
    #[serde(default)]
    words: Option<Vec<String>>,
    #[serde(default)]
    case_insensitive: Option<bool>,
    #[serde(default)]
    whole_word: Option<bool>,
    #[serde(default)]
    types: Option<Vec<String>>,
    #[serde(default)]
    phrases: Option<Vec<String>>,
    #[serde(default)]
    limit: Option<usize>,
}

impl TryFrom<RawRule> for RuleConfig {
    type Error = GuardrailError;

    fn try_from(raw: RawRule) -> Result<Self, Self::Error> {
        let tag = raw.kind;
        let rule = raw.name.clone();
        let allowed: &[&str] = match tag {
            KindTag::Regex => &["pattern", "max_match_chars"],
            KindTag::Keywords => &["words", "case_insensitive", "whole_word"],
            KindTag::Pii | KindTag::Secrets => &["types"],
            KindTag::PromptInjection => &["phrases"],
            KindTag::MaxOutputChars => &["limit"],
        };
        let given: [(&'static str, bool); 8] = [
            ("pattern", raw.pattern.is_some()),
            ("max_match_chars", raw.max_match_chars.is_some()),
            ("words", raw.words.is_some()),
            ("case_insensitive", raw.case_insensitive.is_some()),
            ("whole_word", raw.whole_word.is_some()),
            ("types", raw.types.is_some()),
            ("phrases", raw.phrases.is_some()),
            ("limit", raw.limit.is_some()),
        ];
        if let Some((field, _)) = given.iter().find(|(f, present)| *present && !allowed.contains(f))
        {
            return Err(GuardrailError::FieldNotApplicable { rule, field, kind: tag.name() });
        }
        let missing =
            |field| GuardrailError::MissingField { rule: rule.clone(), field, kind: tag.name() };
        let kind = match tag {
            KindTag::Regex => RuleKind::Regex {
                pattern: raw.pattern.ok_or_else(|| missing("pattern"))?,
                max_match_chars: raw.max_match_chars,
            },
            KindTag::Keywords => RuleKind::Keywords {
                words: raw.words.ok_or_else(|| missing("words"))?,
                case_insensitive: raw.case_insensitive.unwrap_or(true),
                whole_word: raw.whole_word.unwrap_or(true),
            },
            KindTag::Pii => RuleKind::Pii {
                types: match raw.types {
                    None => PiiType::ALL.to_vec(),
                    Some(names) => {
                        parse_types(&rule, "pii", PiiType::KNOWN, &names, PiiType::parse)?
                    }
                },
            },
            KindTag::Secrets => RuleKind::Secrets {
                types: match raw.types {
                    None => SecretType::ALL.to_vec(),
                    Some(names) => {
                        parse_types(&rule, "secrets", SecretType::KNOWN, &names, SecretType::parse)?
                    }
                },
            },
            KindTag::PromptInjection => match raw.phrases {
                Some(phrases) => RuleKind::PromptInjection { phrases },
                None => RuleKind::prompt_injection(),
            },
            KindTag::MaxOutputChars => {
                RuleKind::MaxOutputChars { limit: raw.limit.ok_or_else(|| missing("limit"))? }
            }
        };
        Ok(RuleConfig {
            stage: raw.stage.unwrap_or_else(|| kind.default_stage()),
            name: raw.name,
            mode: raw.mode,
            hold_back: raw.hold_back,
            scan_reasoning: raw.scan_reasoning,
            kind,
        })
    }
}

fn parse_types<T>(
    rule: &str,
    kind: &'static str,
    known: &'static str,
    names: &[String],
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, GuardrailError> {
    names
        .iter()
        .map(|name| {
            parse(name).ok_or_else(|| GuardrailError::UnknownType {
                rule: rule.to_owned(),
                kind,
                value: name.clone(),
                known,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<GuardrailsConfig, String> {
        toml::from_str::<GuardrailsConfig>(toml_text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn flat_tables_deserialize_with_kind_defaults() {
        let config = parse(
            r#"
            [[rules]]
            name = "no-pii"
            kind = "pii"
            mode = "enforce"
            hold_back = true

            [[rules]]
            name = "cards-only"
            kind = "pii"
            types = ["card", "iban"]
            mode = "monitor"
            stage = "output"

            [[rules]]
            name = "injection"
            kind = "prompt_injection"
            mode = "enforce"

            [[rules]]
            name = "cap"
            kind = "max_output_chars"
            limit = 2000
            mode = "enforce"

            [[rules]]
            name = "words"
            kind = "keywords"
            words = ["Project Falcon"]
            mode = "monitor"
            "#,
        )
        .unwrap();
        let rules = &config.rules;
        assert_eq!(rules.len(), 5);
        assert_eq!(rules[0].kind, RuleKind::Pii { types: PiiType::ALL.to_vec() });
        assert_eq!(rules[0].stage, Stage::Both);
        assert!(rules[0].hold_back);
        assert_eq!(rules[1].kind, RuleKind::pii([PiiType::Card, PiiType::Iban]));
        assert_eq!(rules[1].stage, Stage::Output);
        assert_eq!(rules[2].stage, Stage::Input);
        assert_eq!(rules[2].kind, RuleKind::prompt_injection());
        assert_eq!(rules[3].stage, Stage::Output);
        assert_eq!(rules[3].kind, RuleKind::MaxOutputChars { limit: 2000 });
        assert_eq!(
            rules[4].kind,
            RuleKind::Keywords {
                words: vec!["Project Falcon".into()],
                case_insensitive: true,
                whole_word: true
            }
        );
    }

    #[test]
    fn structural_errors_name_the_rule() {
        let cases = [
            (
                "name = 'r'\nkind = 'pii'\nmode = 'enforce'\npattern = 'x'",
                "guardrail rule 'r': field `pattern` does not apply to kind pii",
            ),
            (
                "name = 'r'\nkind = 'regex'\nmode = 'enforce'",
                "guardrail rule 'r': kind regex needs field `pattern`",
            ),
            (
                "name = 'r'\nkind = 'secrets'\nmode = 'enforce'\ntypes = ['stripe']",
                "guardrail rule 'r': unknown secrets type 'stripe' (known: openai, anthropic, \
                 aws_access_key, google_api_key, github_token, private_key, jwt)",
            ),
            (
                "name = 'r'\nkind = 'max_output_chars'\nmode = 'enforce'",
                "guardrail rule 'r': kind max_output_chars needs field `limit`",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&format!("[[rules]]\n{body}")).unwrap_err();
            assert_eq!(err, expected, "for {body}");
        }
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        assert!(parse("[[rules]]\nname='r'\nkind='pii'\nmode='enforce'\ncolour='red'").is_err());
        assert!(parse("[[rules]]\nname='r'\nkind='pii'\nmode='block'").is_err());
        assert!(parse("[[rules]]\nname='r'\nkind='ml'\nmode='enforce'").is_err());
        assert!(parse("[[rules]]\nname='r'\nkind='pii'").is_err());
    }
}

//! The compiled, shareable rule set, and layering of global, per-model and per-key sets.

use std::fmt;
use std::sync::Arc;

use crate::config::{GuardrailsConfig, Mode, RuleConfig, RuleKind, Stage};
use crate::detect::{self, injection::PhraseMatcher};
use crate::engine::{BuildFailure, Matcher, Validator};
use crate::error::GuardrailError;
use crate::verdict::Detector;

/// A compiled rule set. Cloning is one reference-count increment; share one set per config layer
/// and build request sets with [`GuardrailSet::merge`].
#[derive(Clone, Default)]
pub struct GuardrailSet {
    rules: Arc<[Arc<CompiledRule>]>,
}

/// One compiled rule.
pub(crate) struct CompiledRule {
    pub(crate) name: Arc<str>,
    pub(crate) stage: Stage,
    pub(crate) mode: Mode,
    /// Enforce output rule that withholds possible-match suffixes.
    pub(crate) hold_back: bool,
    pub(crate) scan_reasoning: bool,
    pub(crate) body: RuleBody,
}

/// What a compiled rule runs.
pub(crate) enum RuleBody {
    /// Pattern or keyword detectors (regex, keywords, pii, secrets).
    Matchers(Vec<Arc<Matcher>>),
    /// Prompt-injection phrases.
    Phrases(PhraseMatcher),
    /// `max_output_chars`.
    MaxChars(usize),
}

impl GuardrailSet {
    /// Compiles and validates `rules`. Names must be unique.
    ///
    /// # Errors
    /// The first invalid rule, as a [`GuardrailError`] naming it.
    pub fn new(rules: &[RuleConfig]) -> Result<GuardrailSet, GuardrailError> {
        let mut compiled: Vec<Arc<CompiledRule>> = Vec::with_capacity(rules.len());
        for rule in rules {
            let rule = compile(rule)?;
            if compiled.iter().any(|r| r.name == rule.name) {
                return Err(GuardrailError::DuplicateRule { rule: rule.name.to_string() });
            }
            compiled.push(Arc::new(rule));
        }
        Ok(GuardrailSet { rules: compiled.into() })
    }

    /// Compiles the `[guardrails]` table.
    ///
    /// # Errors
    /// As [`GuardrailSet::new`].
    pub fn from_config(config: &GuardrailsConfig) -> Result<GuardrailSet, GuardrailError> {
        GuardrailSet::new(&config.rules)
    }

    /// A set without rules.
    pub fn empty() -> GuardrailSet {
        GuardrailSet::default()
    }

    /// Layers sets, broadest first (global, then model, then API key): all rules apply, and a
    /// rule in a later layer replaces an earlier rule of the same name in place, so a key can,
    /// say, switch a global rule to Monitor. Costs one `Arc` clone per rule, no compilation.
    pub fn merge<'a>(layers: impl IntoIterator<Item = &'a GuardrailSet>) -> GuardrailSet {
        let mut merged: Vec<Arc<CompiledRule>> = Vec::new();
        for layer in layers {
            for rule in layer.rules.iter() {
                match merged.iter_mut().find(|r| r.name == rule.name) {
                    Some(slot) => *slot = Arc::clone(rule),
                    None => merged.push(Arc::clone(rule)),
                }
            }
        }
        GuardrailSet { rules: merged.into() }
    }

    /// Whether the set has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Rule names, in order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.name)
    }

    /// Whether any rule checks requests (skip [`crate::check_request`] otherwise).
    pub fn has_input_rules(&self) -> bool {
        self.rules.iter().any(|r| r.stage.checks_input())
    }

    /// Whether any rule checks responses (skip the scanner otherwise).
    pub fn has_output_rules(&self) -> bool {
        self.rules.iter().any(|r| r.stage.checks_output())
    }

    /// Whether any output rule holds text back (streams then see rewritten chunk boundaries).
    pub fn holds_back(&self) -> bool {
        self.rules.iter().any(|r| r.hold_back)
    }

    pub(crate) fn rules(&self) -> &[Arc<CompiledRule>] {
        &self.rules
    }
}

impl fmt::Debug for GuardrailSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rule_names()).finish()
    }
}

fn compile(rule: &RuleConfig) -> Result<CompiledRule, GuardrailError> {
    let name = rule.name.trim();
    if name.is_empty() {
        return Err(GuardrailError::EmptyName);
    }
    let owned = || name.to_owned();
    let kind = rule.kind.name();
    let stage_ok = match rule.kind {
        RuleKind::PromptInjection { .. } => rule.stage == Stage::Input,
        RuleKind::MaxOutputChars { .. } => rule.stage == Stage::Output,
        _ => true,
    };
    if !stage_ok {
        return Err(GuardrailError::StageNotSupported { rule: owned(), kind, stage: rule.stage });
    }
    if rule.hold_back && rule.mode != Mode::Enforce {
        return Err(GuardrailError::HoldBackNeedsEnforce { rule: owned() });
    }
    if rule.hold_back && !rule.stage.checks_output() {
        return Err(GuardrailError::HoldBackOnInput { rule: owned() });
    }
    if rule.scan_reasoning && !rule.stage.checks_output() {
        return Err(GuardrailError::ReasoningOnInput { rule: owned() });
    }
    let body = match &rule.kind {
        RuleKind::Regex { pattern, max_match_chars } => {
            if let Some(value) = *max_match_chars
                && (value == 0 || value > RuleKind::MAX_MATCH_CHARS_LIMIT)
            {
                return Err(GuardrailError::InvalidWindow {
                    rule: owned(),
                    value,
                    max: RuleKind::MAX_MATCH_CHARS_LIMIT,
                });
            }
            let matcher = Matcher::regex(
                Detector::Regex,
                pattern,
                *max_match_chars,
                RuleKind::DEFAULT_MAX_MATCH_CHARS,
                Validator::Any,
                true,
            )
            .map_err(|e| match e {
                BuildFailure::Invalid(reason) => {
                    GuardrailError::InvalidRegex { rule: owned(), reason }
                }
                BuildFailure::Empty => GuardrailError::EmptyMatch { rule: owned() },
            })?;
            RuleBody::Matchers(vec![Arc::new(matcher)])
        }
        RuleKind::Keywords { words, case_insensitive, whole_word } => {
            if words.is_empty() {
                return Err(GuardrailError::EmptyList { rule: owned(), field: "words" });
            }
            if let Some(index) = words.iter().position(|w| w.trim().is_empty()) {
                return Err(GuardrailError::EmptyEntry { rule: owned(), field: "words", index });
            }
            let patterns = keyword_patterns(words, *case_insensitive);
            let matcher =
                Matcher::keywords(&patterns, *case_insensitive, *whole_word).map_err(|reason| {
                    GuardrailError::AutomatonBuild { rule: owned(), field: "words", reason }
                })?;
            RuleBody::Matchers(vec![Arc::new(matcher)])
        }
        RuleKind::Pii { types } => {
            if types.is_empty() {
                return Err(GuardrailError::EmptyList { rule: owned(), field: "types" });
            }
            let mut types = types.clone();
            types.sort();
            types.dedup();
            let builtins = types.into_iter().flat_map(detect::pii_builtins);
            RuleBody::Matchers(builtin_matchers(builtins, name)?)
        }
        RuleKind::Secrets { types } => {
            if types.is_empty() {
                return Err(GuardrailError::EmptyList { rule: owned(), field: "types" });
            }
            let mut types = types.clone();
            types.sort();
            types.dedup();
            RuleBody::Matchers(builtin_matchers(
                types.into_iter().map(detect::secret_builtin),
                name,
            )?)
        }
        RuleKind::PromptInjection { phrases } => {
            if phrases.is_empty() {
                return Err(GuardrailError::EmptyList { rule: owned(), field: "phrases" });
            }
            let matcher = PhraseMatcher::new(phrases).map_err(|(index, reason)| match reason {
                None => GuardrailError::EmptyEntry { rule: owned(), field: "phrases", index },
                Some(reason) => {
                    GuardrailError::AutomatonBuild { rule: owned(), field: "phrases", reason }
                }
            })?;
            RuleBody::Phrases(matcher)
        }
        RuleKind::MaxOutputChars { limit } => {
            if *limit == 0 {
                return Err(GuardrailError::ZeroLimit { rule: owned() });
            }
            RuleBody::MaxChars(*limit)
        }
    };
    Ok(CompiledRule {
        name: name.into(),
        stage: rule.stage,
        mode: rule.mode,
        hold_back: rule.hold_back,
        scan_reasoning: rule.scan_reasoning,
        body,
    })
}

fn builtin_matchers(
    builtins: impl Iterator<Item = &'static detect::Builtin>,
    rule: &str,
) -> Result<Vec<Arc<Matcher>>, GuardrailError> {
    builtins
        .map(|b| {
            detect::compiled(b)
                .map_err(|reason| GuardrailError::InvalidRegex { rule: rule.to_owned(), reason })
        })
        .collect()
}

/// The automaton folds ASCII case itself; for other letters add the all-lower and all-upper
/// spellings, which covers the usual ways a word is written.
fn keyword_patterns(words: &[String], case_insensitive: bool) -> Vec<String> {
    let mut patterns: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        let mut push = |p: String| {
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        };
        push(word.clone());
        if case_insensitive && !word.is_ascii() {
            push(word.to_lowercase());
            push(word.to_uppercase());
        }
    }
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PiiType, SecretType};

    fn err(rule: RuleConfig) -> GuardrailError {
        GuardrailSet::new(&[rule]).unwrap_err()
    }

    #[test]
    fn validation_errors_name_the_rule() {
        let cases: Vec<(RuleConfig, &str)> = vec![
            (
                RuleConfig::new("bad-re", Mode::Enforce, RuleKind::regex("a(b")),
                "guardrail rule 'bad-re': invalid regex: ",
            ),
            (
                RuleConfig::new("empty-re", Mode::Enforce, RuleKind::regex("x*")),
                "guardrail rule 'empty-re': regex can match empty text",
            ),
            (
                RuleConfig::new(
                    "win",
                    Mode::Enforce,
                    RuleKind::Regex { pattern: "x+".into(), max_match_chars: Some(0) },
                ),
                "guardrail rule 'win': max_match_chars must be between 1 and 16384, got 0",
            ),
            (
                RuleConfig::new("kw", Mode::Enforce, RuleKind::keywords(Vec::<String>::new())),
                "guardrail rule 'kw': `words` is empty",
            ),
            (
                RuleConfig::new("kw2", Mode::Enforce, RuleKind::keywords(["ok", "  "])),
                "guardrail rule 'kw2': entry 1 of `words` is empty",
            ),
            (
                RuleConfig::new("pii", Mode::Enforce, RuleKind::pii([])),
                "guardrail rule 'pii': `types` is empty",
            ),
            (
                RuleConfig::new("hb", Mode::Monitor, RuleKind::pii(PiiType::ALL))
                    .with_hold_back(true),
                "guardrail rule 'hb': hold_back needs mode enforce",
            ),
            (
                RuleConfig::new("hb-in", Mode::Enforce, RuleKind::pii(PiiType::ALL))
                    .with_stage(Stage::Input)
                    .with_hold_back(true),
                "guardrail rule 'hb-in': hold_back applies to output, but the rule's stage is input",
            ),
            (
                RuleConfig::new("inj", Mode::Enforce, RuleKind::prompt_injection())
                    .with_stage(Stage::Both),
                "guardrail rule 'inj': kind prompt_injection cannot run at stage both",
            ),
            (
                RuleConfig::new("cap", Mode::Enforce, RuleKind::max_output_chars(10))
                    .with_stage(Stage::Input),
                "guardrail rule 'cap': kind max_output_chars cannot run at stage input",
            ),
            (
                RuleConfig::new("cap0", Mode::Enforce, RuleKind::max_output_chars(0)),
                "guardrail rule 'cap0': limit must be at least 1",
            ),
            (
                RuleConfig::new("r", Mode::Monitor, RuleKind::secrets(SecretType::ALL))
                    .with_stage(Stage::Input)
                    .with_scan_reasoning(true),
                "guardrail rule 'r': scan_reasoning applies to output, but the rule's stage is input",
            ),
            (
                RuleConfig::new(" ", Mode::Monitor, RuleKind::secrets(SecretType::ALL)),
                "guardrail rule has an empty name",
            ),
        ];
        for (rule, expected) in cases {
            let message = err(rule).to_string();
            assert!(message.starts_with(expected), "{message:?} should start with {expected:?}");
        }
    }

    #[test]
    fn duplicate_names_rejected_within_a_layer() {
        let rule = RuleConfig::new("dup", Mode::Monitor, RuleKind::pii([PiiType::Email]));
        let error = GuardrailSet::new(&[rule.clone(), rule]).unwrap_err();
        assert_eq!(error, GuardrailError::DuplicateRule { rule: "dup".into() });
        assert_eq!(error.rule(), Some("dup"));
    }

    #[test]
    fn merge_overrides_by_name_in_place() {
        let global = GuardrailSet::new(&[
            RuleConfig::new("pii", Mode::Enforce, RuleKind::pii(PiiType::ALL)),
            RuleConfig::new("secrets", Mode::Enforce, RuleKind::secrets(SecretType::ALL)),
        ])
        .unwrap();
        let model = GuardrailSet::new(&[RuleConfig::new(
            "cap",
            Mode::Enforce,
            RuleKind::max_output_chars(100),
        )])
        .unwrap();
        let key = GuardrailSet::new(&[RuleConfig::new(
            "pii",
            Mode::Monitor,
            RuleKind::pii([PiiType::Email]),
        )])
        .unwrap();
        let merged = GuardrailSet::merge([&global, &model, &key]);
        assert_eq!(merged.rule_names().collect::<Vec<_>>(), ["pii", "secrets", "cap"]);
        assert_eq!(merged.rules()[0].mode, Mode::Monitor);
        assert!(merged.has_input_rules() && merged.has_output_rules());
        assert!(!merged.holds_back());
        assert_eq!(format!("{merged:?}"), r#"["pii", "secrets", "cap"]"#);
        assert!(GuardrailSet::merge([]).is_empty());
    }

    #[test]
    fn keyword_patterns_add_unicode_case_variants() {
        let words = vec!["École".to_owned(), "plan".to_owned()];
        assert_eq!(keyword_patterns(&words, true), ["École", "école", "ÉCOLE", "plan"]);
        assert_eq!(keyword_patterns(&words, false), ["École", "plan"]);
    }
}

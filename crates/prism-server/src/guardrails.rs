//! Guardrails in the gateway: the rule layers compiled once at config load, the merged set of a
//! request (global, then model, then key), and the hooks that run it — the input check, the
//! per-stream output filter, the completion check — with their logs, metric and warnings header.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use prism_guardrails::{
    BLOCKED_STATUS, GuardrailError, GuardrailSet, GuardrailsConfig, OutputScanner, RuleConfig,
    Verdict, WARNINGS_HEADER,
};
use prism_providers::OutChunk;
use prism_types::{ChatCompletion, ChatRequest};
use tracing::Span;

use crate::hooks::{Caller, HookRejection, Hooks, InputCheck, OutputFilter, OutputFilterFactory};
use crate::metrics::Metrics;

/// Above this many (model, key) pairs that both have their own rules, the three-layer sets are
/// merged per request instead of ahead of time (a merge is one `Arc` clone per rule).
const MAX_PRECOMPUTED_PAIRS: usize = 4096;

/// The compiled guardrail rules of a config: the global layer, each model's and each key's, and
/// their merged sets (global + model, global + key, and global + model + key for the pairs that
/// both have rules), prepared at load so a request only looks its set up.
#[derive(Clone, Default)]
pub struct GuardrailPolicy {
    global: GuardrailSet,
    /// Models with rules of their own, by public name.
    models: HashMap<String, Layer>,
    /// Keys with rules of their own, by key name.
    keys: HashMap<String, Layer>,
    /// Global + model + key, by (model layer, key layer) index.
    pairs: HashMap<(usize, usize), GuardrailSet>,
    has_input: bool,
    has_output: bool,
}

#[derive(Clone)]
struct Layer {
    index: usize,
    own: GuardrailSet,
    /// Global + this layer.
    with_global: GuardrailSet,
}

impl GuardrailPolicy {
    /// Compiles the `[guardrails]` rules and every model's and key's `guardrails` list. Errors
    /// name the rule's field (`models[1].guardrails[0]: guardrail rule 'x': invalid regex: …`).
    pub(crate) fn resolve<'a>(
        global: &GuardrailsConfig,
        models: impl IntoIterator<Item = (&'a str, &'a [RuleConfig])>,
        keys: impl IntoIterator<Item = (&'a str, &'a [RuleConfig])>,
    ) -> Result<GuardrailPolicy, InvalidRules> {
        let global = compile(&global.rules, "guardrails.rules")?;
        let models = layers(models, "models", &global)?;
        let keys = layers(keys, "keys", &global)?;
        let layer_sets = || models.values().chain(keys.values()).map(|l| &l.own);
        let has_input = global.has_input_rules() || layer_sets().any(GuardrailSet::has_input_rules);
        let has_output =
            global.has_output_rules() || layer_sets().any(GuardrailSet::has_output_rules);
        let mut pairs = HashMap::new();
        if models.len().saturating_mul(keys.len()) <= MAX_PRECOMPUTED_PAIRS {
            for m in models.values() {
                for k in keys.values() {
                    pairs
                        .insert((m.index, k.index), GuardrailSet::merge([&global, &m.own, &k.own]));
                }
            }
        }
        Ok(GuardrailPolicy { has_input, has_output, global, models, keys, pairs })
    }

    /// Whether no rule is configured anywhere.
    pub fn is_empty(&self) -> bool {
        self.global.is_empty() && self.models.is_empty() && self.keys.is_empty()
    }

    /// The rules for a request to the public model `model` with the key named `key`.
    pub fn for_request(&self, model: &str, key: &str) -> GuardrailSet {
        match (self.models.get(model), self.keys.get(key)) {
            (None, None) => self.global.clone(),
            (Some(m), None) => m.with_global.clone(),
            (None, Some(k)) => k.with_global.clone(),
            (Some(m), Some(k)) => match self.pairs.get(&(m.index, k.index)) {
                Some(set) => set.clone(),
                None => GuardrailSet::merge([&self.global, &m.own, &k.own]),
            },
        }
    }
}

impl fmt::Debug for GuardrailPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut models: Vec<_> = self.models.iter().map(|(n, l)| (n, &l.own)).collect();
        models.sort_by_key(|(n, _)| *n);
        let mut keys: Vec<_> = self.keys.iter().map(|(n, l)| (n, &l.own)).collect();
        keys.sort_by_key(|(n, _)| *n);
        f.debug_struct("GuardrailPolicy")
            .field("global", &self.global)
            .field("models", &models)
            .field("keys", &keys)
            .finish()
    }
}

/// A rule list that does not compile: the field of the failing rule and why. (Its own type, so
/// guardrails do not depend on the configuration module that embeds them.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct InvalidRules {
    /// Dotted path of the rule, e.g. `models[1].guardrails[0]`.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) message: String,
}

/// Compiles the non-empty rule lists of one section (`models` or `keys`), by entry name.
fn layers<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a [RuleConfig])>,
    section: &str,
    global: &GuardrailSet,
) -> Result<HashMap<String, Layer>, InvalidRules> {
    let mut out = HashMap::new();
    for (i, (name, rules)) in items.into_iter().enumerate() {
        if rules.is_empty() {
            continue;
        }
        let own = compile(rules, &format!("{section}[{i}].guardrails"))?;
        let with_global = GuardrailSet::merge([global, &own]);
        let index = out.len();
        out.insert(name.to_owned(), Layer { index, own, with_global });
    }
    Ok(out)
}

fn compile(rules: &[RuleConfig], field: &str) -> Result<GuardrailSet, InvalidRules> {
    GuardrailSet::new(rules).map_err(|e| {
        let field = match failing_rule(rules, &e) {
            Some(i) => format!("{field}[{i}]"),
            None => field.to_owned(),
        };
        InvalidRules { field, message: e.to_string() }
    })
}

/// The index of the rule an error is about (the second one of a duplicate pair).
fn failing_rule(rules: &[RuleConfig], e: &GuardrailError) -> Option<usize> {
    let name = e.rule().unwrap_or("");
    let mut same = rules.iter().enumerate().filter(|(_, r)| r.name.trim() == name);
    let found =
        if matches!(e, GuardrailError::DuplicateRule { .. }) { same.nth(1) } else { same.next() };
    found.map(|(i, _)| i)
}

/// Installs the config's guardrails into `hooks`. Nothing is installed for a stage no rule
/// checks, so a config without guardrails runs exactly as before. Hooks already present (an
/// embedder's own) are kept: guardrails check the input first and the output last, so they see
/// what the client would.
pub(crate) fn install(policy: &GuardrailPolicy, mut hooks: Hooks, metrics: &Arc<Metrics>) -> Hooks {
    if policy.is_empty() {
        return hooks;
    }
    let guardrails = Arc::new(Guardrails { policy: policy.clone(), metrics: Arc::clone(metrics) });
    if policy.has_input {
        let mine: Arc<dyn InputCheck> = guardrails.clone();
        hooks.input = Some(match hooks.input.take() {
            None => mine,
            Some(theirs) => Arc::new(InputChain(mine, theirs)),
        });
    }
    if policy.has_output {
        let mine: Arc<dyn OutputFilterFactory> = guardrails;
        hooks.output = Some(match hooks.output.take() {
            None => mine,
            Some(theirs) => Arc::new(OutputChain(theirs, mine)),
        });
    }
    hooks
}

/// The guardrail hooks.
struct Guardrails {
    policy: GuardrailPolicy,
    metrics: Arc<Metrics>,
}

impl InputCheck for Guardrails {
    fn check(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection> {
        let set = self.policy.for_request(&request.model, caller.key_name);
        if !set.has_input_rules() {
            return Ok(());
        }
        let verdict = prism_guardrails::check_request(&set, request);
        settle(&verdict, Stage::Input, &self.metrics, &Span::current(), headers)
    }
}

impl OutputFilterFactory for Guardrails {
    fn start(&self, caller: Caller<'_>, request: &ChatRequest) -> Option<Box<dyn OutputFilter>> {
        let set = self.policy.for_request(&request.model, caller.key_name);
        if !set.has_output_rules() {
            return None;
        }
        Some(Box::new(GuardrailFilter {
            scanner: OutputScanner::new(&set),
            keep_raw: !set.holds_back(),
            scratch: Vec::new(),
            metrics: Arc::clone(&self.metrics),
            span: Span::current(),
        }))
    }

    fn check_completion(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        completion: &mut ChatCompletion,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection> {
        let set = self.policy.for_request(&request.model, caller.key_name);
        if !set.has_output_rules() {
            return Ok(());
        }
        let verdict = prism_guardrails::check_completion(&set, completion);
        settle(&verdict, Stage::Output, &self.metrics, &Span::current(), headers)
    }
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Input,
    Output,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Output => "output",
        }
    }
}

/// Logs and counts every finding; a blocking verdict becomes the refusal, Monitor findings the
/// warnings header.
fn settle(
    verdict: &Verdict,
    stage: Stage,
    metrics: &Metrics,
    span: &Span,
    headers: &mut HeaderMap,
) -> Result<(), HookRejection> {
    if verdict.is_pass() {
        return Ok(());
    }
    report(verdict, stage, metrics, span);
    if let Some(error) = verdict.to_error_object() {
        return Err(HookRejection { status: BLOCKED_STATUS, error });
    }
    add_warnings(headers, verdict);
    Ok(())
}

/// One warning per finding: rule, detector, mode and position (the request id is on the span),
/// never the matched text, which findings do not carry.
fn report(verdict: &Verdict, stage: Stage, metrics: &Metrics, span: &Span) {
    for finding in verdict.findings() {
        let detector = finding.detector.to_string();
        let mode = finding.mode.as_str();
        metrics.guardrail_finding(&finding.rule, &detector, stage.as_str(), mode);
        tracing::warn!(
            parent: span,
            rule = %finding.rule,
            detector = %detector,
            stage = stage.as_str(),
            mode,
            location = %finding.location,
            offset = finding.offset,
            len = finding.len,
            "{}",
            if finding.is_blocking() { "guardrail blocked" } else { "guardrail warning" }
        );
    }
}

/// Adds the verdict's Monitor rules to `x-prism-guardrail-warnings`, after those already there.
fn add_warnings(headers: &mut HeaderMap, verdict: &Verdict) {
    let Some(names) = verdict.warning_header() else { return };
    let name = HeaderName::from_static(WARNINGS_HEADER);
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) => {
            let mut all = existing.to_owned();
            for rule in names.split(',').filter(|n| !existing.split(',').any(|e| e == *n)) {
                all.push(',');
                all.push_str(rule);
            }
            all
        }
        None => names,
    };
    match HeaderValue::from_str(&value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => tracing::debug!("guardrail rule names are not a valid header value"),
    }
}

/// The output guardrails of one stream.
struct GuardrailFilter {
    scanner: OutputScanner,
    /// No rule holds text back, so a chunk the scanner lets through unblocked is unchanged and
    /// its pass-through bytes stay valid.
    keep_raw: bool,
    /// The batch being scanned.
    scratch: Vec<OutChunk>,
    metrics: Arc<Metrics>,
    span: Span,
}

impl GuardrailFilter {
    fn settle(&self, verdict: &Verdict) -> Result<(), HookRejection> {
        if verdict.is_pass() {
            return Ok(());
        }
        report(verdict, Stage::Output, &self.metrics, &self.span);
        match verdict.to_error_object() {
            Some(error) => Err(HookRejection { status: BLOCKED_STATUS, error }),
            None => Ok(()),
        }
    }
}

impl OutputFilter for GuardrailFilter {
    fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        let GuardrailFilter { scanner, keep_raw, scratch, .. } = self;
        // The batch moves to `scratch` and what is forwarded comes back into `chunks`; both keep
        // their capacity, so a stream allocates nothing here once warm.
        std::mem::swap(chunks, scratch);
        let mut verdicts = Vec::new();
        for mut out in scratch.drain(..) {
            let outcome = scanner.scan_chunk(out.chunk);
            let blocked = outcome.verdict.is_blocked();
            if !outcome.verdict.is_pass() {
                verdicts.push(outcome.verdict);
            }
            if let Some(chunk) = outcome.forward {
                out.chunk = chunk;
                if blocked || !*keep_raw {
                    out.raw = None;
                }
                chunks.push(out);
            }
            if blocked {
                // The rest of the batch is dropped unscanned: nothing more reaches the client.
                break;
            }
        }
        scratch.clear();
        for verdict in &verdicts {
            self.settle(verdict)?;
        }
        Ok(())
    }

    fn finish(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        let outcome = self.scanner.finish_stream();
        if let Some(chunk) = outcome.forward {
            chunks.push(OutChunk::built(chunk));
        }
        self.settle(&outcome.verdict)
    }
}

/// Guardrails' input check, then an embedder's.
struct InputChain(Arc<dyn InputCheck>, Arc<dyn InputCheck>);

impl InputCheck for InputChain {
    fn check(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection> {
        self.0.check(caller, request, headers)?;
        self.1.check(caller, request, headers)
    }
}

/// An embedder's output filters, then guardrails'.
struct OutputChain(Arc<dyn OutputFilterFactory>, Arc<dyn OutputFilterFactory>);

impl OutputFilterFactory for OutputChain {
    fn start(&self, caller: Caller<'_>, request: &ChatRequest) -> Option<Box<dyn OutputFilter>> {
        match (self.0.start(caller, request), self.1.start(caller, request)) {
            (Some(first), Some(second)) => Some(Box::new(FilterChain(first, second))),
            (one, other) => one.or(other),
        }
    }

    fn check_completion(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        completion: &mut ChatCompletion,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection> {
        self.0.check_completion(caller, request, completion, headers)?;
        self.1.check_completion(caller, request, completion, headers)
    }
}

/// Two filters in a row: what the first lets through (also before its refusal) goes through
/// the second.
struct FilterChain(Box<dyn OutputFilter>, Box<dyn OutputFilter>);

impl OutputFilter for FilterChain {
    fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        let first = self.0.filter(chunks);
        self.1.filter(chunks)?;
        first
    }

    fn finish(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
        let first = self.0.finish(chunks);
        self.1.filter(chunks)?;
        first?;
        self.1.finish(chunks)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use prism_guardrails::{Mode, PiiType, RuleKind, Stage as RuleStage};
    use prism_types::{ChatChunk, Delta, FinishReason};

    use super::*;

    fn rule(name: &str, mode: Mode) -> RuleConfig {
        RuleConfig::new(name, mode, RuleKind::pii([PiiType::Card]))
    }

    fn names(set: &GuardrailSet) -> Vec<&str> {
        set.rule_names().collect()
    }

    fn policy(
        global: Vec<RuleConfig>,
        models: &[(&str, Vec<RuleConfig>)],
        keys: &[(&str, Vec<RuleConfig>)],
    ) -> Result<GuardrailPolicy, InvalidRules> {
        GuardrailPolicy::resolve(
            &GuardrailsConfig::new(global),
            models.iter().map(|(n, r)| (*n, r.as_slice())),
            keys.iter().map(|(n, r)| (*n, r.as_slice())),
        )
    }

    #[test]
    fn layers_merge_global_then_model_then_key() {
        let p = policy(
            vec![rule("g", Mode::Enforce), rule("shared", Mode::Enforce)],
            &[("m", vec![rule("model-only", Mode::Monitor)]), ("plain", vec![])],
            &[("k", vec![rule("shared", Mode::Monitor), rule("key-only", Mode::Monitor)])],
        )
        .unwrap();
        assert_eq!(names(&p.for_request("plain", "other")), ["g", "shared"]);
        assert_eq!(names(&p.for_request("m", "other")), ["g", "shared", "model-only"]);
        assert_eq!(names(&p.for_request("plain", "k")), ["g", "shared", "key-only"]);
        assert_eq!(names(&p.for_request("m", "k")), ["g", "shared", "model-only", "key-only"]);
        assert_eq!(p.pairs.len(), 1, "the one model x key pair is merged ahead of time");
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![prism_types::Message::User {
                content: "4111 1111 1111 1111".into(),
                name: None,
            }],
            ..Default::default()
        };
        // The key switched `shared` to Monitor: only `g` blocks.
        let verdict = prism_guardrails::check_request(&p.for_request("m", "k"), &request);
        assert_eq!(verdict.block().map(|f| &*f.rule), Some("g"));
        assert_eq!(verdict.warning_header().as_deref(), Some("shared,model-only,key-only"));
        assert!(p.has_input && p.has_output);
        assert!(policy(vec![], &[("m", vec![])], &[]).unwrap().is_empty());
    }

    #[test]
    fn compile_errors_name_the_rule_field() {
        let bad_regex = RuleConfig::new("ids", Mode::Monitor, RuleKind::regex("(unclosed"));
        let err = policy(
            vec![],
            &[("a", vec![]), ("b", vec![rule("ok", Mode::Monitor), bad_regex])],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("models[1].guardrails[1]: guardrail rule 'ids': invalid regex"),
            "{err}"
        );
        let err = policy(vec![rule("x", Mode::Enforce), rule("x", Mode::Monitor)], &[], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "guardrails.rules[1]: guardrail rule 'x' is defined twice");
        let hold = rule("h", Mode::Monitor).with_hold_back(true);
        let err = policy(vec![], &[], &[("k", vec![hold])]).unwrap_err().to_string();
        assert_eq!(err, "keys[0].guardrails[0]: guardrail rule 'h': hold_back needs mode enforce");
        let injection = RuleConfig::new("inj", Mode::Enforce, RuleKind::prompt_injection())
            .with_stage(RuleStage::Both);
        let err = policy(vec![injection], &[], &[]).unwrap_err().to_string();
        assert!(err.starts_with("guardrails.rules[0]: guardrail rule 'inj': kind"), "{err}");
    }

    #[test]
    fn nothing_is_installed_without_rules_for_a_stage() {
        let metrics = Arc::new(Metrics::default());
        let hooks = install(&GuardrailPolicy::default(), Hooks::default(), &metrics);
        assert!(hooks.input.is_none() && hooks.output.is_none());
        let output_only =
            policy(vec![rule("o", Mode::Enforce).with_stage(RuleStage::Output)], &[], &[]).unwrap();
        let hooks = install(&output_only, Hooks::default(), &metrics);
        assert!(hooks.input.is_none() && hooks.output.is_some());
    }

    fn chunk(text: &str) -> OutChunk {
        let chunk = ChatChunk::new("c", 1, "m").with_delta(0, Delta::content(text));
        let raw = serde_json::to_vec(&chunk).unwrap();
        OutChunk { chunk, raw: Some(Bytes::from(raw)) }
    }

    fn filter_for(rules: Vec<RuleConfig>) -> Box<dyn OutputFilter> {
        let p = policy(rules, &[], &[]).unwrap();
        let guardrails = Guardrails { policy: p, metrics: Arc::new(Metrics::default()) };
        let request = ChatRequest { model: "m".into(), ..Default::default() };
        guardrails.start(Caller { key_name: "k" }, &request).unwrap()
    }

    #[test]
    fn monitor_keeps_the_pass_through_bytes() {
        let mut filter = filter_for(vec![rule("watch", Mode::Monitor)]);
        let mut batch = vec![chunk("card 4111 1111 "), chunk("1111 1111 ok")];
        let before: Vec<_> = batch.iter().map(|c| c.raw.clone()).collect();
        filter.filter(&mut batch).unwrap();
        assert_eq!(batch.iter().map(|c| c.raw.clone()).collect::<Vec<_>>(), before);
    }

    #[test]
    fn a_block_keeps_the_text_before_it_and_drops_the_raw_bytes() {
        let mut filter = filter_for(vec![rule("cards", Mode::Enforce)]);
        let mut batch = vec![chunk("hello "), chunk("card 4111 1111 1111 1111 ok"), chunk("more")];
        let rejection = filter.filter(&mut batch).unwrap_err();
        assert_eq!(rejection.status, 403);
        assert_eq!(rejection.error.message, "response blocked by guardrail 'cards' (pii:card)");
        assert_eq!(rejection.error.code.as_deref(), Some("content_blocked"));
        assert_eq!(batch.len(), 2, "nothing after the violating chunk");
        assert!(batch[0].raw.is_some(), "untouched chunks keep their bytes");
        assert_eq!(batch[1].chunk.choices[0].delta.content.as_deref(), Some("card "));
        assert!(batch[1].raw.is_none(), "the cut chunk is re-serialised");

        // A card split over chunks: the chunk that makes it certain has nothing left to send.
        let mut filter = filter_for(vec![rule("cards", Mode::Enforce)]);
        let mut batch = vec![chunk("card 4111 1111 "), chunk("1111 1111 ok"), chunk("more")];
        filter.filter(&mut batch).unwrap_err();
        assert_eq!(batch.len(), 1);
        let raw = serde_json::to_vec(&batch[0].chunk).unwrap();
        assert_eq!(batch[0].raw.as_deref(), Some(&raw[..]));
    }

    #[test]
    fn hold_back_withholds_a_possible_match_and_releases_it_at_the_finish() {
        let mut filter = filter_for(vec![rule("cards", Mode::Enforce).with_hold_back(true)]);
        let mut batch = vec![chunk("call 4111 1111")];
        filter.filter(&mut batch).unwrap();
        let sent: String =
            batch.iter().filter_map(|c| c.chunk.choices[0].delta.content.clone()).collect();
        assert!(sent.len() < "call 4111 1111".len(), "the digits could still become a card");
        assert!(batch.iter().all(|c| c.raw.is_none()));
        let end = ChatChunk::new("c", 1, "m").with_finish(0, FinishReason::Stop);
        let mut batch = vec![OutChunk::built(end)];
        filter.filter(&mut batch).unwrap();
        let rest = batch[0].chunk.choices[0].delta.content.clone().unwrap_or_default();
        assert_eq!(format!("{sent}{rest}"), "call 4111 1111");
        let mut tail = Vec::new();
        filter.finish(&mut tail).unwrap();
        assert!(tail.is_empty());
    }

    struct Refuse;

    impl OutputFilter for Refuse {
        fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
            chunks.truncate(1);
            Err(HookRejection {
                status: 400,
                error: prism_types::ErrorObject::new("invalid_request_error", "theirs"),
            })
        }

        fn finish(&mut self, _chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection> {
            Ok(())
        }
    }

    #[test]
    fn chained_filters_scan_what_the_first_lets_through() {
        let mut chain =
            FilterChain(Box::new(Refuse), filter_for(vec![rule("cards", Mode::Enforce)]));
        let mut batch = vec![chunk("fine "), chunk("4111 1111 1111 1111 x")];
        assert_eq!(chain.filter(&mut batch).unwrap_err().error.message, "theirs");
        assert_eq!(batch.len(), 1);
        let mut chain =
            FilterChain(Box::new(Refuse), filter_for(vec![rule("cards", Mode::Enforce)]));
        let mut batch = vec![chunk("4111 1111 1111 1111 x"), chunk("fine")];
        let err = chain.filter(&mut batch).unwrap_err();
        assert_eq!(err.error.message, "response blocked by guardrail 'cards' (pii:card)");
    }

    #[test]
    fn warnings_header_accumulates_distinct_rules() {
        let p = policy(vec![rule("a", Mode::Monitor), rule("b", Mode::Monitor)], &[], &[]).unwrap();
        let set = p.for_request("m", "k");
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![prism_types::Message::User {
                content: "4111 1111 1111 1111".into(),
                name: None,
            }],
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(WARNINGS_HEADER, HeaderValue::from_static("b,z"));
        add_warnings(&mut headers, &prism_guardrails::check_request(&set, &request));
        assert_eq!(headers[WARNINGS_HEADER], "b,z,a");
    }
}

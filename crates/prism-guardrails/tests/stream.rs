//! Streaming scanner behaviour through the public API: cross-chunk matches, Enforce with and
//! without hold-back, Monitor pass-through, chunk rewriting, tool calls, limits, completions.

use prism_guardrails::{
    Channel, Detector, GuardrailSet, Location, Mode, OutputScanner, PiiType, RuleConfig, RuleKind,
    SecretType, check_completion,
};
use prism_types::{
    ChatChunk, ChatCompletion, Choice, Delta, FinishReason, FunctionCall, ResponseMessage, Role,
    ToolCall, ToolCallDelta, Usage,
};

fn set(rules: Vec<RuleConfig>) -> GuardrailSet {
    GuardrailSet::new(&rules).unwrap_or_else(|e| panic!("{e}"))
}

fn pii(mode: Mode, hold_back: bool) -> GuardrailSet {
    set(vec![
        RuleConfig::new("no-pii", mode, RuleKind::pii(PiiType::ALL)).with_hold_back(hold_back),
    ])
}

/// Feeds `deltas` to choice 0's content; returns (released text, all findings, blocked).
fn feed(set: &GuardrailSet, deltas: &[&str]) -> (String, Vec<prism_guardrails::Finding>, bool) {
    let mut scanner = OutputScanner::new(set);
    let mut released = String::new();
    let mut findings = Vec::new();
    for delta in deltas {
        let out = scanner.scan_delta(0, Channel::Content, delta);
        released.push_str(&out.release);
        let blocked = out.verdict.is_blocked();
        findings.extend(out.verdict.into_findings());
        if blocked {
            return (released, findings, true);
        }
    }
    let out = scanner.finish();
    for r in out.releases {
        released.push_str(&r.text);
    }
    let blocked = out.verdict.is_blocked();
    findings.extend(out.verdict.into_findings());
    (released, findings, blocked)
}

const CARD_DELTAS: [&str; 6] = ["My card is 4", "111 11", "11 1111", " 11", "11", " thanks"];

#[test]
fn card_over_five_deltas_blocks_at_the_unchunked_offset() {
    let (released, findings, blocked) = feed(&pii(Mode::Enforce, false), &CARD_DELTAS);
    assert!(blocked);
    let block = findings.last().unwrap();
    assert_eq!((block.detector, block.offset, block.len), (Detector::Pii(PiiType::Card), 11, 19));
    // Without hold-back the digits went out before the card was certain.
    assert_eq!(released, "My card is 4111 1111 1111 1111");
    let (_, whole, _) = feed(&pii(Mode::Enforce, false), &[&CARD_DELTAS.concat()]);
    assert_eq!(whole, findings);
}

#[test]
fn hold_back_never_releases_the_card() {
    let (released, findings, blocked) = feed(&pii(Mode::Enforce, true), &CARD_DELTAS);
    assert!(blocked);
    assert_eq!(findings.last().unwrap().offset, 11);
    assert_eq!(released, "My card is ");
}

#[test]
fn hold_back_withholds_only_a_possible_match_suffix() {
    let set = pii(Mode::Enforce, true);
    let mut scanner = OutputScanner::new(&set);
    // "call" could still become an e-mail local part; the rest is safe.
    let out = scanner.scan_delta(0, Channel::Content, "Hello there, call");
    assert_eq!(out.release, "Hello there, ");
    let out = scanner.scan_delta(0, Channel::Content, " me at 415-");
    assert_eq!(out.release, "call me at ");
    let out = scanner.scan_delta(0, Channel::Content, "555 today");
    assert_eq!(out.release, "415-555 ");
    assert!(out.verdict.is_pass());
    let out = scanner.finish();
    assert_eq!(out.releases[0].text, "today");
}

#[test]
fn monitor_releases_everything_and_warns_once() {
    let (released, findings, blocked) = feed(&pii(Mode::Monitor, false), &CARD_DELTAS);
    assert!(!blocked);
    assert_eq!(released, CARD_DELTAS.concat());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].mode, Mode::Monitor);
    assert_eq!(findings[0].offset, 11);
}

#[test]
fn email_at_the_very_end_is_found_at_finish() {
    let (released, findings, blocked) =
        feed(&pii(Mode::Enforce, true), &["write to jane", "@example.", "com"]);
    assert!(blocked);
    assert_eq!(findings[0].detector, Detector::Pii(PiiType::Email));
    assert_eq!(findings[0].offset, 9);
    assert_eq!(released, "write to ");
}

fn chunk(delta: Delta) -> ChatChunk {
    ChatChunk::new("chatcmpl-1", 1_700_000_000, "gpt-test").with_delta(0, delta)
}

fn stream() -> Vec<ChatChunk> {
    vec![
        chunk(Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Delta::default()
        }),
        chunk(Delta::content("Reach me at ")),
        chunk(Delta::content("jane@exam")),
        chunk(Delta::content("ple.com or la")),
        chunk(Delta::content("ter.")),
        ChatChunk::new("chatcmpl-1", 1_700_000_000, "gpt-test").with_finish(0, FinishReason::Stop),
        ChatChunk::new("chatcmpl-1", 1_700_000_000, "gpt-test").with_usage(Usage::new(5, 7)),
    ]
}

#[test]
fn monitor_stream_is_byte_identical() {
    let mut scanner = OutputScanner::new(&pii(Mode::Monitor, false));
    let mut warnings = Vec::new();
    for original in stream() {
        let out = scanner.scan_chunk(original.clone());
        warnings.extend(out.verdict.warnings().cloned());
        assert_eq!(
            serde_json::to_string(&out.forward.unwrap()).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }
    assert!(scanner.finish_stream().forward.is_none());
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].location, Location::Output { choice: 0, channel: Channel::Content });
    assert_eq!(warnings[0].offset, 12);
}

#[test]
fn enforce_stream_forwards_text_up_to_the_violation_then_stops() {
    let mut scanner = OutputScanner::new(&pii(Mode::Enforce, false));
    let mut sent = String::new();
    let mut error = None;
    for original in stream() {
        let out = scanner.scan_chunk(original);
        if let Some(c) = out.forward {
            assert!(c.choices.iter().all(|ch| ch.finish_reason.is_none()));
            sent.extend(c.choices.iter().filter_map(|ch| ch.delta.content.clone()));
        }
        if let Some(e) = out.verdict.to_error_object() {
            error = Some(e);
            break;
        }
    }
    let error = error.unwrap();
    assert_eq!(error.message, "response blocked by guardrail 'no-pii' (pii:email)");
    assert_eq!(error.kind, "guardrail_error");
    // The e-mail became certain in the chunk holding " or" after ".com"; without hold-back its
    // start had already gone out, and nothing of the deciding chunk is forwarded.
    assert_eq!(sent, "Reach me at jane@exam");
    // A blocked scanner forwards nothing more.
    assert!(scanner.scan_chunk(stream()[4].clone()).forward.is_none());
}

#[test]
fn hold_back_stream_rewrites_chunks_and_flushes_at_finish() {
    let set = set(vec![
        RuleConfig::new("no-secrets", Mode::Enforce, RuleKind::secrets(SecretType::ALL))
            .with_hold_back(true),
    ]);
    let mut scanner = OutputScanner::new(&set);
    let mut forwarded = Vec::new();
    for original in stream() {
        let out = scanner.scan_chunk(original);
        assert!(out.verdict.is_pass());
        forwarded.extend(out.forward);
    }
    let contents: Vec<Option<String>> = forwarded
        .iter()
        .map(|c| c.choices.first().and_then(|ch| ch.delta.content.clone()))
        .collect();
    let all: String = contents.iter().flatten().cloned().collect();
    assert_eq!(all, "Reach me at jane@example.com or later.");
    // The finish chunk carries the flushed tail before its finish_reason; usage passes through.
    let finish =
        forwarded.iter().find(|c| c.choices.iter().any(|ch| ch.finish_reason.is_some())).unwrap();
    assert_eq!(finish.choices[0].finish_reason, Some(FinishReason::Stop));
    assert!(forwarded.last().unwrap().usage.is_some());
    assert_eq!(forwarded[0].choices[0].delta.role, Some(Role::Assistant));
}

fn tool_chunk(calls: Vec<ToolCallDelta>) -> ChatChunk {
    chunk(Delta { tool_calls: Some(calls), ..Delta::default() })
}

#[test]
fn secret_split_across_tool_argument_fragments_never_leaves_with_hold_back() {
    let set = set(vec![
        RuleConfig::new("no-secrets", Mode::Enforce, RuleKind::secrets(SecretType::ALL))
            .with_hold_back(true),
    ]);
    let key = ["AKIA", "IOSFODNN7EXAMPLE"].concat();
    let args = format!(r#"{{"aws_key":"{key}","region":"eu"}}"#);
    let mut chunks = vec![
        chunk(Delta::content("Calling the tool.")),
        tool_chunk(vec![ToolCallDelta::start(0, "call_1", "configure")]),
    ];
    for piece in args.as_bytes().chunks(5) {
        chunks.push(tool_chunk(vec![ToolCallDelta::arguments(
            0,
            std::str::from_utf8(piece).unwrap(),
        )]));
    }
    let mut scanner = OutputScanner::new(&set);
    let mut sent_args = String::new();
    let mut sent_content = String::new();
    let mut saw_header = false;
    let mut blocked = None;
    for c in chunks {
        let out = scanner.scan_chunk(c);
        for ch in out.forward.iter().flat_map(|c| &c.choices) {
            sent_content.extend(ch.delta.content.clone());
            for call in ch.delta.tool_calls.iter().flatten() {
                saw_header |= call.id.as_deref() == Some("call_1");
                sent_args.extend(call.function.as_ref().and_then(|f| f.arguments.clone()));
            }
        }
        if out.verdict.is_blocked() {
            blocked = out.verdict.block().cloned();
            break;
        }
    }
    let block = blocked.unwrap();
    assert_eq!(block.location, Location::Output { choice: 0, channel: Channel::ToolArguments(0) });
    assert_eq!(block.offset, 12);
    assert!(saw_header);
    assert_eq!(sent_content, "Calling the tool.");
    assert_eq!(sent_args, r#"{"aws_key":""#);
    assert!(!sent_args.contains("AKIA"));
}

#[test]
fn switching_tool_calls_flushes_the_previous_one_in_order() {
    let set = set(vec![
        RuleConfig::new("no-pii", Mode::Enforce, RuleKind::pii(PiiType::ALL)).with_hold_back(true),
    ]);
    let mut scanner = OutputScanner::new(&set);
    let mut starts = vec![ToolCallDelta::start(0, "a", "f")];
    starts[0].function.as_mut().unwrap().arguments = Some(r#"{"n":"ab"#.into());
    let first = scanner.scan_chunk(tool_chunk(starts)).forward.unwrap();
    let args0 = first.choices[0].delta.tool_calls.as_ref().unwrap()[0].function.as_ref().unwrap();
    // "ab" could still grow into an e-mail local part.
    assert_eq!(args0.arguments.as_deref(), Some(r#"{"n":""#));
    let second =
        scanner.scan_chunk(tool_chunk(vec![ToolCallDelta::start(1, "b", "g")])).forward.unwrap();
    let calls = second.choices[0].delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].index, calls[0].function.as_ref().unwrap().arguments.as_deref()),
        (0, Some("ab"))
    );
    assert_eq!(calls[1].id.as_deref(), Some("b"));
}

#[test]
fn max_output_chars_cuts_exactly_at_the_limit_across_channels() {
    let set = set(vec![RuleConfig::new("cap", Mode::Enforce, RuleKind::max_output_chars(10))]);
    let mut scanner = OutputScanner::new(&set);
    assert_eq!(scanner.scan_delta(0, Channel::Content, "héllo ").release, "héllo ");
    let out = scanner.scan_delta(0, Channel::ToolArguments(0), "wörld!!");
    assert_eq!(out.release, "wörl");
    let block = out.verdict.block().unwrap();
    assert_eq!((block.detector, block.offset, block.len), (Detector::MaxOutputChars, 4, 0));
    assert_eq!(
        block.to_error_object().message,
        "response blocked by guardrail 'cap' (max_output_chars)"
    );
}

#[test]
fn reasoning_is_scanned_only_when_the_rule_asks() {
    let email = "mail jane@example.com now";
    let plain = set(vec![RuleConfig::new("pii", Mode::Monitor, RuleKind::pii(PiiType::ALL))]);
    let mut scanner = OutputScanner::new(&plain);
    assert!(scanner.scan_delta(0, Channel::Reasoning, email).verdict.is_pass());
    assert!(scanner.finish().verdict.is_pass());
    let with = set(vec![
        RuleConfig::new("pii", Mode::Monitor, RuleKind::pii(PiiType::ALL))
            .with_scan_reasoning(true),
    ]);
    let mut scanner = OutputScanner::new(&with);
    let out = scanner.scan_delta(0, Channel::Reasoning, email);
    assert_eq!(
        out.verdict.findings()[0].location,
        Location::Output { choice: 0, channel: Channel::Reasoning }
    );
}

#[test]
fn finish_stream_flushes_when_no_finish_reason_came() {
    let set = pii(Mode::Enforce, true);
    let mut scanner = OutputScanner::new(&set);
    let out = scanner.scan_chunk(chunk(Delta::content("order 4111")));
    let sent = out.forward.unwrap().choices[0].delta.content.clone().unwrap();
    assert_eq!(sent, "order ");
    let last = scanner.finish_stream();
    assert!(last.verdict.is_pass());
    let last = last.forward.unwrap();
    assert_eq!(last.id, "chatcmpl-1");
    assert_eq!(last.choices[0].delta.content.as_deref(), Some("4111"));
}

#[test]
fn choices_are_scanned_independently() {
    let set = pii(Mode::Monitor, false);
    let mut scanner = OutputScanner::new(&set);
    let both = ChatChunk::new("c", 1, "m")
        .with_delta(0, Delta::content("4111 1111 "))
        .with_delta(1, Delta::content("1111 1111 "));
    let out = scanner.scan_chunk(both);
    assert!(out.verdict.is_pass());
    assert!(scanner.finish().verdict.is_pass(), "halves of a card in two choices are not a card");
}

fn completion(content: &str, args: &str) -> ChatCompletion {
    let mut c = ChatCompletion::new("chatcmpl-2", 1, "gpt-test");
    c.choices.push(Choice {
        index: 0,
        message: ResponseMessage {
            content: Some(content.into()),
            tool_calls: Some(vec![ToolCall {
                id: "t".into(),
                kind: "function".into(),
                function: FunctionCall { name: "f".into(), arguments: args.into() },
            }]),
            ..ResponseMessage::default()
        },
        logprobs: None,
        finish_reason: Some(FinishReason::ToolCalls),
    });
    c
}

#[test]
fn completion_check_blocks_or_lists_warning_rules() {
    let rules = set(vec![
        RuleConfig::new("watch-ip", Mode::Monitor, RuleKind::pii([PiiType::Ip])),
        RuleConfig::new("no-cards", Mode::Enforce, RuleKind::pii([PiiType::Card])),
    ]);
    let ok = check_completion(&rules, &completion("server 10.0.0.1 is up", "{}"));
    assert!(!ok.is_blocked());
    assert_eq!(ok.warning_header().as_deref(), Some("watch-ip"));
    let bad = check_completion(&rules, &completion("fine", r#"{"card":"4111111111111111"}"#));
    let block = bad.block().unwrap();
    assert_eq!(block.location, Location::Output { choice: 0, channel: Channel::ToolArguments(0) });
    assert_eq!(block.offset, 9);
    assert_eq!(
        bad.to_error_object().unwrap().message,
        "response blocked by guardrail 'no-cards' (pii:card)"
    );
}

#[test]
fn a_thinking_block_releases_held_reasoning_into_its_own_delta() {
    let rules = set(vec![
        RuleConfig::new("no-pii", Mode::Enforce, RuleKind::pii(PiiType::ALL))
            .with_hold_back(true)
            .with_scan_reasoning(true),
    ]);
    let mut scanner = OutputScanner::new(&rules);
    // "order 4111" ends in a possible card prefix, so hold-back keeps "4111" back...
    let out = scanner.scan_chunk(chunk(Delta::reasoning("order 4111")));
    assert_eq!(out.forward.unwrap().choices[0].delta.reasoning_content.as_deref(), Some("order "));
    // ...until the block's signature closes the reasoning: then it leaves with the signature, so
    // a client rebuilding the block from the reasoning before it gets the whole text.
    let signed = Delta {
        thinking_blocks: Some(vec![prism_types::ThinkingBlock::Thinking {
            thinking: String::new(),
            signature: Some("sig".into()),
        }]),
        ..Delta::default()
    };
    let out = scanner.scan_chunk(chunk(signed));
    assert!(out.verdict.is_pass());
    let delta = &out.forward.unwrap().choices[0].delta;
    assert_eq!(delta.reasoning_content.as_deref(), Some("4111"));
    assert!(delta.thinking_blocks.is_some());
}

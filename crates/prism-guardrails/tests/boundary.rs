//! Property tests of the streaming scanner: any chunking of a text yields the same findings at
//! the same character offsets as the unchunked text; hold-back never releases a violation and,
//! absent one, releases the input exactly.

use prism_guardrails::{
    Channel, Finding, GuardrailSet, Mode, OutputScanner, PiiType, RuleConfig, RuleKind, SecretType,
};
use proptest::prelude::*;

/// Noise made of near misses: digits, separators, key prefixes, partial e-mails, non-ASCII.
const FRAGMENTS: &[&str] = &[
    "a",
    "b",
    "z",
    "the ",
    "x",
    "Q",
    " ",
    "  ",
    "\n",
    "-",
    ".",
    "@",
    ":",
    "_",
    "+",
    "/",
    "(",
    ")",
    ",",
    "0",
    "1",
    "4",
    "7",
    "9",
    "12",
    "555",
    "4111 ",
    "1111",
    "sk-",
    "AKIA",
    "eyJ",
    "ghp_",
    "@example.com",
    "jane",
    "é",
    "日本",
    "🙂",
    "ple",
    ".com",
    "falcon",
    "Fal",
    "order-",
    "DE",
    "89 ",
    "::",
    "10.0.",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "A1b2C3d4E5",
    "+44 ",
    "(415) ",
];

fn body(len: usize) -> String {
    let alphabet: Vec<char> = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8".chars().collect();
    (0..len).map(|i| alphabet[(i * 7 + i / 3) % alphabet.len()]).collect()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// One violating token per detector family, assembled at run time.
fn tokens() -> Vec<String> {
    vec![
        "4111 1111 1111 1111".into(),
        "5555555555554444".into(),
        "jane.doe@example.com".into(),
        "DE89 3704 0044 0532 0130 00".into(),
        "123-45-6789".into(),
        "+44 20 7946 0958".into(),
        "(415) 555-2671".into(),
        "192.168.10.1".into(),
        "2001:db8::1".into(),
        ["AKIA", "IOSFODNN7EXAMPLE"].concat(),
        format!("gh{}_{}", "p", body(36)),
        format!("sk-{}-{}", "proj", body(80)),
        format!("sk-ant-api03-{}", body(60)),
        format!("AIza{}", body(35)),
        format!("{}.{}.{}", b64(r#"{"alg":"HS256"}"#), b64(r#"{"sub":"42"}"#), body(43)),
        format!("{0}BEGIN EC PRIVATE KEY{0}", "-----"),
        "Falcon".into(),
        "Project X".into(),
        "order-12345".into(),
    ]
}

fn rules(mode: Mode, hold_back: bool) -> GuardrailSet {
    let rule =
        |name: &str, kind: RuleKind| RuleConfig::new(name, mode, kind).with_hold_back(hold_back);
    let set = GuardrailSet::new(&[
        rule("pii", RuleKind::pii(PiiType::ALL)),
        rule("secrets", RuleKind::secrets(SecretType::ALL)),
        rule("words", RuleKind::keywords(["falcon", "project x"])),
        rule("orders", RuleKind::regex(r"order-[0-9]{3,8}")),
    ]);
    set.unwrap_or_else(|e| panic!("{e}"))
}

/// Splits `text` at `cuts` (taken modulo the length, moved down to character boundaries).
fn split<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut p = c % (text.len() + 1);
            while !text.is_char_boundary(p) {
                p -= 1;
            }
            p
        })
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

struct Scan {
    released: String,
    findings: Vec<Finding>,
    block: Option<Finding>,
}

fn scan(set: &GuardrailSet, chunks: &[&str]) -> Scan {
    let mut scanner = OutputScanner::new(set);
    let mut released = String::new();
    let mut findings = Vec::new();
    for chunk in chunks {
        let out = scanner.scan_delta(0, Channel::Content, chunk);
        released.push_str(&out.release);
        findings.extend(out.verdict.findings().iter().cloned());
        if let Some(block) = out.verdict.block() {
            return Scan { released, block: Some(block.clone()), findings };
        }
    }
    let out = scanner.finish();
    for release in out.releases {
        released.push_str(&release.text);
    }
    let block = out.verdict.block().cloned();
    findings.extend(out.verdict.into_findings());
    Scan { released, findings, block }
}

fn noise() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|v| v.concat())
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4096, 0..16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Monitor: every chunking finds the same (rule, detector, location, offset, length) list,
    /// and the injected token is among them at its offset.
    #[test]
    fn chunking_never_changes_findings(
        prefix in noise(), suffix in noise(), token in 0usize..19, cuts in cuts(),
    ) {
        let tokens = tokens();
        let token = &tokens[token];
        let text = format!("{prefix} | {token} | {suffix}");
        let set = rules(Mode::Monitor, false);
        let whole = scan(&set, &[&text]);
        let offset = prefix.chars().count() + 3;
        prop_assert!(
            whole.findings.iter().any(|f| f.offset == offset && f.len == token.chars().count()),
            "token {:?} not found at {} in {:?}", token, offset, text
        );
        let chunked = scan(&set, &split(&text, &cuts));
        prop_assert_eq!(&chunked.findings, &whole.findings);
        prop_assert_eq!(&chunked.released, &text);
    }

    /// Enforce: every chunking blocks on the same finding as the unchunked text.
    #[test]
    fn chunking_never_changes_the_block(
        prefix in noise(), suffix in noise(), token in 0usize..19, cuts in cuts(),
    ) {
        let tokens = tokens();
        let text = format!("{prefix} | {} | {suffix}", tokens[token]);
        let set = rules(Mode::Enforce, false);
        let whole = scan(&set, &[&text]);
        prop_assert!(whole.block.is_some());
        let chunked = scan(&set, &split(&text, &cuts));
        prop_assert_eq!(chunked.block, whole.block);
    }

    /// Hold-back: released text is a prefix of the input that stops before the violation; the
    /// block is the unchunked one.
    #[test]
    fn hold_back_never_releases_the_violation(
        prefix in noise(), suffix in noise(), token in 0usize..19, cuts in cuts(),
    ) {
        let tokens = tokens();
        let text = format!("{prefix} | {} | {suffix}", tokens[token]);
        let set = rules(Mode::Enforce, true);
        let whole = scan(&set, &[&text]);
        let chunked = scan(&set, &split(&text, &cuts));
        let block = whole.block.clone().expect("the token violates");
        prop_assert_eq!(chunked.block.as_ref(), Some(&block));
        prop_assert!(text.starts_with(&chunked.released));
        prop_assert!(chunked.released.chars().count() <= block.offset,
            "released {:?} reaches the violation at {}", chunked.released, block.offset);
    }

    /// Hold-back on arbitrary near-miss text: nothing lost or reordered when nothing violates,
    /// never past the violation when something does.
    #[test]
    fn hold_back_releases_clean_text_exactly(text in noise(), cuts in cuts()) {
        let set = rules(Mode::Enforce, true);
        let whole = scan(&set, &[&text]);
        let chunked = scan(&set, &split(&text, &cuts));
        prop_assert_eq!(&chunked.block, &whole.block);
        match whole.block {
            None => prop_assert_eq!(&chunked.released, &text),
            Some(block) => {
                prop_assert!(text.starts_with(&chunked.released));
                prop_assert!(chunked.released.chars().count() <= block.offset);
            }
        }
    }
}

#[test]
fn every_split_point_gives_the_unchunked_findings() {
    // The exhaustive version of the property, for one cut anywhere, two cuts, and one character
    // per delta, with contexts that validators read two characters deep (".5", ",7").
    let set = rules(Mode::Monitor, false);
    let contexts = [("before ", " after"), ("x.", ".5 z"), ("1,", ",7"), ("(", ")."), ("", "")];
    for token in tokens() {
        for (before, after) in contexts {
            let text = format!("{before}{token}{after}");
            let whole = scan(&set, &[&text]);
            if before == "before " {
                assert!(whole.findings.iter().any(|f| f.offset == 7), "{token}");
            }
            let bounds: Vec<usize> =
                (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
            for &a in &bounds {
                let one = scan(&set, &split(&text, &[a]));
                assert_eq!(one.findings, whole.findings, "{text:?} cut at {a}");
                for &b in bounds.iter().filter(|&&b| b > a).step_by(13) {
                    assert_eq!(scan(&set, &split(&text, &[a, b])).findings, whole.findings);
                }
            }
            let chars: Vec<&str> = split(&text, &bounds);
            assert_eq!(scan(&set, &chars).findings, whole.findings, "{text:?} per character");
        }
    }
}

//! Built-in detectors: a candidate pattern per kind of PII or secret plus a validator (checksum,
//! context, structure). Patterns are ASCII-only and avoid `\b`, so the lazy DFA never gives up;
//! context rules live in the validators, which see two characters either side of a candidate.

pub(crate) mod injection;
pub(crate) mod pii;
pub(crate) mod secrets;

use std::sync::{Arc, OnceLock};

use crate::config::{PiiType, SecretType};
use crate::engine::{BuildFailure, CheckFn, Matcher, Validator};
use crate::verdict::Detector;

/// One built-in detector.
pub(crate) struct Builtin {
    /// Reported in findings.
    pub(crate) detector: Detector,
    /// Candidate pattern.
    pub(crate) pattern: &'static str,
    /// Match-length cap for patterns without a finite maximum length.
    pub(crate) window: Option<usize>,
    /// Candidate check.
    pub(crate) check: CheckFn,
    /// Index of the compiled matcher in [`COMPILED`].
    slot: usize,
}

const BUILTIN_COUNT: usize = 14;

/// Built-in matchers are compiled once per process and shared by every rule and set.
static COMPILED: [OnceLock<Arc<Matcher>>; BUILTIN_COUNT] =
    [const { OnceLock::new() }; BUILTIN_COUNT];

static EMAIL: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Email),
    pattern: pii::EMAIL_RE,
    window: None,
    check: pii::email,
    slot: 0,
};
static PHONE: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Phone),
    pattern: pii::PHONE_RE,
    window: None,
    check: pii::phone,
    slot: 1,
};
static CARD: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Card),
    pattern: pii::CARD_RE,
    window: None,
    check: pii::card,
    slot: 2,
};
static SSN: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Ssn),
    pattern: pii::SSN_RE,
    window: None,
    check: pii::ssn,
    slot: 3,
};
static IBAN: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Iban),
    pattern: pii::IBAN_RE,
    window: None,
    check: pii::iban,
    slot: 4,
};
static IPV4: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Ip),
    pattern: pii::IPV4_RE,
    window: None,
    check: pii::ipv4,
    slot: 5,
};
static IPV6: Builtin = Builtin {
    detector: Detector::Pii(PiiType::Ip),
    pattern: pii::IPV6_RE,
    window: None,
    check: pii::ipv6,
    slot: 6,
};
static OPENAI: Builtin = Builtin {
    detector: Detector::Secret(SecretType::Openai),
    pattern: secrets::OPENAI_RE,
    window: None,
    check: secrets::openai,
    slot: 7,
};
static ANTHROPIC: Builtin = Builtin {
    detector: Detector::Secret(SecretType::Anthropic),
    pattern: secrets::ANTHROPIC_RE,
    window: None,
    check: secrets::anthropic,
    slot: 8,
};
static AWS: Builtin = Builtin {
    detector: Detector::Secret(SecretType::AwsAccessKey),
    pattern: secrets::AWS_ACCESS_KEY_RE,
    window: None,
    check: secrets::aws_access_key,
    slot: 9,
};
static GOOGLE: Builtin = Builtin {
    detector: Detector::Secret(SecretType::GoogleApiKey),
    pattern: secrets::GOOGLE_API_KEY_RE,
    window: None,
    check: secrets::google_api_key,
    slot: 10,
};
static GITHUB: Builtin = Builtin {
    detector: Detector::Secret(SecretType::GithubToken),
    pattern: secrets::GITHUB_TOKEN_RE,
    window: None,
    check: secrets::github_token,
    slot: 11,
};
static PRIVATE_KEY: Builtin = Builtin {
    detector: Detector::Secret(SecretType::PrivateKey),
    pattern: secrets::PRIVATE_KEY_RE,
    window: None,
    check: secrets::private_key,
    slot: 12,
};
static JWT: Builtin = Builtin {
    detector: Detector::Secret(SecretType::Jwt),
    pattern: secrets::JWT_RE,
    window: Some(secrets::JWT_MAX_CHARS),
    check: secrets::jwt,
    slot: 13,
};

/// The detectors behind one PII type (IP has one for v4 and one for v6).
pub(crate) fn pii_builtins(t: PiiType) -> Vec<&'static Builtin> {
    match t {
        PiiType::Email => vec![&EMAIL],
        PiiType::Phone => vec![&PHONE],
        PiiType::Card => vec![&CARD],
        PiiType::Ssn => vec![&SSN],
        PiiType::Iban => vec![&IBAN],
        PiiType::Ip => vec![&IPV4, &IPV6],
    }
}

/// The detector behind one secret type.
pub(crate) fn secret_builtin(t: SecretType) -> &'static Builtin {
    match t {
        SecretType::Openai => &OPENAI,
        SecretType::Anthropic => &ANTHROPIC,
        SecretType::AwsAccessKey => &AWS,
        SecretType::GoogleApiKey => &GOOGLE,
        SecretType::GithubToken => &GITHUB,
        SecretType::PrivateKey => &PRIVATE_KEY,
        SecretType::Jwt => &JWT,
    }
}

/// The shared compiled matcher of a built-in. Fails only if a built-in pattern is broken, which
/// the unit tests rule out.
pub(crate) fn compiled(builtin: &'static Builtin) -> Result<Arc<Matcher>, String> {
    let cell = &COMPILED[builtin.slot];
    if let Some(m) = cell.get() {
        return Ok(Arc::clone(m));
    }
    let matcher = Matcher::regex(
        builtin.detector,
        builtin.pattern,
        builtin.window,
        crate::RuleKind::DEFAULT_MAX_MATCH_CHARS,
        Validator::Check(builtin.check),
        false,
    )
    .map_err(|e| match e {
        BuildFailure::Invalid(reason) => reason,
        BuildFailure::Empty => "built-in pattern matches empty text".to_owned(),
    })?;
    // A concurrent first use may have won the race; either copy is identical.
    Ok(Arc::clone(cell.get_or_init(|| Arc::new(matcher))))
}

/// The character before `at` and the one before that.
pub(crate) fn before(hay: &str, at: usize) -> (Option<char>, Option<char>) {
    let mut it = hay[..at].chars().rev();
    (it.next(), it.next())
}

/// The character at `at` and the one after that.
pub(crate) fn after(hay: &str, at: usize) -> (Option<char>, Option<char>) {
    let mut it = hay[at..].chars();
    (it.next(), it.next())
}

/// Whether `c` is an ASCII letter, digit or underscore.
pub(crate) fn is_ascii_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether a number-like match is glued to a larger numeric structure: the neighbour is a
/// letter/digit, or a separator (`.`, `,`, `-`, `/`) followed by a digit.
pub(crate) fn glued_number(near: Option<char>, far: Option<char>) -> bool {
    match near {
        Some(c) if is_ascii_word(c) => true,
        Some('.' | ',' | '-' | '/') => far.is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs one built-in over a whole text, the way a request check does.

    use crate::engine::Cursor;

    use super::*;

    /// `(char offset, char len)` of every finding of `builtin` in `text`.
    pub(crate) fn find(builtin: &'static Builtin, text: &str) -> Vec<(usize, usize)> {
        let matcher = compiled(builtin).unwrap();
        let mut cache = matcher.new_cache();
        let mut cursor = Cursor::at(0, 0, 0);
        let mut found = Vec::new();
        matcher.advance(&mut cache, text, 0, &mut cursor, true, &mut |m| {
            found.push((m.char_offset, m.char_len))
        });
        found
    }

    /// Asserts every positive is found whole (as the only finding, when embedded in a sentence)
    /// and no negative yields anything.
    pub(crate) fn check_table(builtin: &'static Builtin, positives: &[&str], negatives: &[&str]) {
        for p in positives {
            assert_eq!(find(builtin, p), vec![(0, p.chars().count())], "positive {p:?}");
            let sentence = format!("see: {p}, ok");
            assert_eq!(
                find(builtin, &sentence),
                vec![(5, p.chars().count())],
                "positive in sentence {sentence:?}"
            );
        }
        for n in negatives {
            assert_eq!(find(builtin, n), vec![], "negative {n:?}");
        }
    }
}

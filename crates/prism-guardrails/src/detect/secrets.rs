//! Credential detectors: provider API keys, GitHub tokens, PEM private-key headers, JWTs.
//!
//! Random-looking key bodies must mix upper case, lower case and digits, which real keys do and
//! hyphenated prose (`sk-learn-is-great-2024`) does not.

use base64::Engine as _;

use super::{after, before, is_ascii_word};

/// Legacy `sk-` + 32+ alphanumerics, or `sk-proj-`/`sk-svcacct-`/`sk-admin-` + base64url.
pub(crate) const OPENAI_RE: &str =
    r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,250}|sk-[A-Za-z0-9]{32,250}";
/// `sk-ant-` + base64url.
pub(crate) const ANTHROPIC_RE: &str = r"sk-ant-[A-Za-z0-9_\-]{20,250}";
/// Long-term (`AKIA`) and temporary (`ASIA`) access key ids.
pub(crate) const AWS_ACCESS_KEY_RE: &str = r"(?:AKIA|ASIA)[A-Z0-9]{16}";
/// `AIza` + 35 characters.
pub(crate) const GOOGLE_API_KEY_RE: &str = r"AIza[0-9A-Za-z_\-]{35}";
/// Classic (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and fine-grained (`github_pat_`) tokens.
pub(crate) const GITHUB_TOKEN_RE: &str =
    r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251}";
/// The PEM header line of any private-key block; the header alone is the finding.
pub(crate) const PRIVATE_KEY_RE: &str =
    r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----";
/// Three base64url segments, the first starting like a JSON object.
pub(crate) const JWT_RE: &str = r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*";
/// Longest JWT caught across chunk boundaries.
pub(crate) const JWT_MAX_CHARS: usize = 10_240;
/// Longest JWT header decoded.
const JWT_MAX_HEADER: usize = 1_024;

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Not glued to other key characters on either side.
fn standalone(hay: &str, start: usize, end: usize, word: fn(char) -> bool) -> bool {
    let (prev, _) = before(hay, start);
    let (next, _) = after(hay, end);
    !prev.is_some_and(word) && !next.is_some_and(word)
}

fn looks_random(body: &str) -> bool {
    body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_digit())
}

pub(crate) fn openai(hay: &str, start: usize, end: usize) -> Option<usize> {
    let body = hay.get(start + 3..end)?;
    let ok =
        standalone(hay, start, end, is_key_char) && !body.starts_with("ant-") && looks_random(body);
    ok.then_some(end)
}

pub(crate) fn anthropic(hay: &str, start: usize, end: usize) -> Option<usize> {
    let body = hay.get(start + 7..end)?;
    (standalone(hay, start, end, is_key_char) && looks_random(body)).then_some(end)
}

pub(crate) fn aws_access_key(hay: &str, start: usize, end: usize) -> Option<usize> {
    standalone(hay, start, end, |c| c.is_ascii_alphanumeric()).then_some(end)
}

pub(crate) fn google_api_key(hay: &str, start: usize, end: usize) -> Option<usize> {
    standalone(hay, start, end, is_key_char).then_some(end)
}

pub(crate) fn github_token(hay: &str, start: usize, end: usize) -> Option<usize> {
    standalone(hay, start, end, is_ascii_word).then_some(end)
}

pub(crate) fn private_key(_hay: &str, _start: usize, end: usize) -> Option<usize> {
    Some(end)
}

pub(crate) fn jwt(hay: &str, start: usize, end: usize) -> Option<usize> {
    // A trailing sentence dot is fine; a dot that continues the token (JWE) is not.
    let (prev, _) = before(hay, start);
    let (next, next2) = after(hay, end);
    let glued = prev.is_some_and(|c| is_key_char(c) || c == '.')
        || next.is_some_and(is_key_char)
        || (next == Some('.') && next2.is_some_and(is_key_char));
    if glued {
        return None;
    }
    let header = hay[start..end].split('.').next()?;
    if header.len() > JWT_MAX_HEADER {
        return None;
    }
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decoded).ok()?;
    object.get("alg")?.as_str()?;
    Some(end)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::super::test_support::{check_table, find};
    use super::super::{ANTHROPIC, AWS, GITHUB, GOOGLE, JWT, OPENAI, PRIVATE_KEY};

    /// A deterministic random-looking body; test keys are assembled at run time so no
    /// credential-shaped literal sits in the source.
    fn body(len: usize, alphabet: &str) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|i| chars[(i * 7 + i / 3) % chars.len()]).collect()
    }

    const ALNUM: &str = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8";
    const B64URL: &str = "aB3_dE5-gH7jK9mN1pQ2sT4vW6yZ8";

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn openai_table() {
        let legacy = format!("sk-{}", body(48, ALNUM));
        let project = format!("sk-{}-{}", "proj", body(120, B64URL));
        let service = format!("sk-{}-{}", "svcacct", body(60, B64URL));
        check_table(
            &OPENAI,
            &[&legacy, &project, &service],
            &[
                "sk-learn",
                "sk-learn-is-a-great-library-for-ml-2024",
                "task-management-system-with-a-long-name",
                &format!("sk-{}", "abcdefghij".repeat(5)),
                &format!("x{legacy}"),
                &format!("{legacy}-"),
                &format!("sk-ant-api03-{}", body(93, B64URL)),
                &format!("sk-{}", body(20, ALNUM)),
            ],
        );
    }

    #[test]
    fn anthropic_table() {
        let key = format!("sk-ant-api03-{}AA", body(93, B64URL));
        let admin = format!("sk-ant-admin01-{}", body(90, B64URL));
        check_table(
            &ANTHROPIC,
            &[&key, &admin],
            &["sk-ant-short", "sk-ant-this-is-just-a-hyphenated-phrase", &format!("_{key}")],
        );
    }

    #[test]
    fn aws_table() {
        let id = ["AKIA", "IOSFODNN7EXAMPLE"].concat();
        let temp = ["ASIA", "Y34FZKBOKMUTVV7A"].concat();
        check_table(
            &AWS,
            &[&id, &temp],
            &[
                "AKIA1234",
                &format!("{id}X"),
                &format!("X{id}"),
                &id.to_lowercase(),
                &["ABIA", "IOSFODNN7EXAMPLE"].concat(),
                "ASIAPACIFICSUMMITS",
            ],
        );
    }

    #[test]
    fn google_table() {
        let key = format!("AIza{}", body(35, B64URL));
        check_table(
            &GOOGLE,
            &[&key],
            &[&format!("AIza{}", body(34, B64URL)), &format!("AIza{}", body(36, B64URL)), "AIzaSy"],
        );
    }

    #[test]
    fn github_table() {
        let classic = format!("gh{}_{}", "p", body(36, ALNUM));
        let oauth = format!("gh{}_{}", "o", body(36, ALNUM));
        let server = format!("gh{}_{}", "s", body(36, ALNUM));
        let fine = format!("github_{}_{}_{}", "pat", body(22, ALNUM), body(59, ALNUM));
        check_table(
            &GITHUB,
            &[&classic, &oauth, &server, &fine],
            &[
                &format!("gh{}_{}", "p", body(35, ALNUM)),
                &format!("gh{}_{}", "x", body(36, ALNUM)),
                "github_pat_short",
                &format!("my{classic}"),
            ],
        );
    }

    #[test]
    fn private_key_table() {
        let dashes = "-----";
        let rsa = format!("{dashes}BEGIN RSA PRIVATE KEY{dashes}");
        let pkcs8 = format!("{dashes}BEGIN PRIVATE KEY{dashes}");
        let openssh = format!("{dashes}BEGIN OPENSSH PRIVATE KEY{dashes}");
        let encrypted = format!("{dashes}BEGIN ENCRYPTED PRIVATE KEY{dashes}");
        let pgp = format!("{dashes}BEGIN PGP PRIVATE KEY BLOCK{dashes}");
        check_table(
            &PRIVATE_KEY,
            &[&rsa, &pkcs8, &openssh, &encrypted, &pgp],
            &[
                &format!("{dashes}BEGIN PUBLIC KEY{dashes}"),
                &format!("{dashes}BEGIN CERTIFICATE{dashes}"),
                "BEGIN PRIVATE KEY",
                &format!("{dashes}BEGIN rsa PRIVATE KEY{dashes}"),
            ],
        );
        // The header is found inside a whole block.
        let block =
            format!("{rsa}\nMIIEow{}\n{dashes}END RSA PRIVATE KEY{dashes}", body(64, ALNUM));
        assert_eq!(find(&PRIVATE_KEY, &block), vec![(0, rsa.len())]);
    }

    #[test]
    fn jwt_table() {
        let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(r#"{"sub":"1234567890","name":"Jane Doe","iat":1516239022}"#);
        let token = format!("{header}.{payload}.{}", body(43, B64URL));
        let unsigned = format!("{}.{payload}.", b64(r#"{"alg":"none"}"#));
        let no_alg = format!("{}.{payload}.{}", b64(r#"{"typ":"JWT"}"#), body(43, B64URL));
        let not_json = format!("eyJ{}.{payload}.{}", body(20, ALNUM), body(43, B64URL));
        check_table(
            &JWT,
            &[&token, &unsigned],
            &[
                &no_alg,
                &not_json,
                &header,
                &format!("{header}.{payload}"),
                &format!("x{token}"),
                &format!("{token}.more"),
            ],
        );
    }
}

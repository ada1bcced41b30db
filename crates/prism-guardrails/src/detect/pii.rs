//! Personal-data detectors: e-mail, phone, payment card (Luhn), US SSN, IBAN (mod 97), IPv4/IPv6.

use std::net::Ipv6Addr;

use super::{after, before, glued_number, is_ascii_word};

/// Local part, `@`, one to eight dot-terminated labels, a letters-only TLD.
pub(crate) const EMAIL_RE: &str =
    r"[A-Za-z0-9_.%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}";

/// E.164 / international (`+` country code, groups, optional parenthesised area code), NANP in
/// its three usual spellings (area and exchange codes start 2–9), and trunk-`0` national numbers
/// (UK/DE style groups, FR style pairs).
pub(crate) const PHONE_RE: &str = concat!(
    r"\+[1-9][0-9]{0,3}(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,6}",
    r"|\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[\-. ][0-9]{4}",
    r"|[2-9][0-9]{2}-[2-9][0-9]{2}-[0-9]{4}",
    r"|[2-9][0-9]{2}\.[2-9][0-9]{2}\.[0-9]{4}",
    r"|[2-9][0-9]{2} [2-9][0-9]{2} [0-9]{4}",
    r"|0[1-9][0-9]{1,4}[ \-][0-9]{3,4}[ \-]?[0-9]{3,4}",
    r"|0[1-9](?: [0-9]{2}){4}",
    r"|0[1-9](?:\.[0-9]{2}){4}",
);

/// 4-4-4-(1..4)[-3] with one consistent separator, Amex/Diners 4-6-(4..5), or 13–19 digits.
pub(crate) const CARD_RE: &str = concat!(
    r"[0-9]{4}(?: [0-9]{4}){2} [0-9]{1,4}(?: [0-9]{3})?",
    r"|[0-9]{4}(?:-[0-9]{4}){2}-[0-9]{1,4}(?:-[0-9]{3})?",
    r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5}",
    r"|[0-9]{13,19}",
);

/// AAA-GG-SSSS with dashes or spaces.
pub(crate) const SSN_RE: &str = r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}";

/// Country code, check digits, 11–30 alphanumerics with optional single spaces.
pub(crate) const IBAN_RE: &str = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}";

/// Four dot-separated groups of one to three digits.
pub(crate) const IPV4_RE: &str = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}";

/// Hex groups and colons (plus dots for an embedded IPv4), containing a colon early on; the
/// validator parses the candidate with the standard library.
pub(crate) const IPV6_RE: &str = r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,44}";

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '%' | '+' | '-')
}

pub(crate) fn email(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, _) = before(hay, start);
    if prev.is_some_and(|c| is_local_char(c) || c == '@') {
        return None;
    }
    let (next, _) = after(hay, end);
    if next.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@')) {
        return None;
    }
    let (local, domain) = hay[start..end].split_once('@')?;
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return None;
    }
    if domain.split('.').any(|label| label.starts_with('-') || label.ends_with('-')) {
        return None;
    }
    Some(end)
}

pub(crate) fn phone(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, prev2) = before(hay, start);
    if glued_number(prev, prev2) || matches!(prev, Some('+' | '-' | '/')) {
        return None;
    }
    let m = &hay[start..end];
    let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count();
    let accept = |e: usize| {
        let (next, next2) = after(hay, e);
        !glued_number(next, next2) && !matches!(next, Some('-' | '/'))
    };
    if !m.starts_with('+') {
        let n = digits(m);
        let plausible = if m.starts_with('0') { (9..=11).contains(&n) } else { n == 10 };
        return (plausible && accept(end)).then_some(end);
    }
    // International: the greedy pattern may have swallowed a following number, so try the
    // candidate and then each shorter prefix ending before a group.
    let mut ends: Vec<usize> = m
        .char_indices()
        .filter(|&(i, c)| i > 0 && matches!(c, ' ' | '.' | '-' | '('))
        .map(|(i, _)| i)
        .collect();
    ends.push(m.len());
    ends.into_iter().rev().find_map(|len| {
        let cand = &m[..len];
        let n = digits(cand);
        // North American numbers (+1) have exactly ten digits after the country code.
        let length_ok =
            if cand.starts_with("+1") && !cand[2..].starts_with(|c: char| c.is_ascii_digit()) {
                n == 11
            } else {
                (8..=15).contains(&n)
            };
        let balanced = cand.matches('(').count() == cand.matches(')').count();
        let clean_end = cand.ends_with(|c: char| c.is_ascii_digit() || c == ')');
        (length_ok && balanced && clean_end && accept(start + len)).then_some(start + len)
    })
}

pub(crate) fn card(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, prev2) = before(hay, start);
    if glued_number(prev, prev2) {
        return None;
    }
    let m = &hay[start..end];
    let mut ends = vec![m.len()];
    // A fifth group (19-digit cards) is optional; without it the number may still be a card.
    if m.bytes().filter(|b| matches!(b, b' ' | b'-')).count() == 4
        && let Some(i) = m.rfind([' ', '-'])
    {
        ends.push(i);
    }
    ends.into_iter().find_map(|len| {
        let digits: Vec<u8> =
            m[..len].bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        let (next, next2) = after(hay, start + len);
        let ok = (13..=19).contains(&digits.len())
            && (2..=6).contains(&digits[0])
            && digits.iter().any(|&d| d != digits[0])
            && luhn(&digits)
            && !glued_number(next, next2);
        ok.then_some(start + len)
    })
}

/// Luhn checksum over digit values.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub(crate) fn ssn(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, prev2) = before(hay, start);
    let (next, next2) = after(hay, end);
    if glued_number(prev, prev2) || glued_number(next, next2) {
        return None;
    }
    let m = &hay.as_bytes()[start..end];
    let (area, group, serial) = (&m[0..3], &m[4..6], &m[7..11]);
    let valid =
        area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000";
    valid.then_some(end)
}

pub(crate) fn iban(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, _) = before(hay, start);
    if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let m = &hay[start..end];
    // The pattern may run on into following capitalised words; try the candidate, then each
    // shorter prefix ending before a space.
    let mut ends: Vec<usize> = m.match_indices(' ').map(|(i, _)| i).collect();
    ends.push(m.len());
    ends.into_iter().rev().find_map(|len| {
        let compact: Vec<u8> = m[..len].bytes().filter(|&b| b != b' ').collect();
        let (next, _) = after(hay, start + len);
        let ok = (15..=34).contains(&compact.len())
            && !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && iban_checksum_ok(&compact);
        ok.then_some(start + len)
    })
}

/// ISO 13616 check: move the first four characters to the end, read letters as 10–35, and the
/// number must be 1 modulo 97.
pub(crate) fn iban_checksum_ok(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut rem: u32 = 0;
    for &c in rearranged {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        }
    }
    rem == 1
}

pub(crate) fn ipv4(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, _) = before(hay, start);
    let (next, next2) = after(hay, end);
    if prev.is_some_and(|c| is_ascii_word(c) || c == '.') || glued_number(next, next2) {
        return None;
    }
    let octets_ok = hay[start..end]
        .split('.')
        .all(|octet| (octet.len() == 1 || !octet.starts_with('0')) && octet.parse::<u8>().is_ok());
    octets_ok.then_some(end)
}

pub(crate) fn ipv6(hay: &str, start: usize, end: usize) -> Option<usize> {
    let (prev, _) = before(hay, start);
    if prev.is_some_and(|c| is_ascii_word(c) || matches!(c, ':' | '.')) {
        return None;
    }
    let m = &hay[start..end];
    let mut len = m.len();
    loop {
        let cand = &m[..len];
        let (next, _) = after(hay, start + len);
        let ok = cand.matches(':').count() >= 2
            && cand.bytes().any(|b| b.is_ascii_digit())
            && !next.is_some_and(is_ascii_word)
            && cand.parse::<Ipv6Addr>().is_ok();
        if ok {
            return Some(start + len);
        }
        // Only trailing punctuation (sentence ends, a colon before more text) is trimmed.
        if cand.ends_with([':', '.']) && len > 1 {
            len -= 1;
        } else {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_table;
    use super::super::{CARD, EMAIL, IBAN, IPV4, IPV6, PHONE, SSN};
    use super::*;

    #[test]
    fn email_table() {
        check_table(
            &EMAIL,
            &[
                "john.doe@example.com",
                "a+tag@sub.example.co.uk",
                "USER_1@Example.ORG",
                "first-last@my-domain.io",
                "x@y.museum",
            ],
            &[
                "user@localhost",
                "@example.com",
                "john@",
                "john.@example.com",
                ".john@example.com",
                "john..doe@example.com",
                "a@-bad.com",
                "x@y.z",
                "first.last@123.123.123.123",
                "name at example dot com",
                "foo@bar_baz.com",
                "me@example.c0m",
            ],
        );
    }

    #[test]
    fn phone_table() {
        check_table(
            &PHONE,
            &[
                "+14155552671",
                "+1 415 555 2671",
                "+1 (415) 555-2671",
                "+44 20 7946 0958",
                "+49 30 12345678",
                "+33 1 23 45 67 89",
                "(415) 555-2671",
                "(415)555-2671",
                "415-555-2671",
                "415.555.2671",
                "415 555 2671",
                "020 7946 0958",
                "07911 123456",
                "030 12345678",
                "01 23 45 67 89",
            ],
            &[
                "1234567890",
                "4155552671",
                "123-456-7890",
                "2024-01-15",
                "15/01/2024",
                "12.05.2023",
                "10:30:00",
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "3782 822463 10005",
                "123-45-6789",
                "192.168.100.200",
                "978-0-306-40615-7",
                "94105-1234",
                "+1234",
                "+20%",
                "$1,234,567.89",
                "v415-555-2671",
                "415-555-26710",
                "0800 1234",
            ],
        );
        // A trailing number after an international one is not part of it.
        let found = super::super::test_support::find(&PHONE, "call +1 415 555 2671 2024 ok");
        assert_eq!(found, vec![(5, 15)]);
    }

    #[test]
    fn card_table() {
        check_table(
            &CARD,
            &[
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "4111111111111111",
                "5555555555554444",
                "5105 1051 0510 5100",
                "378282246310005",
                "3782 822463 10005",
                "6011111111111117",
                "4012888888881881",
                "4222222222222",
                "6011 0009 9013 9424",
            ],
            &[
                "4111 1111 1111 1112",
                "1234567890123456",
                "0000 0000 0000 0000",
                "1700000000000",
                "41111111111111111111111",
                "4111 1111",
                "2024-01-15",
                "+1 415 555 2671",
                "4111 1111-1111 1111",
                "x4111111111111111",
                "4111111111111111.5",
                "7777777777777777",
            ],
        );
        // A 19-digit grouped run that fails Luhn still yields the valid 16-digit card.
        let found = super::super::test_support::find(&CARD, "4111 1111 1111 1111 123 units");
        assert_eq!(found, vec![(0, 19)]);
    }

    #[test]
    fn luhn_values() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398710")));
        assert!(luhn(&digits("4111111111111111")));
    }

    #[test]
    fn ssn_table() {
        check_table(
            &SSN,
            &["123-45-6789", "078-05-1120", "123 45 6789", "665-12-3456", "899-99-9999"],
            &[
                "000-12-3456",
                "666-12-3456",
                "900-12-3456",
                "999-12-3456",
                "123-00-4567",
                "123-45-0000",
                "123456789",
                "123-45-67890",
                "1123-45-6789",
                "415-555-2671",
                "2023-01-15",
                "123-45-6789-1",
            ],
        );
    }

    #[test]
    fn iban_table() {
        check_table(
            &IBAN,
            &[
                "DE89 3704 0044 0532 0130 00",
                "DE89370400440532013000",
                "GB82 WEST 1234 5698 7654 32",
                "GB82WEST12345698765432",
                "FR14 2004 1010 0505 0001 3M02 606",
                "NL91ABNA0417164300",
                "CH9300762011623852957",
                "NO9386011117947",
            ],
            &[
                "DE89 3704 0044 0532 0130 01",
                "GB82WEST12345698765433",
                "GB82 WEST 1234",
                "de89370400440532013000",
                "XDE89370400440532013000",
                "DE89370400440532013000X",
            ],
        );
        let found = super::super::test_support::find(&IBAN, "DE89 3704 0044 0532 0130 00 AND MORE");
        assert_eq!(found, vec![(0, 27)]);
    }

    #[test]
    fn iban_checksum() {
        assert!(iban_checksum_ok(b"GB82WEST12345698765432"));
        assert!(!iban_checksum_ok(b"GB82WEST12345698765423"));
        assert!(!iban_checksum_ok(b"GB8"));
    }

    #[test]
    fn ipv4_table() {
        check_table(
            &IPV4,
            &["192.168.1.1", "10.0.0.255", "8.8.8.8", "255.255.255.255", "0.0.0.0"],
            &[
                "256.1.1.1",
                "1.2.3",
                "1.2.3.4.5",
                "v1.2.3.4",
                "192.168.001.001",
                "3.14159",
                "1.2.3.4567",
                "999.999.999.999",
            ],
        );
        let found = super::super::test_support::find(&IPV4, "host 10.0.0.1. Done");
        assert_eq!(found, vec![(5, 8)]);
    }

    #[test]
    fn ipv6_table() {
        check_table(
            &IPV6,
            &[
                "2001:db8::1",
                "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                "fe80::1ff:fe23:4567:890a",
                "::1",
                "::ffff:192.0.2.128",
            ],
            &[
                "std::io",
                "Vec::new",
                "12:30:45",
                "00:1A:2B:3C:4D:5E",
                "a::b",
                "1:2:3",
                "2001:db8:::1",
                "::",
            ],
        );
        let found = super::super::test_support::find(&IPV6, "addr fe80::1: up");
        assert_eq!(found, vec![(5, 7)]);
    }
}

//! Property tests of the configuration loader, the stable twin of the `config` fuzz target:
//! `Config::from_toml` returns a config or a typed error, and never panics, for arbitrary text,
//! for the example configs with lines dropped, repeated or swapped, and for the example configs
//! with any value replaced by a TOML value of any type (huge numbers, odd strings, `${…}`).

use std::path::Path;

use prism_server::Config;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Every variable set, so the examples load: hex digests for `*_SHA256`, an address for
/// `*_LISTEN`, URLs for `*_URL`, a plain value otherwise; `UNSET` stays unset.
fn env(name: &str) -> Option<String> {
    if name == "UNSET" {
        None
    } else if name.ends_with("SHA256") {
        Some("ab".repeat(32))
    } else if name.ends_with("LISTEN") {
        Some("127.0.0.1:8080".into())
    } else if name == "REDIS_URL" {
        Some("redis://127.0.0.1:6379".into())
    } else if name.ends_with("DATABASE_URL") {
        Some("postgres://prism@127.0.0.1/prism".into())
    } else if name.ends_with("URL") {
        Some("http://127.0.0.1:9".into())
    } else {
        Some(format!("value-of-{name}"))
    }
}

fn examples() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ["docs/examples/prism.toml", "deploy/prism.toml"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .collect()
}

fn load(text: &str) {
    // Either outcome is fine; a panic fails the test.
    let _ = Config::from_toml(text, &env);
}

/// Scalars of every TOML type, with the values validation has to range-check.
fn scalar() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        select(vec![0i64, -1, 1, 65536, i64::MAX, i64::MIN]).prop_map(toml::Value::Integer),
        select(vec![0.0, -1.0, 0.5, 1e308, f64::INFINITY, f64::NAN]).prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        select(vec![
            "",
            "*",
            "openai",
            "anthropic",
            "bedrock",
            "gemini",
            "vertex",
            "${UNSET}",
            "${X:-d}",
            "$${",
            "${",
            "127.0.0.1:0",
            "http://127.0.0.1:9",
            "block",
            "monitor",
            "1s",
            "-5m",
            "redis://127.0.0.1:1",
            "memory"
        ])
        .prop_map(|s| toml::Value::String(s.to_owned())),
        "\\PC{0,12}".prop_map(toml::Value::String),
    ]
}

fn value() -> impl Strategy<Value = toml::Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| toml::Value::Table(kv.into_iter().collect())),
        ]
    })
}

/// Replaces the value the path `steps` leads to (each step picks a key or element), or adds
/// `key` to the table the walk ends in.
fn replace(value: &mut toml::Value, steps: &[Index], key: &str, with: toml::Value) {
    let Some((step, rest)) = steps.split_first() else { return insert(value, key, with) };
    let child = match value {
        toml::Value::Table(t) if !t.is_empty() => {
            let n = step.index(t.len());
            t.iter_mut().nth(n).map(|(_, v)| v)
        }
        toml::Value::Array(a) if !a.is_empty() => {
            let n = step.index(a.len());
            a.get_mut(n)
        }
        _ => None,
    };
    match child {
        Some(child) if child.is_table() || child.is_array() => replace(child, rest, key, with),
        Some(child) => *child = with,
        None => insert(value, key, with),
    }
}

fn insert(value: &mut toml::Value, key: &str, with: toml::Value) {
    match value {
        toml::Value::Table(t) => {
            t.insert(key.to_owned(), with);
        }
        other => *other = with,
    }
}

/// Line-level edits of a file: drop, repeat, or swap with another line.
#[derive(Debug, Clone)]
enum LineEdit {
    Drop(Index),
    Repeat(Index),
    Swap(Index, Index),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        any::<Index>().prop_map(LineEdit::Drop),
        any::<Index>().prop_map(LineEdit::Repeat),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
    ]
}

/// TOML-ish fragments, so arbitrary text reaches past the parser now and then.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "[[keys]]\n",
            "[[models]]\n",
            "[providers.p]\n",
            "[cache]\n",
            "[limits]\n",
            "[guardrails]\n",
            "[telemetry]\n",
            "[server]\n",
            "name = \"n\"\n",
            "key = \"k\"\n",
            "models = [\"*\"]\n",
            "kind = \"openai\"\n",
            "provider = \"p\"\n",
            "deployments = [{ provider = \"p\", model = \"x\" }]\n",
            "listen = \"127.0.0.1:0\"\n",
            "=",
            "\"",
            "{",
            "}",
            "[",
            "]",
            ",",
            "\n",
            "${"
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        load(&text);
    }

    #[test]
    fn toml_shaped_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        load(&parts.concat());
    }

    #[test]
    fn example_configs_with_lines_edited_never_panic(
        which in any::<Index>(),
        edits in prop::collection::vec(line_edit(), 1..6),
    ) {
        let examples = examples();
        prop_assume!(!examples.is_empty());
        let text = &examples[which.index(examples.len())];
        let mut lines: Vec<&str> = text.lines().collect();
        for edit in &edits {
            if lines.is_empty() {
                break;
            }
            match *edit {
                LineEdit::Drop(i) => {
                    lines.remove(i.index(lines.len()));
                }
                LineEdit::Repeat(i) => {
                    let at = i.index(lines.len());
                    lines.insert(at, lines[at]);
                }
                LineEdit::Swap(a, b) => {
                    let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                    lines.swap(a, b);
                }
            }
        }
        load(&lines.join("\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn example_configs_with_any_value_replaced_never_panic(
        which in any::<Index>(),
        steps in prop::collection::vec(any::<Index>(), 0..5),
        key in prop_oneof!["[a-z_]{1,12}", select(vec!["kind", "models", "limits", "mode", "ttl",
            "max_entries", "retries", "timeout", "weight", "region"]).prop_map(str::to_owned)],
        with in value(),
    ) {
        let examples = examples();
        prop_assume!(!examples.is_empty());
        let text = &examples[which.index(examples.len())];
        let Ok(mut parsed) = text.parse::<toml::Value>() else {
            return Err(TestCaseError::fail("an example config is not TOML"));
        };
        replace(&mut parsed, &steps, &key, with);
        if let Ok(text) = toml::to_string(&parsed) {
            load(&text);
        }
    }
}

/// The examples themselves load with every variable set, so the edits above start from valid
/// configs and reach validation rather than stopping in the parser.
#[test]
fn the_example_configs_load() {
    let examples = examples();
    assert_eq!(examples.len(), 2);
    for text in &examples {
        if let Err(e) = Config::from_toml(text, &env) {
            panic!("an example config does not load: {e}");
        }
    }
}

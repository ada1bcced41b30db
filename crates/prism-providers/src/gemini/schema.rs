//! JSON Schema → the OpenAPI 3.0 subset Gemini accepts in `functionDeclarations[].parameters` and
//! `generationConfig.responseSchema`.
//!
//! Rules, applied recursively (depth-limited to [`MAX_DEPTH`]):
//! - kept: `type` (upper-cased), `title`, `description`, `nullable`, `enum` (strings only),
//!   `properties`, `required` (only names that exist in `properties`), `items`, `anyOf`,
//!   `minItems`/`maxItems`, `minLength`/`maxLength`, `minProperties`/`maxProperties`, `pattern`,
//!   `minimum`/`maximum`, `default`, `example`, `propertyOrdering`;
//! - `$ref` to `#/$defs/…`, `#/definitions/…` (any local JSON pointer) is inlined, with keywords
//!   next to the `$ref` winning; a reference back into its own expansion (a recursive schema) is
//!   cut and replaced by `{"type":"OBJECT"}`;
//! - `type: ["x", "null"]` → `type: X, nullable: true`; several non-null types → `anyOf`;
//! - `anyOf`/`oneOf`: `{"type":"null"}` members become `nullable: true`, a single remaining
//!   member is merged into the parent, several stay as `anyOf` (`oneOf`'s exclusivity is lost);
//! - `allOf`: members are merged (properties and required unioned, first value wins otherwise);
//! - `const: v` → `enum: [v]`; enums of non-strings are dropped and listed in the description
//!   instead; `null` in an enum → `nullable: true`;
//! - `exclusiveMinimum`/`exclusiveMaximum` (numeric form) → `minimum`/`maximum` (the bound
//!   becomes inclusive); `examples[0]` → `example`;
//! - `format` is kept only where Gemini knows it (`enum`/`date-time` on strings, `int32`/`int64`,
//!   `float`/`double`);
//! - everything else is dropped: `$schema`, `$id`, `$comment`, `$defs`, `definitions`,
//!   `additionalProperties`, `patternProperties`, `unevaluatedProperties`, `not`,
//!   `if`/`then`/`else`, `dependent*`, `prefixItems`, `readOnly`, `writeOnly`, `deprecated`, …

use serde_json::{Map, Value};

/// Nesting depth beyond which subschemas are replaced by `{}`: bounds work and recursion on
/// hostile input.
pub(crate) const MAX_DEPTH: usize = 32;

/// Converts `schema` to Gemini's schema dialect.
pub(crate) fn sanitize(schema: &Value) -> Value {
    let mut cx = Cx { refs: Vec::new(), nodes: 0 };
    Value::Object(convert(schema, schema, 0, &mut cx))
}

/// Subschemas converted per call at most: inlining `$ref`s can blow a small schema up
/// exponentially, so the work is bounded. Beyond it subschemas become `{}`.
pub(crate) const MAX_NODES: usize = 10_000;

/// Conversion state: the `$ref`s being expanded (to cut recursion) and the work done.
struct Cx {
    refs: Vec<String>,
    nodes: usize,
}

/// Whether a converted schema is an object schema without properties. Gemini rejects those as
/// function parameters, so the caller omits `parameters` instead.
pub(crate) fn is_empty_object(schema: &Value) -> bool {
    let Some(map) = schema.as_object() else { return true };
    let no_props = map.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
    let object_or_untyped = map.get("type").and_then(Value::as_str).is_none_or(|t| t == "OBJECT");
    no_props && object_or_untyped && !map.contains_key("anyOf")
}

fn convert(root: &Value, schema: &Value, depth: usize, cx: &mut Cx) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(s) = schema.as_object() else { return out };
    if depth > MAX_DEPTH || cx.nodes >= MAX_NODES {
        return out;
    }
    cx.nodes += 1;

    if let Some(reference) = s.get("$ref").and_then(Value::as_str) {
        let mut target = if cx.refs.iter().any(|r| r == reference) {
            object_type()
        } else {
            match reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer)) {
                Some(resolved) => {
                    cx.refs.push(reference.to_owned());
                    let converted = convert(root, resolved, depth + 1, cx);
                    cx.refs.pop();
                    converted
                }
                None => Map::new(),
            }
        };
        let mut siblings = s.clone();
        siblings.remove("$ref");
        let siblings = convert(root, &Value::Object(siblings), depth, cx);
        merge(&mut target, siblings, true);
        return target;
    }

    if let Some(Value::Array(members)) = s.get("allOf") {
        let mut merged = s.clone();
        merged.remove("allOf");
        let mut out = convert(root, &Value::Object(merged), depth, cx);
        for member in members {
            let member = convert(root, member, depth + 1, cx);
            merge(&mut out, member, false);
        }
        return out;
    }

    let mut nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    let mut any_of: Vec<Value> = Vec::new();

    match s.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.to_ascii_uppercase()));
        }
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= names.contains(&"null");
            let non_null: Vec<&str> = names.into_iter().filter(|t| *t != "null").collect();
            match non_null.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), Value::String(one.to_ascii_uppercase()));
                }
                many => {
                    any_of.extend(many.iter().map(|t| Value::Object(typed(t))));
                }
            }
        }
        _ => {}
    }

    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(members)) = s.get(key) else { continue };
        for member in members {
            if member.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
                continue;
            }
            any_of.push(Value::Object(convert(root, member, depth + 1, cx)));
        }
    }

    let mut enum_values: Option<Vec<Value>> = match (s.get("enum"), s.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (_, Some(value)) => Some(vec![value.clone()]),
        _ => None,
    };
    if let Some(values) = enum_values.as_mut()
        && values.iter().any(Value::is_null)
    {
        nullable = true;
        values.retain(|v| !v.is_null());
    }

    let mut description = s.get("description").and_then(Value::as_str).map(str::to_owned);
    if let Some(values) = enum_values {
        if values.iter().all(Value::is_string) {
            if !values.is_empty() {
                out.entry("type").or_insert_with(|| Value::String("STRING".into()));
                out.insert("enum".into(), Value::Array(values));
            }
        } else {
            let listed: Vec<String> = values.iter().map(Value::to_string).collect();
            let note = format!("Allowed values: {}.", listed.join(", "));
            description = Some(match description {
                Some(d) if !d.is_empty() => format!("{d} {note}"),
                _ => note,
            });
        }
    }
    if let Some(d) = description {
        out.insert("description".into(), Value::String(d));
    }

    for key in [
        "title",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "propertyOrdering",
    ] {
        if let Some(v) = s.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for (exclusive, inclusive) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")]
    {
        if let Some(v @ Value::Number(_)) = s.get(exclusive) {
            out.entry(inclusive).or_insert_with(|| v.clone());
        }
    }
    if let Some(first) = s.get("examples").and_then(Value::as_array).and_then(|e| e.first()) {
        out.entry("example").or_insert_with(|| first.clone());
    }

    if let Some(Value::Object(props)) = s.get("properties") {
        let converted: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), Value::Object(convert(root, v, depth + 1, cx))))
            .collect();
        if let Some(Value::Array(required)) = s.get("required") {
            let required: Vec<Value> = required
                .iter()
                .filter(|r| r.as_str().is_some_and(|r| converted.contains_key(r)))
                .cloned()
                .collect();
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            }
        }
        out.entry("type").or_insert_with(|| Value::String("OBJECT".into()));
        out.insert("properties".into(), Value::Object(converted));
    }

    match s.get("items") {
        Some(items @ Value::Object(_)) => {
            out.insert("items".into(), Value::Object(convert(root, items, depth + 1, cx)));
            out.entry("type").or_insert_with(|| Value::String("ARRAY".into()));
        }
        Some(Value::Array(tuple)) if !tuple.is_empty() => {
            let members: Vec<Value> =
                tuple.iter().map(|m| Value::Object(convert(root, m, depth + 1, cx))).collect();
            let items = if members.len() == 1 {
                members.into_iter().next().unwrap_or_default()
            } else {
                let mut m = Map::new();
                m.insert("anyOf".into(), Value::Array(members));
                Value::Object(m)
            };
            out.insert("items".into(), items);
            out.entry("type").or_insert_with(|| Value::String("ARRAY".into()));
        }
        _ => {}
    }

    if let Some(format) = s.get("format").and_then(Value::as_str) {
        let known = match out.get("type").and_then(Value::as_str) {
            Some("STRING") => matches!(format, "enum" | "date-time"),
            Some("INTEGER") => matches!(format, "int32" | "int64"),
            Some("NUMBER") => matches!(format, "float" | "double"),
            _ => false,
        };
        if known {
            out.insert("format".into(), Value::String(format.to_owned()));
        }
    }

    match any_of.len() {
        0 => {}
        1 => {
            if let Some(Value::Object(only)) = any_of.pop() {
                merge(&mut out, only, false);
            }
        }
        _ => {
            out.insert("anyOf".into(), Value::Array(any_of));
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    out
}

/// Merges `other` into `base`: properties and required are unioned; for any other key the
/// existing value stays unless `other_wins`.
fn merge(base: &mut Map<String, Value>, other: Map<String, Value>, other_wins: bool) {
    for (key, value) in other {
        match (key.as_str(), base.get_mut(&key), value) {
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => {
                for (name, prop) in more {
                    if other_wins || !existing.contains_key(&name) {
                        existing.insert(name, prop);
                    }
                }
            }
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                for name in more {
                    if !existing.contains(&name) {
                        existing.push(name);
                    }
                }
            }
            (_, Some(existing), value) => {
                if other_wins {
                    *existing = value;
                }
            }
            (_, None, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn typed(t: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(t.to_ascii_uppercase()));
    m
}

fn object_type() -> Map<String, Value> {
    typed("object")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(input: Value, expected: Value) {
        assert_eq!(sanitize(&input), expected, "input: {input}");
    }

    #[test]
    fn plain_object_schema_is_upper_cased_and_stripped() {
        check(
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "city": {"type": "string", "description": "City name", "minLength": 1},
                    "days": {"type": "integer", "minimum": 1, "maximum": 10, "format": "int32"}
                },
                "required": ["city", "ghost"],
                "strict": true
            }),
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "City name", "minLength": 1},
                    "days": {"type": "INTEGER", "minimum": 1, "maximum": 10, "format": "int32"}
                },
                "required": ["city"]
            }),
        );
    }

    #[test]
    fn nullable_type_arrays_and_any_of_null() {
        check(json!({"type": ["string", "null"]}), json!({"type": "STRING", "nullable": true}));
        check(
            json!({"type": ["string", "integer"]}),
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}),
        );
        check(
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"}),
            json!({"type": "INTEGER", "description": "n", "nullable": true}),
        );
        check(
            json!({"oneOf": [{"type": "integer"}, {"type": "string", "format": "email"}]}),
            json!({"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
        );
    }

    #[test]
    fn const_and_enums() {
        check(json!({"const": "metric"}), json!({"type": "STRING", "enum": ["metric"]}));
        check(
            json!({"type": "string", "enum": ["a", "b", null]}),
            json!({"type": "STRING", "enum": ["a", "b"], "nullable": true}),
        );
        check(
            json!({"type": "integer", "enum": [1, 2], "description": "Level."}),
            json!({"type": "INTEGER", "description": "Level. Allowed values: 1, 2."}),
        );
    }

    #[test]
    fn refs_are_inlined_and_recursion_is_cut() {
        check(
            json!({
                "type": "object",
                "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
                "properties": {"at": {"$ref": "#/$defs/Point", "description": "where"}}
            }),
            json!({
                "type": "OBJECT",
                "properties": {"at": {
                    "type": "OBJECT", "description": "where", "properties": {"x": {"type": "NUMBER"}}
                }}
            }),
        );
        check(
            json!({
                "definitions": {"Node": {"type": "object", "properties": {
                    "next": {"$ref": "#/definitions/Node"}
                }}},
                "$ref": "#/definitions/Node"
            }),
            json!({"type": "OBJECT", "properties": {"next": {"type": "OBJECT"}}}),
        );
        check(json!({"$ref": "#/nowhere"}), json!({}));
    }

    #[test]
    fn all_of_exclusive_bounds_items_and_formats() {
        check(
            json!({"allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}
            ]}),
            json!({
                "type": "OBJECT",
                "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
                "required": ["a", "b"]
            }),
        );
        check(
            json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": true, "examples": [3]}),
            json!({"type": "NUMBER", "minimum": 0, "example": 3}),
        );
        check(
            json!({"items": {"type": "string", "format": "date-time"}, "prefixItems": [{}], "minItems": 1}),
            json!({"type": "ARRAY", "items": {"type": "STRING", "format": "date-time"}, "minItems": 1}),
        );
        check(json!({"type": "string", "format": "uri"}), json!({"type": "STRING"}));
        check(json!(true), json!({}));
    }

    #[test]
    fn deep_nesting_and_ref_blowup_are_bounded() {
        let mut schema = json!({"type": "string"});
        for _ in 0..200 {
            schema = json!({"type": "array", "items": schema});
        }
        let out = sanitize(&schema);
        let mut depth = 0;
        let mut cur = &out;
        while let Some(next) = cur.get("items") {
            cur = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH + 1);
        assert_eq!(cur, &json!({}));

        // Each definition references the next twice: 2^30 subschemas if expanded naively.
        let mut defs = serde_json::Map::new();
        for i in 0..30 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"type": "object", "properties": {
                    "l": {"$ref": next}, "r": {"$ref": next}
                }}),
            );
        }
        defs.insert("d30".into(), json!({"type": "string"}));
        let schema = json!({"$defs": defs, "$ref": "#/$defs/d0"});
        let out = sanitize(&schema);
        fn count(v: &Value) -> usize {
            1 + v
                .get("properties")
                .and_then(Value::as_object)
                .map_or(0, |p| p.values().map(count).sum())
        }
        assert!(count(&out) <= MAX_NODES + 1, "{}", count(&out));
    }

    #[test]
    fn empty_object_detection() {
        assert!(is_empty_object(&sanitize(&json!({"type": "object", "properties": {}}))));
        assert!(is_empty_object(&sanitize(&json!({}))));
        assert!(!is_empty_object(&sanitize(&json!({"type": "object", "properties": {"a": {}}}))));
        assert!(!is_empty_object(&sanitize(&json!({"type": "string"}))));
    }
}

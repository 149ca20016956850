//! A structural OpenAPI schema applied to an object the way kube-apiserver applies a CRD's schema, with its messages:
//! unknown fields (what `kubectl` refuses with strict field validation), types, enums, bounds, patterns, lengths and
//! required fields. Only the keywords a structural schema may hold are known; the CRD tests check ours uses no other.

use serde_json::Value;

/// Every violation of `schema` by `value` at `path` (`spec.chatbot`), in the API server's words.
pub fn violations(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, path, &mut out);
    out
}

fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    // The server's words for a value of the wrong type.
    let wrong_type = |expected: &str| {
        let actual = type_name(value);
        format!("{path}: Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\"")
    };
    if value.is_null() {
        if let Some(expected) = schema["type"].as_str().filter(|_| schema["nullable"] != true) {
            out.push(wrong_type(expected));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            out.push(wrong_type("integer or string"));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str() {
        if !has_type(value, expected) {
            out.push(wrong_type(expected));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
            out.push(format!(
                "{path}: Unsupported value: {value}: supported values: {}",
                supported.join(", ")
            ));
        }
    }
    match value {
        Value::Object(map) => {
            for field in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(field) {
                    out.push(format!("{}: Required value", join(path, field)));
                }
            }
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, item) in map {
                let at = join(path, key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(property), _) => check(property, item, &at, out),
                    (None, Value::Object(_)) => check(additional, item, &at, out),
                    _ if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
                    _ => out.push(format!("unknown field \"{at}\"")),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema["minimum"].as_f64().filter(|min| n < *min) {
                out.push(format!(
                    "{path}: Invalid value: {value}: {path} in body should be greater than or equal to {}",
                    number(min)
                ));
            }
            if let Some(max) = schema["maximum"].as_f64().filter(|max| n > *max) {
                out.push(format!(
                    "{path}: Invalid value: {value}: {path} in body should be less than or equal to {}",
                    number(max)
                ));
            }
        }
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = schema["minLength"].as_u64().filter(|min| chars < *min) {
                out.push(format!(
                    "{path}: Invalid value: {value}: {path} in body should be at least {min} chars long"
                ));
            }
            if let Some(max) = schema["maxLength"].as_u64().filter(|max| chars > *max) {
                out.push(format!("{path}: Too long: may not be more than {max} bytes"));
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => out.push(format!(
                        "{path}: Invalid value: {value}: {path} in body should match '{pattern}'"
                    )),
                    Err(e) => out.push(format!("{path}: schema pattern {pattern:?} does not compile: {e}")),
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A bound as kube-apiserver prints it: truncated to an integer (`99.999` is said `99`).
fn number(n: f64) -> String {
    format!("{}", n.trunc() as i64)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                "port": {"type": "integer", "minimum": 1024.0, "maximum": 65535.0},
                "mode": {"type": "string", "enum": ["auto", "none"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "boolean"}}}},
                "quantity": {"x-kubernetes-int-or-string": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "maybe": {"type": "string", "nullable": true},
            }
        })
    }

    #[test]
    fn a_valid_object_has_no_violation() {
        let ok = json!({"name": "bot", "port": 8000, "mode": "auto", "labels": {"a": "b"}, "items": [{"a": true}],
                        "quantity": "1Gi", "free": {"anything": 1}, "maybe": null});
        assert_eq!(violations(&schema(), &ok, "spec"), Vec::<String>::new());
    }

    #[test]
    fn each_violation_is_said_as_the_api_server_says_it() {
        let bad = json!({"port": 80, "mode": "pick", "labels": {"a": 1}, "items": [{"b": 1}], "quantity": 1.5,
                         "maybe": 3, "extra": true});
        assert_eq!(
            violations(&schema(), &bad, "spec"),
            [
                "spec.name: Required value",
                "unknown field \"spec.extra\"",
                "unknown field \"spec.items[0].b\"",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
                "spec.maybe: Invalid value: \"integer\": spec.maybe in body must be of type string: \"integer\"",
                "spec.mode: Unsupported value: \"pick\": supported values: \"auto\", \"none\"",
                "spec.port: Invalid value: 80: spec.port in body should be greater than or equal to 1024",
                "spec.quantity: Invalid value: \"number\": spec.quantity in body must be of type integer or string: \"number\"",
            ]
        );
        let strings = violations(&schema(), &json!({"name": "Bot123"}), "spec");
        assert_eq!(
            strings,
            [
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"Bot123\": spec.name in body should match '^[a-z]+$'",
            ]
        );
        assert_eq!(
            violations(&schema(), &json!({"name": ""}), "spec"),
            [
                "spec.name: Invalid value: \"\": spec.name in body should be at least 1 chars long",
                "spec.name: Invalid value: \"\": spec.name in body should match '^[a-z]+$'",
            ]
        );
    }
}

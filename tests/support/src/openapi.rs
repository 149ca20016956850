//! Validates objects against a CRD's `openAPIV3Schema` the way a cluster would, plus what a cluster does silently:
//! a field the schema does not know is pruned by the API server, so here it is an error (a typo never lands).

use serde_json::Value;

/// The `openAPIV3Schema` of the served version of a CRD given as YAML.
pub fn crd_schema(crd_yaml: &str) -> Value {
    let crd: Value = serde_yaml::from_str(crd_yaml).expect("CRD YAML parses");
    let versions = crd["spec"]["versions"].as_array().expect("CRD has versions");
    let served = versions
        .iter()
        .find(|v| v["storage"].as_bool().unwrap_or(true))
        .expect("a storage version");
    served["schema"]["openAPIV3Schema"].clone()
}

/// Every violation of `schema` by `value`, each prefixed with its JSON path; empty when valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    let mut errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    unknown_fields(schema, value, "", &mut errors);
    errors
}

fn unknown_fields(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in map {
                    // The API server always knows an object's own header, whatever the CRD's schema lists.
                    if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    match props.get(k) {
                        Some(s) => unknown_fields(s, v, &format!("{path}/{k}"), errors),
                        None => errors.push(format!("{path}/{k}: unknown field (the API server would drop it)")),
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for (k, v) in map {
                    unknown_fields(&schema["additionalProperties"], v, &format!("{path}/{k}"), errors);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_fields(&schema["items"], v, &format!("{path}/{i}"), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_type_errors_and_unknown_fields() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}, "m": {"type": "object"}}});
        assert!(validate(&schema, &json!({"a": 1, "m": {"free": 1}})).is_empty());
        let errors = validate(&schema, &json!({"a": "x", "b": 2}));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("/b: unknown field")));
    }
}

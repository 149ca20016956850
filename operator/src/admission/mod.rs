//! What kube-apiserver does to a `ChatbotMonitoring` before anyone reads it — strict decoding, the CRD's defaults,
//! its OpenAPI schema, its CEL rules — done here on a file, with the server's messages, so that `render` and `verify`
//! refuse exactly what `kubectl apply` would refuse instead of rendering something no cluster would accept.

pub mod openapi;

use std::sync::LazyLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::crd::{ChatbotMonitoring, GROUP, VERSION};

/// Why the object is refused: one line per violation, as the API server words it.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{}", .0.join("\n"))]
pub struct Refused(pub Vec<String>);

/// The `openAPIV3Schema` of the served version, from the same types as the CRD in `crds/`.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = serde_json::to_value(ChatbotMonitoring::crd()).expect("the CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
});

/// The resource's schema as the API server holds it.
pub fn schema() -> &'static Value {
    &SCHEMA
}

/// The object as the API server would store it (defaults applied), or everything it would refuse.
pub fn admit(object: &Value) -> Result<ChatbotMonitoring, Refused> {
    let expected = format!("{GROUP}/{VERSION}");
    if object["apiVersion"] != expected.as_str() || object["kind"] != "ChatbotMonitoring" {
        return Err(Refused(vec![format!(
            "not a ChatbotMonitoring: apiVersion {} and kind {}, expected {expected} and ChatbotMonitoring",
            object["apiVersion"], object["kind"]
        )]));
    }
    // As the server: a null where the schema does not allow one is dropped, then the defaults fill the gaps.
    let mut pruned = object.clone();
    drop_nulls(&schema()["properties"]["spec"], &mut pruned["spec"]);
    let defaulted = kube_cel::apply_defaults(schema(), &pruned);
    let mut errors = Vec::new();
    for key in defaulted.as_object().into_iter().flatten().map(|(k, _)| k) {
        // The header is the API server's own; status is the operator's and is not read from a file.
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            errors.push(format!("unknown field \"{key}\""));
        }
    }
    errors.extend(openapi::violations(
        &schema()["properties"]["spec"],
        &defaulted["spec"],
        "spec",
    ));
    // The server evaluates CEL only on an object its schema accepts; so does this (rules would fail on wrong types).
    if errors.is_empty() {
        if let Err(cel) = kube_cel::validate(schema(), &defaulted, None) {
            errors.extend(cel.iter().map(|e| cel_message(&defaulted, e)));
        }
    }
    if !errors.is_empty() {
        return Err(Refused(errors));
    }
    serde_json::from_value(defaulted).map_err(|e| Refused(vec![e.to_string()]))
}

/// Removes the object fields whose value is null and whose schema is not `nullable` (kube-apiserver prunes them
/// before defaulting: `replicas: null`, or an empty `podLabels:` in YAML, is as if absent).
fn drop_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let field = |key: &str| {
                schema["properties"].get(key).or_else(|| {
                    schema["additionalProperties"]
                        .as_object()
                        .map(|_| &schema["additionalProperties"])
                })
            };
            map.retain(|key, v| !(v.is_null() && field(key).is_some_and(|s| s["nullable"] != true)));
            for (key, v) in map.iter_mut() {
                if let Some(s) = field(key) {
                    drop_nulls(s, v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| drop_nulls(&schema["items"], item)),
        _ => {}
    }
}

/// A failed rule as kube-apiserver (1.36) reports it: the field, the reason's words, and for an invalid scalar the
/// value the rule was evaluated on (`self`; an object's is left out).
fn cel_message(object: &Value, error: &kube_cel::ValidationError) -> String {
    let field = error.field_path.trim_start_matches('.');
    let message = &error.message;
    match error.reason.as_deref() {
        Some("FieldValueForbidden") => format!("{field}: Forbidden: {message}"),
        Some("FieldValueRequired") => format!("{field}: Required value: {message}"),
        Some("FieldValueDuplicate") => format!("{field}: Duplicate value: {message}"),
        _ => {
            // `self` is the node holding the rule: the reported field less the rule's own fieldPath.
            let own = rule_field_path(schema(), &error.rule).unwrap_or_default();
            let node = field.strip_suffix(own).unwrap_or(field);
            // As the server: a scalar's value is shown, an object's or a list's is not.
            match at_path(object, node) {
                Some(scalar) if !scalar.is_object() && !scalar.is_array() => {
                    format!("{field}: Invalid value: {scalar}: {message}")
                }
                _ => format!("{field}: Invalid value: {message}"),
            }
        }
    }
}

/// The value at a field path as the API server writes it: `spec.receivers[2].name`.
fn at_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(object, |v, segment| {
        let mut parts = segment.split('[');
        let v = v.get(parts.next()?)?;
        parts.try_fold(v, |v, index| v.get(index.strip_suffix(']')?.parse::<usize>().ok()?))
    })
}

/// The `fieldPath` of `rule` in the schema (`.scrapeTimeout`), if it has one.
fn rule_field_path<'a>(node: &'a Value, rule: &str) -> Option<&'a str> {
    let own = node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["rule"] == rule);
    if let Some(own) = own {
        return own["fieldPath"].as_str();
    }
    let properties = node["properties"].as_object().into_iter().flat_map(|p| p.values());
    properties
        .chain([&node["items"], &node["additionalProperties"]])
        .filter(|child| child.is_object())
        .find_map(|child| rule_field_path(child, rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cbm(spec: Value) -> Value {
        json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
               "metadata": {"name": "bot"}, "spec": spec})
    }

    #[test]
    fn an_empty_spec_gets_the_crd_defaults() {
        let admitted = admit(&cbm(json!({}))).unwrap();
        assert_eq!(admitted.spec.chatbot.port, 8000);
        assert_eq!(admitted.spec.monitoring.interval, "10s");
    }

    #[test]
    fn nulls_the_schema_does_not_allow_are_dropped_as_the_server_drops_them() {
        let admitted = admit(&cbm(json!({"chatbot": {"replicas": null, "podLabels": null}}))).unwrap();
        assert_eq!(admitted.spec.chatbot.replicas, 1, "defaulted");
        assert!(admitted.spec.chatbot.pod_labels.is_empty());
    }

    #[test]
    fn another_kind_is_refused() {
        let mut deployment = cbm(json!({}));
        deployment["kind"] = json!("Deployment");
        let refused = admit(&deployment).unwrap_err();
        assert!(refused.0[0].starts_with("not a ChatbotMonitoring"), "{refused}");
    }

    #[test]
    fn rules_are_reported_at_their_field_with_their_reason() {
        assert_eq!(
            admit(&cbm(json!({"chatbot": {"replicas": 2}}))).unwrap_err().0,
            [
                "spec.chatbot.replicas: Forbidden: SQLite lives inside each pod: set database.type to postgres to run \
              more than one replica"
            ]
        );
        assert_eq!(
            admit(&cbm(json!({"monitoring": {"interval": "5s", "scrapeTimeout": "10s"}})))
                .unwrap_err()
                .0,
            [
                "spec.monitoring.scrapeTimeout: Invalid value: monitoring.scrapeTimeout must not be longer \
              than monitoring.interval"
            ]
        );
        assert_eq!(
            admit(&cbm(json!({"alerts": {"runbookBaseUrl": "wiki"}})))
                .unwrap_err()
                .0,
            ["spec.alerts.runbookBaseUrl: Invalid value: \"wiki\": alerts.runbookBaseUrl must be an http(s) URL"]
        );
    }

    #[test]
    fn schema_errors_come_before_rules_and_all_are_reported() {
        let refused = admit(&cbm(
            json!({"chatbot": {"replicas": 2, "port": 80, "replica": 1}, "extra": 1}),
        ));
        assert_eq!(
            refused.unwrap_err().0,
            [
                "spec.chatbot.port: Invalid value: 80: spec.chatbot.port in body should be greater than or equal to 1024",
                "unknown field \"spec.chatbot.replica\"",
                "unknown field \"spec.extra\"",
            ]
        );
    }
}

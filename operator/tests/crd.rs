//! The CRD: `crds/` is current, its schema is structural and applies the guide's defaults, and bad resources are
//! refused with their message by the OpenAPI constraints and the CEL rules a cluster would evaluate.

use chatbot_operator::crd::{ChatbotMonitoring, GROUP, VERSION, crd_yaml};
use kube::Resource;
use serde_json::{Value, json};

const CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crds/monitoring.chatbot-sav.io_chatbotmonitorings.yaml"
);

fn schema() -> Value {
    testsupport::openapi::crd_schema(&crd_yaml())
}

fn example(name: &str) -> Value {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every error the API server would answer for `object`, as the operator's CLI reports them (`admission`, which the
/// real-control-plane tier holds to the server's own words).
fn admission_errors(object: &Value) -> Vec<String> {
    match chatbot_operator::admission::admit(object) {
        Ok(_) => Vec::new(),
        Err(refused) => refused.0,
    }
}

fn with_spec(spec: Value) -> Value {
    json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1",
        "kind": "ChatbotMonitoring",
        "metadata": {"name": "bot", "namespace": "default"},
        "spec": spec,
    })
}

#[test]
fn crds_directory_is_generated_from_the_types() {
    let committed = std::fs::read_to_string(CRD_FILE).expect("crds/ holds the CRD");
    assert!(
        committed == crd_yaml(),
        "crds/ is stale: run `cargo run -p chatbot-operator -- crd > crds/monitoring.chatbot-sav.io_chatbotmonitorings.yaml`"
    );
}

#[test]
fn resource_shape_matches_the_issue() {
    let crd: Value = serde_yaml::from_str(&crd_yaml()).unwrap();
    assert_eq!(crd["metadata"]["name"], "chatbotmonitorings.monitoring.chatbot-sav.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["cbm"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Ready", "Replicas", "Scraped", "Alerts", "Dashboards", "Reason", "Age"]
    );
    // Only the reason is left to `kubectl get -o wide`.
    for column in version["additionalPrinterColumns"].as_array().unwrap() {
        let wide = column["name"] == "Reason";
        assert_eq!(column["priority"].as_i64().unwrap_or(0) == 1, wide, "{column}");
        assert!(column["name"] == "Age" || column["description"].is_string(), "{column}");
    }
}

/// `kubectl explain` has something to say at every level: the kind, and every field of spec and status.
#[test]
fn every_field_is_described() {
    fn undescribed(node: &Value, path: &str, out: &mut Vec<String>) {
        if node["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
            out.push(path.to_owned());
        }
        for (name, child) in node["properties"].as_object().into_iter().flatten() {
            // The standard object header is described by Kubernetes itself.
            if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            undescribed(child, &format!("{path}.{name}"), out);
        }
        if node["items"]["properties"].is_object() {
            for (name, child) in node["items"]["properties"].as_object().unwrap() {
                undescribed(child, &format!("{path}[].{name}"), out);
            }
        }
    }
    let schema = schema();
    assert!(
        !schema["description"].as_str().unwrap().contains("Auto-generated"),
        "{}",
        schema["description"]
    );
    let mut missing = Vec::new();
    undescribed(&schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "{} fields without a description: {missing:#?}",
        missing.len()
    );
}

#[test]
fn every_rule_compiles() {
    let compiled = kube_cel::compile_schema(&schema());
    assert!(!compiled.has_errors(), "{:?}", compiled.compilation_errors());
}

#[test]
fn defaults_are_the_monitoring_guides() {
    let defaulted = kube_cel::apply_defaults(&schema(), &example("minimal.yaml"));
    let spec = &defaulted["spec"];
    assert_eq!(spec["chatbot"]["replicas"], 1);
    assert_eq!(spec["chatbot"]["port"], 8000);
    assert_eq!(spec["chatbot"]["model"]["backend"], "builtin");
    assert_eq!(spec["chatbot"]["database"]["type"], "sqlite");
    assert_eq!(spec["monitoring"]["enabled"], true);
    assert_eq!(spec["monitoring"]["interval"], "10s");
    assert_eq!(spec["monitoring"]["scrapeTimeout"], "5s");
    assert_eq!(
        spec["alerts"]["errorRate"],
        json!({"threshold": 0.1, "for": "2m", "severity": "critical"})
    );
    assert_eq!(
        spec["alerts"]["latency"],
        json!({"threshold": 2.0, "for": "2m", "severity": "warning"})
    );
    assert_eq!(
        spec["alerts"]["memory"],
        json!({"limitPercent": 90.0, "threshold": 524288000.0, "for": "5m", "severity": "warning"})
    );
    assert_eq!(spec["dashboards"]["labels"], json!({"grafana_dashboard": "1"}));
}

#[test]
fn the_examples_are_accepted() {
    for name in ["minimal.yaml", "full.yaml"] {
        let errors = admission_errors(&example(name));
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn bad_resources_are_refused_with_a_clear_message() {
    for (spec, refusal) in testsupport::invalid::invalid_specs() {
        let errors = admission_errors(&with_spec(spec.clone()));
        assert!(
            errors.iter().any(|e| refusal.said_by(e)),
            "{spec} should be refused with {refusal:?}, got {errors:?}"
        );
    }
}

#[test]
fn the_group_and_version_constants_are_the_kinds() {
    assert_eq!(ChatbotMonitoring::group(&()), GROUP);
    assert_eq!(ChatbotMonitoring::version(&()), VERSION);
}

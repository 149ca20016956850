//! A CRD's `openAPIV3Schema`, to hold objects to it with the operator's `admission::openapi` (the API server's
//! rules and words).

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

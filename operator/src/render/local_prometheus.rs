//! A plain Prometheus configuration equivalent to what the Prometheus Operator generates from the ServiceMonitor
//! and PrometheusRule, for a chatbot reached at a fixed address outside Kubernetes: the no-cluster demo and the
//! live tests run a real Prometheus on exactly the rules and target labels a cluster would have.

use serde_json::{Value, json};

use super::Desired;
use crate::prometheus_operator::PrometheusRule;

/// File name of the rules next to `prometheus.yml`.
pub const RULES_FILE: &str = "rules.yml";

/// `prometheus.yml` scraping `target` with the ServiceMonitor's settings and the target labels the Prometheus
/// Operator sets (`job` = Service name, `namespace`, `service`, `endpoint`, `pod`, `container`), so every rule and
/// dashboard query matches as in a cluster. `interval` overrides the ServiceMonitor's (tests scrape every second).
pub fn config(desired: &Desired, target: &str, interval: Option<&str>) -> Value {
    let name = desired.service.metadata.name.clone().unwrap_or_default();
    let namespace = desired.service.metadata.namespace.clone().unwrap_or_default();
    let endpoint = desired
        .service_monitor
        .as_ref()
        .and_then(|sm| sm.spec.endpoints.first().cloned());
    let scrape_interval = interval
        .map(str::to_owned)
        .or_else(|| endpoint.as_ref().map(|e| e.interval.clone()))
        .unwrap_or_else(|| "10s".into());
    let scrape_timeout = match (interval, &endpoint) {
        (Some(i), _) => i.to_owned(),
        (None, Some(e)) => e.scrape_timeout.clone(),
        (None, None) => "5s".into(),
    };
    let mut config = json!({
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{
            "job_name": format!("serviceMonitor/{namespace}/{name}/0"),
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_timeout,
            "metrics_path": endpoint.as_ref().map_or("/metrics", |e| e.path.as_str()),
            "scheme": endpoint.as_ref().map_or("http", |e| e.scheme.as_str()),
            "static_configs": [{
                "targets": [target],
                "labels": {
                    "job": name,
                    "namespace": namespace,
                    "service": name,
                    "endpoint": super::METRICS_PORT_NAME,
                    "pod": format!("{name}-local"),
                    "container": "chatbot",
                },
            }],
        }],
    });
    if desired.prometheus_rule.is_some() {
        config["rule_files"] = json!([RULES_FILE]);
    }
    config
}

/// The rule file Prometheus loads: the PrometheusRule's groups.
pub fn rules(rule: &PrometheusRule) -> Value {
    json!({"groups": rule.spec.groups})
}

/// Writes `prometheus.yml` (and `rules.yml`) into `dir`.
pub fn write(dir: &std::path::Path, desired: &Desired, target: &str, interval: Option<&str>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let yaml = |v: &Value| serde_yaml::to_string(v).expect("YAML serializes");
    std::fs::write(dir.join("prometheus.yml"), yaml(&config(desired, target, interval)))?;
    if let Some(rule) = &desired.prometheus_rule {
        std::fs::write(dir.join(RULES_FILE), yaml(&rules(rule)))?;
    }
    Ok(())
}

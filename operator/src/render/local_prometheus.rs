//! A plain Prometheus configuration equivalent to what the Prometheus Operator generates from the ServiceMonitor
//! and PrometheusRule, for a chatbot reached at a fixed address outside Kubernetes: the no-cluster demo and the
//! live tests run a real Prometheus on exactly the rules and target labels a cluster would have, sending its alerts
//! to an Alertmanager on the routing the resource's AlertmanagerConfig gives a cluster's.

use serde_json::{Value, json};

use super::Desired;
use super::local_alertmanager::{self, Integrations, SecretValues};
use crate::prometheus_operator::{PrometheusRule, RelabelConfig};

/// File name of the rules next to `prometheus.yml`.
pub const RULES_FILE: &str = "rules.yml";

/// `prometheus.yml` scraping `targets` (host:port; several as several pods of the chatbot) with the ServiceMonitor's
/// settings and the target labels the Prometheus Operator sets (`job` = Service name,
/// `namespace`, `service`, `endpoint`, `pod`, `container`), so every rule and dashboard query matches as in a
/// cluster. `interval` overrides the ServiceMonitor's (tests scrape every second). Alerts go to the Alertmanager at
/// `alertmanager` (host:port), if any.
pub fn config(desired: &Desired, targets: &[String], interval: Option<&str>, alertmanager: Option<&str>) -> Value {
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
            "metric_relabel_configs": endpoint.as_ref().map_or(Vec::new(), |e| {
                e.metric_relabelings.iter().map(relabel_config).collect()
            }),
            "static_configs": static_configs(targets, &name, &namespace),
        }],
    });
    if desired.prometheus_rule.is_some() {
        config["rule_files"] = json!([RULES_FILE]);
    }
    if let Some(address) = alertmanager {
        config["alerting"] = local_alertmanager::prometheus_alerting(address);
    }
    config
}

/// One static configuration per target, each a pod of its own: `<name>-local`, or `<name>-local-<i>` for several.
fn static_configs(targets: &[String], name: &str, namespace: &str) -> Vec<Value> {
    let several = targets.len() > 1;
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let pod = if several {
                format!("{name}-local-{i}")
            } else {
                format!("{name}-local")
            };
            json!({
                "targets": [target],
                "labels": {
                    "job": name,
                    "namespace": namespace,
                    "service": name,
                    "endpoint": super::METRICS_PORT_NAME,
                    "pod": pod,
                    "container": "chatbot",
                },
            })
        })
        .collect()
}

/// A ServiceMonitor's relabeling as Prometheus' configuration spells it (what the Prometheus Operator writes).
fn relabel_config(r: &RelabelConfig) -> Value {
    let mut config = json!({"action": r.action});
    if !r.source_labels.is_empty() {
        config["source_labels"] = json!(r.source_labels);
    }
    for (key, value) in [
        ("regex", &r.regex),
        ("target_label", &r.target_label),
        ("replacement", &r.replacement),
    ] {
        if let Some(value) = value {
            config[key] = json!(value);
        }
    }
    config
}

/// The rule file Prometheus loads: the PrometheusRule's groups.
pub fn rules(rule: &PrometheusRule) -> Value {
    json!({"groups": rule.spec.groups})
}

/// Where the local Prometheus sends alerts, and the Secret values the receivers need.
pub struct LocalAlerting<'a> {
    /// host:port of the Alertmanager.
    pub alertmanager: &'a str,
    pub secrets: &'a SecretValues,
}

/// Writes `prometheus.yml` (and `rules.yml`) into `dir`, and with notifications `alertmanager.yml`: then `alerting`
/// must give the Secrets' values.
pub fn write(
    dir: &std::path::Path,
    desired: &Desired,
    targets: &[String],
    interval: Option<&str>,
    alerting: Option<LocalAlerting>,
) -> anyhow::Result<()> {
    let yaml = |v: &Value| serde_yaml::to_string(v).expect("YAML serializes");
    let alertmanager = match (&desired.alertmanager_config, &alerting) {
        (Some(amc), Some(a)) => Some((
            a.alertmanager,
            local_alertmanager::config(amc, Integrations::With(a.secrets))
                .map_err(|e| anyhow::anyhow!("spec.notifications: {e}"))?,
        )),
        (Some(_), None) => anyhow::bail!(
            "spec.notifications needs the values of the Secrets its receivers reference: pass their manifests with \
             --secrets FILE"
        ),
        (None, _) => None,
    };
    std::fs::create_dir_all(dir)?;
    let address = alertmanager.as_ref().map(|(a, _)| *a);
    std::fs::write(
        dir.join("prometheus.yml"),
        yaml(&config(desired, targets, interval, address)),
    )?;
    if let Some(rule) = &desired.prometheus_rule {
        std::fs::write(dir.join(RULES_FILE), yaml(&rules(rule)))?;
    }
    if let Some((_, config)) = alertmanager {
        // It holds the Secrets' values: readable by its owner only.
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(local_alertmanager::CONFIG_FILE))?;
        file.write_all(yaml(&config).as_bytes())?;
    }
    Ok(())
}

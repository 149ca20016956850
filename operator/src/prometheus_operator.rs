//! The prometheus-operator kinds, reduced to the fields the operator uses: those it writes (`ServiceMonitor`,
//! `PrometheusRule`, with the `status.bindings` the Prometheus Operator publishes on them, and `AlertmanagerConfig`)
//! and those it only reads (`Prometheus` and `Alertmanager`, for their selectors). Server-side apply sends only these
//! fields, so the rest of the real schema stays the cluster's business. Tests validate what we render against the real CRDs (`../shared/crds/prometheus-operator/`).
//!
//! Every field reads with a default: an object edited by hand or by another tool may lack any of them, and one that
//! fails to decode would be lost to the watch (and fail the reconcile) instead of being put right by the next apply.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "monitoring.coreos.com";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    status = "ConfigResourceStatus",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Endpoint {
    pub port: String,
    pub path: String,
    pub interval: String,
    pub scrape_timeout: String,
    pub scheme: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<RelabelConfig>,
}

/// One relabeling step of a scrape (`metricRelabelings`: applied to the scraped series).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct RelabelConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    pub action: String,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    namespaced,
    status = "ConfigResourceStatus",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(default, rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    pub groups: Vec<RuleGroup>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the Prometheus Operator publishes on a ServiceMonitor or PrometheusRule when its
/// `StatusForConfigurationResources` feature gate is on: which workloads bound the object, and whether they accepted
/// it. Only read, never written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindings: Option<Vec<WorkloadBinding>>,
}

/// One workload (a Prometheus, for us) that selected the object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadBinding {
    pub group: String,
    /// `prometheuses`, `prometheusagents`, `thanosrulers` or `alertmanagers`.
    pub resource: String,
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub conditions: Vec<BindingCondition>,
}

/// The `Accepted` condition of a binding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BindingCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A Prometheus server managed by the Prometheus Operator: only read, for the selectors that decide whether it
/// picks our ServiceMonitor and PrometheusRule up.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "Prometheus",
    plural = "prometheuses",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_namespace_selector: Option<LabelSelector>,
    /// Servers that each scrape a share of the targets (hashed by address); every shard loads every rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    #[serde(flatten)]
    pub served: Served,
}

/// How a Prometheus' or Alertmanager's web API is served, which decides how the operator reaches it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    /// Where the web API is served from (`--web.route-prefix`; the Prometheus Operator passes `/` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSpec>,
    /// Listening on the pod's loopback only: nothing outside the pod reaches the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_local: Option<bool>,
}

/// The part of a Prometheus' or Alertmanager's `spec.web` that decides how its API is reached: with a `tlsConfig`,
/// it serves HTTPS only. Its content is the server's business; only its presence is read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<serde_json::Value>,
}

/// Routing for an Alertmanager (`monitoring.coreos.com/v1alpha1`): the Prometheus Operator merges every one an
/// `Alertmanager` selects into its configuration, scoped to the object's namespace. Only the fields we write.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1alpha1",
    kind = "AlertmanagerConfig",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(default, rename_all = "camelCase")]
pub struct AlertmanagerConfigSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<Receiver>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRule>,
}

/// A node of the routing tree; the top one must name a receiver, the others inherit it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Route {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    #[serde(rename = "continue", skip_serializing_if = "std::ops::Not::not")]
    pub continue_: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

/// `name <matchType> "value"`; `matchType` one of `=`, `!=`, `=~`, `!~`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub match_type: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Receiver {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerDutyConfig>,
    #[serde(rename = "msteamsv2Configs", skip_serializing_if = "Vec::is_empty")]
    pub msteamsv2_configs: Vec<MsTeamsV2Config>,
}

/// A key of a Secret in the AlertmanagerConfig's namespace; the Prometheus Operator inlines its value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(default)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct WebhookConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_alerts: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct SlackConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    #[serde(rename = "apiURL", skip_serializing_if = "Option::is_none")]
    pub api_url: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct EmailConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<SecretKeySelector>,
    #[serde(rename = "requireTLS", skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct PagerDutyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<SecretKeySelector>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct MsTeamsV2Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    #[serde(rename = "webhookURL", skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretKeySelector>,
}

/// Alerts matching `targetMatch` are muted while one matching `sourceMatch` fires with the same `equal` labels.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct InhibitRule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_match: Vec<Matcher>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_match: Vec<Matcher>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// An Alertmanager managed by the Prometheus Operator: only read, for the selectors that decide whether it merges
/// our AlertmanagerConfig into its configuration.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "Alertmanager",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_config_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_config_namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_config_matcher_strategy: Option<MatcherStrategy>,
    #[serde(flatten)]
    pub served: Served,
}

/// How the Prometheus Operator scopes an AlertmanagerConfig's routes: `OnNamespace` (the default) adds a
/// `namespace` matcher, `OnNamespaceExceptForAlertmanagerNamespace` not in the Alertmanager's own namespace, `None`
/// never.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct MatcherStrategy {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_edited_by_others_still_decode() {
        // A ServiceMonitor whose endpoint was replaced by hand with only a port, and a rule group with no rules.
        let sm: ServiceMonitor = serde_json::from_value(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "bot"}, "spec": {"endpoints": [{"port": "wrong"}]}}))
        .unwrap();
        assert_eq!(sm.spec.endpoints[0].port, "wrong");
        let pr: PrometheusRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "bot"}, "spec": {"groups": [{"name": "g"}]}}))
        .unwrap();
        assert!(pr.spec.groups[0].rules.is_empty());
    }
}

//! "What should exist" for one `ChatbotMonitoring`: pure functions from the resource to its children, with no I/O.
//! The reconciler applies exactly this, and `chatbot-operator render` prints exactly this.

pub mod alertmanager_config;
mod dashboards;
mod deployment;
pub mod local_alertmanager;
pub mod local_prometheus;
pub mod network_policy;
mod prometheus_rule;
pub mod promtool_tests;
mod service;
mod service_monitor;
pub mod template_format;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::{ChatbotMonitoring, SelectionMode};
use crate::prometheus_operator::{AlertmanagerConfig, PrometheusRule, ServiceMonitor};
use crate::selection::verdict::PrometheusRef;

pub use dashboards::{DASHBOARDS, PanelSet, dashboard_uid, with_panels};
pub use prometheus_rule::alert_names;

/// The operator's name: field manager, `managed-by` label value, event reporter.
pub const MANAGER: &str = "chatbot-operator";
/// The label naming the resource on its children and pods (the recommended `instance` label).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Settings that come from the operator, not from the resource.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Image used when `spec.chatbot.image` is empty.
    pub default_image: String,
    /// The ingress controller's namespaces, whose pods the NetworkPolicy admits to the API port unless
    /// `spec.networkPolicy.apiFrom` says otherwise.
    pub ingress_namespaces: Vec<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            default_image: format!("ghcr.io/chatbot-sav/chatbot:{}", env!("CARGO_PKG_VERSION")),
            ingress_namespaces: vec!["ingress-nginx".into()],
        }
    }
}

/// Every child of one resource. Parts switched off in the spec are `None` or empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub deployment: Deployment,
    pub service: Service,
    pub service_monitor: Option<ServiceMonitor>,
    pub prometheus_rule: Option<PrometheusRule>,
    pub dashboards: Vec<ConfigMap>,
    /// Which panels the dashboards hold (see [`PanelSet`]): verification checks those, not the ones left out.
    pub dashboard_panels: PanelSet,
    pub network_policy: Option<NetworkPolicy>,
    pub alertmanager_config: Option<AlertmanagerConfig>,
}

/// A resource that cannot be rendered; the reconciler reports it as a condition, `render` as an error message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("the resource has no namespace")]
    MissingNamespace,
    #[error("the resource has no name")]
    MissingName,
}

/// Renders every child of `cbm`.
pub fn render(cbm: &ChatbotMonitoring, options: &RenderOptions) -> Result<Desired, RenderError> {
    let ctx = Context::new(cbm)?;
    let spec = &cbm.spec;
    Ok(Desired {
        deployment: deployment::render(&ctx, spec, options),
        service: service::render(&ctx, spec),
        service_monitor: spec.monitoring.enabled.then(|| service_monitor::render(&ctx, spec)),
        prometheus_rule: spec.alerts.enabled.then(|| prometheus_rule::render(&ctx, spec)),
        dashboards: if spec.dashboards.enabled {
            dashboards::render(&ctx, spec)
        } else {
            Vec::new()
        },
        dashboard_panels: PanelSet::of(spec),
        network_policy: network_policy_for(cbm, options, &scrapers(cbm, &[]))?,
        // Without alerting rules there is nothing to route.
        alertmanager_config: spec
            .notifications
            .as_ref()
            .filter(|n| n.enabled && spec.alerts.enabled)
            .map(|n| alertmanager_config::render(&ctx, n)),
    })
}

/// The NetworkPolicy, its metrics port open to `scrapers` (see [`scrapers`]); `None` when the part is switched off.
pub fn network_policy_for(
    cbm: &ChatbotMonitoring,
    options: &RenderOptions,
    scrapers: &[PrometheusRef],
) -> Result<Option<NetworkPolicy>, RenderError> {
    let ctx = Context::new(cbm)?;
    Ok(cbm
        .spec
        .network_policy
        .enabled
        .then(|| network_policy::render(&ctx, &cbm.spec, options, scrapers)))
}

/// The Prometheus servers whose pods may scrape the chatbot: the one the resource references, if any, and those
/// found to select it (`selecting`: the reconciler knows them after selection, `render` alone does not).
pub fn scrapers(cbm: &ChatbotMonitoring, selecting: &[PrometheusRef]) -> Vec<PrometheusRef> {
    let mut all = referenced_prometheus(cbm);
    all.extend(selecting.iter().cloned());
    // Sorted: the order selection finds them in is a cache's, and must not rewrite an unchanged NetworkPolicy.
    all.sort();
    all.dedup();
    all
}

/// The Prometheus that `monitoring.prometheus` names in reference mode: the only one known without a cluster.
fn referenced_prometheus(cbm: &ChatbotMonitoring) -> Vec<PrometheusRef> {
    let p = &cbm.spec.monitoring.prometheus;
    match (p.mode, &p.namespace, &p.name) {
        (SelectionMode::Reference, Some(namespace), Some(name)) if cbm.spec.monitoring.enabled => {
            vec![PrometheusRef {
                namespace: namespace.clone(),
                name: name.clone(),
            }]
        }
        _ => Vec::new(),
    }
}

/// What every child shares: names, labels, owner.
pub(crate) struct Context {
    pub name: String,
    pub namespace: String,
    owner: Option<OwnerReference>,
}

impl Context {
    fn new(cbm: &ChatbotMonitoring) -> Result<Context, RenderError> {
        let name = cbm.metadata.name.clone().ok_or(RenderError::MissingName)?;
        let namespace = cbm.namespace().ok_or(RenderError::MissingNamespace)?;
        Ok(Context {
            name,
            namespace,
            // Absent when the resource has no uid yet (a file given to `render`): an owner reference needs one.
            owner: cbm.controller_owner_ref(&()),
        })
    }

    /// Labels that select the chatbot pods; never change them, a Deployment's selector is immutable.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "chatbot".to_owned()),
            (INSTANCE_LABEL.to_owned(), self.name.clone()),
        ])
    }

    /// The recommended Kubernetes labels, on every child.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert("app.kubernetes.io/component".into(), "chatbot".into());
        labels.insert("app.kubernetes.io/part-of".into(), "chatbot-sav".into());
        labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
        labels
    }

    /// Metadata of a child named `name`, owned by the resource.
    pub fn meta(&self, name: &str, extra_labels: &BTreeMap<String, String>) -> ObjectMeta {
        let mut labels = self.labels();
        labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// The PromQL matchers that scope every query to this resource's chatbot: the ServiceMonitor's job label is the
    /// Service name, and Prometheus adds the namespace.
    pub fn selector(&self) -> String {
        format!("namespace=\"{}\", job=\"{}\"", self.namespace, self.name)
    }
}

/// The named port of the public API (`/chat`, `/conversations`, `/tickets`).
pub const PORT_NAME: &str = "http";
/// The named port of `/metrics` and the probes: the one the ServiceMonitor scrapes, never the API's.
pub const METRICS_PORT_NAME: &str = "metrics";

/// Renders every child as one multi-document YAML stream, as `chatbot-operator render` prints it.
pub fn to_yaml_stream(desired: &Desired) -> Result<String, serde_yaml::Error> {
    let mut docs = vec![
        serde_yaml::to_string(&desired.deployment)?,
        serde_yaml::to_string(&desired.service)?,
    ];
    if let Some(sm) = &desired.service_monitor {
        docs.push(serde_yaml::to_string(sm)?);
    }
    if let Some(pr) = &desired.prometheus_rule {
        docs.push(serde_yaml::to_string(pr)?);
    }
    if let Some(np) = &desired.network_policy {
        docs.push(serde_yaml::to_string(np)?);
    }
    if let Some(amc) = &desired.alertmanager_config {
        // A bare `=` is YAML 1.1's "value" tag, which PyYAML and the tools built on it refuse: quote it.
        let yaml = serde_yaml::to_string(amc)?;
        docs.push(yaml.replace("matchType: =\n", "matchType: '='\n"));
    }
    for cm in &desired.dashboards {
        docs.push(serde_yaml::to_string(cm)?);
    }
    Ok(docs.iter().map(|d| format!("---\n{d}")).collect())
}

//! The chatbot's NetworkPolicy: the metrics port admits the pods of the Prometheus servers that scrape it, the API
//! port the sources the resource names (by default its own namespace and the ingress controller's).
//!
//! A rule with no peers would admit everyone (an ingress rule's empty `from` matches all sources), so a port that
//! admits no one gets no rule at all.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Context, RenderOptions};
use crate::crd::ChatbotMonitoringSpec;
use crate::selection::verdict::PrometheusRef;

/// The label the API server sets on every namespace, holding its name (Kubernetes 1.22 and later).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub(super) fn render(
    ctx: &Context,
    spec: &ChatbotMonitoringSpec,
    options: &RenderOptions,
    scrapers: &[PrometheusRef],
) -> NetworkPolicy {
    let api_from = match &spec.network_policy.api_from {
        Some(peers) => peers.clone(),
        None => default_api_sources(&options.ingress_namespaces),
    };
    let metrics_from: Vec<NetworkPolicyPeer> = scrapers
        .iter()
        .map(prometheus_pods)
        .chain(spec.network_policy.metrics_from.iter().cloned())
        .collect();
    let ingress: Vec<NetworkPolicyIngressRule> =
        [(spec.chatbot.port, api_from), (spec.chatbot.metrics_port, metrics_from)]
            .into_iter()
            .filter(|(_, from)| !from.is_empty())
            .map(|(port, from)| NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            })
            .collect();
    NetworkPolicy {
        metadata: ctx.meta(&ctx.name, &BTreeMap::new()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(ctx.selector_labels()),
                ..LabelSelector::default()
            }),
            // Ingress only: the chatbot's own connections (database, model endpoint) are the user's to restrict.
            policy_types: Some(vec!["Ingress".into()]),
            // None, not []: the API server drops an empty list, and what we apply must read back the same.
            ingress: (!ingress.is_empty()).then_some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// Every pod of the resource's namespace, and every pod of each ingress controller namespace.
fn default_api_sources(ingress_namespaces: &[String]) -> Vec<NetworkPolicyPeer> {
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    std::iter::once(same_namespace)
        .chain(ingress_namespaces.iter().map(|ns| NetworkPolicyPeer {
            namespace_selector: Some(labels([(NAMESPACE_NAME_LABEL, ns.as_str())])),
            ..NetworkPolicyPeer::default()
        }))
        .collect()
}

/// The pods of one Prometheus Operator `Prometheus`: the Prometheus Operator labels them with its name.
fn prometheus_pods(prometheus: &PrometheusRef) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(labels([(NAMESPACE_NAME_LABEL, prometheus.namespace.as_str())])),
        pod_selector: Some(labels([
            ("app.kubernetes.io/name", "prometheus"),
            ("operator.prometheus.io/name", prometheus.name.as_str()),
        ])),
        ..NetworkPolicyPeer::default()
    }
}

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..LabelSelector::default()
    }
}

/// How many sources each port admits, for the condition's message: (API, metrics besides the Prometheus servers).
pub fn admitted(spec: &ChatbotMonitoringSpec, options: &RenderOptions) -> (usize, usize) {
    let api = match &spec.network_policy.api_from {
        Some(peers) => peers.len(),
        None => 1 + options.ingress_namespaces.len(),
    };
    (api, spec.network_policy.metrics_from.len())
}

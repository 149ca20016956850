//! The ServiceMonitor: tells the Prometheus Operator to scrape the chatbot Service's named port. Its job label is the
//! Service name, which is what every rule and dashboard query filters on.
//!
//! The chatbot's HTTP series carry an `endpoint` label (the route, part of its metrics contract), and so does every
//! target the Prometheus Operator generates (the Service port's name). Prometheus keeps the target's and renames the
//! chatbot's to `exported_endpoint`: every query by route, and the rules' exclusion of probes, would then see
//! `metrics` alone. The metric relabelings give the route back its name.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Context, METRICS_PORT_NAME};
use crate::crd::ChatbotMonitoringSpec;
use crate::prometheus_operator::{Endpoint, NamespaceSelector, RelabelConfig, ServiceMonitor, ServiceMonitorSpec};

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec) -> ServiceMonitor {
    let m = &spec.monitoring;
    ServiceMonitor {
        metadata: ctx.meta(&ctx.name, &m.labels),
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(ctx.selector_labels()),
                ..LabelSelector::default()
            },
            // Only our own namespace: a same-named chatbot elsewhere must not be scraped as ours.
            namespace_selector: Some(NamespaceSelector {
                match_names: vec![ctx.namespace.clone()],
            }),
            endpoints: vec![Endpoint {
                port: METRICS_PORT_NAME.into(),
                path: "/metrics".into(),
                interval: m.interval.clone(),
                scrape_timeout: m.scrape_timeout.clone(),
                scheme: "http".into(),
                metric_relabelings: route_label_restored(),
            }],
        },
        status: None,
    }
}

/// `exported_endpoint` (the chatbot's route, renamed by Prometheus) back into `endpoint`, where it was exported.
fn route_label_restored() -> Vec<RelabelConfig> {
    vec![
        RelabelConfig {
            source_labels: vec!["exported_endpoint".into()],
            regex: Some("(.+)".into()),
            target_label: Some("endpoint".into()),
            replacement: Some("$1".into()),
            action: "replace".into(),
        },
        RelabelConfig {
            regex: Some("exported_endpoint".into()),
            action: "labeldrop".into(),
            ..RelabelConfig::default()
        },
    ]
}

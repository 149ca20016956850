//! The ServiceMonitor: tells the Prometheus Operator to scrape the chatbot Service's named port. Its job label is the
//! Service name, which is what every rule and dashboard query filters on.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Context, METRICS_PORT_NAME};
use crate::crd::ChatbotMonitoringSpec;
use crate::prometheus_operator::{Endpoint, NamespaceSelector, ServiceMonitor, ServiceMonitorSpec};

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
            }],
        },
        status: None,
    }
}

//! The chatbot Service: the API's port, and the `metrics` port the ServiceMonitor scrapes (the chatbot serves
//! `/metrics` and the probes on a listener of their own).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Context, METRICS_PORT_NAME, PORT_NAME};
use crate::crd::ChatbotMonitoringSpec;

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec) -> Service {
    Service {
        metadata: ctx.meta(&ctx.name, &BTreeMap::new()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(ctx.selector_labels()),
            ports: Some(vec![
                ServicePort {
                    name: Some(PORT_NAME.into()),
                    port: spec.chatbot.port,
                    target_port: Some(IntOrString::String(PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some(METRICS_PORT_NAME.into()),
                    port: spec.chatbot.metrics_port,
                    target_port: Some(IntOrString::String(METRICS_PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

//! The chatbot Service: one named port that serves the API and `/metrics`, the port the ServiceMonitor scrapes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Context, PORT_NAME};
use crate::crd::ChatbotMonitoringSpec;

pub(super) fn render(ctx: &Context, spec: &ChatbotMonitoringSpec) -> Service {
    Service {
        metadata: ctx.meta(&ctx.name, &BTreeMap::new()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(ctx.selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: spec.chatbot.port,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

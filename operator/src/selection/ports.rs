//! Does the ServiceMonitor's endpoint lead to the chatbot's pods: its selector must match the Service, its port name
//! must be one of the Service's port names, and a named `targetPort` must be a container port of the pods. Any break
//! in that chain gives Prometheus no target and no error: it is the `PortNameMismatch` reason of `Selected`.
//! Checked on the objects as the API server returned them, so a webhook or another controller that changed them shows.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::label_selector::mismatches;
use crate::prometheus_operator::ServiceMonitor;

/// Every break between the ServiceMonitor and the pods, in words a person can act on; empty when none.
pub fn port_problems(sm: &ServiceMonitor, service: &Service, deployment: &Deployment) -> Vec<String> {
    let mut problems = Vec::new();
    let service_name = format!("{}/{}", service.namespace().unwrap_or_default(), service.name_any());
    let missing = mismatches(
        &sm.spec.selector,
        service.metadata.labels.as_ref().unwrap_or(&Default::default()),
    );
    if !missing.is_empty() {
        problems.push(format!(
            "the ServiceMonitor's selector does not match Service {service_name}: {}",
            missing.join(", ")
        ));
    }
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    let port_names: Vec<&str> = ports.into_iter().flatten().filter_map(|p| p.name.as_deref()).collect();
    let container_ports: Vec<&str> = deployment
        .spec
        .template
        .spec
        .iter()
        .flat_map(|pod| &pod.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| p.name.as_deref())
        .collect();
    for endpoint in &sm.spec.endpoints {
        let Some(port) = ports
            .into_iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(&endpoint.port))
        else {
            problems.push(format!(
                "Service {service_name} has no port named {:?} (its ports: {}): the ServiceMonitor's endpoint \
                 finds nothing to scrape",
                endpoint.port,
                if port_names.is_empty() {
                    "none named".to_owned()
                } else {
                    port_names.join(", ")
                }
            ));
            continue;
        };
        if let Some(IntOrString::String(target)) = &port.target_port
            && !container_ports.contains(&target.as_str())
        {
            problems.push(format!(
                "Service {service_name} port {:?} targets the container port named {target:?}, which no container \
                 of Deployment {} declares (its named ports: {})",
                endpoint.port,
                deployment.name_any(),
                if container_ports.is_empty() {
                    "none".to_owned()
                } else {
                    container_ports.join(", ")
                }
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ChatbotMonitoring;
    use crate::render::{RenderOptions, render};
    use serde_json::json;

    fn rendered() -> (ServiceMonitor, Service, Deployment) {
        let cbm: ChatbotMonitoring = serde_json::from_value(json!({
            "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
            "metadata": {"name": "bot", "namespace": "shop"}, "spec": {},
        }))
        .unwrap();
        let d = render(&cbm, &RenderOptions::default()).unwrap();
        (d.service_monitor.unwrap(), d.service, d.deployment)
    }

    #[test]
    fn what_the_operator_renders_is_consistent() {
        let (sm, service, deployment) = rendered();
        assert_eq!(port_problems(&sm, &service, &deployment), Vec::<String>::new());
    }

    #[test]
    fn a_renamed_service_port_is_named_with_the_ports_there_are() {
        let (sm, mut service, deployment) = rendered();
        service.spec.as_mut().unwrap().ports.as_mut().unwrap()[1].name = Some("web".into());
        let problems = port_problems(&sm, &service, &deployment);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("Service shop/bot has no port named \"metrics\" (its ports: http, web)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_target_port_no_container_declares() {
        let (sm, service, mut deployment) = rendered();
        let pod = deployment.spec.template.spec.as_mut().unwrap();
        pod.containers[0].ports.as_mut().unwrap()[1].name = Some("internal".into());
        let problems = port_problems(&sm, &service, &deployment);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("targets the container port named \"metrics\", which no container of Deployment bot declares (its named ports: http, internal)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_service_the_selector_misses() {
        let (sm, mut service, deployment) = rendered();
        service
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("app.kubernetes.io/instance".into(), "other".into());
        let problems = port_problems(&sm, &service, &deployment);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("label app.kubernetes.io/instance=other should be app.kubernetes.io/instance=bot"),
            "{}",
            problems[0]
        );
    }
}

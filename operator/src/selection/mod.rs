//! Will a Prometheus pick our ServiceMonitor and PrometheusRule up? Pure evaluation of what the API server answered,
//! for the `Selected` condition: the Prometheus Operator's label-selector rules (`label_selector`), which Prometheus
//! selects the resource's children and why not (`verdict`), the Prometheus Operator's own word on it
//! (`operator_opinion`), and whether the ServiceMonitor's endpoint leads to the pods (`ports`); and for `Routed`,
//! which Alertmanager selects the AlertmanagerConfig (`alertmanager`).

pub mod alertmanager;
pub mod label_selector;
pub mod operator_opinion;
pub mod ports;
pub mod verdict;

use kube::ResourceExt;

use crate::crd::SelectionMode;

/// The objects a selection considers: all of them in `auto` mode, the one named in `reference` mode, none to
/// consider (`None`) in `none` mode.
pub fn candidates<'a, K: ResourceExt>(
    mode: SelectionMode,
    name: Option<&String>,
    namespace: Option<&String>,
    all: &'a [K],
) -> Option<Vec<&'a K>> {
    match mode {
        SelectionMode::None => None,
        SelectionMode::Reference => Some(
            all.iter()
                .filter(|o| Some(&o.name_any()) == name && o.namespace().as_ref() == namespace)
                .collect(),
        ),
        SelectionMode::Auto => Some(all.iter().collect()),
    }
}

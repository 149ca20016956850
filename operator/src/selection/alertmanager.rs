//! Which Alertmanager is expected to load the resource's AlertmanagerConfig, and does it select it: the same rules
//! as for a Prometheus and its ServiceMonitors (`alertmanagerConfigSelector`, null selects nothing;
//! `alertmanagerConfigNamespaceSelector`, null means the Alertmanager's own namespace). In `auto` mode, the labels
//! the only Alertmanager requires are added to the AlertmanagerConfig.

use kube::ResourceExt;

use super::label_selector::{Labels, labels_to_add, mismatches, namespace_selected};
use super::verdict::{PrometheusRef as ObjectName, joined};
use crate::crd::{AlertmanagerSelection, SelectionMode};
use crate::prometheus_operator::Alertmanager;
use crate::status::reason;

/// Who loads the routing.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// Not checked (`mode: none`).
    NotChecked,
    Selected {
        alertmanagers: Vec<ObjectName>,
    },
    NotSelected {
        reason: &'static str,
        message: String,
    },
}

/// The AlertmanagerConfig being selected: its labels (before any label we add) and its namespace.
pub struct Ours<'a> {
    pub namespace: &'a str,
    pub namespace_labels: &'a Labels,
    pub labels: &'a Labels,
    /// The user set `spec.notifications.labels`: never second-guess them.
    pub user_labels_set: bool,
}

fn name_of(a: &Alertmanager) -> ObjectName {
    ObjectName {
        namespace: a.namespace().unwrap_or_default(),
        name: a.name_any(),
    }
}

/// The labels to add to the AlertmanagerConfig (auto mode, one candidate, user labels empty), and the verdict.
pub fn evaluate(selection: &AlertmanagerSelection, candidates: &[Alertmanager], ours: &Ours) -> (Labels, Routing) {
    let considered = super::candidates(
        selection.mode,
        selection.name.as_ref(),
        selection.namespace.as_ref(),
        candidates,
    );
    let Some(chosen) = considered else {
        return (Labels::new(), Routing::NotChecked);
    };
    match chosen.as_slice() {
        [] => (
            Labels::new(),
            Routing::NotSelected {
                reason: reason::NO_ALERTMANAGER,
                message: match selection.mode {
                    SelectionMode::Reference => format!(
                        "Alertmanager {}/{} does not exist",
                        selection.namespace.as_deref().unwrap_or(""),
                        selection.name.as_deref().unwrap_or("")
                    ),
                    _ => "no Alertmanager object in the cluster: the alerts fire and no one is told".into(),
                },
            },
        ),
        [one] => {
            let add = if selection.mode == SelectionMode::Auto && !ours.user_labels_set {
                labels_to_add(one.spec.alertmanager_config_selector.as_ref()).unwrap_or_default()
            } else {
                Labels::new()
            };
            (add.clone(), judge(one, ours, &add))
        }
        many => {
            let selecting: Vec<ObjectName> = many
                .iter()
                .filter(|a| matches!(judge(a, ours, &Labels::new()), Routing::Selected { .. }))
                .map(|a| name_of(a))
                .collect();
            if selecting.is_empty() {
                let names: Vec<ObjectName> = many.iter().map(|a| name_of(a)).collect();
                let routing = Routing::NotSelected {
                    reason: reason::AMBIGUOUS_ALERTMANAGER,
                    message: format!(
                        "{} Alertmanagers ({}) and none selects this resource's AlertmanagerConfig: name one in \
                         spec.notifications.alertmanager, or set spec.notifications.labels",
                        names.len(),
                        joined(&names)
                    ),
                };
                (Labels::new(), routing)
            } else {
                let routing = Routing::Selected {
                    alertmanagers: selecting,
                };
                (Labels::new(), routing)
            }
        }
    }
}

/// The verdict when the API server serves AlertmanagerConfigs but not the `Alertmanager` kind.
pub fn alertmanager_kind_missing(selection: &AlertmanagerSelection) -> Routing {
    match selection.mode {
        SelectionMode::None => Routing::NotChecked,
        _ => Routing::NotSelected {
            reason: reason::ALERTMANAGER_KIND_MISSING,
            message: "the AlertmanagerConfig is applied, but the cluster does not serve the monitoring.coreos.com/v1 \
                      Alertmanager kind, so which Alertmanager loads it cannot be checked: set \
                      spec.notifications.alertmanager.mode to none"
                .into(),
        },
    }
}

fn judge(a: &Alertmanager, ours: &Ours, add: &Labels) -> Routing {
    let name = name_of(a);
    let home = a.namespace().unwrap_or_default();
    let mut labels = ours.labels.clone();
    labels.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    match &a.spec.alertmanager_config_selector {
        None => {
            return Routing::NotSelected {
                reason: reason::LABEL_MISMATCH,
                message: format!(
                    "Alertmanager {name} selects no AlertmanagerConfig (alertmanagerConfigSelector is null)"
                ),
            };
        }
        Some(s) => {
            let missing = mismatches(s, &labels);
            if !missing.is_empty() {
                return Routing::NotSelected {
                    reason: reason::LABEL_MISMATCH,
                    message: format!(
                        "Alertmanager {name} does not select the AlertmanagerConfig: {}; set them in \
                         spec.notifications.labels",
                        missing.join(", ")
                    ),
                };
            }
        }
    }
    let ns_selector = a.spec.alertmanager_config_namespace_selector.as_ref();
    if !namespace_selected(ns_selector, &home, ours.namespace, ours.namespace_labels) {
        return Routing::NotSelected {
            reason: reason::NAMESPACE_NOT_SELECTED,
            message: format!(
                "Alertmanager {name} does not look at namespace {} for AlertmanagerConfigs ({})",
                ours.namespace,
                match ns_selector {
                    None => format!("alertmanagerConfigNamespaceSelector is null: its own namespace {home} only"),
                    Some(_) => "alertmanagerConfigNamespaceSelector does not match the namespace's labels".into(),
                }
            ),
        };
    }
    Routing::Selected {
        alertmanagers: vec![name],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus_operator::AlertmanagerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn alertmanager(ns: &str, name: &str, selector: Option<LabelSelector>, any_namespace: bool) -> Alertmanager {
        let mut a = Alertmanager::new(
            name,
            AlertmanagerSpec {
                alertmanager_config_selector: selector,
                alertmanager_config_namespace_selector: any_namespace.then(LabelSelector::default),
                alertmanager_config_matcher_strategy: None,
                ..AlertmanagerSpec::default()
            },
        );
        a.metadata.namespace = Some(ns.into());
        a
    }

    fn matching(k: &str, v: &str) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: Some(Labels::from([(k.to_owned(), v.to_owned())])),
            ..LabelSelector::default()
        })
    }

    fn ours<'a>(labels: &'a Labels, ns_labels: &'a Labels, user: bool) -> Ours<'a> {
        Ours {
            namespace: "shop",
            namespace_labels: ns_labels,
            labels,
            user_labels_set: user,
        }
    }

    fn kps() -> ObjectName {
        ObjectName {
            namespace: "monitoring".into(),
            name: "kps".into(),
        }
    }

    #[test]
    fn kube_prometheus_stacks_alertmanager_selects_every_config_of_every_namespace() {
        let (labels, ns) = (Labels::new(), Labels::new());
        let am = alertmanager("monitoring", "kps", Some(LabelSelector::default()), true);
        let (add, routing) = evaluate(&AlertmanagerSelection::default(), &[am], &ours(&labels, &ns, false));
        assert!(add.is_empty());
        assert_eq!(
            routing,
            Routing::Selected {
                alertmanagers: vec![kps()]
            }
        );
    }

    #[test]
    fn auto_adds_the_required_label_unless_the_user_set_labels() {
        let (labels, ns) = (Labels::new(), Labels::new());
        let am = alertmanager("monitoring", "kps", matching("alertmanagerConfig", "chatbots"), true);
        let (add, routing) = evaluate(
            &AlertmanagerSelection::default(),
            std::slice::from_ref(&am),
            &ours(&labels, &ns, false),
        );
        assert_eq!(
            add,
            Labels::from([("alertmanagerConfig".to_owned(), "chatbots".to_owned())])
        );
        assert!(matches!(routing, Routing::Selected { .. }));

        let user = Labels::from([("team".to_owned(), "care".to_owned())]);
        let (add, routing) = evaluate(&AlertmanagerSelection::default(), &[am], &ours(&user, &ns, true));
        assert!(add.is_empty());
        assert_eq!(
            routing,
            Routing::NotSelected {
                reason: "LabelMismatch",
                message: "Alertmanager monitoring/kps does not select the AlertmanagerConfig: missing label \
                          alertmanagerConfig=chatbots; set them in spec.notifications.labels"
                    .into()
            }
        );
    }

    #[test]
    fn null_selectors_select_nothing_or_only_the_alertmanagers_own_namespace() {
        let (labels, ns) = (Labels::new(), Labels::new());
        let none = alertmanager("monitoring", "kps", None, true);
        let (_, routing) = evaluate(&AlertmanagerSelection::default(), &[none], &ours(&labels, &ns, false));
        assert!(
            matches!(routing, Routing::NotSelected { reason: "LabelMismatch", message } if message.contains("alertmanagerConfigSelector is null"))
        );

        let own_namespace = alertmanager("monitoring", "kps", Some(LabelSelector::default()), false);
        let (_, routing) = evaluate(
            &AlertmanagerSelection::default(),
            &[own_namespace],
            &ours(&labels, &ns, false),
        );
        assert!(
            matches!(routing, Routing::NotSelected { reason: "NamespaceNotSelected", message } if message.contains("its own namespace monitoring only"))
        );
    }

    #[test]
    fn none_several_or_a_missing_reference_say_so() {
        let (labels, ns) = (Labels::new(), Labels::new());
        let (_, routing) = evaluate(&AlertmanagerSelection::default(), &[], &ours(&labels, &ns, false));
        assert!(matches!(
            routing,
            Routing::NotSelected {
                reason: "NoAlertmanager",
                ..
            }
        ));

        let a = alertmanager("a", "one", None, true);
        let b = alertmanager("b", "two", matching("x", "y"), true);
        let (_, routing) = evaluate(
            &AlertmanagerSelection::default(),
            &[a.clone(), b.clone()],
            &ours(&labels, &ns, false),
        );
        assert!(
            matches!(routing, Routing::NotSelected { reason: "AmbiguousAlertmanager", message } if message.contains("a/one, b/two"))
        );

        let c = alertmanager("c", "three", Some(LabelSelector::default()), true);
        let (_, routing) = evaluate(&AlertmanagerSelection::default(), &[a, c], &ours(&labels, &ns, false));
        assert!(matches!(routing, Routing::Selected { alertmanagers } if alertmanagers[0].name == "three"));

        let reference = AlertmanagerSelection {
            mode: SelectionMode::Reference,
            name: Some("main".into()),
            namespace: Some("monitoring".into()),
            url: None,
        };
        let (_, routing) = evaluate(&reference, &[b], &ours(&labels, &ns, false));
        assert_eq!(
            routing,
            Routing::NotSelected {
                reason: "NoAlertmanager",
                message: "Alertmanager monitoring/main does not exist".into()
            }
        );
        let off = AlertmanagerSelection {
            mode: SelectionMode::None,
            ..AlertmanagerSelection::default()
        };
        assert_eq!(evaluate(&off, &[], &ours(&labels, &ns, false)).1, Routing::NotChecked);
    }
}

//! Which Prometheus is expected to monitor the resource, and does it select our ServiceMonitor and PrometheusRule,
//! from what the API server answered (the `Prometheus` objects and our namespace's labels). In `auto` mode, the
//! labels the only Prometheus requires are added to the children.

use std::fmt;

use super::label_selector::{Labels, labels_to_add, mismatches, namespace_selected};
use crate::crd::{PrometheusSelection, SelectionMode};
use crate::prometheus_operator::Prometheus;
use crate::status::reason;
use kube::ResourceExt;

/// A `Prometheus` object, shown as `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrometheusRef {
    pub namespace: String,
    pub name: String,
}

impl PrometheusRef {
    pub fn of(p: &Prometheus) -> Self {
        PrometheusRef {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
        }
    }
}

impl fmt::Display for PrometheusRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `a/one, b/two`.
pub fn joined(refs: &[PrometheusRef]) -> String {
    refs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The verdict on selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not checked (`mode: none`).
    NotChecked,
    /// Selected by these (one, or several when none was named and more than one selects the resource).
    Selected {
        prometheuses: Vec<PrometheusRef>,
    },
    NotSelected {
        reason: &'static str,
        message: String,
    },
}

/// What is being selected: our children's labels (before any label we add), and our namespace.
pub struct Ours<'a> {
    pub namespace: &'a str,
    pub namespace_labels: &'a Labels,
    pub service_monitor_labels: Option<&'a Labels>,
    pub rule_labels: Option<&'a Labels>,
    /// The user set `spec.monitoring.labels`: never second-guess them.
    pub user_labels_set: bool,
}

/// The labels to add to the children (auto mode, one candidate, user labels empty), and the verdict with them.
pub fn evaluate(selection: &PrometheusSelection, candidates: &[Prometheus], ours: &Ours) -> (Labels, Verdict) {
    let named = |p: &Prometheus| PrometheusRef::of(p).to_string();
    let considered = super::candidates(
        selection.mode,
        selection.name.as_ref(),
        selection.namespace.as_ref(),
        candidates,
    );
    let Some(chosen) = considered else {
        return (Labels::new(), Verdict::NotChecked);
    };
    match chosen.as_slice() {
        [] => (
            Labels::new(),
            Verdict::NotSelected {
                reason: reason::NO_PROMETHEUS,
                message: match selection.mode {
                    SelectionMode::Reference => format!(
                        "Prometheus {}/{} does not exist",
                        selection.namespace.as_deref().unwrap_or(""),
                        selection.name.as_deref().unwrap_or("")
                    ),
                    _ => "no Prometheus object in the cluster: nothing will scrape the chatbot".into(),
                },
            },
        ),
        [one] => {
            let add = if selection.mode == SelectionMode::Auto && !ours.user_labels_set {
                let sm = labels_to_add(one.spec.service_monitor_selector.as_ref()).unwrap_or_default();
                let mut all = labels_to_add(one.spec.rule_selector.as_ref()).unwrap_or_default();
                all.extend(sm);
                all
            } else {
                Labels::new()
            };
            (add.clone(), judge(one, &named(one), ours, &add))
        }
        many => {
            // Several candidates: the ones that already select us with the user's labels, if any, else say so.
            let selecting: Vec<PrometheusRef> = many
                .iter()
                .filter(|p| matches!(judge(p, &named(p), ours, &Labels::new()), Verdict::Selected { .. }))
                .map(|p| PrometheusRef::of(p))
                .collect();
            if selecting.is_empty() {
                let names: Vec<String> = many.iter().map(|p| named(p)).collect();
                (
                    Labels::new(),
                    Verdict::NotSelected {
                        reason: reason::AMBIGUOUS_PROMETHEUS,
                        message: format!(
                            "{} Prometheus servers ({}) and none selects this resource: name one in \
                             spec.monitoring.prometheus, or set spec.monitoring.labels",
                            names.len(),
                            names.join(", ")
                        ),
                    },
                )
            } else {
                (
                    Labels::new(),
                    Verdict::Selected {
                        prometheuses: selecting,
                    },
                )
            }
        }
    }
}

/// The verdict when the API server serves ServiceMonitors but not the `Prometheus` kind: another agent may read them
/// (an OpenTelemetry target allocator, Grafana Alloy, VictoriaMetrics), but no Prometheus can be evaluated.
pub fn prometheus_kind_missing(selection: &PrometheusSelection) -> Verdict {
    match selection.mode {
        SelectionMode::None => Verdict::NotChecked,
        _ => Verdict::NotSelected {
            reason: reason::PROMETHEUS_KIND_MISSING,
            message: "the ServiceMonitor and PrometheusRule are applied, but the cluster does not serve the \
                      monitoring.coreos.com/v1 Prometheus kind, so which server reads them cannot be checked: \
                      install the Prometheus Operator, or set spec.monitoring.prometheus.mode to none"
                .into(),
        },
    }
}

fn with(labels: Option<&Labels>, add: &Labels) -> Option<Labels> {
    labels.map(|l| {
        let mut all = l.clone();
        all.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    })
}

fn judge(p: &Prometheus, name: &str, ours: &Ours, add: &Labels) -> Verdict {
    let home = p.namespace().unwrap_or_default();
    let kinds = [
        (
            "ServiceMonitor",
            with(ours.service_monitor_labels, add),
            &p.spec.service_monitor_selector,
            &p.spec.service_monitor_namespace_selector,
            "serviceMonitor",
        ),
        (
            "PrometheusRule",
            with(ours.rule_labels, add),
            &p.spec.rule_selector,
            &p.spec.rule_namespace_selector,
            "rule",
        ),
    ];
    for (kind, labels, selector, ns_selector, field) in kinds {
        let Some(labels) = labels else { continue };
        match selector {
            None => {
                return Verdict::NotSelected {
                    reason: reason::LABEL_MISMATCH,
                    message: format!("Prometheus {name} selects no {kind} ({field}Selector is null)"),
                };
            }
            Some(s) => {
                let missing = mismatches(s, &labels);
                if !missing.is_empty() {
                    return Verdict::NotSelected {
                        reason: reason::LABEL_MISMATCH,
                        message: format!(
                            "Prometheus {name} does not select the {kind}: {}; set them in spec.monitoring.labels",
                            missing.join(", ")
                        ),
                    };
                }
            }
        }
        if !namespace_selected(ns_selector.as_ref(), &home, ours.namespace, ours.namespace_labels) {
            return Verdict::NotSelected {
                reason: reason::NAMESPACE_NOT_SELECTED,
                message: format!(
                    "Prometheus {name} does not look at namespace {} for {kind}s ({})",
                    ours.namespace,
                    match ns_selector {
                        None => format!("{field}NamespaceSelector is null: its own namespace {home} only"),
                        Some(_) => format!("{field}NamespaceSelector does not match the namespace's labels"),
                    }
                ),
            };
        }
    }
    Verdict::Selected {
        prometheuses: vec![PrometheusRef::of(p)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus_operator::PrometheusSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn prometheus(ns: &str, name: &str, release: Option<&str>, any_namespace: bool) -> Prometheus {
        let selector = release.map(|r| LabelSelector {
            match_labels: Some(Labels::from([("release".to_owned(), r.to_owned())])),
            ..LabelSelector::default()
        });
        let ns_selector = any_namespace.then(LabelSelector::default);
        let mut p = Prometheus::new(
            name,
            PrometheusSpec {
                service_monitor_selector: selector.clone(),
                service_monitor_namespace_selector: ns_selector.clone(),
                rule_selector: selector,
                rule_namespace_selector: ns_selector,
                ..PrometheusSpec::default()
            },
        );
        p.metadata.namespace = Some(ns.into());
        p
    }

    fn auto() -> PrometheusSelection {
        PrometheusSelection::default()
    }

    #[test]
    fn auto_with_one_prometheus_adds_its_release_label() {
        let base = Labels::from([("app.kubernetes.io/name".to_owned(), "chatbot".to_owned())]);
        let ns_labels = Labels::new();
        let ours = Ours {
            namespace: "shop",
            namespace_labels: &ns_labels,
            service_monitor_labels: Some(&base),
            rule_labels: Some(&base),
            user_labels_set: false,
        };
        let (add, verdict) = evaluate(&auto(), &[prometheus("monitoring", "kps", Some("kps"), true)], &ours);
        assert_eq!(add, Labels::from([("release".to_owned(), "kps".to_owned())]));
        assert_eq!(
            verdict,
            Verdict::Selected {
                prometheuses: vec![PrometheusRef {
                    namespace: "monitoring".into(),
                    name: "kps".into()
                }]
            }
        );
    }

    #[test]
    fn each_reason_not_to_be_selected() {
        let base = Labels::new();
        let ns_labels = Labels::new();
        let mut ours = Ours {
            namespace: "shop",
            namespace_labels: &ns_labels,
            service_monitor_labels: Some(&base),
            rule_labels: Some(&base),
            user_labels_set: true,
        };
        let reason = |v: &Verdict| match v {
            Verdict::NotSelected { reason, .. } => *reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&evaluate(&auto(), &[], &ours).1), "NoPrometheus");
        let two = [
            prometheus("a", "one", Some("x"), true),
            prometheus("b", "two", Some("y"), true),
        ];
        assert_eq!(reason(&evaluate(&auto(), &two, &ours).1), "AmbiguousPrometheus");
        let (_, v) = evaluate(&auto(), &[prometheus("monitoring", "kps", Some("kps"), true)], &ours);
        assert_eq!(reason(&v), "LabelMismatch");
        let Verdict::NotSelected { message, .. } = v else {
            unreachable!()
        };
        assert!(message.contains("missing label release=kps"), "{message}");
        let (_, v) = evaluate(&auto(), &[prometheus("monitoring", "kps", None, true)], &ours);
        assert!(
            matches!(&v, Verdict::NotSelected { message, .. } if message.contains("serviceMonitorSelector is null")),
            "{v:?}"
        );
        ours.user_labels_set = false;
        let (_, v) = evaluate(&auto(), &[prometheus("monitoring", "kps", Some("kps"), false)], &ours);
        assert_eq!(reason(&v), "NamespaceNotSelected");
        let reference = PrometheusSelection {
            mode: SelectionMode::Reference,
            name: Some("other".into()),
            namespace: Some("monitoring".into()),
            url: None,
        };
        assert_eq!(
            reason(&evaluate(&reference, &[prometheus("monitoring", "kps", Some("kps"), true)], &ours).1),
            "NoPrometheus"
        );
        let none = PrometheusSelection {
            mode: SelectionMode::None,
            ..auto()
        };
        assert_eq!(evaluate(&none, &two, &ours).1, Verdict::NotChecked);
    }

    #[test]
    fn several_prometheus_servers_one_of_which_selects_us() {
        let base = Labels::from([("release".to_owned(), "y".to_owned())]);
        let ns_labels = Labels::new();
        let ours = Ours {
            namespace: "shop",
            namespace_labels: &ns_labels,
            service_monitor_labels: Some(&base),
            rule_labels: Some(&base),
            user_labels_set: true,
        };
        let two = [
            prometheus("a", "one", Some("x"), true),
            prometheus("b", "two", Some("y"), true),
        ];
        assert_eq!(
            evaluate(&auto(), &two, &ours).1,
            Verdict::Selected {
                prometheuses: vec![PrometheusRef {
                    namespace: "b".into(),
                    name: "two".into()
                }]
            }
        );
    }
}

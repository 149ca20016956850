//! The Prometheus Operator's own word on selection: with its `StatusForConfigurationResources` feature gate on, it
//! lists in `status.bindings` of a ServiceMonitor or PrometheusRule each Prometheus that selected the object and
//! whether it accepted it. Compared with this operator's evaluation, so a disagreement is reported, never hidden.

use super::verdict::Verdict;
use crate::prometheus_operator::{ConfigResourceStatus, GROUP};
use crate::status::reason;

/// What the Prometheus Operator's bindings say about our verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Opinion {
    /// No bindings published (the feature gate is off, or the object was not processed yet): nothing to compare.
    Silent,
    /// The bindings confirm the verdict.
    Agrees,
    Disagrees {
        reason: &'static str,
        message: String,
    },
}

/// Compares the verdict on one object (`kind`, at `generation`) with the bindings in its live status.
pub fn compare(
    kind: &str,
    verdict: &Verdict,
    status: Option<&ConfigResourceStatus>,
    generation: Option<i64>,
) -> Opinion {
    let bindings = status.and_then(|s| s.bindings.as_deref()).unwrap_or_default();
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for b in bindings
        .iter()
        .filter(|b| b.group == GROUP && b.resource == "prometheuses")
    {
        let Some(c) = b.conditions.iter().find(|c| c.type_ == "Accepted") else {
            continue;
        };
        // A condition about an older generation of the object says nothing about the one we just applied.
        if let (Some(seen), Some(now)) = (c.observed_generation, generation)
            && seen < now
        {
            continue;
        }
        let name = format!("{}/{}", b.namespace, b.name);
        if c.status == "True" {
            accepted.push(name);
        } else {
            let why = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            rejected.push((name, why));
        }
    }
    if accepted.is_empty() && rejected.is_empty() {
        return Opinion::Silent;
    }
    let rejection = |name: &str, why: &str| Opinion::Disagrees {
        reason: reason::REJECTED,
        message: format!(
            "Prometheus {name} selects the {kind} but the Prometheus Operator rejected it ({})",
            if why.is_empty() { "no reason given" } else { why }
        ),
    };
    match verdict {
        Verdict::NotChecked => Opinion::Silent,
        Verdict::Selected { prometheuses } => {
            for ours in prometheuses.iter().map(ToString::to_string) {
                let ours = ours.as_str();
                if let Some((name, why)) = rejected.iter().find(|(n, _)| n == ours) {
                    return rejection(name, why);
                }
                if !accepted.iter().any(|a| a == ours) {
                    return Opinion::Disagrees {
                        reason: reason::BINDING_DISAGREEMENT,
                        message: format!(
                            "the {kind} should be selected by Prometheus {ours}, but the Prometheus Operator's \
                             status.bindings names only {}",
                            names(&accepted, &rejected)
                        ),
                    };
                }
            }
            Opinion::Agrees
        }
        Verdict::NotSelected { reason, message } => match (accepted.as_slice(), rejected.first()) {
            ([], Some((name, why))) => rejection(name, why),
            _ => Opinion::Disagrees {
                reason: reason::BINDING_DISAGREEMENT,
                message: format!(
                    "this operator finds the {kind} not selected ({reason}: {message}), but the Prometheus \
                     Operator's status.bindings says {} accepted it",
                    accepted.join(", ")
                ),
            },
        },
    }
}

fn names(accepted: &[String], rejected: &[(String, String)]) -> String {
    let all: Vec<&str> = accepted
        .iter()
        .map(String::as_str)
        .chain(rejected.iter().map(|(n, _)| n.as_str()))
        .collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus_operator::{BindingCondition, WorkloadBinding};

    fn bound(name: &str, accepted: bool, generation: i64) -> WorkloadBinding {
        WorkloadBinding {
            group: GROUP.into(),
            resource: "prometheuses".into(),
            name: name.into(),
            namespace: "monitoring".into(),
            conditions: vec![BindingCondition {
                type_: "Accepted".into(),
                status: if accepted { "True" } else { "False" }.into(),
                reason: (!accepted).then(|| "InvalidConfiguration".into()),
                message: (!accepted).then(|| "relabeling is invalid".into()),
                observed_generation: Some(generation),
            }],
        }
    }

    fn status(bindings: Vec<WorkloadBinding>) -> ConfigResourceStatus {
        ConfigResourceStatus {
            bindings: Some(bindings),
        }
    }

    fn selected(p: &str) -> Verdict {
        let (namespace, name) = p.split_once('/').unwrap();
        Verdict::Selected {
            prometheuses: vec![super::super::verdict::PrometheusRef {
                namespace: namespace.into(),
                name: name.into(),
            }],
        }
    }

    #[test]
    fn no_bindings_means_nothing_to_compare() {
        let v = selected("monitoring/kps");
        assert_eq!(compare("ServiceMonitor", &v, None, Some(1)), Opinion::Silent);
        assert_eq!(
            compare("ServiceMonitor", &v, Some(&status(vec![])), Some(1)),
            Opinion::Silent
        );
        // Stale: about generation 1 while generation 2 is live.
        let stale = status(vec![bound("other", true, 1)]);
        assert_eq!(compare("ServiceMonitor", &v, Some(&stale), Some(2)), Opinion::Silent);
    }

    #[test]
    fn bindings_that_confirm() {
        let s = status(vec![bound("kps", true, 3)]);
        assert_eq!(
            compare("ServiceMonitor", &selected("monitoring/kps"), Some(&s), Some(3)),
            Opinion::Agrees
        );
    }

    #[test]
    fn a_rejection_is_reported_with_its_reason() {
        let s = status(vec![bound("kps", false, 1)]);
        let Opinion::Disagrees { reason, message } =
            compare("ServiceMonitor", &selected("monitoring/kps"), Some(&s), Some(1))
        else {
            panic!()
        };
        assert_eq!(reason, "Rejected");
        assert!(
            message.contains("InvalidConfiguration: relabeling is invalid"),
            "{message}"
        );
    }

    #[test]
    fn selected_by_another_prometheus_than_ours() {
        let s = status(vec![bound("other", true, 1)]);
        let Opinion::Disagrees { reason, message } =
            compare("PrometheusRule", &selected("monitoring/kps"), Some(&s), Some(1))
        else {
            panic!()
        };
        assert_eq!(reason, "BindingDisagreement");
        assert!(message.contains("names only monitoring/other"), "{message}");
    }

    #[test]
    fn accepted_although_we_found_it_not_selected() {
        let v = Verdict::NotSelected {
            reason: "LabelMismatch",
            message: "missing label release=kps".into(),
        };
        let s = status(vec![bound("kps", true, 1)]);
        let Opinion::Disagrees { reason, message } = compare("ServiceMonitor", &v, Some(&s), Some(1)) else {
            panic!()
        };
        assert_eq!(reason, "BindingDisagreement");
        assert!(
            message.contains("not selected (LabelMismatch: missing label release=kps)")
                && message.contains("monitoring/kps accepted it"),
            "{message}"
        );
    }
}

//! prometheus-operator's selection rules, exactly: a `Prometheus` selects a ServiceMonitor (or PrometheusRule) when
//! its object selector matches the object's labels and its namespace selector matches the object's namespace.
//! A null object selector selects nothing and an empty one everything; a null namespace selector means the
//! Prometheus' own namespace only, an empty one all namespaces.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

pub type Labels = BTreeMap<String, String>;

/// Whether `selector` selects an object labelled `labels` (null selects nothing, empty everything).
pub fn selects(selector: Option<&LabelSelector>, labels: &Labels) -> bool {
    selector.is_some_and(|s| mismatches(s, labels).is_empty())
}

/// Whether a Prometheus living in `prometheus_namespace` looks at `namespace` (labelled `namespace_labels`).
pub fn namespace_selected(
    selector: Option<&LabelSelector>,
    prometheus_namespace: &str,
    namespace: &str,
    namespace_labels: &Labels,
) -> bool {
    match selector {
        None => namespace == prometheus_namespace,
        Some(s) => mismatches(s, namespace_labels).is_empty(),
    }
}

/// Every requirement of `selector` that `labels` fails, in words a person can act on; empty when it matches.
pub fn mismatches(selector: &LabelSelector, labels: &Labels) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        match labels.get(k) {
            None => out.push(format!("missing label {k}={v}")),
            Some(have) if have != v => out.push(format!("label {k}={have} should be {k}={v}")),
            Some(_) => {}
        }
    }
    for r in selector.match_expressions.iter().flatten() {
        if let Some(problem) = requirement_problem(r, labels) {
            out.push(problem);
        }
    }
    out
}

fn requirement_problem(r: &LabelSelectorRequirement, labels: &Labels) -> Option<String> {
    let values = r.values.clone().unwrap_or_default();
    let have = labels.get(&r.key);
    let ok = match r.operator.as_str() {
        "In" => have.is_some_and(|v| values.contains(v)),
        // Kubernetes semantics: an absent key satisfies NotIn.
        "NotIn" => have.is_none_or(|v| !values.contains(v)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        other => return Some(format!("unknown selector operator {other:?} on {}", r.key)),
    };
    if ok {
        return None;
    }
    Some(match r.operator.as_str() {
        "In" => match have {
            None => format!("missing label {} (one of {})", r.key, values.join(", ")),
            Some(v) => format!("label {}={v} is not one of {}", r.key, values.join(", ")),
        },
        "NotIn" => format!("label {}={} is excluded ({})", r.key, have.unwrap(), values.join(", ")),
        "Exists" => format!("missing label {} (any value)", r.key),
        _ => format!("label {} must not be set", r.key),
    })
}

/// Labels that make `selector` select an object, when they can be known: `matchLabels`, and `In` requirements
/// with one value. `None` when the selector needs something no label set can give by adding labels (a null
/// selector, or requirements in conflict).
pub fn labels_to_add(selector: Option<&LabelSelector>) -> Option<Labels> {
    let selector = selector?;
    let mut labels: Labels = selector.match_labels.clone().unwrap_or_default();
    for r in selector.match_expressions.iter().flatten() {
        let values = r.values.clone().unwrap_or_default();
        match (r.operator.as_str(), values.as_slice()) {
            ("In", [only]) => {
                if labels.get(&r.key).is_some_and(|v| v != only) {
                    return None;
                }
                labels.insert(r.key.clone(), only.clone());
            }
            ("In", many) if labels.get(&r.key).is_some_and(|v| many.contains(v)) => {}
            ("In", [first, ..]) => {
                labels.insert(r.key.clone(), first.clone());
            }
            ("Exists", _) if !labels.contains_key(&r.key) => return None,
            _ => {}
        }
    }
    // What we add must satisfy the whole selector (a NotIn or DoesNotExist on a key we set is a conflict).
    mismatches(selector, &labels).is_empty().then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn selector(match_labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> LabelSelector {
        LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then(|| {
                exprs
                    .iter()
                    .map(|(k, op, vs)| LabelSelectorRequirement {
                        key: k.to_string(),
                        operator: op.to_string(),
                        values: (!vs.is_empty()).then(|| vs.iter().map(|v| v.to_string()).collect()),
                    })
                    .collect()
            }),
        }
    }

    #[test]
    fn null_selects_nothing_and_empty_selects_everything() {
        let l = labels(&[("release", "kps")]);
        assert!(!selects(None, &l));
        assert!(!selects(None, &Labels::new()));
        assert!(selects(Some(&LabelSelector::default()), &l));
        assert!(selects(Some(&LabelSelector::default()), &Labels::new()));
    }

    #[test]
    fn match_labels_and_every_operator() {
        let l = labels(&[("release", "kps"), ("team", "care")]);
        let cases: Vec<(LabelSelector, bool)> = vec![
            (selector(&[("release", "kps")], &[]), true),
            (selector(&[("release", "other")], &[]), false),
            (selector(&[("missing", "x")], &[]), false),
            (selector(&[], &[("team", "In", &["care", "ops"])]), true),
            (selector(&[], &[("team", "In", &["ops"])]), false),
            (selector(&[], &[("absent", "In", &["x"])]), false),
            (selector(&[], &[("team", "NotIn", &["ops"])]), true),
            (selector(&[], &[("team", "NotIn", &["care"])]), false),
            (selector(&[], &[("absent", "NotIn", &["x"])]), true),
            (selector(&[], &[("team", "Exists", &[])]), true),
            (selector(&[], &[("absent", "Exists", &[])]), false),
            (selector(&[], &[("absent", "DoesNotExist", &[])]), true),
            (selector(&[], &[("team", "DoesNotExist", &[])]), false),
            (
                selector(
                    &[("release", "kps")],
                    &[("team", "In", &["care"]), ("env", "DoesNotExist", &[])],
                ),
                true,
            ),
            (selector(&[], &[("team", "Gt", &["1"])]), false),
        ];
        for (i, (s, want)) in cases.iter().enumerate() {
            assert_eq!(selects(Some(s), &l), *want, "case {i}: {s:?}");
        }
    }

    #[test]
    fn null_namespace_selector_means_own_namespace_only() {
        let ns_labels = labels(&[("kubernetes.io/metadata.name", "shop")]);
        assert!(namespace_selected(None, "shop", "shop", &ns_labels));
        assert!(!namespace_selected(None, "monitoring", "shop", &ns_labels));
        assert!(namespace_selected(
            Some(&LabelSelector::default()),
            "monitoring",
            "shop",
            &ns_labels
        ));
        let by_name = selector(&[("kubernetes.io/metadata.name", "shop")], &[]);
        assert!(namespace_selected(Some(&by_name), "monitoring", "shop", &ns_labels));
        let other = selector(&[("kubernetes.io/metadata.name", "billing")], &[]);
        assert!(!namespace_selected(Some(&other), "monitoring", "shop", &ns_labels));
    }

    #[test]
    fn mismatches_name_what_to_fix() {
        let s = selector(
            &[("release", "kps")],
            &[("team", "In", &["care"]), ("env", "DoesNotExist", &[])],
        );
        let got = mismatches(&s, &labels(&[("release", "prom"), ("env", "prod")]));
        assert_eq!(
            got,
            [
                "label release=prom should be release=kps",
                "missing label team (one of care)",
                "label env must not be set",
            ]
        );
    }

    #[test]
    fn labels_to_add_satisfy_the_selector_or_say_none() {
        let s = selector(&[("release", "kps")], &[("tier", "In", &["gold"])]);
        let add = labels_to_add(Some(&s)).unwrap();
        assert_eq!(add, labels(&[("release", "kps"), ("tier", "gold")]));
        assert!(selects(Some(&s), &add));
        assert_eq!(labels_to_add(Some(&LabelSelector::default())), Some(Labels::new()));
        assert_eq!(
            labels_to_add(None),
            None,
            "a null selector selects nothing, whatever the labels"
        );
        let conflict = selector(&[("release", "kps")], &[("release", "NotIn", &["kps"])]);
        assert_eq!(labels_to_add(Some(&conflict)), None);
        let unknowable = selector(&[], &[("owner", "Exists", &[])]);
        assert_eq!(
            labels_to_add(Some(&unknowable)),
            None,
            "any value would do, but which is the user's call"
        );
    }
}

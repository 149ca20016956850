//! kube-apiserver's own count of the requests it served (`apiserver_request_total`), which is how these tests and
//! the benchmark tell what the operator asked of it without trusting the operator.

use std::collections::{BTreeMap, BTreeSet};

use chatbot_operator::rbac::{CLUSTER_WIDE, WATCHED_NAMESPACES};

/// One series of `apiserver_request_total`: who was asked what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub code: String,
}

impl Request {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION"
        )
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sub = if self.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", self.subresource)
        };
        write!(f, "{} {}{sub} {}", self.verb, self.resource, self.code)
    }
}

/// Every series of `apiserver_request_total` in a `/metrics` text, summed over the labels not kept.
pub fn counts(metrics: &str) -> BTreeMap<Request, f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_owned()
        };
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let key = Request {
            verb: label("verb"),
            resource: label("resource"),
            subresource: label("subresource"),
            code: label("code"),
        };
        *out.entry(key).or_default() += value;
    }
    out
}

/// What `after` counts beyond `before`, the series that grew only.
pub fn since(after: &BTreeMap<Request, f64>, before: &BTreeMap<Request, f64>) -> BTreeMap<Request, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// A sum of counters, without the `-0` of an empty float sum.
pub fn total<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    values.sum::<f64>() + 0.0
}

/// The resources (subresources folded into theirs) the operator may touch with any of `verbs`, from its own
/// permission list (`chatbot_operator::rbac`, which the chart grants): no list of kinds to keep in step by hand.
pub fn operator_resources(verbs: &[&str]) -> BTreeSet<&'static str> {
    WATCHED_NAMESPACES
        .iter()
        .chain(CLUSTER_WIDE)
        .filter(|p| p.verbs.iter().any(|v| verbs.contains(v)))
        .map(|p| p.resource.split('/').next().unwrap_or(p.resource))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_read_and_differenced() {
        let before = counts(
            "apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"deployments\",scope=\"resource\",subresource=\"\",verb=\"APPLY\",version=\"v1\"} 3\n",
        );
        let after = counts(
            "# HELP x\napiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"apps\",resource=\"deployments\",scope=\"resource\",subresource=\"\",verb=\"APPLY\",version=\"v1\"} 5\n",
        );
        let grown = since(&after, &before);
        let (key, value) = grown.iter().next().unwrap();
        assert_eq!((key.to_string(), *value), ("APPLY deployments 201".to_owned(), 2.0));
        assert!(key.is_write());
        assert_eq!(total(since(&before, &before).values()).to_string(), "0");
    }
}

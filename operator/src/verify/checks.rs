//! The checks of a resource against what a Prometheus answers, as pure functions of its HTTP API's JSON: is the
//! chatbot scraped, are its rules loaded and healthy, does every dashboard panel find the metrics it reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::status::{self, reason};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde::Serialize;
use serde_json::Value;

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Targets up out of those found (`Scraped` only): the `SCRAPED` column of `kubectl get cbm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    /// `Scraped`, `RulesLoaded`, `DashboardMetricsPresent`: also the status condition types.
    pub name: &'static str,
    pub ok: bool,
    /// A condition reason.
    pub reason: &'static str,
    pub message: String,
}

/// How many of a job's targets are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Targets {
    pub up: usize,
    pub total: usize,
}

impl std::fmt::Display for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.up, self.total)
    }
}

/// Which chatbot the checks are about.
#[derive(Debug, Clone)]
pub struct Subject {
    pub namespace: String,
    pub job: String,
}

/// The longest condition message a check gives (the API server allows 32768 characters; a person reads far fewer).
pub const MAX_MESSAGE: usize = 1024;
/// How many items of a list a message names, and how long each may be.
const LISTED: usize = 3;
const ITEM_CHARS: usize = 200;

/// `items` joined with "; ", the first few only and each cut short: Prometheus' answers (errors of many targets or
/// rules, or a hostile server's) must not make a condition message without bound.
fn listed(items: &[String]) -> String {
    let mut parts: Vec<String> = items.iter().take(LISTED).map(|i| cut(i, ITEM_CHARS)).collect();
    if items.len() > LISTED {
        parts.push(format!("and {} more", items.len() - LISTED));
    }
    cut(&parts.join("; "), MAX_MESSAGE - 100)
}

/// Prometheus lists targets in no fixed order: sorted, the same problems give the same message, and no status write.
fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

/// `/api/v1/targets`: the chatbot's targets (by job and namespace), "N/M up" and the last error of a down one.
pub fn scraped(targets: &Value, s: &Subject) -> Check {
    let ours: Vec<&Value> = targets["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["labels"]["namespace"] == s.namespace.as_str() && t["labels"]["job"] == s.job.as_str())
        .collect();
    let up = ours.iter().filter(|t| t["health"] == "up").count();
    let down: Vec<String> = ours
        .iter()
        .filter(|t| t["health"] != "up")
        .map(|t| {
            format!(
                "{} is {}: {}",
                t["scrapeUrl"].as_str().unwrap_or("?"),
                t["health"].as_str().unwrap_or("unknown"),
                t["lastError"]
                    .as_str()
                    .filter(|e| !e.is_empty())
                    .unwrap_or("no error reported yet")
            )
        })
        .collect();
    match (ours.len(), up) {
        (0, _) => Check {
            targets: Some(Targets { up: 0, total: 0 }),
            name: status::SCRAPED,
            ok: false,
            reason: reason::NO_TARGET,
            message: format!(
                "Prometheus has no target for job {:?} in namespace {:?}: the ServiceMonitor is not selected, or no pod runs",
                s.job, s.namespace
            ),
        },
        (n, up) if up == n => Check {
            targets: Some(Targets { up, total: n }),
            name: status::SCRAPED,
            ok: true,
            reason: reason::TARGETS_UP,
            message: format!("{up}/{n} up"),
        },
        (n, up) => Check {
            targets: Some(Targets { up, total: n }),
            name: status::SCRAPED,
            ok: false,
            reason: reason::TARGET_DOWN,
            message: format!("{up}/{n} up; {}", listed(&sorted(down))),
        },
    }
}

/// Whether `file` is the Prometheus Operator's rule file of our PrometheusRule: `<namespace>-<name>-<uid>.yaml`,
/// exactly, so that the rules of `bot-1` are not taken for those of `bot`.
fn operator_rule_file_of(file: &str, s: &Subject) -> bool {
    let base = file.rsplit('/').next().unwrap_or(file);
    base.strip_prefix(&format!("{}-{}-", s.namespace, s.job))
        .and_then(|rest| rest.strip_suffix(".yaml"))
        .is_some_and(|uid| uid.len() == 36 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
}

/// `/api/v1/rules`: the groups of the resource's rule file, all loaded and healthy; and the alerts firing now.
pub fn rules_loaded(rules: &Value, s: &Subject, expected_groups: &[String]) -> (Check, Vec<String>) {
    // The Prometheus Operator names rule files <namespace>-<PrometheusRule name>-<uid>.yaml; a plain Prometheus
    // (the demo) has whatever file it was given: match on the file when it names us, else on the group names.
    let groups: Vec<&Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| {
            let name = g["name"].as_str().unwrap_or("");
            let file = g["file"].as_str().unwrap_or("");
            expected_groups.iter().any(|e| e == name)
                // The Prometheus Operator's rule files live in /etc/prometheus/rules/prometheus-<name>-rulefiles-<n>/.
                && (operator_rule_file_of(file, s) || !file.contains("-rulefiles-"))
        })
        .collect();
    let found: BTreeSet<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    let missing: Vec<&String> = expected_groups.iter().filter(|e| !found.contains(e.as_str())).collect();
    let mut unhealthy = Vec::new();
    let mut firing = BTreeSet::new();
    for r in groups.iter().flat_map(|g| g["rules"].as_array().into_iter().flatten()) {
        if r["health"] != "ok" && r["health"] != "unknown" {
            unhealthy.push(format!(
                "{}: {}",
                r["name"].as_str().unwrap_or("?"),
                r["lastError"].as_str().unwrap_or("unhealthy")
            ));
        }
        if r["state"] == "firing" {
            firing.insert(r["name"].as_str().unwrap_or("?").to_owned());
        }
    }
    let check = if !missing.is_empty() {
        Check {
            targets: None,
            name: status::RULES_LOADED,
            ok: false,
            reason: reason::RULES_NOT_LOADED,
            message: format!(
                "{}/{} rule groups loaded; missing: {}",
                found.len(),
                expected_groups.len(),
                listed(&missing.iter().map(|m| m.to_string()).collect::<Vec<_>>())
            ),
        }
    } else if !unhealthy.is_empty() {
        Check {
            targets: None,
            name: status::RULES_LOADED,
            ok: false,
            reason: reason::RULE_UNHEALTHY,
            message: listed(&sorted(unhealthy)),
        }
    } else {
        Check {
            targets: None,
            name: status::RULES_LOADED,
            ok: true,
            reason: reason::LOADED,
            message: format!("{} rule groups loaded and healthy", found.len()),
        }
    };
    (check, firing.into_iter().collect())
}

/// A metric selector a panel query uses: the metric, and the labels it matches on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    pub panel: String,
    pub metric: String,
    /// Labels named by the selector's matchers (other than namespace and job, which scope it).
    pub labels: Vec<String>,
    pub text: String,
}

/// Every metric selector of every panel of a Grafana dashboard, with the variables substituted for the subject.
pub fn panel_selectors(dashboard: &Value, s: &Subject) -> Result<Vec<Selector>, String> {
    Ok(template_selectors(dashboard)?
        .iter()
        .map(|t| t.for_subject(s))
        .collect())
}

/// The selectors of a dashboard with `$namespace` and `$job` left in (they sit in label values, so the query still
/// parses): parsed once, then given to each resource by [`Selector::for_subject`], a string substitution.
pub fn template_selectors(dashboard: &Value) -> Result<Vec<Selector>, String> {
    let mut out = Vec::new();
    for (title, expr) in panel_queries(dashboard) {
        let expr = with_durations(&expr);
        let selectors = vector_selectors(&expr).map_err(|e| format!("panel {title:?}: {e}: {expr}"))?;
        for vs in selectors {
            let Some(metric) = vs.name.clone() else { continue };
            let labels: Vec<String> = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name != "namespace" && m.name != "job" && m.name != "__name__")
                // A negative matcher is satisfied by an absent label: it proves nothing about what exists.
                .filter(|m| matches!(m.op, MatchOp::Equal | MatchOp::Re(_)))
                .map(|m| m.name.clone())
                .collect();
            out.push(Selector {
                panel: title.clone(),
                metric,
                labels,
                text: vs.to_string(),
            });
        }
    }
    Ok(out)
}

/// (panel title, expression) of every query of every panel of a Grafana dashboard.
pub fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((title.to_owned(), expr.to_owned()));
            }
        }
    }
    out
}

/// Every vector selector of a PromQL expression (those inside range selectors too).
pub fn vector_selectors(expr: &str) -> Result<Vec<VectorSelector>, String> {
    struct Collect(Vec<VectorSelector>);
    impl ExprVisitor for Collect {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            match e {
                Expr::VectorSelector(vs) => self.0.push(vs.clone()),
                Expr::MatrixSelector(ms) => self.0.push(ms.vs.clone()),
                _ => {}
            }
            Ok(true)
        }
    }
    let ast = parser::parse(expr)?;
    let mut c = Collect(Vec::new());
    walk_expr(&mut c, &ast).expect("collecting cannot fail");
    Ok(c.0)
}

/// The metric names a PromQL expression reads.
pub fn expr_metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    Ok(vector_selectors(expr)?.into_iter().filter_map(|vs| vs.name).collect())
}

/// Grafana's variables, for this resource's chatbot.
pub fn substitute(expr: &str, s: &Subject) -> String {
    with_durations(expr)
        .replace("$namespace", &s.namespace)
        .replace("$job", &s.job)
}

/// Grafana's duration variables, which PromQL cannot parse as they are.
fn with_durations(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
}

impl Selector {
    /// This template selector, for one resource's chatbot.
    pub fn for_subject(&self, s: &Subject) -> Selector {
        Selector {
            text: substitute(&self.text, s),
            ..self.clone()
        }
    }
}

/// Metrics the chatbot exposes only where they mean something, which a panel may read without their absence being
/// a fault: `memory_limit_bytes` exists only under a memory limit.
pub const CONDITIONAL: &[&str] = &["memory_limit_bytes"];

/// `/api/v1/series` answers for this chatbot's metrics → which metric and label names exist.
pub fn exposed(series: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in series.as_array().into_iter().flatten() {
        let Some(map) = s.as_object() else { continue };
        let Some(name) = map.get("__name__").and_then(Value::as_str) else {
            continue;
        };
        out.entry(name.to_owned()).or_default().extend(map.keys().cloned());
    }
    out
}

/// Every selector finds its metric, with every label it names, for this chatbot (as cloudflare's pint checks):
/// a 5xx filter that matches nothing today is fine; a metric or label the chatbot never exposes is not.
pub fn dashboard_metrics(selectors: &[Selector], exposed: &BTreeMap<String, BTreeSet<String>>) -> Check {
    // Series Prometheus itself makes: `up` for every target, ALERTS for rules.
    let synthetic = ["up", "ALERTS", "ALERTS_FOR_STATE"];
    let mut problems = BTreeSet::new();
    let checked = |s: &&Selector| !synthetic.contains(&s.metric.as_str()) && !CONDITIONAL.contains(&s.metric.as_str());
    for sel in selectors.iter().filter(checked) {
        match exposed.get(&sel.metric) {
            None => {
                problems.insert(format!(
                    "panel {:?}: {} finds no series ({} is not exposed)",
                    sel.panel, sel.text, sel.metric
                ));
            }
            Some(labels) => {
                for l in sel.labels.iter().filter(|l| !labels.contains(*l)) {
                    problems.insert(format!(
                        "panel {:?}: {} uses label {l}, which {} never has",
                        sel.panel, sel.text, sel.metric
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Check {
            targets: None,
            name: status::DASHBOARD_METRICS_PRESENT,
            ok: true,
            reason: reason::METRICS_PRESENT,
            message: format!("{} panel selectors find their metrics", selectors.len()),
        }
    } else {
        Check {
            targets: None,
            name: status::DASHBOARD_METRICS_PRESENT,
            ok: false,
            reason: reason::METRICS_MISSING,
            message: listed(&problems.into_iter().collect::<Vec<_>>()),
        }
    }
}

/// The metric names a set of selectors reads, for one batched `/api/v1/series` request.
pub fn metric_names(selectors: &[Selector]) -> BTreeSet<String> {
    selectors.iter().map(|s| s.metric.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject() -> Subject {
        Subject {
            namespace: "shop".into(),
            job: "sav".into(),
        }
    }

    /// What Prometheus says goes into a condition message: 200 replicas down with long errors (or a hostile answer)
    /// must still give a message a person reads, far under the API server's 32768-character limit.
    #[test]
    fn messages_stay_short_whatever_prometheus_answers() {
        let long = "e".repeat(5000);
        let targets: Vec<Value> = (0..200)
            .map(|i| {
                json!({"labels": {"namespace": "shop", "job": "sav"}, "health": "down",
                       "scrapeUrl": format!("http://10.0.0.{i}:8081/metrics"), "lastError": long})
            })
            .collect();
        let check = scraped(&json!({ "activeTargets": targets }), &subject());
        assert_eq!(check.reason, "TargetDown");
        assert!(check.message.chars().count() <= MAX_MESSAGE, "{}", check.message.len());
        assert!(
            check
                .message
                .starts_with("0/200 up; http://10.0.0.0:8081/metrics is down: eee"),
            "{}",
            check.message
        );
        assert!(check.message.ends_with("and 197 more"), "{}", check.message);

        let rules: Vec<Value> = (0..500)
            .map(|i| json!({"name": format!("R{i}"), "health": "err", "lastError": long}))
            .collect();
        let answer = json!({"groups": [{"name": "g", "file": "x.yaml", "rules": rules}]});
        let (check, _) = rules_loaded(&answer, &subject(), &["g".to_owned()]);
        assert_eq!(check.reason, "RuleUnhealthy");
        assert!(check.message.chars().count() <= MAX_MESSAGE, "{}", check.message.len());
    }

    #[test]
    fn scraped_counts_our_targets_only() {
        let targets = json!({"activeTargets": [
            {"labels": {"namespace": "shop", "job": "sav"}, "health": "up", "scrapeUrl": "http://10.0.0.1:8000/metrics"},
            {"labels": {"namespace": "shop", "job": "sav"}, "health": "down", "scrapeUrl": "http://10.0.0.2:8000/metrics",
             "lastError": "connection refused"},
            {"labels": {"namespace": "other", "job": "sav"}, "health": "up"},
        ]});
        let c = scraped(&targets, &subject());
        assert!(!c.ok);
        assert_eq!(c.reason, "TargetDown");
        assert_eq!(
            c.message,
            "1/2 up; http://10.0.0.2:8000/metrics is down: connection refused"
        );
        assert_eq!(c.targets, Some(Targets { up: 1, total: 2 }));
        let none = scraped(&json!({"activeTargets": []}), &subject());
        assert_eq!((none.ok, none.reason), (false, "NoTarget"));
        // The SCRAPED column once showed this message's first word ("Prometheus"): it is a count.
        assert_eq!(none.targets.map(|t| t.to_string()).as_deref(), Some("0/0"));
    }

    const DIR: &str = "/etc/prometheus/rules/prometheus-kps-rulefiles-0";
    const UID: &str = "5e1f7a2c-0000-4000-8000-000000000001";

    #[test]
    fn rules_missing_unhealthy_and_firing() {
        let expected = vec!["chatbot-sav.http".to_owned(), "chatbot-sav.slo".to_owned()];
        let rules = json!({"groups": [
            {"name": "chatbot-sav.http", "file": format!("{DIR}/shop-sav-{UID}.yaml"),
             "rules": [{"name": "HighErrorRate", "health": "ok", "state": "firing"}]},
            {"name": "chatbot-sav.slo", "file": format!("{DIR}/billing-sav-{UID}.yaml"), "rules": []},
            // The rules of shop/sav-2: same group names, not ours.
            {"name": "chatbot-sav.slo", "file": format!("{DIR}/shop-sav-2-{UID}.yaml"),
             "rules": [{"name": "ErrorBudgetBurnFast", "health": "ok", "state": "firing"}]},
        ]});
        let (c, firing) = rules_loaded(&rules, &subject(), &expected);
        assert_eq!(
            (c.ok, c.reason),
            (false, "RulesNotLoaded"),
            "another namespace's group is not ours"
        );
        assert!(c.message.contains("missing: chatbot-sav.slo"), "{}", c.message);
        assert_eq!(firing, ["HighErrorRate"]);
    }

    #[test]
    fn panel_selectors_are_checked_by_metric_and_label() {
        let dashboard = json!({"panels": [{"title": "Errors", "targets": [{"expr":
            "sum(rate(http_requests_total{namespace=\"$namespace\", job=\"$job\", status=~\"5..\"}[$__rate_interval])) / sum(rate(nope_total{namespace=\"$namespace\", job=\"$job\", tier=\"x\"}[5m]))"}]}]});
        let selectors = panel_selectors(&dashboard, &subject()).unwrap();
        assert_eq!(selectors.len(), 2);
        assert_eq!(selectors[0].labels, ["status"]);
        let series = json!([{"__name__": "http_requests_total", "namespace": "shop", "job": "sav", "status": "200"}]);
        let c = dashboard_metrics(&selectors, &exposed(&series));
        assert!(!c.ok);
        assert!(
            c.message.contains("nope_total is not exposed") && c.message.contains("\"Errors\""),
            "{}",
            c.message
        );
        assert!(
            !c.message.contains("status"),
            "a label that exists, with no 5xx today, is fine"
        );
    }
}

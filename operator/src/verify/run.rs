//! One verification round for one resource: the three HTTP calls and the checks on their answers.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::checks::{self, Check, Selector, Subject};
use super::prometheus_api::PrometheusApi;
use crate::render::{DASHBOARDS, Desired, PanelSet, with_panels};
use crate::status::{self, reason};

/// The selectors of the shipped dashboards for each panel set (in the order of [`PanelSet::ALL`]), parsed once per
/// process: PromQL parsing is most of a round's CPU.
static SHIPPED_SELECTORS: LazyLock<Vec<Vec<Selector>>> = LazyLock::new(|| {
    PanelSet::ALL
        .iter()
        .map(|set| {
            DASHBOARDS
                .iter()
                .flat_map(|(_, text)| {
                    checks::template_selectors(&with_panels(text, *set)).expect("shipped dashboards parse")
                })
                .collect()
        })
        .collect()
});

/// The selectors of the panels a resource's dashboards hold.
fn shipped_selectors(desired: &Desired) -> &'static [Selector] {
    &SHIPPED_SELECTORS[desired.dashboard_panels.index()]
}

/// The outcome of a round: every check, and the resource's alerts firing now.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub firing_alerts: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn unavailable(name: &'static str, e: impl std::fmt::Display) -> Check {
    Check {
        targets: None,
        name,
        ok: false,
        reason: reason::PROMETHEUS_UNAVAILABLE,
        message: e.to_string(),
    }
}

/// The checks of `desired` when its Prometheus cannot be asked at all: each says why.
pub fn unreachable(desired: &Desired, why: &str) -> Report {
    let mut checks = Vec::new();
    if desired.service_monitor.is_some() {
        checks.push(unavailable(status::SCRAPED, why));
    }
    if desired.prometheus_rule.is_some() {
        checks.push(unavailable(status::RULES_LOADED, why));
    }
    if !desired.dashboards.is_empty() {
        checks.push(unavailable(status::DASHBOARD_METRICS_PRESENT, why));
    }
    Report {
        checks,
        firing_alerts: Vec::new(),
    }
}

/// What every resource checked against one Prometheus shares in a round: its targets and its rules, fetched once.
#[derive(Debug, Clone)]
pub struct Shared {
    pub targets: Result<Value, String>,
    pub rules: Result<Value, String>,
}

/// Fetches the answers shared by every resource of a Prometheus.
pub async fn fetch_shared(api: &PrometheusApi) -> Shared {
    let active = [("state", "active".to_owned())];
    let (targets, rules) = tokio::join!(api.get("targets", &active), api.get("rules", &[]));
    Shared {
        targets: targets.map_err(|e| e.to_string()),
        rules: rules.map_err(|e| e.to_string()),
    }
}

/// Runs every check of `desired` against the Prometheus behind `api`.
pub async fn verify(desired: &Desired, api: &PrometheusApi) -> Report {
    verify_with(desired, &fetch_shared(api).await, api).await
}

/// The checks of one resource, given the round's shared answers: one more request, for its dashboards' series.
pub async fn verify_with(desired: &Desired, shared: &Shared, api: &PrometheusApi) -> Report {
    let subject = Subject {
        namespace: desired.service.metadata.namespace.clone().unwrap_or_default(),
        job: desired.service.metadata.name.clone().unwrap_or_default(),
    };
    let mut report = Report {
        checks: Vec::new(),
        firing_alerts: Vec::new(),
    };
    if desired.service_monitor.is_some() {
        report.checks.push(match &shared.targets {
            Ok(targets) => checks::scraped(targets, &subject),
            Err(e) => unavailable(status::SCRAPED, e),
        });
    }
    if let Some(rule) = &desired.prometheus_rule {
        let expected: Vec<String> = rule.spec.groups.iter().map(|g| g.name.clone()).collect();
        report.checks.push(match &shared.rules {
            Ok(rules) => {
                let (check, firing) = checks::rules_loaded(rules, &subject, &expected);
                report.firing_alerts = firing;
                check
            }
            Err(e) => unavailable(status::RULES_LOADED, e),
        });
    }
    if !desired.dashboards.is_empty() {
        let selectors: Vec<Selector> = shipped_selectors(desired)
            .iter()
            .map(|t| t.for_subject(&subject))
            .collect();
        let names: Vec<String> = checks::metric_names(&selectors).into_iter().collect();
        let matcher = format!(
            "{{__name__=~\"{}\", namespace=\"{}\", job=\"{}\"}}",
            names.join("|"),
            subject.namespace,
            subject.job
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let query = [("match[]", matcher), ("start", (now.saturating_sub(3600)).to_string())];
        report.checks.push(match api.get("series", &query).await {
            Ok(series) => checks::dashboard_metrics(&selectors, &checks::exposed(&series)),
            Err(e) => unavailable(status::DASHBOARD_METRICS_PRESENT, e),
        });
    }
    report
}

/// The report as a table a person reads: one row per check.
pub fn table(report: &Report) -> String {
    let mut out = format!("{:<26} {:<7} {}\n", "CHECK", "RESULT", "DETAIL");
    for c in &report.checks {
        out.push_str(&format!(
            "{:<26} {:<7} {}: {}\n",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.reason,
            c.message
        ));
    }
    if !report.firing_alerts.is_empty() {
        out.push_str(&format!("firing alerts: {}\n", report.firing_alerts.join(", ")));
    }
    out
}

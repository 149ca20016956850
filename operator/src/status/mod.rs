//! What the status should say, from what the reconcile observed: pure, so every condition is tested without a
//! cluster. A condition keeps its `lastTransitionTime` while its status does not change, so an unchanged resource
//! gets an identical status and no write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{ChatbotMonitoringStatus, Children};

pub const READY: &str = "Ready";
pub const DEPLOYMENT_READY: &str = "DeploymentReady";
pub const SERVICE_READY: &str = "ServiceReady";
pub const SERVICE_MONITOR_READY: &str = "ServiceMonitorReady";
pub const PROMETHEUS_RULE_READY: &str = "PrometheusRuleReady";
pub const DASHBOARDS_READY: &str = "DashboardsReady";
pub const NETWORK_POLICY_READY: &str = "NetworkPolicyReady";
pub const ALERTMANAGER_CONFIG_READY: &str = "AlertmanagerConfigReady";
pub const SELECTED: &str = "Selected";
pub const SCRAPED: &str = "Scraped";
pub const RULES_LOADED: &str = "RulesLoaded";
pub const DASHBOARD_METRICS_PRESENT: &str = "DashboardMetricsPresent";
/// An Alertmanager loaded the AlertmanagerConfig and the Prometheus sends it the alerts.
pub const ROUTED: &str = "Routed";
/// Conditions whose every transition is told in an event (`kubectl describe cbm` tells the story).
pub const ANNOUNCED: &[&str] = &[
    READY,
    SELECTED,
    SCRAPED,
    RULES_LOADED,
    DASHBOARD_METRICS_PRESENT,
    ROUTED,
];

pub mod pods;
pub mod reason;

/// How one part (a child kind) ended in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Applied and, where that means something, healthy.
    Ready { reason: &'static str, message: String },
    /// Applied but not there yet (pods starting).
    Progressing { message: String },
    /// A verification check not passed yet, while Prometheus may still be loading a change (`Pending`).
    Pending { message: String },
    /// Switched off in the spec; not counted against `Ready`.
    Disabled,
    /// Could not be applied, with a reason and a message.
    Failed { reason: &'static str, message: String },
}

/// Everything the status is computed from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub generation: Option<i64>,
    /// (condition type, outcome), one per child kind, in display order.
    pub parts: Vec<(&'static str, Part)>,
    pub desired_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub alert_rules: Option<i32>,
    pub dashboards: Option<i32>,
    pub scraped: Option<String>,
    pub firing_alerts: Vec<String>,
    pub children: Children,
}

/// The status for `observed`, reusing `previous` transition times where a condition's status is unchanged.
pub fn status_from(
    observed: &Observed,
    previous: Option<&ChatbotMonitoringStatus>,
    now: Timestamp,
) -> ChatbotMonitoringStatus {
    let mut conditions: Vec<Condition> = observed
        .parts
        .iter()
        .map(|(type_, part)| part_condition(type_, part, observed.generation, previous, now))
        .collect();
    let replicas = observed
        .desired_replicas
        .map(|d| (observed.ready_replicas.unwrap_or(0), d));
    let summary = summary(replicas, observed.alert_rules, observed.dashboards);
    conditions.insert(0, ready_of(&conditions, summary, observed.generation, previous, now));

    ChatbotMonitoringStatus {
        observed_generation: observed.generation,
        conditions,
        replicas: replicas.map(|(r, d)| format!("{r}/{d}")),
        ready_replicas: observed.ready_replicas,
        alert_rules: observed.alert_rules,
        dashboards: observed.dashboards,
        scraped: observed.scraped.clone(),
        firing_alerts: observed.firing_alerts.clone(),
        children: Some(observed.children.clone()),
    }
}

/// Conditions that a verification round sets, settled resource or not.
pub const VERIFICATION: &[&str] = &[SCRAPED, RULES_LOADED, DASHBOARD_METRICS_PRESENT, ROUTED];

/// The status of a settled resource, whose children were not read again: their conditions as `previous` has them
/// (what the settling pass published), this round's verification, and `Ready` from both. For the same world it is
/// exactly what `status_from` gives.
pub fn settled_status(
    previous: &ChatbotMonitoringStatus,
    verification: &[(&'static str, Part)],
    scraped: Option<String>,
    firing_alerts: Vec<String>,
    now: Timestamp,
) -> ChatbotMonitoringStatus {
    let generation = previous.observed_generation;
    let mut conditions: Vec<Condition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != READY && !VERIFICATION.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    conditions.extend(
        verification
            .iter()
            .map(|(type_, part)| part_condition(type_, part, generation, Some(previous), now)),
    );
    let replicas = previous.ready_replicas.zip(
        previous
            .replicas
            .as_deref()
            .and_then(|r| r.split_once('/')?.1.parse().ok()),
    );
    let summary = summary(replicas, previous.alert_rules, previous.dashboards);
    conditions.insert(0, ready_of(&conditions, summary, generation, Some(previous), now));
    ChatbotMonitoringStatus {
        conditions,
        scraped,
        firing_alerts,
        ..previous.clone()
    }
}

/// What a settled resource's status says of its children; a settled resource is answered from its status only
/// while this is what the settling pass published (a stale or edited status is read again in full).
pub fn children_fingerprint(status: &ChatbotMonitoringStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in status
        .conditions
        .iter()
        .filter(|c| c.type_ != READY && !VERIFICATION.contains(&c.type_.as_str()))
    {
        (&c.type_, &c.status, &c.reason, &c.message, c.observed_generation).hash(&mut h);
    }
    (
        status.observed_generation,
        &status.replicas,
        status.ready_replicas,
        status.alert_rules,
        status.dashboards,
    )
        .hash(&mut h);
    serde_json::to_string(&status.children).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn part_condition(
    type_: &str,
    part: &Part,
    generation: Option<i64>,
    previous: Option<&ChatbotMonitoringStatus>,
    now: Timestamp,
) -> Condition {
    let (status, reason, message) = match part {
        Part::Ready { reason, message } => ("True", *reason, message.clone()),
        Part::Progressing { message } => ("False", reason::PROGRESSING, message.clone()),
        Part::Pending { message } => ("False", reason::PENDING, message.clone()),
        Part::Disabled => (
            "False",
            reason::DISABLED,
            format!("{} is disabled in the spec", child_of(type_)),
        ),
        Part::Failed { reason, message } => ("False", *reason, message.clone()),
    };
    condition(type_, status, reason, message, generation, previous, now)
}

/// `Ready`: False with the first condition that is neither True nor disabled, True with `summary` otherwise.
fn ready_of(
    conditions: &[Condition],
    summary: String,
    generation: Option<i64>,
    previous: Option<&ChatbotMonitoringStatus>,
    now: Timestamp,
) -> Condition {
    let failing = conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .find(|c| c.status != "True" && c.reason != reason::DISABLED);
    match failing {
        None => condition(READY, "True", reason::RECONCILED, summary, generation, previous, now),
        Some(c) => condition(
            READY,
            "False",
            &c.reason,
            format!("{}: {}", child_of(&c.type_), c.message),
            generation,
            previous,
            now,
        ),
    }
}

/// `previous` with `Ready` turned False for a failure that stopped the reconcile; the child conditions keep what
/// was last observed. Unchanged (same transition time) when the same failure repeats.
pub fn with_failure(
    previous: Option<&ChatbotMonitoringStatus>,
    generation: Option<i64>,
    reason: &'static str,
    message: &str,
    now: Timestamp,
) -> ChatbotMonitoringStatus {
    let mut new = previous.cloned().unwrap_or_default();
    let ready = condition(READY, "False", reason, message.to_owned(), generation, previous, now);
    new.conditions.retain(|c| c.type_ != READY);
    new.conditions.insert(0, ready);
    new.observed_generation = generation;
    new
}

/// The `Ready` condition of a status, if any.
pub fn ready(status: Option<&ChatbotMonitoringStatus>) -> Option<&Condition> {
    status?.conditions.iter().find(|c| c.type_ == READY)
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&ChatbotMonitoringStatus>,
    now: Timestamp,
) -> Condition {
    let same = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status);
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: same.map(|c| c.last_transition_time.clone()).unwrap_or(Time(now)),
    }
}

fn child_of(condition_type: &str) -> &str {
    condition_type.strip_suffix("Ready").unwrap_or(condition_type)
}

fn summary(replicas: Option<(i32, i32)>, alert_rules: Option<i32>, dashboards: Option<i32>) -> String {
    let mut parts = Vec::new();
    if let Some((r, d)) = replicas {
        parts.push(format!("{r}/{d} chatbot pods ready"));
    }
    if let Some(n) = alert_rules {
        parts.push(format!("{n} alerting rules"));
    }
    if let Some(n) = dashboards {
        parts.push(format!("{n} dashboard(s)"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn observed(parts: Vec<(&'static str, Part)>) -> Observed {
        Observed {
            generation: Some(3),
            parts,
            desired_replicas: Some(2),
            ready_replicas: Some(2),
            alert_rules: Some(11),
            dashboards: Some(1),
            scraped: None,
            firing_alerts: vec![],
            children: Children::default(),
        }
    }

    fn applied() -> Part {
        Part::Ready {
            reason: reason::APPLIED,
            message: "applied".into(),
        }
    }

    #[test]
    fn all_parts_ready_makes_the_resource_ready() {
        let s = status_from(
            &observed(vec![
                (DEPLOYMENT_READY, applied()),
                (SERVICE_MONITOR_READY, Part::Disabled),
            ]),
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let r = ready(Some(&s)).unwrap();
        assert_eq!((r.status.as_str(), r.reason.as_str()), ("True", "Reconciled"));
        assert_eq!(r.message, "2/2 chatbot pods ready, 11 alerting rules, 1 dashboard(s)");
        assert_eq!(r.observed_generation, Some(3));
        assert_eq!(s.replicas.as_deref(), Some("2/2"));
        let sm = &s.conditions[2];
        assert_eq!(
            (sm.type_.as_str(), sm.status.as_str(), sm.reason.as_str()),
            (SERVICE_MONITOR_READY, "False", "Disabled")
        );
    }

    #[test]
    fn the_first_failing_part_explains_not_ready() {
        let s = status_from(
            &observed(vec![
                (DEPLOYMENT_READY, applied()),
                (
                    SERVICE_MONITOR_READY,
                    Part::Failed {
                        reason: reason::PROMETHEUS_OPERATOR_MISSING,
                        message: "no ServiceMonitor CRD".into(),
                    },
                ),
            ]),
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let r = ready(Some(&s)).unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "PrometheusOperatorMissing")
        );
        assert_eq!(r.message, "ServiceMonitor: no ServiceMonitor CRD");
    }

    #[test]
    fn a_repeated_failure_leaves_the_status_unchanged() {
        let first = with_failure(
            None,
            Some(1),
            reason::SECRET_MISSING,
            "no secret",
            t("2026-01-01T00:00:00Z"),
        );
        let r = ready(Some(&first)).unwrap();
        assert_eq!((r.status.as_str(), r.reason.as_str()), ("False", "SecretMissing"));
        let again = with_failure(
            Some(&first),
            Some(1),
            reason::SECRET_MISSING,
            "no secret",
            t("2026-01-01T00:05:00Z"),
        );
        assert_eq!(again, first);
    }

    #[test]
    fn transition_times_move_only_on_a_status_change() {
        let o = observed(vec![(DEPLOYMENT_READY, applied())]);
        let first = status_from(&o, None, t("2026-01-01T00:00:00Z"));
        let again = status_from(&o, Some(&first), t("2026-01-01T01:00:00Z"));
        assert_eq!(again, first, "an unchanged world gives an identical status");

        let o2 = observed(vec![(
            DEPLOYMENT_READY,
            Part::Progressing {
                message: "1/2 pods ready".into(),
            },
        )]);
        let changed = status_from(&o2, Some(&first), t("2026-01-01T02:00:00Z"));
        assert_eq!(
            changed.conditions[0].last_transition_time,
            Time(t("2026-01-01T02:00:00Z"))
        );
        assert_eq!(changed.conditions[0].reason, "Progressing");
    }

    #[test]
    fn a_settled_status_is_what_a_full_pass_would_publish() {
        let scraped = |up: bool| {
            if up {
                Part::Ready {
                    reason: "TargetsUp",
                    message: "1/1 up".into(),
                }
            } else {
                Part::Failed {
                    reason: "TargetDown",
                    message: "0/1 up".into(),
                }
            }
        };
        let with = |up: bool| {
            let mut o = observed(vec![
                (DEPLOYMENT_READY, applied()),
                (SERVICE_MONITOR_READY, Part::Disabled),
            ]);
            o.parts.push((SCRAPED, scraped(up)));
            o.scraped = Some(if up { "1/1" } else { "0/1" }.into());
            o
        };
        let first = status_from(&with(true), None, t("2026-01-01T00:00:00Z"));
        assert_eq!(
            settled_status(
                &first,
                &[(SCRAPED, scraped(true))],
                Some("1/1".into()),
                vec![],
                t("2026-01-01T01:00:00Z")
            ),
            first,
            "nothing changed: the same status, so no write"
        );
        let later = t("2026-01-01T02:00:00Z");
        let settled = settled_status(&first, &[(SCRAPED, scraped(false))], Some("0/1".into()), vec![], later);
        assert_eq!(settled, status_from(&with(false), Some(&first), later));
        assert_eq!(ready(Some(&settled)).unwrap().reason, "TargetDown");
        assert_eq!(children_fingerprint(&settled), children_fingerprint(&first));

        let mut edited = first.clone();
        edited.conditions[1].message = "changed by someone else".into();
        assert_ne!(children_fingerprint(&edited), children_fingerprint(&first));
    }
}

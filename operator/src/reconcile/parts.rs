//! The status entry of each child, from what was applied and what is live (pure).

use std::time::Duration;

use crate::crd::NotificationsSpec;
use crate::render;
use crate::selection::alertmanager::Routing;
use crate::selection::label_selector::Labels;
use crate::selection::operator_opinion::Opinion;
use crate::selection::verdict::{PrometheusRef, Verdict, joined};
use crate::status::pods::PodProblem;
use crate::status::{Part, reason};

/// The Deployment: ready once every desired pod is; failed while a pod is stuck (`problem`, from the pods).
pub fn deployment(ready: i32, want: i32, problem: Option<PodProblem>) -> Part {
    let message = format!("{ready}/{want} pods ready");
    match problem {
        _ if ready >= want => Part::Ready {
            reason: reason::AVAILABLE,
            message,
        },
        Some(p) => Part::Failed {
            reason: p.reason,
            message: format!("{message}; {}", p.message),
        },
        None => Part::Progressing { message },
    }
}

pub fn service() -> Part {
    Part::Ready {
        reason: reason::APPLIED,
        message: format!(
            "port {} serves the API, port {} /metrics and the probes",
            render::PORT_NAME,
            render::METRICS_PORT_NAME
        ),
    }
}

pub fn service_monitor(interval: &str) -> Part {
    Part::Ready {
        reason: reason::APPLIED,
        message: format!("scraped every {interval}"),
    }
}

pub fn prometheus_rule(alerting_rules: usize) -> Part {
    Part::Ready {
        reason: reason::APPLIED,
        message: format!("{alerting_rules} alerting rules"),
    }
}

pub fn dashboards(config_maps: usize) -> Part {
    Part::Ready {
        reason: reason::APPLIED,
        message: format!("{config_maps} dashboard ConfigMap(s) for the Grafana sidecar"),
    }
}

/// The NetworkPolicy: which Prometheus servers its metrics port admits (`scrapers`), and how many other sources each
/// port admits. A metrics port that admits no one is a failure: nothing can scrape the chatbot.
pub fn network_policy(
    scrapers: &[PrometheusRef],
    other_metrics_sources: usize,
    api_sources: usize,
    monitored: bool,
) -> Part {
    let api = format!("the API port admits {api_sources} source(s)");
    if scrapers.is_empty() && other_metrics_sources == 0 && !monitored {
        // Monitoring switched off: a closed metrics port is what was asked for.
        return Part::Ready {
            reason: reason::APPLIED,
            message: format!("the metrics port admits no one (monitoring is off); {api}"),
        };
    }
    if scrapers.is_empty() && other_metrics_sources == 0 {
        return Part::Failed {
            reason: reason::NO_SCRAPER_ADMITTED,
            message: format!(
                "no Prometheus is known to select this resource and networkPolicy.metricsFrom is empty, so the \
                 metrics port admits no one; {api}"
            ),
        };
    }
    let mut metrics = Vec::new();
    if !scrapers.is_empty() {
        metrics.push(format!("the pods of Prometheus {}", joined(scrapers)));
    }
    if other_metrics_sources > 0 {
        metrics.push(format!(
            "{other_metrics_sources} source(s) of networkPolicy.metricsFrom"
        ));
    }
    Part::Ready {
        reason: reason::APPLIED,
        message: format!("the metrics port admits {}; {api}", metrics.join(" and ")),
    }
}

/// The AlertmanagerConfig: where each severity goes.
pub fn alertmanager_config(n: &NotificationsSpec) -> Part {
    let routes: Vec<String> = n
        .routes
        .by_severity()
        .into_iter()
        .map(|(severity, receivers)| match receivers {
            [] => format!("{severity} to no one"),
            _ => format!("{severity} to {}", receivers.join(", ")),
        })
        .collect();
    Part::Ready {
        reason: reason::APPLIED,
        message: format!(
            "{} receiver(s); {}; inhibitions {}",
            n.receivers.len(),
            routes.join("; "),
            if n.inhibit { "on" } else { "off" }
        ),
    }
}

/// The AlertmanagerConfig kind (monitoring.coreos.com/v1alpha1) is not served.
pub fn alertmanager_config_kind_missing() -> Part {
    Part::Failed {
        reason: reason::PROMETHEUS_OPERATOR_MISSING,
        message: "the monitoring.coreos.com/v1alpha1 AlertmanagerConfig kind is not served: install the Prometheus \
                  Operator (kube-prometheus-stack); notifications are applied as soon as it is"
            .into(),
    }
}

/// `Routed` from selection alone (verification rounds then check what the Alertmanager loaded), and the
/// Alertmanagers that select the AlertmanagerConfig.
pub fn routing(routing: Routing, added: &Labels) -> (Part, Vec<PrometheusRef>) {
    match routing {
        Routing::NotChecked => (Part::Disabled, Vec::new()),
        Routing::NotSelected { reason, message } => (Part::Failed { reason, message }, Vec::new()),
        Routing::Selected { alertmanagers } => {
            let mut message = format!("selected by Alertmanager {}", joined(&alertmanagers));
            if !added.is_empty() {
                let added: Vec<String> = added.iter().map(|(k, v)| format!("{k}={v}")).collect();
                message.push_str(&format!(" (labels added: {})", added.join(", ")));
            }
            let part = Part::Ready {
                reason: reason::SELECTED,
                message,
            };
            (part, alertmanagers)
        }
    }
}

/// A child whose name an object of someone else's already has: it is left alone, and this part waits.
pub fn name_taken(kind: &str, namespace: &str, name: &str, switch: &str) -> Part {
    Part::Failed {
        reason: reason::NAME_TAKEN,
        message: format!(
            "{kind} {namespace}/{name} exists and is not this resource's, so it is left alone: rename it, or set \
             {switch} to false"
        ),
    }
}

/// A part that needs the Prometheus Operator's kinds, which the cluster does not serve.
pub fn prometheus_operator_missing() -> Part {
    Part::Failed {
        reason: reason::PROMETHEUS_OPERATOR_MISSING,
        message: "the monitoring.coreos.com/v1 API is not served: install the Prometheus Operator \
                  (kube-prometheus-stack); this part is applied as soon as it is"
            .into(),
    }
}

/// `Selected`: the verdict, unless the Prometheus Operator's bindings disagree with it (they are reported first: one of
/// the two views is wrong and a person must look), or the ServiceMonitor's endpoint cannot reach the pods
/// (`port_problems`).
pub fn selected(verdict: Verdict, added: &Labels, port_problems: &[String], opinions: &[Opinion]) -> Part {
    if let Some(Opinion::Disagrees { reason, message }) =
        opinions.iter().find(|o| matches!(o, Opinion::Disagrees { .. }))
    {
        return Part::Failed {
            reason,
            message: message.clone(),
        };
    }
    match verdict {
        Verdict::NotChecked => Part::Disabled,
        Verdict::NotSelected { reason, message } => Part::Failed { reason, message },
        Verdict::Selected { .. } if !port_problems.is_empty() => Part::Failed {
            reason: reason::PORT_NAME_MISMATCH,
            message: port_problems.join("; "),
        },
        Verdict::Selected { prometheuses } => {
            let mut message = format!("selected by Prometheus {}", joined(&prometheuses));
            if !added.is_empty() {
                let added: Vec<String> = added.iter().map(|(k, v)| format!("{k}={v}")).collect();
                message.push_str(&format!(" (labels added: {})", added.join(", ")));
            }
            if opinions.contains(&Opinion::Agrees) {
                message.push_str("; confirmed by the Prometheus Operator's status.bindings");
            }
            Part::Ready {
                reason: reason::SELECTED,
                message,
            }
        }
    }
}

/// How long after a child of the resource was written a verification check that has not passed yet is `Pending`
/// rather than failed: the Prometheus Operator regenerates the configuration within seconds, the kubelet takes up to
/// a minute or so to update the mounted Secret, the reloader then reloads, and the first scrape follows within a
/// scrape interval. Beyond it, the check fails with its own reason.
pub const LOAD_GRACE: Duration = Duration::from_secs(180);

/// The reasons that only mean "not loaded or scraped yet" right after a change (a rule that fails to evaluate or an
/// unreachable server is news at once).
const NOT_YET: &[&str] = &[
    reason::NO_TARGET,
    reason::TARGET_DOWN,
    reason::RULES_NOT_LOADED,
    reason::METRICS_MISSING,
    reason::ROUTES_NOT_LOADED,
];

/// A verification part, said `Pending` when it failed for a reason that waiting may cure and the resource's children
/// were written less than `grace` ([`LOAD_GRACE`]) ago (`since_write`).
pub fn pending_within_grace(part: Part, since_write: Option<Duration>, grace: Duration) -> Part {
    match (part, since_write) {
        // The message names the grace, not the age: an age would change the condition, and so write the status,
        // at every recheck.
        (Part::Failed { reason, message }, Some(age)) if age < grace && NOT_YET.contains(&reason) => Part::Pending {
            message: format!(
                "waiting up to {}s for Prometheus to load what was just applied: {message}",
                grace.as_secs()
            ),
        },
        (part, _) => part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen on a real node: four Warning events in a new resource's first second, before Prometheus could have
    /// reloaded anything.
    #[test]
    fn a_check_not_passed_right_after_a_change_is_pending_then_fails() {
        let no_target = || Part::Failed {
            reason: reason::NO_TARGET,
            message: "no target".into(),
        };
        assert_eq!(
            pending_within_grace(no_target(), Some(Duration::from_secs(4)), LOAD_GRACE),
            Part::Pending {
                message: "waiting up to 180s for Prometheus to load what was just applied: no target".into()
            }
        );
        assert_eq!(
            pending_within_grace(no_target(), Some(Duration::from_secs(4)), LOAD_GRACE),
            pending_within_grace(no_target(), Some(Duration::from_secs(14)), LOAD_GRACE),
            "a recheck 10 s later says the same, so the status is not rewritten"
        );
        assert_eq!(
            pending_within_grace(no_target(), Some(LOAD_GRACE), LOAD_GRACE),
            no_target()
        );
        assert_eq!(
            pending_within_grace(no_target(), None, LOAD_GRACE),
            no_target(),
            "nothing written since start"
        );
        let unhealthy = Part::Failed {
            reason: reason::RULE_UNHEALTHY,
            message: "bad expr".into(),
        };
        assert_eq!(
            pending_within_grace(unhealthy.clone(), Some(Duration::from_secs(1)), LOAD_GRACE),
            unhealthy,
            "a broken rule is news at once"
        );
    }

    #[test]
    fn a_deployment_is_ready_once_every_pod_is() {
        assert_eq!(
            deployment(1, 2, None),
            Part::Progressing {
                message: "1/2 pods ready".into()
            }
        );
        assert!(matches!(
            deployment(2, 2, None),
            Part::Ready {
                reason: "Available",
                ..
            }
        ));
        // Surge during a rollout: more ready than wanted is still ready.
        assert!(matches!(deployment(3, 2, None), Part::Ready { .. }));
    }

    #[test]
    fn a_stuck_pod_fails_the_deployment_until_every_pod_is_ready() {
        let stuck = || {
            Some(PodProblem {
                reason: "SecretMissing",
                message: "pod bot-1 cannot start: secret \"s\" not found".into(),
            })
        };
        assert_eq!(
            deployment(0, 1, stuck()),
            Part::Failed {
                reason: "SecretMissing",
                message: "0/1 pods ready; pod bot-1 cannot start: secret \"s\" not found".into()
            }
        );
        // An old pod of a rollout may be stuck while every wanted pod is ready: nothing to report.
        assert!(matches!(deployment(1, 1, stuck()), Part::Ready { .. }));
    }

    #[test]
    fn selected_says_by_whom_and_what_was_added_unless_something_disagrees() {
        use crate::selection::verdict::PrometheusRef;
        let kps = Verdict::Selected {
            prometheuses: vec![PrometheusRef {
                namespace: "monitoring".into(),
                name: "kps".into(),
            }],
        };
        let added = Labels::from([("release".to_owned(), "kps".to_owned())]);
        let Part::Ready { reason, message } = selected(kps.clone(), &added, &[], &[Opinion::Agrees]) else {
            panic!()
        };
        assert_eq!(reason, "Selected");
        assert_eq!(
            message,
            "selected by Prometheus monitoring/kps (labels added: release=kps); confirmed by the Prometheus \
             Operator's status.bindings"
        );
        let ports = ["port web is not a port of Service bot".to_owned()];
        assert!(matches!(
            selected(kps.clone(), &added, &ports, &[]),
            Part::Failed {
                reason: "PortNameMismatch",
                ..
            }
        ));
        let disagrees = Opinion::Disagrees {
            reason: "Rejected",
            message: "no".into(),
        };
        assert!(matches!(
            selected(kps, &added, &ports, &[Opinion::Agrees, disagrees]),
            Part::Failed { reason: "Rejected", .. }
        ));
        assert_eq!(selected(Verdict::NotChecked, &added, &[], &[]), Part::Disabled);
    }

    #[test]
    fn the_network_policy_says_who_may_scrape_and_fails_when_no_one_may() {
        let kps = PrometheusRef {
            namespace: "monitoring".into(),
            name: "kps".into(),
        };
        assert_eq!(
            network_policy(std::slice::from_ref(&kps), 1, 2, true),
            Part::Ready {
                reason: "Applied",
                message: "the metrics port admits the pods of Prometheus monitoring/kps and 1 source(s) of \
                          networkPolicy.metricsFrom; the API port admits 2 source(s)"
                    .into()
            }
        );
        assert!(matches!(
            network_policy(&[], 1, 0, true),
            Part::Ready { message, .. } if message.starts_with("the metrics port admits 1 source(s)")
        ));
        assert!(matches!(
            network_policy(&[], 0, 2, true),
            Part::Failed {
                reason: "NoScraperAdmitted",
                ..
            }
        ));
        // With monitoring off, nothing should scrape: closed is right.
        assert!(matches!(
            network_policy(&[], 0, 2, false),
            Part::Ready { message, .. } if message.starts_with("the metrics port admits no one (monitoring is off)")
        ));
    }

    #[test]
    fn each_child_says_what_it_holds() {
        assert!(matches!(service_monitor("30s"), Part::Ready { message, .. } if message == "scraped every 30s"));
        assert!(matches!(prometheus_rule(12), Part::Ready { message, .. } if message == "12 alerting rules"));
        assert!(matches!(dashboards(1), Part::Ready { message, .. } if message.starts_with("1 dashboard")));
        assert!(matches!(
            prometheus_operator_missing(),
            Part::Failed {
                reason: "PrometheusOperatorMissing",
                ..
            }
        ));
    }
}

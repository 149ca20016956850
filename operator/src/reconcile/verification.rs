//! Step 2 of a reconcile: is the resource really monitored? Asked of the chosen Prometheus (or the URL the spec or
//! the operator gives), at most once per verification period per Prometheus for targets and rules; and are its
//! alerts routed, asked of that Prometheus and of the Alertmanager that selects the AlertmanagerConfig. An
//! unreachable server is a condition, not a failed reconcile.

use super::{Context, Error};
use crate::crd::ChatbotMonitoring;
use crate::render::{self, Desired};
use crate::selection::verdict::PrometheusRef;
use crate::settled::Snapshot;
use crate::status::{self, Part};
use crate::verify::checks::Check;
use crate::verify::periodic::in_cluster_url;
use crate::verify::routing;

/// What a verification round found, for the status.
#[derive(Debug, Default)]
pub struct Verification {
    /// Whether a round ran (else the conditions keep what they said).
    pub ran: bool,
    /// One condition per check.
    pub parts: Vec<(&'static str, Part)>,
    /// Targets up out of those found, as the `SCRAPED` column shows it (`1/1`).
    pub scraped: Option<String>,
    pub firing_alerts: Vec<String>,
}

/// Runs the checks when a verifier is configured and the resource is monitored through the Prometheus Operator.
/// `desired` is the render of this pass, if any (a settled resource was not rendered).
pub async fn verify(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    snapshot: &Snapshot,
    desired: Option<&Desired>,
) -> Result<Verification, Error> {
    // A settled resource was not rendered: it is, once, only when a check needs its children.
    let needed = ctx.verifier.is_some()
        && ((snapshot.prometheus_operator && snapshot.needs_prometheus_operator)
            || matches!(snapshot.routed, Some(Part::Ready { .. })));
    let rendered;
    let desired = match desired {
        Some(desired) => Some(desired),
        None if needed => {
            rendered = render::render(cbm, &ctx.options)?;
            Some(&rendered)
        }
        None => None,
    };
    let Some(desired) = desired else {
        return Ok(Verification {
            parts: snapshot.routed.iter().map(|r| (status::ROUTED, r.clone())).collect(),
            ..Verification::default()
        });
    };
    let mut verification = prometheus_checks(cbm, ctx, snapshot, desired).await;
    if let Some(selection) = &snapshot.routed {
        let part = routed(cbm, ctx, snapshot, selection, desired).await;
        verification.parts.push((status::ROUTED, part));
    }
    Ok(verification)
}

/// `Routed`: what selection found, and when an Alertmanager selects the AlertmanagerConfig, whether it loaded it and
/// the Prometheus sends it the alerts.
async fn routed(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    snapshot: &Snapshot,
    selection: &Part,
    desired: &Desired,
) -> Part {
    let (Some(verifier), Some(amc), Part::Ready { .. }) = (&ctx.verifier, &desired.alertmanager_config, selection)
    else {
        return selection.clone();
    };
    let spec_prometheus = cbm.spec.monitoring.prometheus.url.as_deref();
    let prometheus = prometheus_url(spec_prometheus, verifier.url_override.as_deref(), &snapshot.chosen);
    let spec_alertmanager = cbm
        .spec
        .notifications
        .as_ref()
        .and_then(|n| n.alertmanager.url.as_deref());
    let alertmanager = alertmanager_url(
        spec_alertmanager,
        verifier.alertmanager_url_override.as_deref(),
        &snapshot.alertmanagers,
    );
    let (Some(prometheus), Some(alertmanager)) = (prometheus, alertmanager) else {
        // Several servers and none named: which to ask is not ours to guess; selection is all that is known.
        return selection.clone();
    };
    part_of(verifier.check_routing(amc, &prometheus, &alertmanager).await)
}

/// Scraped, RulesLoaded, DashboardMetricsPresent: when a verifier is configured and the resource is monitored
/// through the Prometheus Operator.
async fn prometheus_checks(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    snapshot: &Snapshot,
    desired: &Desired,
) -> Verification {
    let Some(verifier) = &ctx.verifier else {
        return Verification::default();
    };
    if !(snapshot.prometheus_operator && snapshot.needs_prometheus_operator) {
        return Verification::default();
    }
    let spec_url = cbm.spec.monitoring.prometheus.url.as_deref();
    let Some(url) = prometheus_url(spec_url, verifier.url_override.as_deref(), &snapshot.chosen) else {
        return Verification::default();
    };
    let report = verifier.check(desired, &url).await;
    let mut verification = Verification {
        ran: true,
        firing_alerts: report.firing_alerts,
        ..Verification::default()
    };
    for check in report.checks {
        if let Some(targets) = check.targets {
            verification.scraped = Some(targets.to_string());
        }
        verification.parts.push((check.name, part_of(check)));
    }
    verification
}

/// Which Prometheus to ask: the spec's URL, else the operator's, else the in-cluster Service of the one Prometheus
/// that selects the resource. Several select it: which to ask is not ours to guess.
pub fn prometheus_url(spec: Option<&str>, operator: Option<&str>, chosen: &[PrometheusRef]) -> Option<String> {
    if let Some(url) = spec.or(operator) {
        return Some(url.to_owned());
    }
    match chosen {
        [one] => Some(in_cluster_url(&one.namespace)),
        _ => None,
    }
}

/// A check's outcome as its condition.
fn part_of(check: Check) -> Part {
    let (reason, message) = (check.reason, check.message);
    match check.ok {
        true => Part::Ready { reason, message },
        false => Part::Failed { reason, message },
    }
}

/// Which Alertmanager to ask: the spec's URL, else the operator's, else the in-cluster Service of the one
/// Alertmanager that selects the AlertmanagerConfig.
pub fn alertmanager_url(spec: Option<&str>, operator: Option<&str>, chosen: &[PrometheusRef]) -> Option<String> {
    if let Some(url) = spec.or(operator) {
        return Some(url.to_owned());
    }
    match chosen {
        [one] => Some(routing::in_cluster_url(&one.namespace)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_the_prometheus_first_then_the_operator_then_the_one_that_selects() {
        let p = |namespace: &str, name: &str| PrometheusRef {
            namespace: namespace.into(),
            name: name.into(),
        };
        let chosen = &[p("monitoring", "kps")];
        assert_eq!(
            prometheus_url(Some("http://a:9090"), Some("http://b:9090"), chosen).as_deref(),
            Some("http://a:9090")
        );
        assert_eq!(
            prometheus_url(None, Some("http://b:9090"), chosen).as_deref(),
            Some("http://b:9090")
        );
        assert_eq!(
            prometheus_url(None, None, chosen).as_deref(),
            Some("http://prometheus-operated.monitoring.svc:9090")
        );
        assert_eq!(prometheus_url(None, None, &[p("a", "one"), p("b", "two")]), None);
        assert_eq!(prometheus_url(None, None, &[]), None);
    }
}

//! Step 2 of a reconcile: is the resource really monitored? Asked of the chosen Prometheus (or the URL the spec or
//! the operator gives), at most once per verification period per Prometheus for targets and rules; and are its
//! alerts routed, asked of that Prometheus and of the Alertmanager that selects the AlertmanagerConfig. An
//! unreachable server is a condition, not a failed reconcile.

use std::time::Duration;

use super::{Context, Error, parts};
use crate::crd::ChatbotMonitoring;
use crate::render::{self, Desired};
use crate::selection::verdict::PrometheusRef;
use crate::settled::Snapshot;
use crate::status::{self, Part, reason};
use crate::verify::checks::Check;
use crate::verify::{in_cluster, run};

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
    since_write: Option<Duration>,
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
    let recently_changed = since_write.is_some();
    let mut verification = prometheus_checks(cbm, ctx, snapshot, desired, recently_changed).await?;
    if let Some(selection) = &snapshot.routed {
        let part = routed(cbm, ctx, snapshot, selection, desired, recently_changed).await?;
        verification.parts.push((status::ROUTED, part));
    }
    // Right after a change, what Prometheus has not loaded yet is pending, not failed.
    for (_, part) in &mut verification.parts {
        *part = parts::pending_within_grace(std::mem::replace(part, Part::Disabled), since_write, ctx.load_grace);
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
    recently_changed: bool,
) -> Result<Part, Error> {
    let (Some(verifier), Some(amc), Part::Ready { .. }) = (&ctx.verifier, &desired.alertmanager_config, selection)
    else {
        return Ok(selection.clone());
    };
    let spec_prometheus = cbm.spec.monitoring.prometheus.url.as_deref();
    let prometheus = prometheus_target(ctx, spec_prometheus.or(verifier.url_override.as_deref()), snapshot).await?;
    let spec_alertmanager = cbm
        .spec
        .notifications
        .as_ref()
        .and_then(|n| n.alertmanager.url.as_deref());
    let given = spec_alertmanager.or(verifier.alertmanager_url_override.as_deref());
    let objects = match (given, snapshot.alertmanagers.len()) {
        (None, 1) => ctx.caches.alertmanagers(&ctx.client).await?,
        _ => Vec::new(),
    };
    let alertmanager = server_url(given, &snapshot.alertmanagers, &objects, in_cluster::alertmanager_url);
    Ok(match (prometheus, alertmanager) {
        (Some(Ok(prometheus)), Some(Ok(alertmanager))) => {
            let max_age = verifier.max_age(recently_changed);
            part_of(verifier.check_routing(amc, &prometheus, &alertmanager, max_age).await)
        }
        (Some(Err(message)), _) => Part::Failed {
            reason: reason::PROMETHEUS_UNAVAILABLE,
            message,
        },
        (_, Some(Err(message))) => Part::Failed {
            reason: reason::ALERTMANAGER_UNAVAILABLE,
            message,
        },
        // Several servers and none named: which to ask is not ours to guess; selection is all that is known.
        _ => selection.clone(),
    })
}

/// The Prometheus to ask: `given`, else the one chosen, as its object says (read only then).
async fn prometheus_target(
    ctx: &Context,
    given: Option<&str>,
    snapshot: &Snapshot,
) -> Result<Option<Result<String, String>>, Error> {
    let objects = match (given, snapshot.chosen.len()) {
        (None, 1) => ctx.caches.prometheuses(&ctx.client).await?,
        _ => Vec::new(),
    };
    Ok(server_url(
        given,
        &snapshot.chosen,
        &objects,
        in_cluster::prometheus_url,
    ))
}

/// Scraped, RulesLoaded, DashboardMetricsPresent: when a verifier is configured and the resource is monitored
/// through the Prometheus Operator.
async fn prometheus_checks(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    snapshot: &Snapshot,
    desired: &Desired,
    recently_changed: bool,
) -> Result<Verification, Error> {
    let Some(verifier) = &ctx.verifier else {
        return Ok(Verification::default());
    };
    if !(snapshot.prometheus_operator && snapshot.needs_prometheus_operator) {
        return Ok(Verification::default());
    }
    let spec_url = cbm.spec.monitoring.prometheus.url.as_deref();
    let report = match prometheus_target(ctx, spec_url.or(verifier.url_override.as_deref()), snapshot).await? {
        None => return Ok(Verification::default()),
        Some(Ok(url)) => verifier.check(desired, &url, verifier.max_age(recently_changed)).await,
        Some(Err(message)) => run::unreachable(desired, &message),
    };
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
    Ok(verification)
}

/// Which server to ask: the URL the spec or the operator's flags give, else the one server found to select the
/// resource, reached as its object says (route prefix, web TLS: see `in_cluster`); `Err` when that object makes
/// it unreachable. `None` when several select it (which to ask is not ours to guess) or none does.
pub fn server_url<K: kube::Resource>(
    given: Option<&str>,
    chosen: &[PrometheusRef],
    objects: &[K],
    url_of: fn(&K) -> Result<String, String>,
) -> Option<Result<String, String>> {
    if let Some(url) = given {
        return Some(Ok(url.to_owned()));
    }
    let [one] = chosen else { return None };
    let object = objects.iter().find(|o| {
        o.meta().namespace.as_deref() == Some(one.namespace.as_str()) && o.meta().name.as_deref() == Some(&one.name)
    })?;
    Some(url_of(object))
}

/// A check's outcome as its condition.
fn part_of(check: Check) -> Part {
    let (reason, message) = (check.reason, check.message);
    match check.ok {
        true => Part::Ready { reason, message },
        false => Part::Failed { reason, message },
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
        let object = |namespace: &str, name: &str, spec: serde_json::Value| -> crate::prometheus_operator::Prometheus {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec,
            }))
            .unwrap()
        };
        let objects = [
            object("monitoring", "kps", serde_json::json!({"routePrefix": "/prom"})),
            object("other", "kps", serde_json::json!({})),
        ];
        let chosen = &[p("monitoring", "kps")];
        let url = |given, chosen: &[PrometheusRef]| server_url(given, chosen, &objects, in_cluster::prometheus_url);
        assert_eq!(url(Some("http://a:9090"), chosen), Some(Ok("http://a:9090".into())));
        // The object's route prefix: its API is not at the root (seen on a real node as a 404 on every call).
        assert_eq!(
            url(None, chosen),
            Some(Ok(
                "http://prometheus-kps-0.prometheus-operated.monitoring.svc:9090/prom".into()
            ))
        );
        assert_eq!(url(None, &[p("a", "one"), p("b", "two")]), None);
        assert_eq!(url(None, &[]), None);
        assert_eq!(
            url(None, &[p("gone", "kps")]),
            None,
            "an object the cache no longer has"
        );
    }
}

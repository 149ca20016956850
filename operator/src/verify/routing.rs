//! `Routed`: the Prometheus sends its alerts to an Alertmanager (`/api/v1/alertmanagers`), and the Alertmanager has
//! loaded this resource's routing (`/api/v2/status`). The checks read the answers (pure); `check` makes the two
//! requests.
//!
//! Alertmanager answers with its configuration re-marshalled, not the file (defaults filled, matchers re-rendered,
//! secrets redacted), so what is checked is structure: the receivers by name and the resource's route, never text.

use std::time::Duration;

use serde_json::Value;

use super::checks::Check;
use super::prometheus_api::{ApiError, PrometheusApi, cause, read_bounded, shorten};
use crate::crd::NONE_RECEIVER;
use crate::prometheus_operator::AlertmanagerConfig;
use crate::render::alertmanager_config::alertmanager_receiver;
use crate::render::local_alertmanager::matcher_string;
use crate::status::{self, reason};

/// Prometheus' `/api/v1/alertmanagers` data: how many Alertmanagers it sends to, or why that is a problem.
pub fn prometheus_connected(data: &Value, prometheus: &str) -> Result<usize, Check> {
    let active = data["activeAlertmanagers"].as_array().map_or(0, Vec::len);
    if active == 0 {
        return Err(failed(
            reason::NO_ALERTMANAGER_CONNECTED,
            format!(
                "Prometheus at {prometheus} sends its alerts to no Alertmanager (/api/v1/alertmanagers lists no active \
                 one): its spec.alerting.alertmanagers must name the Alertmanager's Service"
            ),
        ));
    }
    Ok(active)
}

/// Alertmanager's `/api/v2/status` answer: has it loaded the AlertmanagerConfig's receivers and its route, with
/// the same child routes (receiver and matchers) as the AlertmanagerConfig has now? Returns the user's receivers.
pub fn routes_loaded(status: &Value, amc: &AlertmanagerConfig, alertmanager: &str) -> Result<usize, Check> {
    let namespace = amc.metadata.namespace.clone().unwrap_or_default();
    let name = amc.metadata.name.clone().unwrap_or_default();
    let rename = |receiver: &str| alertmanager_receiver(&namespace, &name, receiver);
    let original = status["config"]["original"].as_str().unwrap_or_default();
    let config: Value = serde_yaml::from_str(original).unwrap_or(Value::Null);
    let loaded: Vec<&str> = config["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let mut missing: Vec<String> = amc
        .spec
        .receivers
        .iter()
        .map(|r| rename(&r.name))
        .filter(|r| !loaded.contains(&r.as_str()))
        .collect();
    let top = amc.spec.route.as_ref().map(|r| rename(&r.receiver)).unwrap_or_default();
    let route = config["route"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["receiver"].as_str() == Some(top.as_str()));
    match route {
        None => missing.push(format!("the route to {top}")),
        Some(route) => {
            // The child routes as Alertmanager re-renders them: receiver and matcher strings, in order.
            let want: Vec<(String, Vec<String>)> = amc
                .spec
                .route
                .iter()
                .flat_map(|r| &r.routes)
                .map(|r| (rename(&r.receiver), r.matchers.iter().map(matcher_string).collect()))
                .collect();
            let have: Vec<(String, Vec<String>)> = route["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let matchers = r["matchers"].as_array().into_iter().flatten();
                    let matchers = matchers.filter_map(|m| m.as_str()).map(str::to_owned).collect();
                    (r["receiver"].as_str().unwrap_or_default().to_owned(), matchers)
                })
                .collect();
            if want != have {
                missing.push(format!(
                    "the severity routes as they are now (the loaded route to {top} has {} of them, the \
                     AlertmanagerConfig {}: the Alertmanager has not reloaded it yet, or refused it)",
                    have.len(),
                    want.len()
                ));
            }
        }
    }
    let users = amc.spec.receivers.iter().filter(|r| r.name != NONE_RECEIVER).count();
    if missing.is_empty() {
        return Ok(users);
    }
    let shown: Vec<String> = missing.iter().take(3).map(|m| shorten(m)).collect();
    let more = match missing.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    Err(failed(
        reason::ROUTES_NOT_LOADED,
        format!(
            "Alertmanager at {alertmanager} has not loaded AlertmanagerConfig {namespace}/{name}: {}{more} missing \
             (the Prometheus Operator skips an AlertmanagerConfig it finds invalid, such as one whose Secret key is \
             missing: see its events)",
            shown.join(", ")
        ),
    ))
}

fn failed(reason: &'static str, message: String) -> Check {
    Check {
        targets: None,
        name: status::ROUTED,
        ok: false,
        reason,
        message,
    }
}

/// What a round asks: Prometheus' Alertmanagers and the Alertmanager's loaded configuration. Shared by every
/// resource that names the same two servers in one verification period.
#[derive(Debug, Clone)]
pub struct Answers {
    /// `None` when Prometheus does not serve the endpoint (a Thanos Query or Mimir in front of it).
    pub alertmanagers: Result<Option<Value>, String>,
    pub status: Result<Value, String>,
}

/// Both requests, at once.
pub async fn fetch(prometheus: &PrometheusApi, alertmanager: &str, timeout: Duration) -> Answers {
    let (alertmanagers, status) = tokio::join!(
        prometheus.get("alertmanagers", &[]),
        alertmanager_status(alertmanager, timeout)
    );
    Answers {
        alertmanagers: match alertmanagers {
            Ok(data) => Ok(Some(data)),
            Err(ApiError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        },
        status,
    }
}

/// The `Routed` row from a round's answers.
pub fn judge(amc: &AlertmanagerConfig, answers: &Answers, prometheus: &str, alertmanager: &str) -> Check {
    let connected = match &answers.alertmanagers {
        Ok(Some(data)) => match prometheus_connected(data, prometheus) {
            Ok(n) => format!("Prometheus sends its alerts to {n} Alertmanager(s)"),
            Err(check) => return check,
        },
        Ok(None) => format!(
            "Prometheus at {prometheus} does not serve /api/v1/alertmanagers (a query frontend?), so where it sends \
             alerts is not checked"
        ),
        Err(e) => return failed(reason::PROMETHEUS_UNAVAILABLE, e.clone()),
    };
    let loaded = match &answers.status {
        Ok(status) => routes_loaded(status, amc, alertmanager),
        Err(e) => Err(failed(reason::ALERTMANAGER_UNAVAILABLE, e.clone())),
    };
    match loaded {
        Ok(receivers) => Check {
            targets: None,
            name: status::ROUTED,
            ok: true,
            reason: reason::ROUTED,
            message: format!(
                "Alertmanager at {alertmanager} has loaded this resource's routes and its {receivers} receiver(s); \
                 {connected}"
            ),
        },
        Err(check) => check,
    }
}

/// Both requests and the `Routed` row.
pub async fn check(
    amc: &AlertmanagerConfig,
    prometheus: &PrometheusApi,
    alertmanager: &str,
    timeout: Duration,
) -> Check {
    let answers = fetch(prometheus, alertmanager, timeout).await;
    judge(amc, &answers, prometheus.base(), alertmanager)
}

/// `GET /api/v2/status`, bounded like Prometheus' answers; the error is one sentence for a condition.
async fn alertmanager_status(base: &str, timeout: Duration) -> Result<Value, String> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("a client with a timeout builds");
    let unreachable = |e: String| format!("Alertmanager at {base} could not be reached: {e}");
    let response = http
        .get(format!("{base}/api/v2/status"))
        .send()
        .await
        .map_err(|e| unreachable(cause(&e)))?;
    let code = response.status().as_u16();
    let body = read_bounded(response)
        .await
        .map_err(|e| format!("Alertmanager at {base} answered /api/v2/status: {e}"))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if code == 200 && v["config"]["original"].is_string() => Ok(v),
        _ => Err(format!(
            "Alertmanager at {base} answered HTTP {code} to /api/v2/status without its configuration: {}",
            shorten(
                String::from_utf8_lossy(&body[..body.len().min(640)])
                    .lines()
                    .next()
                    .unwrap_or("empty answer")
            )
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn amc() -> AlertmanagerConfig {
        serde_yaml::from_str(
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: bot, namespace: shop}\n\
             spec:\n  route:\n    receiver: none\n    routes: [{receiver: paging, matchers: [{name: severity, value: critical, matchType: '='}], continue: true}]\n  receivers: [{name: none}, {name: paging}, {name: chat}]\n",
        )
        .unwrap()
    }

    /// As Alertmanager 0.25 re-marshals a configuration with our routing merged (defaults filled in).
    fn status(receivers: &[&str], route_receiver: &str) -> Value {
        with_child(receivers, route_receiver, "severity=\"critical\"")
    }

    fn with_child(receivers: &[&str], route_receiver: &str, child_matcher: &str) -> Value {
        let receivers: Vec<String> = receivers.iter().map(|r| format!("- name: {r}\n")).collect();
        let original = format!(
            "global:\n  resolve_timeout: 5m\nroute:\n  receiver: \"null\"\n  continue: false\n  routes:\n  - receiver: \
             {route_receiver}\n    matchers:\n    - chatbot=\"bot\"\n    - namespace=\"shop\"\n    continue: true\n    \
             routes:\n    - receiver: shop/bot/paging\n      matchers:\n      - '{child_matcher}'\n      continue: true\n\
             receivers:\n- name: \"null\"\n{}templates: []\n",
            receivers.concat()
        );
        json!({"cluster": {"status": "disabled"}, "config": {"original": original}, "versionInfo": {"version": "0.25.0"}})
    }

    #[test]
    fn loaded_routing_is_found_by_structure() {
        let s = status(&["shop/bot/none", "shop/bot/paging", "shop/bot/chat"], "shop/bot/none");
        assert_eq!(
            routes_loaded(&s, &amc(), "http://am:9093").unwrap(),
            2,
            "the user's receivers"
        );
    }

    #[test]
    fn an_older_routing_still_loaded_is_not_routed() {
        // The severity mapping changed in the AlertmanagerConfig; the Alertmanager still runs the old one.
        let s = with_child(
            &["shop/bot/none", "shop/bot/paging", "shop/bot/chat"],
            "shop/bot/none",
            "severity=\"warning\"",
        );
        let check = routes_loaded(&s, &amc(), "http://am:9093").unwrap_err();
        assert_eq!(check.reason, "RoutesNotLoaded");
        assert!(
            check.message.contains("the severity routes as they are now"),
            "{}",
            check.message
        );
    }

    #[test]
    fn a_prometheus_behind_a_query_frontend_is_not_held_against_the_routing() {
        let answers = Answers {
            alertmanagers: Ok(None),
            status: Ok(status(
                &["shop/bot/none", "shop/bot/paging", "shop/bot/chat"],
                "shop/bot/none",
            )),
        };
        let check = judge(&amc(), &answers, "http://thanos:9090", "http://am:9093");
        assert!(check.ok, "{}", check.message);
        assert!(
            check.message.contains("does not serve /api/v1/alertmanagers"),
            "{}",
            check.message
        );
        let down = Answers {
            alertmanagers: Err("Prometheus at http://p could not be reached: connection refused".into()),
            ..answers
        };
        assert_eq!(
            judge(&amc(), &down, "http://p", "http://am").reason,
            "PrometheusUnavailable"
        );
    }

    #[test]
    fn missing_receivers_or_route_name_what_is_missing() {
        let s = status(&["shop/bot/none"], "shop/other/none");
        let check = routes_loaded(&s, &amc(), "http://am:9093").unwrap_err();
        assert_eq!(check.reason, "RoutesNotLoaded");
        assert!(
            check.message.starts_with(
                "Alertmanager at http://am:9093 has not loaded AlertmanagerConfig shop/bot: shop/bot/paging, \
                 shop/bot/chat, the route to shop/bot/none missing"
            ),
            "{}",
            check.message
        );
        // Not a configuration at all: everything is missing, nothing panics.
        let check = routes_loaded(&json!({"config": {"original": ":\n- ["}}), &amc(), "http://am").unwrap_err();
        assert!(check.message.contains(" and 1 more missing"), "{}", check.message);
    }

    #[test]
    fn a_prometheus_with_no_alertmanager_is_named() {
        let none = json!({"activeAlertmanagers": [], "droppedAlertmanagers": []});
        let check = prometheus_connected(&none, "http://p:9090").unwrap_err();
        assert_eq!(check.reason, "NoAlertmanagerConnected");
        let one = json!({"activeAlertmanagers": [{"url": "http://10.0.0.7:9093/api/v2/alerts"}]});
        assert_eq!(prometheus_connected(&one, "http://p:9090").unwrap(), 1);
    }
}

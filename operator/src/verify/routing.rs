//! `Routed`: the Prometheus sends its alerts to an Alertmanager (`/api/v1/alertmanagers`), and the Alertmanager has
//! loaded this resource's routing (`/api/v2/status`). The checks read the answers (pure); `check` makes the two
//! requests.
//!
//! Alertmanager answers with its configuration re-marshalled, not the file (defaults filled, matchers re-rendered,
//! secrets redacted), so what is checked is structure: the receivers by name and the resource's route, never text.

use std::time::Duration;

use serde_json::Value;

use super::checks::Check;
use super::prometheus_api::{PrometheusApi, cause, read_bounded, shorten};
use crate::prometheus_operator::AlertmanagerConfig;
use crate::render::alertmanager_config::alertmanager_receiver;
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

/// Alertmanager's `/api/v2/status` answer: has it loaded the AlertmanagerConfig's receivers and its route?
pub fn routes_loaded(status: &Value, amc: &AlertmanagerConfig, alertmanager: &str) -> Result<usize, Check> {
    let namespace = amc.metadata.namespace.clone().unwrap_or_default();
    let name = amc.metadata.name.clone().unwrap_or_default();
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
        .map(|r| alertmanager_receiver(&namespace, &name, &r.name))
        .filter(|r| !loaded.contains(&r.as_str()))
        .collect();
    let top = amc
        .spec
        .route
        .as_ref()
        .map(|r| alertmanager_receiver(&namespace, &name, &r.receiver));
    let route_loaded = config["route"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["receiver"].as_str() == top.as_deref());
    if !route_loaded {
        missing.push(format!("the route to {}", top.unwrap_or_default()));
    }
    if missing.is_empty() {
        return Ok(amc.spec.receivers.len());
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

/// Both requests and both checks: the `Routed` row.
pub async fn check(
    amc: &AlertmanagerConfig,
    prometheus: &PrometheusApi,
    alertmanager: &str,
    timeout: Duration,
) -> Check {
    let connected = match prometheus.get("alertmanagers", &[]).await {
        Ok(data) => prometheus_connected(&data, prometheus.base()),
        Err(e) => Err(failed(reason::PROMETHEUS_UNAVAILABLE, e.to_string())),
    };
    let connected = match connected {
        Ok(n) => n,
        Err(check) => return check,
    };
    let loaded = match alertmanager_status(alertmanager, timeout).await {
        Ok(status) => routes_loaded(&status, amc, alertmanager),
        Err(e) => Err(failed(reason::ALERTMANAGER_UNAVAILABLE, e)),
    };
    match loaded {
        Ok(receivers) => Check {
            targets: None,
            name: status::ROUTED,
            ok: true,
            reason: reason::ROUTED,
            message: format!(
                "Alertmanager at {alertmanager} has loaded this resource's route and its {receivers} receiver(s); \
                 Prometheus sends its alerts to {connected} Alertmanager(s)"
            ),
        },
        Err(check) => check,
    }
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

/// The in-cluster URL of an Alertmanager the Prometheus Operator runs: its governing Service
/// `alertmanager-operated`.
pub fn in_cluster_url(namespace: &str) -> String {
    format!("http://alertmanager-operated.{namespace}.svc:9093")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn amc() -> AlertmanagerConfig {
        serde_yaml::from_str(
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata: {name: bot, namespace: shop}\n\
             spec:\n  route: {receiver: none}\n  receivers: [{name: none}, {name: paging}, {name: chat}]\n",
        )
        .unwrap()
    }

    /// As Alertmanager 0.25 re-marshals a configuration with our routing merged (defaults filled in).
    fn status(receivers: &[&str], route_receiver: &str) -> Value {
        let receivers: Vec<String> = receivers.iter().map(|r| format!("- name: {r}\n")).collect();
        let original = format!(
            "global:\n  resolve_timeout: 5m\nroute:\n  receiver: \"null\"\n  continue: false\n  routes:\n  - receiver: \
             {route_receiver}\n    matchers:\n    - chatbot=\"bot\"\n    - namespace=\"shop\"\n    continue: true\n\
             receivers:\n- name: \"null\"\n{}templates: []\n",
            receivers.concat()
        );
        json!({"cluster": {"status": "disabled"}, "config": {"original": original}, "versionInfo": {"version": "0.25.0"}})
    }

    #[test]
    fn loaded_routing_is_found_by_structure() {
        let s = status(&["shop/bot/none", "shop/bot/paging", "shop/bot/chat"], "shop/bot/none");
        assert_eq!(routes_loaded(&s, &amc(), "http://am:9093").unwrap(), 3);
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

//! A plain `alertmanager.yml` equivalent to what the Prometheus Operator generates from the AlertmanagerConfig (its
//! v0.93 rules, on its default base configuration): receivers named `<namespace>/<config>/<name>`, the first-level
//! route forced to continue and given a `namespace` matcher, the inhibitions scoped to the namespace too, and Secret
//! values written inline. The no-cluster demo and the live tests run a real Alertmanager on it; `amtool` checks it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::alertmanager_config::{alertmanager_receiver, expected_receivers};
use crate::crd::NotificationsSpec;
use crate::prometheus_operator::{
    AlertmanagerConfig, InhibitRule, Matcher, PrometheusRule, Receiver, Route, SecretKeySelector,
};

/// File name of the configuration next to `prometheus.yml`.
pub const CONFIG_FILE: &str = "alertmanager.yml";
/// The routing alone (receivers without their integrations), which `render --tests` writes for `amtool`.
pub const ROUTES_FILE: &str = "alertmanager.routes.yml";
/// The `amtool config routes test` cases, as a script.
pub const ROUTES_TEST_FILE: &str = "alertmanager.routes.test.sh";
/// The receiver of the Prometheus Operator's default base configuration, which takes what no route matches.
pub const NULL_RECEIVER: &str = "null";

/// The values of the Secrets the receivers reference, by (Secret name, key).
#[derive(Debug, Default, Clone)]
pub struct SecretValues(BTreeMap<(String, String), String>);

impl SecretValues {
    /// Reads Secret manifests (a YAML stream, as `kubectl apply -f` takes them): `data` (base64) and `stringData`.
    pub fn from_manifests(text: &str) -> Result<SecretValues, String> {
        let mut values = BTreeMap::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(doc).map_err(|e| format!("not YAML: {e}"))?;
            if value.is_null() {
                continue;
            }
            let secret: Secret = serde_yaml::from_value(value).map_err(|e| format!("not a Secret: {e}"))?;
            let name = secret.metadata.name.clone().ok_or("a Secret has no metadata.name")?;
            for (key, bytes) in secret.data.into_iter().flatten() {
                let text = String::from_utf8(bytes.0).map_err(|_| format!("Secret {name} key {key} is not UTF-8"))?;
                values.insert((name.clone(), key), text);
            }
            for (key, text) in secret.string_data.into_iter().flatten() {
                values.insert((name.clone(), key), text);
            }
        }
        Ok(SecretValues(values))
    }

    fn get(&self, s: &Option<SecretKeySelector>) -> Result<String, String> {
        let s = s.as_ref().ok_or("an integration has no Secret reference")?;
        self.0
            .get(&(s.name.clone(), s.key.clone()))
            .cloned()
            .ok_or_else(|| format!("no value for key {} of Secret {} in the Secrets given", s.key, s.name))
    }
}

/// What the receivers carry: their integrations with the Secrets' values, or nothing (routing only).
pub enum Integrations<'a> {
    With(&'a SecretValues),
    Omitted,
}

/// The configuration for one AlertmanagerConfig. Fails when a Secret value is missing.
pub fn config(amc: &AlertmanagerConfig, integrations: Integrations) -> Result<Value, String> {
    let namespace = amc.metadata.namespace.clone().unwrap_or_default();
    let name = amc.metadata.name.clone().unwrap_or_default();
    let rename = |receiver: &str| alertmanager_receiver(&namespace, &name, receiver);
    let mut routes = Vec::new();
    if let Some(route) = &amc.spec.route {
        let mut first = convert_route(route, &rename);
        // The Prometheus Operator's OnNamespace strategy: its matcher after the resource's, and always continue.
        push_matcher(&mut first, &format!("namespace=\"{}\"", escape(&namespace)));
        first.insert("continue".into(), json!(true));
        routes.push(Value::Object(first));
    }
    let mut receivers = vec![json!({"name": NULL_RECEIVER})];
    for r in &amc.spec.receivers {
        receivers.push(receiver(r, &rename(&r.name), &integrations)?);
    }
    let inhibit_rules: Vec<Value> = amc
        .spec
        .inhibit_rules
        .iter()
        .map(|rule| inhibit_rule(rule, &namespace))
        .collect();
    let mut config = json!({
        "route": {"receiver": NULL_RECEIVER, "routes": routes},
        "receivers": receivers,
        "templates": [],
    });
    if !inhibit_rules.is_empty() {
        config["inhibit_rules"] = json!(inhibit_rules);
    }
    Ok(config)
}

fn convert_route(route: &Route, rename: &dyn Fn(&str) -> String) -> Map<String, Value> {
    let mut out = Map::new();
    if !route.receiver.is_empty() {
        out.insert("receiver".into(), json!(rename(&route.receiver)));
    }
    if !route.group_by.is_empty() {
        out.insert("group_by".into(), json!(route.group_by));
    }
    if !route.matchers.is_empty() {
        out.insert(
            "matchers".into(),
            json!(route.matchers.iter().map(matcher_string).collect::<Vec<_>>()),
        );
    }
    if route.continue_ {
        out.insert("continue".into(), json!(true));
    }
    if !route.routes.is_empty() {
        let children: Vec<Value> = route
            .routes
            .iter()
            .map(|r| Value::Object(convert_route(r, rename)))
            .collect();
        out.insert("routes".into(), json!(children));
    }
    for (key, value) in [
        ("group_wait", &route.group_wait),
        ("group_interval", &route.group_interval),
        ("repeat_interval", &route.repeat_interval),
    ] {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    out
}

fn push_matcher(route: &mut Map<String, Value>, m: &str) {
    let list = route.entry("matchers").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        list.push(json!(m));
    }
}

/// `name="value"`, escaped as the Prometheus Operator does (backslash, newline, double quote).
pub fn matcher_string(m: &Matcher) -> String {
    let op = if m.match_type.is_empty() { "=" } else { &m.match_type };
    format!("{}{op}\"{}\"", m.name, escape(&m.value))
}

fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('\n', r"\n").replace('"', "\\\"")
}

/// Both sides get the namespace matcher, unless they already have it.
fn inhibit_rule(rule: &InhibitRule, namespace: &str) -> Value {
    let ns = format!("namespace=\"{}\"", escape(namespace));
    let side = |matchers: &[Matcher]| {
        let mut out: Vec<String> = matchers.iter().map(matcher_string).collect();
        if !out.contains(&ns) {
            out.push(ns.clone());
        }
        out
    };
    let mut out = json!({
        "target_matchers": side(&rule.target_match),
        "source_matchers": side(&rule.source_match),
    });
    if !rule.equal.is_empty() {
        out["equal"] = json!(rule.equal);
    }
    out
}

fn receiver(r: &Receiver, name: &str, integrations: &Integrations) -> Result<Value, String> {
    let mut out = json!({"name": name});
    let Integrations::With(secrets) = integrations else {
        return Ok(out);
    };
    let with_resolved = |send_resolved: Option<bool>, mut v: Value| {
        if let Some(s) = send_resolved {
            v["send_resolved"] = json!(s);
        }
        v
    };
    let mut put = |key: &str, list: Vec<Value>| {
        if !list.is_empty() {
            out[key] = json!(list);
        }
    };
    put(
        "webhook_configs",
        r.webhook_configs
            .iter()
            .map(|w| {
                let mut v = json!({"url": secrets.get(&w.url_secret)?});
                if let Some(max) = w.max_alerts {
                    v["max_alerts"] = json!(max);
                }
                Ok(with_resolved(w.send_resolved, v))
            })
            .collect::<Result<_, String>>()?,
    );
    put(
        "slack_configs",
        r.slack_configs
            .iter()
            .map(|s| {
                let mut v = json!({"api_url": secrets.get(&s.api_url)?});
                if let Some(channel) = &s.channel {
                    v["channel"] = json!(channel);
                }
                Ok(with_resolved(s.send_resolved, v))
            })
            .collect::<Result<_, String>>()?,
    );
    put(
        "email_configs",
        r.email_configs
            .iter()
            .map(|e| {
                let mut v = json!({"to": e.to});
                for (key, value) in [
                    ("from", &e.from),
                    ("smarthost", &e.smarthost),
                    ("auth_username", &e.auth_username),
                ] {
                    if let Some(value) = value {
                        v[key] = json!(value);
                    }
                }
                if e.auth_password.is_some() {
                    v["auth_password"] = json!(secrets.get(&e.auth_password)?);
                }
                if let Some(tls) = e.require_tls {
                    v["require_tls"] = json!(tls);
                }
                Ok(with_resolved(e.send_resolved, v))
            })
            .collect::<Result<_, String>>()?,
    );
    put(
        "pagerduty_configs",
        r.pagerduty_configs
            .iter()
            .map(|p| {
                Ok(with_resolved(
                    p.send_resolved,
                    json!({"routing_key": secrets.get(&p.routing_key)?}),
                ))
            })
            .collect::<Result<_, String>>()?,
    );
    put(
        "msteamsv2_configs",
        r.msteamsv2_configs
            .iter()
            .map(|t| {
                Ok(with_resolved(
                    t.send_resolved,
                    json!({"webhook_url": secrets.get(&t.webhook_url)?}),
                ))
            })
            .collect::<Result<_, String>>()?,
    );
    Ok(out)
}

/// The `alerting` section of `prometheus.yml`: alerts go to the Alertmanager at `address` (host:port), API v2.
pub fn prometheus_alerting(address: &str) -> Value {
    json!({"alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [address]}]}]})
}

/// One `amtool config routes test` case: the labels of an alert and the receivers it must reach, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCase {
    pub labels: BTreeMap<String, String>,
    pub receivers: Vec<String>,
}

/// A script that runs every case with `amtool` against [`ROUTES_FILE`] beside it: it prints each outcome and
/// exits 1 when a case reaches other receivers than it must.
pub fn routes_test_script(cases: &[RouteCase]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut script = String::from(
        "#!/bin/sh\n\
         # Generated by `chatbot-operator render --tests`: each alert must reach exactly the receivers named.\n\
         set -u\n\
         cd \"$(dirname \"$0\")\"\n\
         failed=0\n\
         check() {\n\
         \x20 want=$1; shift\n\
         \x20 got=$(amtool config routes test --config.file=alertmanager.routes.yml \"$@\" 2>/dev/null)\n\
         \x20 if [ \"$got\" = \"$want\" ]; then echo \"ok   $* -> $want\"; else echo \"FAIL $* -> $got, want $want\"; failed=1; fi\n\
         }\n",
    );
    for case in cases {
        let labels: Vec<String> = case.labels.iter().map(|(k, v)| quote(&format!("{k}={v}"))).collect();
        script.push_str(&format!(
            "check {} {}\n",
            quote(&case.receivers.join(",")),
            labels.join(" ")
        ));
    }
    script.push_str("exit $failed\n");
    script
}

/// The cases for one resource: each of its alerts, with the severity its rule gives it, must reach the receivers
/// the spec routes that severity to (computed from the spec, not from the rendered routing); an alert of another
/// chatbot, or of the same name in another namespace, must reach none of them.
pub fn route_cases(
    namespace: &str,
    name: &str,
    notifications: &NotificationsSpec,
    rule: &PrometheusRule,
) -> Vec<RouteCase> {
    let alert = |alertname: &str, severity: &str, ns: &str, chatbot: &str| {
        BTreeMap::from([
            ("alertname".to_owned(), alertname.to_owned()),
            ("chatbot".to_owned(), chatbot.to_owned()),
            ("job".to_owned(), chatbot.to_owned()),
            ("namespace".to_owned(), ns.to_owned()),
            ("severity".to_owned(), severity.to_owned()),
        ])
    };
    let mut cases: Vec<RouteCase> = rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| Some((r.alert.as_deref()?, r.labels.get("severity")?.as_str())))
        .map(|(alertname, severity)| RouteCase {
            labels: alert(alertname, severity, namespace, name),
            receivers: expected_receivers(namespace, name, notifications, severity),
        })
        .collect();
    let other = format!("{name}-other");
    cases.push(RouteCase {
        labels: alert("HighErrorRate", "critical", namespace, &other),
        receivers: vec![NULL_RECEIVER.into()],
    });
    let other_namespace = format!("{namespace}-other");
    cases.push(RouteCase {
        labels: alert("HighErrorRate", "critical", &other_namespace, name),
        receivers: vec![NULL_RECEIVER.into()],
    });
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    /// prometheus-operator v0.93's output for this AlertmanagerConfig (its amcfg.go on the default base, as in its
    /// golden files `skeleton_base_CR_with_subroutes` and `CR_with_Pagerduty_Receiver`), compared as structure.
    #[test]
    fn the_config_is_what_the_prometheus_operator_generates() {
        let amc: AlertmanagerConfig = serde_yaml::from_str(
            r#"
apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata: {name: chatbot-alerts, namespace: chat}
spec:
  route:
    receiver: webhook
    groupBy: [alertname, chatbot]
    groupWait: 30s
    groupInterval: 5m
    repeatInterval: 4h
    matchers: [{name: chatbot, value: support-bot, matchType: "="}]
    routes:
    - receiver: pager
      matchers: [{name: severity, value: critical, matchType: "="}]
      continue: true
  receivers:
  - name: webhook
    webhookConfigs: [{urlSecret: {name: chatbot-alerting, key: webhook-url}, sendResolved: true}]
  - name: pager
    pagerdutyConfigs: [{routingKey: {name: chatbot-alerting, key: pd-routing-key}}]
  inhibitRules:
  - sourceMatch: [{name: severity, value: critical, matchType: "="}]
    targetMatch: [{name: severity, value: warning, matchType: "="}]
    equal: [alertname, chatbot]
"#,
        )
        .unwrap();
        let secrets = SecretValues::from_manifests(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: chatbot-alerting}\nstringData:\n  webhook-url: https://hooks.example.org/chatbot\n  pd-routing-key: 0123456789abcdef\n",
        )
        .unwrap();
        let expected: Value = serde_yaml::from_str(
            r#"
route:
  receiver: "null"
  routes:
  - receiver: chat/chatbot-alerts/webhook
    group_by: [alertname, chatbot]
    matchers: ['chatbot="support-bot"', 'namespace="chat"']
    continue: true
    routes:
    - receiver: chat/chatbot-alerts/pager
      matchers: ['severity="critical"']
      continue: true
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
inhibit_rules:
- target_matchers: ['severity="warning"', 'namespace="chat"']
  source_matchers: ['severity="critical"', 'namespace="chat"']
  equal: [alertname, chatbot]
receivers:
- name: "null"
- name: chat/chatbot-alerts/webhook
  webhook_configs:
  - send_resolved: true
    url: https://hooks.example.org/chatbot
- name: chat/chatbot-alerts/pager
  pagerduty_configs:
  - routing_key: 0123456789abcdef
templates: []
"#,
        )
        .unwrap();
        assert_eq!(config(&amc, Integrations::With(&secrets)).unwrap(), expected);
    }

    #[test]
    fn matcher_values_are_escaped_as_the_prometheus_operator_escapes_them() {
        let m = Matcher {
            name: "summary".into(),
            value: "a \"quoted\" \\ path\nnext".into(),
            match_type: "=~".into(),
        };
        assert_eq!(matcher_string(&m), r#"summary=~"a \"quoted\" \\ path\nnext""#);
    }
}

//! The AlertmanagerConfig: one route per resource, scoped to its chatbot, with a child route per (severity,
//! receiver) and the inhibitions that keep a root cause from notifying as its symptoms.
//!
//! Alerts are told apart by the `namespace` and `chatbot` labels every rule of the PrometheusRule gives them. The
//! Prometheus Operator adds the same `namespace` matcher under its default strategy, but not under `None` (nor in
//! the Alertmanager's own namespace under `OnNamespaceExceptForAlertmanagerNamespace`), and its first-level routes
//! always continue: without our own matcher, a chatbot of the same name in another namespace would reach these
//! receivers. Every child route continues, so a severity routed to two receivers reaches both; an alert that no
//! child takes (a severity routed to no one) ends at the empty receiver `none`, which drops it.

use super::Context;
use crate::crd::{NONE_RECEIVER, NotificationsSpec, ReceiverSpec, SecretKeyRef};
use crate::prometheus_operator::{
    AlertmanagerConfig, AlertmanagerConfigSpec, EmailConfig, InhibitRule, Matcher, MsTeamsV2Config, PagerDutyConfig,
    Receiver, Route, SecretKeySelector, SlackConfig, WebhookConfig,
};

/// The alerts that mean the chatbot is not there at all: while one fires, its other alerts are symptoms.
pub const ROOT_CAUSES: &[&str] = &["ChatbotDown"];

pub(super) fn render(ctx: &Context, n: &NotificationsSpec) -> AlertmanagerConfig {
    let ours = || {
        vec![
            matcher("namespace", "=", &ctx.namespace),
            matcher("chatbot", "=", &ctx.name),
        ]
    };
    let with_ours = |m: Matcher| std::iter::once(m).chain(ours()).collect::<Vec<_>>();
    let routes = n
        .routes
        .by_severity()
        .into_iter()
        .flat_map(|(severity, receivers)| {
            receivers.iter().map(move |receiver| Route {
                receiver: receiver.clone(),
                matchers: vec![matcher("severity", "=", severity)],
                continue_: true,
                ..Route::default()
            })
        })
        .collect();
    let root_causes = ROOT_CAUSES.join("|");
    let inhibit_rules = if n.inhibit {
        vec![
            InhibitRule {
                source_match: with_ours(matcher("alertname", "=~", &root_causes)),
                target_match: with_ours(matcher("alertname", "!~", &root_causes)),
                equal: vec!["namespace".into(), "chatbot".into()],
            },
            InhibitRule {
                source_match: with_ours(matcher("severity", "=", "critical")),
                target_match: with_ours(matcher("severity", "=", "warning")),
                equal: vec!["alertname".into(), "namespace".into(), "chatbot".into()],
            },
        ]
    } else {
        Vec::new()
    };
    let none = Receiver {
        name: NONE_RECEIVER.into(),
        ..Receiver::default()
    };
    AlertmanagerConfig {
        metadata: ctx.meta(&ctx.name, &n.labels),
        spec: AlertmanagerConfigSpec {
            route: Some(Route {
                receiver: NONE_RECEIVER.into(),
                group_by: n.group_by.clone(),
                group_wait: Some(n.group_wait.clone()),
                group_interval: Some(n.group_interval.clone()),
                repeat_interval: Some(n.repeat_interval.clone()),
                matchers: ours(),
                routes,
                ..Route::default()
            }),
            receivers: std::iter::once(none).chain(n.receivers.iter().map(receiver)).collect(),
            inhibit_rules,
        },
    }
}

fn matcher(name: &str, match_type: &str, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        value: value.into(),
        match_type: match_type.into(),
    }
}

fn secret(r: &SecretKeyRef) -> SecretKeySelector {
    SecretKeySelector {
        name: r.name.clone(),
        key: r.key.clone(),
    }
}

/// Every receiver states `sendResolved`: the integrations' own defaults differ (true for webhooks, false for Slack
/// and email), and the spec's one default should mean the same everywhere.
fn receiver(r: &ReceiverSpec) -> Receiver {
    let send_resolved = Some(r.send_resolved);
    Receiver {
        name: r.name.clone(),
        webhook_configs: r
            .webhook
            .iter()
            .map(|w| WebhookConfig {
                send_resolved,
                url_secret: Some(secret(&w.url_secret_ref)),
                max_alerts: w.max_alerts,
            })
            .collect(),
        slack_configs: r
            .slack
            .iter()
            .map(|s| SlackConfig {
                send_resolved,
                api_url: Some(secret(&s.api_url_secret_ref)),
                channel: s.channel.clone(),
            })
            .collect(),
        email_configs: r
            .email
            .iter()
            .map(|e| EmailConfig {
                send_resolved,
                to: e.to.clone(),
                from: Some(e.from.clone()),
                smarthost: Some(e.smarthost.clone()),
                auth_username: e.auth_username.clone(),
                auth_password: e.auth_password_secret_ref.as_ref().map(secret),
                require_tls: e.require_tls,
            })
            .collect(),
        pagerduty_configs: r
            .pagerduty
            .iter()
            .map(|p| PagerDutyConfig {
                send_resolved,
                routing_key: Some(secret(&p.routing_key_secret_ref)),
            })
            .collect(),
        msteamsv2_configs: r
            .msteams
            .iter()
            .map(|t| MsTeamsV2Config {
                send_resolved,
                webhook_url: Some(secret(&t.webhook_url_secret_ref)),
            })
            .collect(),
    }
}

/// The receivers, as Alertmanager names them, that an alert of `severity` from this resource must reach:
/// computed from the spec alone, so that tests of the rendered routing do not trust the renderer.
pub fn expected_receivers(namespace: &str, name: &str, n: &NotificationsSpec, severity: &str) -> Vec<String> {
    let wanted: Vec<&String> = n
        .routes
        .by_severity()
        .into_iter()
        .filter(|(s, _)| *s == severity)
        .flat_map(|(_, r)| r.iter())
        .collect();
    if wanted.is_empty() {
        vec![alertmanager_receiver(namespace, name, NONE_RECEIVER)]
    } else {
        wanted
            .iter()
            .map(|r| alertmanager_receiver(namespace, name, r))
            .collect()
    }
}

/// The name the Prometheus Operator gives a receiver of an AlertmanagerConfig in Alertmanager's configuration.
pub fn alertmanager_receiver(namespace: &str, config: &str, receiver: &str) -> String {
    format!("{namespace}/{config}/{receiver}")
}

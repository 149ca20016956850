//! `spec.notifications`: who is told when an alert fires. The operator turns it into a prometheus-operator
//! `AlertmanagerConfig`; credentials and URLs are only ever Secret references, never inline.
//!
//! Receivers are structs with one optional field per kind, not a Rust enum: an enum with data becomes a `oneOf`
//! schema, which a CRD's structural schema does not allow. A CEL rule requires exactly one kind.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{SecretKeyRef, SelectionMode, yes};

/// The durations Alertmanager and the `AlertmanagerConfig` CRD accept, largest unit first, that CEL's `duration()`
/// also reads: `30s`, `5m`, `4h`, `1h30m`.
const AM_DURATION_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";
/// A receiver's name: it becomes part of Alertmanager's receiver name (`<namespace>/<resource>/<name>`).
const RECEIVER_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A Prometheus label name.
const LABEL_NAME_PATTERN: &str = r"^[a-zA-Z_][a-zA-Z0-9_]*$";
/// The receiver that takes the alerts routed to no one: it has no integration, so Alertmanager drops them.
pub const NONE_RECEIVER: &str = "none";

/// Who is told when one of the resource's alerts fires, through Alertmanager: the receivers, which severity goes
/// to which of them, how alerts are grouped, and the inhibitions that keep a root cause from paging as ten
/// symptoms.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!self.enabled || size(self.receivers) > 0")
        .message("notifications.receivers needs at least one receiver")
        .field_path(".receivers")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!self.enabled || self.routes.critical.all(r, self.receivers.exists(x, x.name == r))")
        .message("notifications.routes.critical names a receiver that is not in notifications.receivers (the default is `paging`)")
        .field_path(".routes.critical"),
    validation = Rule::new("!self.enabled || self.routes.warning.all(r, self.receivers.exists(x, x.name == r))")
        .message("notifications.routes.warning names a receiver that is not in notifications.receivers (the default is `chat`)")
        .field_path(".routes.warning"),
    validation = Rule::new("!self.enabled || self.routes.info.all(r, self.receivers.exists(x, x.name == r))")
        .message("notifications.routes.info names a receiver that is not in notifications.receivers")
        .field_path(".routes.info"),
    validation = Rule::new("duration(self.repeatInterval) >= duration(self.groupInterval)")
        .message("notifications.repeatInterval must not be shorter than notifications.groupInterval")
        .field_path(".repeatInterval")
)]
pub struct NotificationsSpec {
    /// Render the AlertmanagerConfig.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where notifications go. Name them `paging` and `chat` to need no `routes`.
    #[serde(default)]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub receivers: Vec<ReceiverSpec>,
    /// Which receivers each severity goes to.
    #[serde(default)]
    pub routes: SeverityRoutes,
    /// The labels that make one notification of several alerts: by default one per alert and chatbot.
    #[serde(default = "default_group_by")]
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "pattern": LABEL_NAME_PATTERN}))]
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(default = "default_group_wait")]
    #[schemars(regex(pattern = AM_DURATION_PATTERN), length(min = 1))]
    pub group_wait: String,
    /// How long a group waits before notifying of alerts added to it (and of resolved ones).
    #[serde(default = "default_group_interval")]
    #[schemars(regex(pattern = AM_DURATION_PATTERN), length(min = 1))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("notifications.groupInterval must be longer than 0s"))]
    pub group_interval: String,
    /// How long before a notification still firing is sent again.
    #[serde(default = "default_repeat_interval")]
    #[schemars(regex(pattern = AM_DURATION_PATTERN), length(min = 1))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("notifications.repeatInterval must be longer than 0s"))]
    pub repeat_interval: String,
    /// The inhibitions: `ChatbotDown` (too few of the chatbot's targets up) silences the chatbot's other alerts,
    /// and a `critical` alert silences the `warning` of the same name.
    #[serde(default = "yes")]
    pub inhibit: bool,
    /// Labels added to the AlertmanagerConfig so that an Alertmanager selects it (kube-prometheus-stack's selects
    /// every one by default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Which Alertmanager should load the routing: condition `Routed` says whether it does, and why not.
    #[serde(default)]
    pub alertmanager: AlertmanagerSelection,
}

fn default_group_by() -> Vec<String> {
    ["alertname", "namespace", "chatbot"].map(String::from).to_vec()
}
fn default_group_wait() -> String {
    "30s".into()
}
fn default_group_interval() -> String {
    "5m".into()
}
fn default_repeat_interval() -> String {
    "4h".into()
}

impl Default for NotificationsSpec {
    fn default() -> Self {
        NotificationsSpec {
            enabled: true,
            receivers: Vec::new(),
            routes: SeverityRoutes::default(),
            group_by: default_group_by(),
            group_wait: default_group_wait(),
            group_interval: default_group_interval(),
            repeat_interval: default_repeat_interval(),
            inhibit: true,
            labels: BTreeMap::new(),
            alertmanager: AlertmanagerSelection::default(),
        }
    }
}

/// The receivers of each `severity` label value; every name must be one of `receivers`. An alert whose severity
/// goes to no receiver is dropped.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeverityRoutes {
    /// Paged: by default the receiver named `paging`.
    #[serde(default = "default_critical")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 16))]
    pub critical: Vec<String>,
    /// Told in the team's chat: by default the receiver named `chat`.
    #[serde(default = "default_warning")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 16))]
    pub warning: Vec<String>,
    /// By default no one: the alert stays on Prometheus' and Alertmanager's pages.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 16))]
    pub info: Vec<String>,
}

fn default_critical() -> Vec<String> {
    vec!["paging".into()]
}
fn default_warning() -> Vec<String> {
    vec!["chat".into()]
}

impl Default for SeverityRoutes {
    fn default() -> Self {
        SeverityRoutes {
            critical: default_critical(),
            warning: default_warning(),
            info: Vec::new(),
        }
    }
}

impl SeverityRoutes {
    /// (severity, receivers), most severe first.
    pub fn by_severity(&self) -> [(&'static str, &[String]); 3] {
        [
            ("critical", &self.critical),
            ("warning", &self.warning),
            ("info", &self.info),
        ]
    }
}

/// One place notifications go: exactly one of `webhook`, `slack`, `email`, `pagerduty`, `msteams`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.webhook), has(self.slack), has(self.email), has(self.pagerduty), has(self.msteams)].filter(k, k).size() == 1"
)
.message("a receiver sets exactly one of webhook, slack, email, pagerduty and msteams"))]
pub struct ReceiverSpec {
    /// The name `routes` use; `none` is reserved for the alerts routed to no one.
    #[schemars(length(min = 1, max = 63), regex(pattern = RECEIVER_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self != 'none'").message("the receiver name none is reserved for the alerts routed to no one"))]
    pub name: String,
    /// Also notify when the alerts resolve.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// A generic webhook: Alertmanager POSTs its JSON payload (version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookReceiver>,
    /// A Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackReceiver>,
    /// Email through an SMTP relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailReceiver>,
    /// PagerDuty, Events API v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutyReceiver>,
    /// A Microsoft Teams channel through a Workflows (Power Automate) webhook; Alertmanager 0.28 or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteams: Option<MsTeamsReceiver>,
}

impl ReceiverSpec {
    /// The receiver's kind, as the spec names it.
    pub fn kind(&self) -> &'static str {
        match self {
            ReceiverSpec { webhook: Some(_), .. } => "webhook",
            ReceiverSpec { slack: Some(_), .. } => "slack",
            ReceiverSpec { email: Some(_), .. } => "email",
            ReceiverSpec { pagerduty: Some(_), .. } => "pagerduty",
            ReceiverSpec { msteams: Some(_), .. } => "msteams",
            _ => "none",
        }
    }

    /// Every Secret key the receiver reads, with the field that names it.
    pub fn secret_refs(&self, index: usize) -> Vec<(String, &SecretKeyRef)> {
        let field = |f: &str| format!("spec.notifications.receivers[{index}].{f}");
        let mut refs = Vec::new();
        if let Some(w) = &self.webhook {
            refs.push((field("webhook.urlSecretRef"), &w.url_secret_ref));
        }
        if let Some(s) = &self.slack {
            refs.push((field("slack.apiUrlSecretRef"), &s.api_url_secret_ref));
        }
        if let Some(e) = &self.email
            && let Some(p) = &e.auth_password_secret_ref
        {
            refs.push((field("email.authPasswordSecretRef"), p));
        }
        if let Some(p) = &self.pagerduty {
            refs.push((field("pagerduty.routingKeySecretRef"), &p.routing_key_secret_ref));
        }
        if let Some(t) = &self.msteams {
            refs.push((field("msteams.webhookUrlSecretRef"), &t.webhook_url_secret_ref));
        }
        refs
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceiver {
    /// The Secret key holding the URL (it often carries a token).
    pub url_secret_ref: SecretKeyRef,
    /// At most this many alerts in one payload; 0 for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_alerts: Option<i32>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlackReceiver {
    /// The Secret key holding the incoming webhook's URL.
    pub api_url_secret_ref: SecretKeyRef,
    /// The channel, e.g. `#chatbot-alerts`; the webhook's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub channel: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmailReceiver {
    /// The recipient address (or a comma-separated list).
    #[schemars(length(min = 3, max = 1024))]
    pub to: String,
    /// The sender address.
    #[schemars(length(min = 3, max = 254))]
    pub from: String,
    /// The SMTP relay, `host:port`.
    #[schemars(regex(pattern = r"^[^\s:]+:[0-9]{1,5}$"))]
    pub smarthost: String,
    /// The user name to log in to the relay with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    /// The Secret key holding the relay's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_secret_ref: Option<SecretKeyRef>,
    /// Require STARTTLS (Alertmanager's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PagerDutyReceiver {
    /// The Secret key holding the service's Events API v2 integration (routing) key.
    pub routing_key_secret_ref: SecretKeyRef,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MsTeamsReceiver {
    /// The Secret key holding the Workflows webhook's URL.
    pub webhook_url_secret_ref: SecretKeyRef,
}

/// Which Alertmanager (a prometheus-operator `Alertmanager` object) is expected to load the routing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode != 'reference' || has(self.name)")
        .message("notifications.alertmanager.name is required when mode is reference")
        .field_path(".name")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("self.mode != 'reference' || has(self.__namespace__)")
        .message("notifications.alertmanager.namespace is required when mode is reference")
        .field_path(".namespace")
        .reason(Reason::FieldValueRequired)
)]
pub struct AlertmanagerSelection {
    /// `auto`: the only Alertmanager of the cluster, whose required labels are added when `labels` is empty;
    /// `reference`: the one named here; `none`: no routing check.
    #[serde(default)]
    pub mode: SelectionMode,
    /// Name of the `Alertmanager` object, with `mode: reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the `Alertmanager` object, with `mode: reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Alertmanager HTTP API the operator reads the loaded configuration from; by default the chosen
    /// Alertmanager's first pod through its `alertmanager-operated` Service on port 9093, under its routePrefix,
    /// over HTTPS when its web.tlsConfig is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message(
        "notifications.alertmanager.url must be an http(s) URL"
    ))]
    pub url: Option<String>,
}

//! `spec.alerts`: the thresholds of the alerting rules, the availability alerts, and the service-level objectives.
//!
//! Every field of every alert has a default of its own in the schema, so that a resource may write one field of an
//! alert alone (`latency: {threshold: 3}`) and get the others from that alert's defaults. The alerts share one
//! shape, [`Alert`], whose defaults come from a marker type per alert ([`AlertDefaults`]): one type would give every
//! alert the same defaults.

use std::marker::PhantomData;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DURATION_PATTERN, yes};

/// The upper bounds of the chatbot's latency histograms (`http_request_duration_seconds`,
/// `chat_response_time_seconds`): part of its metrics contract. The operator does not link the chatbot, so this is a
/// copy, and `tests/live/tests/contract.rs` fails the build the day the two differ.
pub const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Alerting rules. Thresholds default to the monitoring guide's; each field may be set alone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    /// Render the PrometheusRule.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Base URL of the runbooks; each alert links `<base>/<AlertName>.md`.
    #[serde(default = "default_runbook_base_url")]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message(
        "alerts.runbookBaseUrl must be an http(s) URL"
    ))]
    pub runbook_base_url: String,
    /// HighErrorRate: 5xx responses per second.
    #[serde(default)]
    pub error_rate: Alert<ErrorRate>,
    /// HighResponseTime: p95 of the HTTP request duration, in seconds.
    #[serde(default)]
    pub latency: Alert<Latency>,
    /// HighMemoryUsage: resident memory against the pod's memory limit (limitPercent), or in bytes (threshold) where
    /// the pod has no limit.
    #[serde(default)]
    pub memory: MemoryAlert,
    /// HighChatResponseTime: p95 of the time to answer a chat message, in seconds.
    #[serde(default)]
    pub chat_latency: Alert<ChatLatency>,
    /// AIModelErrorsHigh: share (0 to 1) of model calls that fail or time out.
    #[serde(default)]
    pub model_errors: Alert<ModelErrors>,
    /// DatabaseConnectionsSaturated: share (0 to 1) of the pool's connections in use.
    #[serde(default)]
    pub database_saturation: Alert<DatabaseSaturation>,
    /// HighEscalationRate: share (0 to 1) of answered chats handed to a human.
    #[serde(default)]
    pub escalations: Alert<Escalations>,
    /// ChatbotDown and ChatbotTargetsDown: availability judged by the share of the chatbot's targets that are up.
    #[serde(default)]
    pub availability: AvailabilityAlerts,
    /// Service-level objectives over 30 days, each with multi-window multi-burn-rate alerts on its error budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSpec>,
    /// ModelSpendOverBudget and ModelSpendForecast: the model's estimated spend over a day against a budget. Only
    /// the shop knows its budget: off unless set (and it needs `chatbot.model.openai.prices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<SpendAlert>,
    /// TokensPerChatHigh: tokens per answered chat far above their usual level (`openai` backend only).
    #[serde(default)]
    pub tokens_per_chat: TokensPerChatAlert,
    /// LowSatisfaction: the share of answers rated `down`, once enough were rated.
    #[serde(default)]
    pub satisfaction: SatisfactionAlert,
    /// LowContainment: the share of conversations resolved by the bot alone under a floor. Only the shop knows its
    /// floor: off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<ContainmentAlert>,
}

fn default_runbook_base_url() -> String {
    "https://github.com/chatbot-sav/chatbot-monitoring/blob/main/docs/runbooks".into()
}

impl Default for AlertsSpec {
    fn default() -> Self {
        AlertsSpec {
            enabled: true,
            runbook_base_url: default_runbook_base_url(),
            error_rate: Alert::default(),
            latency: Alert::default(),
            memory: MemoryAlert::default(),
            chat_latency: Alert::default(),
            model_errors: Alert::default(),
            database_saturation: Alert::default(),
            escalations: Alert::default(),
            availability: AvailabilityAlerts::default(),
            slo: None,
            spend: None,
            tokens_per_chat: TokensPerChatAlert::default(),
            satisfaction: SatisfactionAlert::default(),
            containment: None,
        }
    }
}

/// The defaults of one alert.
pub trait AlertDefaults {
    const THRESHOLD: f64;
    const FOR: &'static str;
    const SEVERITY: Severity;
}

/// One alert's threshold, how long it must hold, and how loud it is; each field defaults to the alert's own value.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert<D: AlertDefaults> {
    /// Fire above this value, in the alert's unit (see the alert).
    #[serde(default = "threshold::<D>")]
    #[schemars(range(min = 0.0))]
    pub threshold: f64,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default = "for_::<D>")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: String,
    /// The alert's `severity` label, which Alertmanager routes on: `critical`, `warning` or `info`.
    #[serde(default = "severity::<D>")]
    pub severity: Severity,
    #[serde(skip)]
    #[schemars(skip)]
    defaults: PhantomData<D>,
}

fn threshold<D: AlertDefaults>() -> f64 {
    D::THRESHOLD
}
fn for_<D: AlertDefaults>() -> String {
    D::FOR.into()
}
fn severity<D: AlertDefaults>() -> Severity {
    D::SEVERITY
}

impl<D: AlertDefaults> Default for Alert<D> {
    fn default() -> Self {
        Alert {
            threshold: D::THRESHOLD,
            for_: D::FOR.into(),
            severity: D::SEVERITY,
            defaults: PhantomData,
        }
    }
}

/// Declares the marker type of an alert with its defaults.
macro_rules! alert_defaults {
    ($($(#[$doc:meta])* $name:ident: $threshold:expr, $for_:literal, $severity:ident;)*) => {$(
        $(#[$doc])*
        #[derive(JsonSchema, Clone, Copy, Debug, PartialEq)]
        pub struct $name;
        impl AlertDefaults for $name {
            const THRESHOLD: f64 = $threshold;
            const FOR: &'static str = $for_;
            const SEVERITY: Severity = Severity::$severity;
        }
    )*};
}

alert_defaults! {
    /// HighErrorRate's defaults.
    ErrorRate: 0.1, "2m", Critical;
    /// HighResponseTime's defaults.
    Latency: 2.0, "2m", Warning;
    /// HighMemoryUsage's defaults, the threshold for pods with no memory limit (the monitoring guide's 500 MB).
    Memory: 500.0 * 1024.0 * 1024.0, "5m", Warning;
    /// HighChatResponseTime's defaults.
    ChatLatency: 3.0, "5m", Warning;
    /// AIModelErrorsHigh's defaults.
    ModelErrors: 0.1, "10m", Warning;
    /// DatabaseConnectionsSaturated's defaults.
    DatabaseSaturation: 0.9, "10m", Warning;
    /// HighEscalationRate's defaults.
    Escalations: 0.5, "30m", Info;
}

/// HighMemoryUsage: a pod is judged against the memory limit it really has (the chatbot exports it as
/// `memory_limit_bytes`): it is OOM-killed at 100 %, whatever an absolute number says.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryAlert {
    /// Fire when resident memory is above this percentage of the pod's memory limit.
    #[serde(default = "default_limit_percent")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub limit_percent: f64,
    /// `threshold`: bytes of resident memory, for a pod with no memory limit only.
    #[serde(flatten)]
    pub alert: Alert<Memory>,
}

fn default_limit_percent() -> f64 {
    90.0
}

impl Default for MemoryAlert {
    fn default() -> Self {
        MemoryAlert {
            limit_percent: default_limit_percent(),
            alert: Alert::default(),
        }
    }
}

/// Availability by share, as kubernetes-mixin's `TargetDown`: one pod of several evicted or OOM-killed is not an
/// outage, and must not page nor silence the alerts of the pods still serving.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityAlerts {
    /// ChatbotDown (critical, the one alert that silences the chatbot's others) fires when fewer than this
    /// percentage of the chatbot's targets are up, or none is.
    #[serde(default = "default_min_up_percent")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub min_up_percent: f64,
    /// How long ChatbotDown's condition must hold before it fires.
    #[serde(rename = "for", default = "default_down_for")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: String,
    /// ChatbotTargetsDown (warning, silences nothing) fires when some targets are down, not enough for ChatbotDown,
    /// for this long: longer than a rolling update takes.
    #[serde(default = "default_partial_for")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub partial_for: String,
}

fn default_min_up_percent() -> f64 {
    50.0
}
fn default_down_for() -> String {
    "2m".into()
}
fn default_partial_for() -> String {
    "15m".into()
}

impl Default for AvailabilityAlerts {
    fn default() -> Self {
        AvailabilityAlerts {
            min_up_percent: default_min_up_percent(),
            for_: default_down_for(),
            partial_for: default_partial_for(),
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Service-level objectives over a 30-day window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.availabilityTarget) || has(self.latency)")
    .message("alerts.slo needs availabilityTarget, latency, or both")
    .reason(Reason::FieldValueRequired))]
pub struct SloSpec {
    /// Availability: target share of non-5xx responses, in percent, e.g. 99.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 50.0, max = 99.999))]
    pub availability_target: Option<f64>,
    /// Latency: the share of chats answered within a threshold, e.g. 99 % within 2 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySlo>,
}

/// A latency objective, measured on the `chat_response_time_seconds` histogram.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencySlo {
    /// Target share of chats answered within the threshold, in percent, e.g. 99.
    #[schemars(range(min = 50.0, max = 99.999))]
    pub target: f64,
    /// Seconds within which a chat answer counts as on time: one of the histogram's bucket bounds, which is all a
    /// histogram can count exactly.
    #[x_kube(validation = Rule::new(latency_threshold_rule()).message(Message::Message(latency_threshold_message())))]
    pub threshold: f64,
}

/// The CEL rule that holds a latency objective's threshold to a bucket bound (`double()`: YAML's `2` is an integer).
fn latency_threshold_rule() -> String {
    let bounds: Vec<String> = LATENCY_BUCKETS.iter().map(|b| format!("{b:?}")).collect();
    format!("double(self) in [{}]", bounds.join(", "))
}

fn latency_threshold_message() -> String {
    let bounds: Vec<String> = LATENCY_BUCKETS.iter().map(|b| b.to_string()).collect();
    format!(
        "alerts.slo.latency.threshold must be one of the bucket bounds of chat_response_time_seconds: {} (seconds)",
        bounds.join(", ")
    )
}

/// A daily budget for the model's estimated spend (`ai_model_estimated_cost_total`), over a rolling 24 hours.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpendAlert {
    /// The most the model may cost in 24 hours, in `currency`.
    #[schemars(range(min = 0.0))]
    #[x_kube(validation = Rule::new("self > 0.0").message("alerts.spend.dailyBudget must be above 0"))]
    pub daily_budget: f64,
    /// ISO 4217 code of the budget, as the price table writes it (e.g. `EUR`): only spend in this currency counts.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// ModelSpendForecast fires when the day's spend, extrapolated from its last hour (`predict_linear`), would pass
    /// the budget within this long.
    #[serde(default = "default_spend_forecast")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub forecast: String,
    /// The alerts' `severity` label.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn default_spend_forecast() -> String {
    "6h".into()
}
fn warning() -> Severity {
    Severity::Warning
}

/// Tokens per answered chat over `window` against their level over `baseline`: a prompt injection or a loop makes
/// each chat cost many times its usual tokens.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.baseline) > duration(self.window)")
    .message("alerts.tokensPerChat.baseline must be longer than its window, which it is compared with")
    .field_path(".baseline"))]
pub struct TokensPerChatAlert {
    /// Render the alert (with the `openai` backend; the builtin model has no tokens).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fire above this many times the baseline's tokens per chat.
    #[serde(default = "default_token_factor")]
    #[schemars(range(min = 1.0))]
    pub factor: f64,
    /// The recent window compared with the baseline.
    #[serde(default = "default_token_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: String,
    /// The usual level: tokens per chat over this long.
    #[serde(default = "default_token_baseline")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub baseline: String,
    /// Chats answered in the window below which the alert stays silent (a handful of long questions is not a trend).
    #[serde(default = "default_min_events")]
    #[schemars(range(min = 1))]
    pub min_chats: u32,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default = "default_token_for")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: String,
    /// The alert's `severity` label.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn default_token_factor() -> f64 {
    3.0
}
fn default_token_window() -> String {
    "1h".into()
}
fn default_token_baseline() -> String {
    "168h".into()
}
fn default_min_events() -> u32 {
    20
}
fn default_token_for() -> String {
    "15m".into()
}

impl Default for TokensPerChatAlert {
    fn default() -> Self {
        TokensPerChatAlert {
            enabled: true,
            factor: default_token_factor(),
            window: default_token_window(),
            baseline: default_token_baseline(),
            min_chats: default_min_events(),
            for_: default_token_for(),
            severity: Severity::Warning,
        }
    }
}

/// The share of rated answers rated `down` over a window, once enough were rated that one angry customer does not
/// page.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SatisfactionAlert {
    /// Render the alert.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fire when more than this percentage of the ratings in the window are `down`.
    #[serde(default = "default_max_down_percent")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_down_percent: f64,
    /// Ratings in the window below which the alert stays silent.
    #[serde(default = "default_min_events")]
    #[schemars(range(min = 1))]
    pub min_ratings: u32,
    /// The window the share is taken over.
    #[serde(default = "default_satisfaction_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: String,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default = "default_satisfaction_for")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: String,
    /// The alert's `severity` label.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn default_max_down_percent() -> f64 {
    30.0
}
fn default_satisfaction_window() -> String {
    "1h".into()
}
fn default_satisfaction_for() -> String {
    "15m".into()
}

impl Default for SatisfactionAlert {
    fn default() -> Self {
        SatisfactionAlert {
            enabled: true,
            max_down_percent: default_max_down_percent(),
            min_ratings: default_min_events(),
            window: default_satisfaction_window(),
            for_: default_satisfaction_for(),
            severity: Severity::Warning,
        }
    }
}

/// The share of decided conversations resolved by the bot alone (`chat_conversations_total{outcome="resolved"}`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainmentAlert {
    /// Fire when fewer than this percentage of the conversations decided in the window were resolved.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub min_percent: f64,
    /// Conversations decided in the window below which the alert stays silent.
    #[serde(default = "default_min_events")]
    #[schemars(range(min = 1))]
    pub min_conversations: u32,
    /// The window the share is taken over.
    #[serde(default = "default_containment_window")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: String,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default = "default_containment_for")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: String,
    /// The alert's `severity` label.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn default_containment_window() -> String {
    "6h".into()
}
fn default_containment_for() -> String {
    "30m".into()
}

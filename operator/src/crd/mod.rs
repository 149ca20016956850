//! The `ChatbotMonitoring` custom resource: its spec with defaults and validation rules, and its status.
//!
//! The CRD in `crds/` is generated from these types (`chatbot-operator crd`). Defaults and validation live in the
//! schema itself so that `kubectl apply` refuses a bad resource with a clear message before the operator sees it.

// clippy reads the repeated `type_ = …` of the `printcolumn(…)` entries as one attribute given twice.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, PodSecurityContext, ResourceRequirements, SecurityContext};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod alerts;
mod notifications;
pub use alerts::*;
pub use notifications::*;

/// The kind's API group and version, as `#[kube(…)]` below spells them (an attribute cannot read a const; a test
/// holds the two together).
pub const GROUP: &str = "monitoring.chatbot-sav.io";
pub const VERSION: &str = "v1alpha1";

/// Go/Prometheus durations that CEL's `duration()` also parses: `30s`, `1m30s`, `2m`, `500ms`, `1h`.
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";
/// Long durations, days allowed (`180d`, `4320h`, `0s`): never read by CEL.
const RETENTION_PATTERN: &str = r"^([0-9]+(s|m|h|d))+$";

/// A monitored customer-support chatbot: its Deployment and Service, the ServiceMonitor that gets it scraped, the
/// PrometheusRule with its alerts, and its Grafana dashboards.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "monitoring.chatbot-sav.io",
    version = "v1alpha1",
    kind = "ChatbotMonitoring",
    namespaced,
    status = "ChatbotMonitoringStatus",
    shortname = "cbm",
    category = "chatbot-sav",
    derive = "PartialEq",
    doc = "A customer-support chatbot that the operator runs and monitors: its Deployment and Service, a ServiceMonitor \
           so that Prometheus scrapes it, a PrometheusRule with its alerts, and Grafana dashboard ConfigMaps. The \
           status says whether a Prometheus really selects, scrapes and evaluates them.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the chatbot runs and is monitored as the spec asks."
    ),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".status.replicas",
        description = "Ready chatbot pods over desired."
    ),
    printcolumn(
        name = "Scraped",
        type_ = "string",
        json_path = ".status.scraped",
        description = "The chatbot's targets up in Prometheus over all of its targets there."
    ),
    printcolumn(
        name = "Alerts",
        type_ = "integer",
        json_path = ".status.alertRules",
        description = "Alerting rules in the PrometheusRule."
    ),
    printcolumn(
        name = "Dashboards",
        type_ = "integer",
        json_path = ".status.dashboards",
        description = "Grafana dashboard ConfigMaps."
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1,
        description = "Why Ready is what it is (kubectl get -o wide)."
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = describe_defaults)]
#[x_kube(validation = Rule::new(
    "!has(self.alerts) || !has(self.alerts.spend) || (has(self.chatbot) && has(self.chatbot.model) && \
     has(self.chatbot.model.openai) && has(self.chatbot.model.openai.prices))"
)
.message("alerts.spend needs a price table to estimate spend from: set chatbot.model.openai.prices")
.field_path(".alerts.spend")
.reason(Reason::FieldValueRequired))]
pub struct ChatbotMonitoringSpec {
    /// The chatbot workload.
    #[serde(default)]
    pub chatbot: ChatbotSpec,
    /// How Prometheus scrapes the chatbot (through a prometheus-operator ServiceMonitor).
    #[serde(default)]
    pub monitoring: MonitoringSpec,
    /// The alerting rules (a prometheus-operator PrometheusRule).
    #[serde(default)]
    pub alerts: AlertsSpec,
    /// The Grafana dashboards (ConfigMaps for the Grafana dashboard sidecar).
    #[serde(default)]
    pub dashboards: DashboardsSpec,
    /// Who may reach the chatbot's two ports (a NetworkPolicy).
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// Who is told when an alert fires (a prometheus-operator AlertmanagerConfig). Absent: no one, the alerts stay
    /// on Prometheus' and Alertmanager's pages.
    // Boxed: the controller caches every resource, and most have none (300 bytes each otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Box<NotificationsSpec>>,
}

/// The chatbot Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.database.type != 'sqlite' || self.replicas <= 1")
        .message("SQLite lives inside each pod: set database.type to postgres to run more than one replica")
        .field_path(".replicas")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("self.metricsPort != self.port")
        .message("chatbot.metricsPort must differ from chatbot.port")
        .field_path(".metricsPort")
)]
pub struct ChatbotSpec {
    /// Container image; the operator's default chatbot image when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Number of chatbot pods.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Container port of the public API (`/chat`, `/conversations`, `/tickets`). Above 1023: the pod runs as
    /// non-root.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Container port of `/metrics` and the probes (port `metrics`, the one the ServiceMonitor scrapes), kept off
    /// the API so that exposing the API never exposes them.
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub metrics_port: i32,
    /// CPU and memory requests and limits; sensible defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Which model answers.
    #[serde(default)]
    pub model: ModelSpec,
    /// Where conversations are stored.
    #[serde(default)]
    pub database: DatabaseSpec,
    /// The Secret key holding the support agents' bearer tokens (comma- or newline-separated; several at once to
    /// rotate one), which reading tickets requires. None: tickets cannot be read over the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_tokens_secret_ref: Option<SecretKeyRef>,
    /// How long conversations, messages and tickets are kept before the chatbot deletes them, e.g. `90d`; `0s`
    /// keeps them for ever. The chatbot's default (180 days) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RETENTION_PATTERN))]
    pub retention: Option<String>,
    /// How long a conversation goes without a message before its outcome (resolved, escalated, abandoned) is
    /// decided and counted. The chatbot's default (30 minutes) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message(
        "chatbot.conversationIdle must be longer than 0s (the chatbot refuses 0s)"
    ))]
    pub conversation_idle: Option<String>,
    /// Extra environment variables for the chatbot container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Extra labels for the chatbot pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Extra annotations for the chatbot pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// The pods' security context, instead of the operator's: `runAsNonRoot` and the `RuntimeDefault` seccomp
    /// profile, with no fixed user so that a platform that assigns one (OpenShift's restricted-v2) can.
    // Boxed, as `security_context`: rarely set, and 400 bytes inline in every cached resource otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<Box<PodSecurityContext>>,
    /// The chatbot container's security context, instead of the operator's: no privilege escalation, a read-only
    /// root filesystem, every capability dropped, non-root, `RuntimeDefault` seccomp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Box<SecurityContext>>,
}

fn default_replicas() -> i32 {
    1
}
fn default_port() -> i32 {
    8000
}
fn default_metrics_port() -> i32 {
    8081
}

impl Default for ChatbotSpec {
    fn default() -> Self {
        ChatbotSpec {
            image: None,
            image_pull_policy: None,
            replicas: default_replicas(),
            port: default_port(),
            metrics_port: default_metrics_port(),
            resources: None,
            model: ModelSpec::default(),
            database: DatabaseSpec::default(),
            agent_tokens_secret_ref: None,
            retention: None,
            conversation_idle: None,
            env: Vec::new(),
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            pod_security_context: None,
            security_context: None,
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// The model backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.backend != 'openai' || has(self.openai)")
    .message("model.openai (endpoint, model, apiKeySecretRef) is required when model.backend is openai")
    .field_path(".openai")
    .reason(Reason::FieldValueRequired))]
pub struct ModelSpec {
    /// `builtin` (embedded, no network) or `openai` (an OpenAI-compatible endpoint, falling back to builtin).
    #[serde(default)]
    pub backend: ModelBackend,
    /// Settings of the OpenAI-compatible endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAiSpec>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelBackend {
    #[default]
    Builtin,
    Openai,
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OpenAiSpec {
    /// Base URL up to the API version, e.g. `https://api.openai.com/v1`.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message(
        "endpoint must be an http(s) URL"
    ))]
    pub endpoint: String,
    /// Model name sent to the endpoint.
    #[schemars(length(min = 1))]
    pub model: String,
    /// The Secret key holding the API key.
    pub api_key_secret_ref: SecretKeyRef,
    /// Deadline of one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Who serves the endpoint, the `gen_ai_provider_name` label of the token metrics: `openai`, `azure.ai.openai`,
    /// `vllm`… The chatbot's default (`openai`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"))]
    pub provider_name: Option<String>,
    /// The price table the spend is estimated from (YAML: per model, the price of a million input, cached input
    /// and output tokens and a currency; see the chatbot's README), from a ConfigMap or a Secret key. The chatbot
    /// reads it again when it changes. Absent: no spend is estimated, tokens are counted as unpriced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<PricesSource>,
}

/// Where the price table is: exactly one of a ConfigMap key and a Secret key, in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)")
    .message("prices needs exactly one of configMapKeyRef and secretKeyRef")
    .reason(Reason::FieldValueInvalid))]
pub struct PricesSource {
    /// A key of a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// A key of a Secret (for prices under a confidential contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A key of a ConfigMap in the resource's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the resource's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the ConfigMap's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A key of a Secret in the resource's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the resource's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Conversation storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'postgres' || has(self.postgres)")
    .message("database.postgres.urlSecretRef is required when database.type is postgres")
    .field_path(".postgres")
    .reason(Reason::FieldValueRequired))]
pub struct DatabaseSpec {
    /// `sqlite` (a file in the pod, for one replica) or `postgres` (shared by every replica).
    #[serde(default, rename = "type")]
    pub type_: DatabaseType,
    /// PostgreSQL connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseType {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// The Secret key holding the `postgres://…` URL.
    pub url_secret_ref: SecretKeyRef,
}

/// Scraping.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.scrapeTimeout) <= duration(self.interval)")
    .message("monitoring.scrapeTimeout must not be longer than monitoring.interval")
    .field_path(".scrapeTimeout"))]
pub struct MonitoringSpec {
    /// Render the ServiceMonitor.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Scrape interval.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: String,
    /// Scrape timeout, at most the interval.
    #[serde(default = "default_scrape_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scrape_timeout: String,
    /// Labels added to the ServiceMonitor and the PrometheusRule so that a Prometheus selects them, e.g.
    /// `release: kube-prometheus-stack` for kube-prometheus-stack's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Which Prometheus should select the ServiceMonitor and PrometheusRule: condition `Selected` says whether it
    /// does, and why not.
    #[serde(default)]
    pub prometheus: PrometheusSelection,
}

/// Which Prometheus (a prometheus-operator `Prometheus` object) is expected to monitor the chatbot.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode != 'reference' || has(self.name)")
        .message("monitoring.prometheus.name is required when mode is reference")
        .field_path(".name")
        .reason(Reason::FieldValueRequired),
    // `namespace` is a CEL reserved word: Kubernetes escapes the property as `__namespace__`.
    validation = Rule::new("self.mode != 'reference' || has(self.__namespace__)")
        .message("monitoring.prometheus.namespace is required when mode is reference")
        .field_path(".namespace")
        .reason(Reason::FieldValueRequired)
)]
pub struct PrometheusSelection {
    /// `auto`: the only Prometheus of the cluster, whose required labels are added when `labels` is empty;
    /// `reference`: the one named here; `none`: no selection check.
    #[serde(default)]
    pub mode: SelectionMode,
    /// Name of the `Prometheus` object, with `mode: reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the `Prometheus` object, with `mode: reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Prometheus HTTP API the operator queries to check scraping, rules and panels; by default the chosen
    /// Prometheus' first pod through its `prometheus-operated` Service on port 9090, under its routePrefix, over
    /// HTTPS when its web.tlsConfig is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message(
        "monitoring.prometheus.url must be an http(s) URL"
    ))]
    pub url: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SelectionMode {
    #[default]
    Auto,
    Reference,
    None,
}

pub(crate) fn yes() -> bool {
    true
}
fn default_interval() -> String {
    "10s".into()
}
fn default_scrape_timeout() -> String {
    "5s".into()
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            enabled: true,
            interval: default_interval(),
            scrape_timeout: default_scrape_timeout(),
            labels: BTreeMap::new(),
            prometheus: PrometheusSelection::default(),
        }
    }
}

/// Grafana dashboards.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DashboardsSpec {
    /// Render the dashboard ConfigMaps.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Labels the Grafana sidecar selects ConfigMaps by.
    #[serde(default = "default_dashboard_labels")]
    pub labels: BTreeMap<String, String>,
    /// Grafana folder, set through the sidecar's folder annotation.
    #[serde(default = "default_folder")]
    #[schemars(length(min = 1, max = 100))]
    pub folder: String,
    /// Annotation key the Grafana sidecar reads the folder from (`folderAnnotation` in its settings).
    #[serde(default = "default_folder_annotation")]
    pub folder_annotation: String,
}

fn default_dashboard_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("grafana_dashboard".to_owned(), "1".to_owned())])
}
fn default_folder() -> String {
    "Chatbot SAV".into()
}
fn default_folder_annotation() -> String {
    "grafana_folder".into()
}

impl Default for DashboardsSpec {
    fn default() -> Self {
        DashboardsSpec {
            enabled: true,
            labels: default_dashboard_labels(),
            folder: default_folder(),
            folder_annotation: default_folder_annotation(),
        }
    }
}

/// The chatbot's NetworkPolicy: its metrics port admits only the Prometheus that selects the resource, its API port
/// only the sources named here. It takes effect where the cluster's network plugin enforces NetworkPolicies (Calico,
/// Cilium and most others); elsewhere it is inert.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Render the NetworkPolicy.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Who may reach the API port (`/chat`, `/conversations`, `/tickets`). Absent: the pods of the resource's
    /// namespace and of the ingress controller's namespaces (the operator's `--ingress-namespaces`, `ingress-nginx`
    /// by default). An empty list admits no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_from: Option<Vec<NetworkPolicyPeer>>,
    /// Who else may reach the metrics port, besides the pods of the Prometheus that selects the resource: a
    /// Prometheus that the Prometheus Operator does not run, or an agent that scrapes for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_from: Vec<NetworkPolicyPeer>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        NetworkPolicySpec {
            enabled: true,
            api_from: None,
            metrics_from: Vec::new(),
        }
    }
}

/// What the operator observed and did.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChatbotMonitoringStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, one per child kind (`DeploymentReady`, `ServiceReady`, `ServiceMonitorReady`,
    /// `PrometheusRuleReady`, `NetworkPolicyReady`, `AlertmanagerConfigReady`, `DashboardsReady`), `Selected` (does
    /// the expected Prometheus select them), `Scraped`, `RulesLoaded`, `DashboardMetricsPresent`, and `Routed` (do the
    /// alerts reach an Alertmanager that loaded the routing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Ready chatbot pods over desired, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<String>,
    /// Ready chatbot pods (the Deployment's `readyReplicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Alerting rules in the PrometheusRule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_rules: Option<i32>,
    /// Dashboard ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<i32>,
    /// The chatbot's targets up in Prometheus over all of them, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scraped: Option<String>,
    /// The resource's alerts firing now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firing_alerts: Vec<String>,
    /// Names of the children, by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Children>,
}

/// Names of the objects the operator manages for one resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Children {
    /// The chatbot's Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The chatbot's Service (port `http` for the API, port `metrics` for /metrics and the probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The ServiceMonitor, when monitoring is enabled and the Prometheus Operator is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<String>,
    /// The PrometheusRule, when alerts are enabled and the Prometheus Operator is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_rule: Option<String>,
    /// The dashboard ConfigMaps, one per dashboard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dashboards: Vec<String>,
    /// The NetworkPolicy, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<String>,
    /// The AlertmanagerConfig, when notifications are enabled and the Prometheus Operator serves the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_config: Option<String>,
}

/// Appends each default to its field's description: `kubectl explain` shows descriptions, not defaults, and a user
/// writing one field of an object wants to know what the others will be. An object's default is shown when its
/// values are scalars (an alert's `threshold`, `for`, `severity`); a deeper one is read from its fields'.
fn describe_defaults(schema: &mut schemars::Schema) {
    use serde_json::Value;
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            // `50`, not the schema's `50.0`.
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) => {
                Some(format!("{}", n.as_f64().unwrap_or_default() as i64))
            }
            Value::Object(_) | Value::Array(_) => None,
            other => Some(other.to_string()),
        }
    }
    fn shown(default: &Value) -> Option<String> {
        match default {
            Value::Object(fields) if !fields.is_empty() => {
                let fields: Option<Vec<String>> = fields
                    .iter()
                    .map(|(k, v)| scalar(v).map(|v| format!("{k}: {v}")))
                    .collect();
                fields.map(|f| f.join(", "))
            }
            other => scalar(other),
        }
    }
    fn walk(node: &mut Value) {
        let Some(map) = node.as_object_mut() else { return };
        if let Some(shown) = map.get("default").and_then(shown) {
            let described = match map.get("description").and_then(|d| d.as_str()) {
                Some(d) => format!("{d} Default: `{shown}`."),
                None => format!("Default: `{shown}`."),
            };
            map.insert("description".into(), described.into());
        }
        for key in ["properties", "additionalProperties", "items"] {
            match map.get_mut(key) {
                Some(Value::Object(children)) if key == "properties" => children.values_mut().for_each(walk),
                Some(child) => walk(child),
                None => {}
            }
        }
    }
    if let Some(map) = schema.as_object_mut() {
        let mut node = Value::Object(std::mem::take(map));
        walk(&mut node);
        if let Value::Object(walked) = node {
            *map = walked;
        }
    }
}

/// The CRD as YAML, as `chatbot-operator crd` prints it and `crds/` stores it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&ChatbotMonitoring::crd()).expect("the CRD serializes")
}

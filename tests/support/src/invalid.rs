//! `ChatbotMonitoring` specs the CRD must refuse, each with what the refusal must say: one list for the CEL rules as
//! kube-cel evaluates them (operator/tests/crd.rs) and as a real API server does (tests/controlplane), so that a
//! rule added to the CRD is added here once and checked both ways.

use serde_json::{Value, json};

/// What the refusal names.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// A CEL rule's message, at the field its `fieldPath` names (`spec.chatbot.replicas`).
    Rule(&'static str, &'static str),
    /// A schema bound or an unknown field, by its path (`spec.chatbot.port`).
    Field(&'static str),
}

impl Refusal {
    /// Whether an error text (either form of the path: `spec.a.b` or `/spec/a/b`) says it.
    pub fn said_by(&self, error: &str) -> bool {
        match self {
            Refusal::Rule(field, m) => error.contains(&format!("{field}: ")) && error.contains(m),
            Refusal::Field(f) => error.contains(f) || error.contains(&format!("/{}", f.replace('.', "/"))),
        }
    }
}

pub fn invalid_specs() -> Vec<(Value, Refusal)> {
    use Refusal::{Field, Rule};
    let openai = |extra: Value| {
        let mut o = json!({"endpoint": "https://api.example.com/v1", "model": "m",
            "apiKeySecretRef": {"name": "s", "key": "k"}});
        o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"backend": "openai", "openai": o})
    };
    vec![
        // Issue 25: a spend budget without a price table to estimate spend from; a price table from both places.
        (
            json!({"alerts": {"spend": {"dailyBudget": 40, "currency": "EUR"}}}),
            Rule("spec.alerts.spend", "alerts.spend needs a price table"),
        ),
        (
            json!({"chatbot": {"model": openai(json!({"prices": {"configMapKeyRef": {"name": "p", "key": "k"},
                "secretKeyRef": {"name": "p", "key": "k"}}}))}}),
            Rule(
                "spec.chatbot.model.openai.prices",
                "exactly one of configMapKeyRef and secretKeyRef",
            ),
        ),
        (
            json!({"chatbot": {"model": openai(json!({"prices": {"secretKeyRef": {"name": "p", "key": "k"}}}))},
                   "alerts": {"spend": {"dailyBudget": 0, "currency": "EUR"}}}),
            Rule("spec.alerts.spend.dailyBudget", "dailyBudget must be above 0"),
        ),
        (
            json!({"chatbot": {"model": openai(json!({"prices": {"secretKeyRef": {"name": "p", "key": "k"}}}))},
                   "alerts": {"spend": {"dailyBudget": 40, "currency": "euro"}}}),
            Field("spec.alerts.spend.currency"),
        ),
        (
            json!({"alerts": {"satisfaction": {"maxDownPercent": 130}}}),
            Field("spec.alerts.satisfaction.maxDownPercent"),
        ),
        (
            json!({"chatbot": {"conversationIdle": "half an hour"}}),
            Field("spec.chatbot.conversationIdle"),
        ),
        (
            json!({"chatbot": {"conversationIdle": "0s"}}),
            Rule(
                "spec.chatbot.conversationIdle",
                "conversationIdle must be longer than 0s",
            ),
        ),
        (
            json!({"alerts": {"tokensPerChat": {"window": "2h", "baseline": "1h"}}}),
            Rule(
                "spec.alerts.tokensPerChat.baseline",
                "baseline must be longer than its window",
            ),
        ),
        (
            json!({"chatbot": {"model": {"backend": "openai"}}}),
            Rule(
                "spec.chatbot.model.openai",
                "model.openai (endpoint, model, apiKeySecretRef) is required",
            ),
        ),
        (
            json!({"chatbot": {"database": {"type": "postgres"}}}),
            Rule(
                "spec.chatbot.database.postgres",
                "database.postgres.urlSecretRef is required",
            ),
        ),
        (
            json!({"chatbot": {"replicas": 3}}),
            Rule(
                "spec.chatbot.replicas",
                "set database.type to postgres to run more than one replica",
            ),
        ),
        (
            json!({"monitoring": {"interval": "10s", "scrapeTimeout": "30s"}}),
            Rule("spec.monitoring.scrapeTimeout", "scrapeTimeout must not be longer than"),
        ),
        (
            json!({"monitoring": {"scrapeTimeout": "1m"}}),
            Rule("spec.monitoring.scrapeTimeout", "scrapeTimeout must not be longer than"),
        ),
        (
            json!({"alerts": {"runbookBaseUrl": "wiki/runbooks"}}),
            Rule("spec.alerts.runbookBaseUrl", "runbookBaseUrl must be an http(s) URL"),
        ),
        (
            json!({"chatbot": {"model": {"backend": "openai", "openai": {"endpoint": "api.openai.com", "model": "m",
                "apiKeySecretRef": {"name": "s", "key": "k"}}}}}),
            Rule("spec.chatbot.model.openai.endpoint", "endpoint must be an http(s) URL"),
        ),
        (
            json!({"monitoring": {"prometheus": {"mode": "reference", "name": "kps"}}}),
            Rule(
                "spec.monitoring.prometheus.namespace",
                "prometheus.namespace is required when mode is reference",
            ),
        ),
        (
            json!({"monitoring": {"interval": "10 seconds"}}),
            Field("spec.monitoring.interval"),
        ),
        (
            json!({"monitoring": {"prometheus": {"mode": "reference", "namespace": "monitoring"}}}),
            Rule(
                "spec.monitoring.prometheus.name",
                "prometheus.name is required when mode is reference",
            ),
        ),
        (
            json!({"chatbot": {"database": {"type": "postgres", "postgres": {"urlSecretRef": {"name": "x".repeat(254), "key": "url"}}}}}),
            Field("spec.chatbot.database.postgres.urlSecretRef.name"),
        ),
        (json!({"chatbot": {"port": 80}}), Field("spec.chatbot.port")),
        (
            json!({"chatbot": {"port": 8081}}),
            Rule(
                "spec.chatbot.metricsPort",
                "chatbot.metricsPort must differ from chatbot.port",
            ),
        ),
        (
            json!({"chatbot": {"retention": "3 months"}}),
            Field("spec.chatbot.retention"),
        ),
        (json!({"chatbot": {"replicas": -1}}), Field("spec.chatbot.replicas")),
        (
            json!({"chatbot": {"model": {"backend": "gpt"}}}),
            Field("spec.chatbot.model.backend"),
        ),
        (
            json!({"alerts": {"errorRate": {"threshold": 0.1, "for": "2m", "severity": "page"}}}),
            Field("spec.alerts.errorRate.severity"),
        ),
        (
            json!({"alerts": {"slo": {"availabilityTarget": 100}}}),
            Field("spec.alerts.slo.availabilityTarget"),
        ),
        (
            json!({"alerts": {"slo": {"latency": {"target": 99, "threshold": 3}}}}),
            Rule(
                "spec.alerts.slo.latency.threshold",
                "must be one of the bucket bounds of chat_response_time_seconds: 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, \
                 0.5, 1, 2, 5, 10 (seconds)",
            ),
        ),
        (
            json!({"alerts": {"slo": {}}}),
            Rule(
                "spec.alerts.slo",
                "alerts.slo needs availabilityTarget, latency, or both",
            ),
        ),
        (
            json!({"alerts": {"availability": {"minUpPercent": 150}}}),
            Field("spec.alerts.availability.minUpPercent"),
        ),
        (json!({"chatbot": {"replica": 2}}), Field("spec.chatbot.replica")),
        (
            json!({"monitoring": {"prometheus": {"mode": "pick-one"}}}),
            Field("spec.monitoring.prometheus.mode"),
        ),
        (
            json!({"notifications": {}}),
            Rule(
                "spec.notifications.receivers",
                "notifications.receivers needs at least one receiver",
            ),
        ),
        (
            // The default routes name `paging` and `chat`: a lone receiver of another name must be routed.
            json!({"notifications": {"receivers": [webhook("oncall")]}}),
            Rule(
                "spec.notifications.routes.critical",
                "names a receiver that is not in notifications.receivers (the default is `paging`)",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat")],
                "routes": {"info": ["tickets"]}}}),
            Rule(
                "spec.notifications.routes.info",
                "notifications.routes.info names a receiver that is not in notifications.receivers",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat"),
                {"name": "both", "webhook": {"urlSecretRef": {"name": "s", "key": "k"}},
                 "slack": {"apiUrlSecretRef": {"name": "s", "key": "k"}}}]}}),
            Rule(
                "spec.notifications.receivers[2]",
                "a receiver sets exactly one of webhook, slack, email, pagerduty and msteams",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat"), {"name": "neither"}]}}),
            Rule(
                "spec.notifications.receivers[2]",
                "a receiver sets exactly one of webhook, slack, email, pagerduty and msteams",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat"), webhook("none")]}}),
            Rule(
                "spec.notifications.receivers[2].name",
                "the receiver name none is reserved",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("Chat")]}}),
            Field("spec.notifications.receivers[1].name"),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat")],
                "groupInterval": "10m", "repeatInterval": "5m"}}),
            Rule(
                "spec.notifications.repeatInterval",
                "notifications.repeatInterval must not be shorter than notifications.groupInterval",
            ),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat")], "groupWait": "30 s"}}),
            Field("spec.notifications.groupWait"),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), {"name": "chat",
                "email": {"to": "a@example.com", "from": "b@example.com", "smarthost": "smtp.example.com"}}]}}),
            Field("spec.notifications.receivers[1].email.smarthost"),
        ),
        (
            json!({"notifications": {"receivers": [webhook("paging"), webhook("chat")],
                "alertmanager": {"mode": "reference", "name": "main"}}}),
            Rule(
                "spec.notifications.alertmanager.namespace",
                "notifications.alertmanager.namespace is required when mode is reference",
            ),
        ),
    ]
}

/// A webhook receiver named `name`.
fn webhook(name: &str) -> Value {
    json!({"name": name, "webhook": {"urlSecretRef": {"name": "alerting", "key": "url"}}})
}

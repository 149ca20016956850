//! The reconciler against a scripted API server: the exact requests of a first reconcile, none but reads for an
//! unchanged resource, a changed spec, the Prometheus Operator absent then installed, a missing Secret, an API
//! error with backoff, deletion, a part switched off, and children changed or deleted by hand.

mod fake_api;
mod fake_prometheus;

use std::sync::Arc;
use std::time::Duration;

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::metrics::Metrics;
use chatbot_operator::reconcile::{Context, Error, MissingSecret, error_policy, reconcile};
use chatbot_operator::render::RenderOptions;
use chatbot_operator::settled::Settled;
use fake_api::FakeApi;
use http::Method;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

const NS: &str = "default";
const CBM: &str = "/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/default/chatbotmonitorings/chatbot";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/chatbot";
const SERVICE: &str = "/api/v1/namespaces/default/services/chatbot";
const SERVICE_MONITOR: &str = "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors/chatbot";
const PROMETHEUS_RULE: &str = "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules/chatbot";
const DASHBOARD: &str = "/api/v1/namespaces/default/configmaps/chatbot-dashboard-overview";
const NETWORK_POLICY: &str = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/chatbot";
const DISCOVERY: &str = "/apis/monitoring.coreos.com/v1";
const DISCOVERY_V1ALPHA1: &str = "/apis/monitoring.coreos.com/v1alpha1";
const ALERTMANAGER_CONFIG: &str = "/apis/monitoring.coreos.com/v1alpha1/namespaces/default/alertmanagerconfigs/chatbot";
const PROMETHEUSES: &str = "/apis/monitoring.coreos.com/v1/prometheuses";
const NAMESPACE: &str = "/api/v1/namespaces/default";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn setup() -> (Arc<Context>, FakeApi) {
    let (client, fake) = FakeApi::start();
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    let ctx = Context::new(client, recorder, RenderOptions::default(), Arc::new(Metrics::new()));
    (Arc::new(ctx), fake)
}

/// As `run --check-secrets` runs.
fn setup_checking_secrets() -> (Arc<Context>, FakeApi) {
    let (ctx, fake) = setup();
    let ctx = Arc::into_inner(ctx).expect("not shared yet").with_secret_check(true);
    (Arc::new(ctx), fake)
}

/// The resource as the API server stores it: with a uid and a generation.
fn resource(spec: Value) -> ChatbotMonitoring {
    serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1",
        "kind": "ChatbotMonitoring",
        "metadata": {"name": "chatbot", "namespace": NS, "uid": "5e1f7a2c-0000-4000-8000-000000000001",
                     "generation": 1, "resourceVersion": "1"},
        "spec": spec,
    }))
    .unwrap()
}

/// Stores the resource in the fake server (status patches need it there) and returns it.
fn stored(fake: &FakeApi, cbm: &ChatbotMonitoring) -> ChatbotMonitoring {
    fake.put(CBM, serde_json::to_value(cbm).unwrap());
    cbm.clone()
}

/// The resource as the operator would see it next: re-read from the fake server, status included.
fn reread(fake: &FakeApi) -> ChatbotMonitoring {
    serde_json::from_value(fake.get(CBM).unwrap()).unwrap()
}

async fn run(ctx: &Arc<Context>, cbm: &ChatbotMonitoring) -> Result<Action, Error> {
    tokio::time::timeout(Duration::from_secs(5), reconcile(Arc::new(cbm.clone()), ctx.clone()))
        .await
        .expect("reconcile finished")
}

fn condition(cbm: &ChatbotMonitoring, type_: &str) -> (String, String) {
    let c = cbm
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

fn lines(list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(m, p)| format!("{m} {p}")).collect()
}

fn resource_version(fake: &FakeApi, path: &str) -> String {
    fake.get(path).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn first_reconcile_applies_each_child_once_then_the_status() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    let action = run(&ctx, &cbm).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let calls: Vec<String> = fake.state().calls.iter().map(|c| c.line()).collect();
    assert_eq!(
        calls,
        lines(&[
            ("GET", DEPLOYMENT),
            ("PATCH", DEPLOYMENT),
            ("GET", SERVICE),
            ("PATCH", SERVICE),
            ("GET", DISCOVERY),
            ("GET", DISCOVERY_V1ALPHA1),
            ("GET", PROMETHEUSES),
            ("GET", NAMESPACE),
            ("GET", SERVICE_MONITOR),
            ("PATCH", SERVICE_MONITOR),
            ("GET", PROMETHEUS_RULE),
            ("PATCH", PROMETHEUS_RULE),
            // Metadata only: is a NetworkPolicy of someone else's in the way?
            ("GET", NETWORK_POLICY),
            ("GET", NETWORK_POLICY),
            ("PATCH", NETWORK_POLICY),
            // No notifications: is there an AlertmanagerConfig of ours to remove?
            ("GET", ALERTMANAGER_CONFIG),
            ("GET", DASHBOARD),
            ("PATCH", DASHBOARD),
            ("PATCH", &format!("{CBM}/status")),
            ("POST", EVENTS),
            ("POST", EVENTS),
        ])
    );
    // Every write is a server-side apply by one field manager, forced (the fake also refuses any other patch type).
    let state = fake.state();
    let patches: Vec<_> = state.calls.iter().filter(|c| c.method == Method::PATCH).collect();
    assert_eq!(patches.len(), 7);
    for call in patches {
        assert!(
            call.query.contains("fieldManager=chatbot-operator") && call.query.contains("force=true"),
            "{call:?}"
        );
    }
    drop(state);
    let cbm = reread(&fake);
    let status = cbm.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(condition(&cbm, "Ready"), ("True".into(), "Reconciled".into()));
    for c in [
        "DeploymentReady",
        "ServiceReady",
        "ServiceMonitorReady",
        "PrometheusRuleReady",
        "Selected",
        "NetworkPolicyReady",
        "DashboardsReady",
    ] {
        assert_eq!(condition(&cbm, c).0, "True", "{c}");
    }
    for c in &status.conditions {
        assert_eq!(c.observed_generation, Some(1), "{}", c.type_);
    }
    // No notifications asked for: no condition about them (every resource's status is cached).
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert!(
        !types.contains(&"Routed") && !types.contains(&"AlertmanagerConfigReady"),
        "{types:?}"
    );
    assert_eq!(status.replicas.as_deref(), Some("1/1"));
    assert_eq!(
        status.alert_rules,
        Some(12),
        "no SLO set: no burn-rate alerts; builtin model: no token or spend alerts"
    );
    assert_eq!(status.dashboards, Some(1));
    let children = status.children.unwrap();
    assert_eq!(children.deployment.as_deref(), Some("chatbot"));
    assert_eq!(children.dashboards, ["chatbot-dashboard-overview"]);
    // Owned by the resource, so deleting it deletes them (the API server's garbage collector).
    // The metrics port admits the pods of the Prometheus found to select the resource, and no one else.
    let np = fake.get(NETWORK_POLICY).unwrap();
    let metrics = &np["spec"]["ingress"][1];
    assert_eq!(metrics["ports"], json!([{"port": 8081, "protocol": "TCP"}]));
    assert_eq!(
        metrics["from"],
        json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus",
                                                "operator.prometheus.io/name": "kps"}}}])
    );
    assert_eq!(children.network_policy.as_deref(), Some("chatbot"));
    for path in [
        DEPLOYMENT,
        SERVICE,
        SERVICE_MONITOR,
        PROMETHEUS_RULE,
        NETWORK_POLICY,
        DASHBOARD,
    ] {
        let owner = &fake.get(path).unwrap()["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "5e1f7a2c-0000-4000-8000-000000000001", "{path}");
        assert_eq!(owner["controller"], true, "{path}");
    }
    // One event per announced condition that appeared: Ready, and which Prometheus selects the resource.
    let events = fake.state().events.clone();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["reason"].as_str()),
        (Some("Normal"), Some("Reconciled"))
    );
    assert_eq!(
        (events[1]["type"].as_str(), events[1]["reason"].as_str()),
        (Some("Normal"), Some("Selected"))
    );
}

/// The resourceVersion of the resource and of each of its children.
fn versions_of_everything(fake: &FakeApi) -> Vec<String> {
    [
        DEPLOYMENT,
        SERVICE,
        SERVICE_MONITOR,
        PROMETHEUS_RULE,
        NETWORK_POLICY,
        DASHBOARD,
        CBM,
    ]
    .iter()
    .map(|p| resource_version(fake, p))
    .collect()
}

#[tokio::test]
async fn an_unchanged_resource_is_only_read() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    fake.take_calls();
    let versions = versions_of_everything(&fake);

    let cbm = reread(&fake);
    run(&ctx, &cbm).await.unwrap();
    let calls = fake.take_calls();
    assert!(calls.iter().all(|c| c.starts_with("GET ")), "{calls:?}");
    assert_eq!(calls.len(), 12, "{calls:?}");
    let after = versions_of_everything(&fake);
    assert_eq!(after, versions, "no resourceVersion changes");
    assert_eq!(fake.state().events.len(), 2, "no new event");
}

#[tokio::test]
async fn a_changed_spec_rewrites_only_what_it_changes() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    fake.take_calls();
    let deployment_version = resource_version(&fake, DEPLOYMENT);

    let mut cbm = reread(&fake);
    cbm.spec.alerts.error_rate.threshold = 0.5;
    cbm.metadata.generation = Some(2);
    let cbm = stored(&fake, &cbm);
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        lines(&[("PATCH", PROMETHEUS_RULE), ("PATCH", &format!("{CBM}/status"))])
    );
    assert_eq!(resource_version(&fake, DEPLOYMENT), deployment_version);
    let rule = fake.get(PROMETHEUS_RULE).unwrap();
    assert!(rule.to_string().contains("> 0.5"), "the new threshold is applied");
    assert_eq!(reread(&fake).status.unwrap().observed_generation, Some(2));
}

#[tokio::test]
async fn without_the_prometheus_operator_the_chatbot_still_runs_and_it_is_picked_up_later() {
    let (ctx, fake) = setup();
    fake.state().prometheus_operator = false;
    let cbm = stored(&fake, &resource(json!({})));
    let action = run(&ctx, &cbm).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)), "looks again soon");
    let calls = fake.take_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("servicemonitors") || c.contains("prometheusrules")),
        "{calls:?}"
    );
    assert!(calls.contains(&format!("PATCH {DEPLOYMENT}")) && calls.contains(&format!("PATCH {DASHBOARD}")));
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "ServiceMonitorReady"),
        ("False".into(), "PrometheusOperatorMissing".into())
    );
    assert_eq!(
        condition(&cbm, "PrometheusRuleReady"),
        ("False".into(), "PrometheusOperatorMissing".into())
    );
    assert_eq!(
        condition(&cbm, "Ready"),
        ("False".into(), "PrometheusOperatorMissing".into())
    );
    assert_eq!(condition(&cbm, "DeploymentReady").0, "True");
    assert_eq!(condition(&cbm, "DashboardsReady").0, "True");
    let event = fake.state().events.last().cloned().unwrap();
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("PrometheusOperatorMissing"))
    );

    // The CRDs get installed: the next reconcile applies both and the resource turns Ready.
    fake.state().prometheus_operator = true;
    run(&ctx, &cbm).await.unwrap();
    assert!(fake.get(SERVICE_MONITOR).is_some() && fake.get(PROMETHEUS_RULE).is_some());
    assert_eq!(condition(&reread(&fake), "Ready"), ("True".into(), "Reconciled".into()));
}

/// A field removed from the spec leaves the live child a superset of what is rendered: only a new apply lets
/// server-side apply drop it (issue 11, defect 1).
#[tokio::test]
async fn fields_removed_from_the_spec_are_applied_away() {
    let (ctx, fake) = setup();
    let spec = json!({"chatbot": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                  "podLabels": {"team": "sav"}},
                      "alerts": {"slo": {"availabilityTarget": 0.999}}});
    let cbm = stored(&fake, &resource(spec));
    run(&ctx, &cbm).await.unwrap();
    let groups = |fake: &FakeApi| {
        fake.get(PROMETHEUS_RULE).unwrap()["spec"]["groups"]
            .as_array()
            .unwrap()
            .len()
    };
    let with_slo = groups(&fake);
    fake.take_calls();

    let mut cbm = reread(&fake);
    cbm.spec.chatbot.env.retain(|e| e.name != "B");
    cbm.spec.chatbot.pod_labels.clear();
    cbm.spec.alerts.slo = None;
    cbm.metadata.generation = Some(2);
    let cbm = stored(&fake, &cbm);
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert!(
        writes.contains(&format!("PATCH {DEPLOYMENT}")) && writes.contains(&format!("PATCH {PROMETHEUS_RULE}")),
        "{writes:?}"
    );
    let deployment = fake.get(DEPLOYMENT).unwrap();
    let pod = &deployment["spec"]["template"];
    let env: Vec<&str> = pod["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(env.contains(&"A") && !env.contains(&"B"), "{env:?}");
    assert!(pod["metadata"]["labels"].get("team").is_none());
    assert_eq!(groups(&fake), with_slo - 1, "the SLO rule group is gone");

    // Applied once: the next pass writes nothing.
    run(&ctx, &reread(&fake)).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

/// Only the ServiceMonitor and PrometheusRule CRDs (another agent reads them): the children are applied, and
/// `Selected` says why no Prometheus can be evaluated instead of failing on a plain-text 404 (issue 11, defect 2).
#[tokio::test]
async fn service_monitors_served_without_the_prometheus_kind() {
    let (ctx, fake) = setup();
    fake.state().prometheus_kind = false;
    let cbm = stored(&fake, &resource(json!({})));
    let action = run(&ctx, &cbm).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let calls = fake.take_calls();
    assert!(!calls.iter().any(|c| c.contains("prometheuses")), "{calls:?}");
    assert!(fake.get(SERVICE_MONITOR).is_some() && fake.get(PROMETHEUS_RULE).is_some());
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Selected"),
        ("False".into(), "PrometheusKindMissing".into())
    );
    assert!(condition_message(&cbm, "Selected").contains("Prometheus kind"));
    assert_eq!(condition(&cbm, "ServiceMonitorReady").0, "True");
    let labels = &fake.get(SERVICE_MONITOR).unwrap()["metadata"]["labels"];
    assert!(labels.get("release").is_none(), "no Prometheus: no label added");

    // The Prometheus CRD gets installed: the next pass evaluates it.
    fake.state().prometheus_kind = true;
    run(&ctx, &cbm).await.unwrap();
    assert_eq!(
        condition(&reread(&fake), "Selected"),
        ("True".into(), "Selected".into())
    );
}

#[tokio::test]
async fn the_agent_tokens_secret_is_checked_like_the_others() {
    let (ctx, fake) = setup_checking_secrets();
    let spec = json!({"chatbot": {"agentTokensSecretRef": {"name": "chatbot-agents", "key": "tokens"}}});
    let cbm = stored(&fake, &resource(spec));
    let err = run(&ctx, &cbm).await.unwrap_err();
    assert!(
        matches!(&err, Error::SecretMissing(m) if m.0 == [MissingSecret {
            field: "spec.chatbot.agentTokensSecretRef".into(), name: "chatbot-agents".into(), key: None }]),
        "{err}"
    );
}

#[tokio::test]
async fn the_receivers_secrets_are_checked_like_the_others() {
    let (ctx, fake) = setup_checking_secrets();
    let cbm = stored(&fake, &notified());
    let err = run(&ctx, &cbm).await.unwrap_err();
    assert!(
        matches!(&err, Error::SecretMissing(m) if m.0.len() == 2
            && m.0[0].name == "alerting" && m.0[0].field == "spec.notifications.receivers[0].pagerduty.routingKeySecretRef"
            && m.0[1].field == "spec.notifications.receivers[1].webhook.urlSecretRef"),
        "{err}"
    );
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "SecretMissing".into()));
    // Once it exists, the resource goes on.
    fake.put(
        "/api/v1/namespaces/default/secrets/alerting",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "alerting", "namespace": "default"},
               "data": {"pd": "a2V5", "hook": "aHR0cDovL3g="}}),
    );
    run(&ctx, &cbm).await.unwrap();
    assert!(fake.get(ALERTMANAGER_CONFIG).is_some());
}

/// Found on a real node: only the first missing Secret was named, a missing key went unnoticed until the pods
/// failed, and a Secret created after the report was noticed only at the next backoff (5, 10, 20 s …).
#[tokio::test]
async fn every_missing_secret_and_key_is_named_at_once_and_looked_for_every_10_s() {
    let (ctx, fake) = setup_checking_secrets();
    fake.put(
        "/api/v1/namespaces/default/secrets/chatbot-db",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chatbot-db", "namespace": "default"},
               "data": {"uri": "cG9zdGdyZXM6Ly8="}}),
    );
    let spec = json!({"chatbot": {
        "model": {"backend": "openai", "openai": {"endpoint": "https://api.openai.com/v1", "model": "gpt-4o-mini",
                  "apiKeySecretRef": {"name": "chatbot-openai", "key": "api-key"}}},
        "database": {"type": "postgres", "postgres": {"urlSecretRef": {"name": "chatbot-db", "key": "url"}}},
        "agentTokensSecretRef": {"name": "chatbot-openai", "key": "tokens"}}});
    let cbm = stored(&fake, &resource(spec));
    let err = run(&ctx, &cbm).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Secret \"chatbot-openai\" referenced by spec.chatbot.model.openai.apiKeySecretRef does not exist in the \
         namespace; Secret \"chatbot-db\" has no key \"url\", which spec.chatbot.database.postgres.urlSecretRef names; \
         Secret \"chatbot-openai\" referenced by spec.chatbot.agentTokensSecretRef does not exist in the namespace"
    );
    let secret_reads = fake.take_calls().iter().filter(|c| c.contains("/secrets/")).count();
    assert_eq!(secret_reads, 2, "each Secret is read once");
    let cbm = Arc::new(cbm);
    for _ in 0..3 {
        assert_eq!(
            error_policy(cbm.clone(), &err, ctx.clone()),
            Action::requeue(Duration::from_secs(10))
        );
    }
}

/// By default no Secret is read (RBAC cannot grant a Secret's metadata without its data): the chatbot is applied,
/// and a missing Secret shows in its pods (see status::pods).
#[tokio::test]
async fn without_the_secret_check_no_secret_is_read() {
    let (ctx, fake) = setup();
    let spec = json!({"chatbot": {"model": {"backend": "openai", "openai": {
        "endpoint": "https://api.openai.com/v1", "model": "gpt-4o-mini",
        "apiKeySecretRef": {"name": "chatbot-openai", "key": "api-key"}}}}});
    let cbm = stored(&fake, &resource(spec));
    run(&ctx, &cbm).await.unwrap();
    let calls = fake.take_calls();
    assert!(!calls.iter().any(|c| c.contains("secrets")), "{calls:?}");
    assert!(fake.get(DEPLOYMENT).is_some());
}

#[tokio::test]
async fn a_missing_secret_is_reported_and_looked_for_again() {
    let (ctx, fake) = setup_checking_secrets();
    let spec = json!({"chatbot": {"model": {"backend": "openai", "openai": {
        "endpoint": "https://api.openai.com/v1", "model": "gpt-4o-mini",
        "apiKeySecretRef": {"name": "chatbot-openai", "key": "api-key"}}}}});
    let cbm = stored(&fake, &resource(spec));
    let err = run(&ctx, &cbm).await.unwrap_err();
    assert!(matches!(err, Error::SecretMissing { .. }), "{err}");
    assert_eq!(
        fake.take_calls(),
        lines(&[
            ("GET", "/api/v1/namespaces/default/secrets/chatbot-openai"),
            ("PATCH", &format!("{CBM}/status")),
            ("POST", EVENTS),
        ]),
        "nothing is applied while the reference is broken"
    );
    let stored_cbm = reread(&fake);
    assert_eq!(
        condition(&stored_cbm, "Ready"),
        ("False".into(), "SecretMissing".into())
    );
    let message = &stored_cbm.status.as_ref().unwrap().conditions[0].message;
    assert!(
        message.contains("chatbot-openai") && message.contains("apiKeySecretRef"),
        "{message}"
    );
    assert_eq!(fake.state().events[0]["type"], "Warning");

    let cbm = Arc::new(cbm);
    assert_eq!(
        error_policy(cbm.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );

    // Same failure again: the status is already right, so no write and no new event.
    let again = reread(&fake);
    run(&ctx, &again).await.unwrap_err();
    assert_eq!(
        fake.take_calls(),
        lines(&[("GET", "/api/v1/namespaces/default/secrets/chatbot-openai")])
    );

    // The Secret appears, without the key: named as such.
    fake.put(
        "/api/v1/namespaces/default/secrets/chatbot-openai",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chatbot-openai", "namespace": NS}}),
    );
    let err = run(&ctx, &again).await.unwrap_err();
    assert!(err.to_string().contains("has no key \"api-key\""), "{err}");
    // With its key: everything is applied.
    fake.put(
        "/api/v1/namespaces/default/secrets/chatbot-openai",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chatbot-openai", "namespace": NS},
               "stringData": {"api-key": "sk-test"}}),
    );
    run(&ctx, &reread(&fake)).await.unwrap();
    assert_eq!(condition(&reread(&fake), "Ready"), ("True".into(), "Reconciled".into()));
    let env = fake.get(DEPLOYMENT).unwrap()["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains("chatbot-openai") && !env.contains("sk-"),
        "referenced, never copied"
    );
}

#[tokio::test]
async fn an_api_error_sets_a_condition_and_backs_off() {
    let (ctx, fake) = setup();
    fake.state()
        .failures
        .push((Method::PATCH, "/deployments/chatbot".into(), 500));
    let cbm = stored(&fake, &resource(json!({})));
    let err = run(&ctx, &cbm).await.unwrap_err();
    assert!(matches!(err, Error::Kube(_)), "{err}");
    let calls = fake.take_calls();
    assert_eq!(calls[..2], lines(&[("GET", DEPLOYMENT), ("PATCH", DEPLOYMENT)])[..]);
    assert!(
        !calls.iter().any(|c| c.contains("/services/")),
        "stops at the first failure: {calls:?}"
    );
    assert_eq!(condition(&reread(&fake), "Ready"), ("False".into(), "ApiError".into()));
    let delays: Vec<Action> = (0..4)
        .map(|_| error_policy(Arc::new(cbm.clone()), &err, ctx.clone()))
        .collect();
    assert_eq!(
        delays,
        [5, 10, 20, 40].map(|s| Action::requeue(Duration::from_secs(s))),
        "exponential backoff, never a hot loop"
    );
    let metrics = ctx.metrics.render();
    assert!(
        metrics.contains("chatbot_operator_reconcile_errors_total{reason=\"ApiError\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_resource_being_deleted_is_left_to_the_garbage_collector() {
    let (ctx, fake) = setup();
    let mut cbm = resource(json!({}));
    cbm.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-25T10:00:00Z".parse().unwrap(),
    ));
    assert_eq!(run(&ctx, &cbm).await.unwrap(), Action::await_change());
    assert!(fake.take_calls().is_empty());
}

#[tokio::test]
async fn switching_a_part_off_removes_the_child_it_owned() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    fake.take_calls();

    let mut cbm = reread(&fake);
    cbm.spec.alerts.enabled = false;
    cbm.spec.dashboards.enabled = false;
    cbm.spec.network_policy.enabled = false;
    cbm.metadata.generation = Some(2);
    let cbm = stored(&fake, &cbm);
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert_eq!(
        writes,
        lines(&[
            ("DELETE", PROMETHEUS_RULE),
            ("DELETE", NETWORK_POLICY),
            ("DELETE", DASHBOARD),
            ("PATCH", &format!("{CBM}/status"))
        ])
    );
    assert!(fake.get(PROMETHEUS_RULE).is_none() && fake.get(DASHBOARD).is_none());
    assert!(fake.get(NETWORK_POLICY).is_none());
    assert_eq!(
        condition(&reread(&fake), "NetworkPolicyReady"),
        ("False".into(), "Disabled".into())
    );
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "PrometheusRuleReady"),
        ("False".into(), "Disabled".into())
    );
    assert_eq!(
        condition(&cbm, "Ready"),
        ("True".into(), "Reconciled".into()),
        "a disabled part is not a failure"
    );

    // Someone else's object with the same name is never deleted.
    fake.put(
        PROMETHEUS_RULE,
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
               "metadata": {"name": "chatbot", "namespace": NS, "ownerReferences": [
                   {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "someone-else"}]},
               "spec": {"groups": []}}),
    );
    run(&ctx, &cbm).await.unwrap();
    assert!(fake.get(PROMETHEUS_RULE).is_some());
}

#[tokio::test]
async fn children_changed_or_deleted_by_hand_are_restored() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    fake.take_calls();
    let cbm = reread(&fake);

    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    fake.put(DEPLOYMENT, deployment);
    fake.remove(SERVICE);
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert_eq!(writes, lines(&[("PATCH", DEPLOYMENT), ("PATCH", SERVICE)]));
    let restored = fake.get(DEPLOYMENT).unwrap();
    assert_eq!(
        restored["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert!(fake.get(SERVICE).is_some());
}

/// The controller's way: settled resources are not read again until a watch event says one of their children,
/// a Prometheus or their namespace changed (the events are delivered by hand here, as the watches would).
#[tokio::test]
async fn a_settled_resource_costs_no_request_until_a_watch_event_unsettles_it() {
    let (client, fake) = FakeApi::start();
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    let ctx = Arc::new(
        Context::new(client, recorder, RenderOptions::default(), Arc::new(Metrics::new()))
            .with_settled(Settled::default()),
    );
    let key = (NS.to_owned(), "chatbot".to_owned());
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    // The events of the operator's own applies come back through the watches: one full pass reads them.
    ctx.settled.as_ref().unwrap().invalidate(&key);
    run(&ctx, &reread(&fake)).await.unwrap();
    fake.take_calls();

    let cbm = reread(&fake);
    run(&ctx, &cbm).await.unwrap();
    assert_eq!(fake.take_calls(), Vec::<String>::new(), "settled: not a single request");
    assert_eq!(reread(&fake).status, cbm.status, "and the same status");

    // A hand edit: the Deployment's watch event unsettles its owner, and the next pass restores it.
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["spec"]["replicas"] = json!(5);
    fake.put(DEPLOYMENT, deployment);
    ctx.settled.as_ref().unwrap().invalidate(&key);
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert_eq!(writes, lines(&[("PATCH", DEPLOYMENT)]));
    assert_eq!(fake.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 1);

    // A new generation of the spec is never answered from the settled pass.
    run(&ctx, &cbm).await.unwrap();
    assert!(fake.take_calls().is_empty());
    let mut changed = resource(json!({"chatbot": {"replicas": 0}}));
    changed.metadata.generation = Some(2);
    changed.status = cbm.status.clone();
    stored(&fake, &changed);
    run(&ctx, &changed).await.unwrap();
    assert_eq!(fake.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 0);
    assert_eq!(reread(&fake).status.unwrap().observed_generation, Some(2));

    // A Prometheus whose selector changes unsettles every resource: selection is evaluated again, and auto mode
    // adds the label it now asks for.
    run(&ctx, &reread(&fake)).await.unwrap();
    fake.take_calls();
    let mut p = fake_api::default_prometheus();
    p["spec"]["serviceMonitorSelector"] = json!({"matchLabels": {"team": "sav"}});
    fake.put(fake_api::PROMETHEUS, p);
    run(&ctx, &reread(&fake)).await.unwrap();
    assert!(fake.take_calls().is_empty(), "no event yet: still settled");
    ctx.settled.as_ref().unwrap().invalidate_all();
    run(&ctx, &reread(&fake)).await.unwrap();
    assert_eq!(fake.get(SERVICE_MONITOR).unwrap()["metadata"]["labels"]["team"], "sav");
    assert!(condition_message(&reread(&fake), "Selected").contains("team=sav"));
}

#[tokio::test]
async fn pods_not_ready_yet_show_as_progressing() {
    let (ctx, fake) = setup();
    fake.state().pods_ready = false;
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "DeploymentReady"),
        ("False".into(), "Progressing".into())
    );
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "Progressing".into()));
    assert_eq!(cbm.status.unwrap().replicas.as_deref(), Some("0/1"));
    assert_eq!(
        fake.state().events[0]["type"],
        "Normal",
        "pods starting is not a warning"
    );
}

/// (API group, resource, verb) of a request, as RBAC sees it; `None` for discovery, which every user may read.
/// Every request of every scenario is granted by the operator's RBAC list (the one the Helm chart must match);
/// a server-side apply that creates its object needs `create` as well as `patch`.
#[tokio::test]
async fn every_request_is_covered_by_the_rbac_the_chart_grants() {
    use chatbot_operator::rbac::{CLUSTER_WIDE, SECRET_CHECK, WATCHED_NAMESPACES, allows};
    let (ctx, fake) = setup_checking_secrets();
    let spec = json!({"chatbot": {"database": {"type": "postgres", "postgres": {"urlSecretRef": {"name": "pg", "key": "url"}}}},
                      "alerts": {"slo": {"availabilityTarget": 99.9}}});
    let cbm = stored(&fake, &resource(spec));
    run(&ctx, &cbm).await.unwrap_err();
    fake.put(
        "/api/v1/namespaces/default/secrets/pg",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": NS},
               "data": {"url": "cG9zdGdyZXM6Ly8="}}),
    );
    run(&ctx, &reread(&fake)).await.unwrap();
    let mut cbm = reread(&fake);
    cbm.spec.alerts.enabled = false;
    cbm.spec.dashboards.enabled = false;
    cbm.spec.monitoring.enabled = false;
    run(&ctx, &stored(&fake, &cbm)).await.unwrap();

    let calls = fake.state().calls.clone();
    let mut seen = std::collections::BTreeSet::new();
    for call in &calls {
        let Some((group, resource, verb)) = call.rbac() else {
            continue;
        };
        let granted = allows(WATCHED_NAMESPACES, &group, &resource, verb)
            || allows(CLUSTER_WIDE, &group, &resource, verb)
            || allows(SECRET_CHECK, &group, &resource, verb);
        assert!(granted, "{call:?} needs {verb} on {group}/{resource}");
        if verb == "patch" && !resource.ends_with("/status") && resource != "events" {
            assert!(
                allows(WATCHED_NAMESPACES, &group, &resource, "create"),
                "apply creates {group}/{resource}"
            );
        }
        seen.insert((group, resource, verb));
    }
    assert!(seen.len() >= 15, "the scenarios exercised too little: {seen:?}");
}

fn condition_message(cbm: &ChatbotMonitoring, type_: &str) -> String {
    cbm.status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
        .message
        .clone()
}

#[tokio::test]
async fn auto_mode_adds_the_label_the_only_prometheus_selects() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    for path in [SERVICE_MONITOR, PROMETHEUS_RULE] {
        assert_eq!(
            fake.get(path).unwrap()["metadata"]["labels"]["release"],
            "kps",
            "{path}"
        );
    }
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Selected"), ("True".into(), "Selected".into()));
    assert_eq!(
        condition_message(&cbm, "Selected"),
        "selected by Prometheus monitoring/kps (labels added: release=kps)"
    );
}

#[tokio::test]
async fn labels_the_user_set_are_kept_and_a_mismatch_is_named() {
    let (ctx, fake) = setup();
    let cbm = stored(
        &fake,
        &resource(json!({"monitoring": {"labels": {"release": "prometheus"}}})),
    );
    run(&ctx, &cbm).await.unwrap();
    assert_eq!(
        fake.get(SERVICE_MONITOR).unwrap()["metadata"]["labels"]["release"],
        "prometheus"
    );
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Selected"), ("False".into(), "LabelMismatch".into()));
    assert!(condition_message(&cbm, "Selected").contains("label release=prometheus should be release=kps"));
    assert_eq!(
        condition(&cbm, "Ready"),
        ("False".into(), "LabelMismatch".into()),
        "not really monitored"
    );
}

#[tokio::test]
async fn no_prometheus_two_prometheus_and_a_namespace_outside_its_selector() {
    let (ctx, fake) = setup();
    fake.remove(fake_api::PROMETHEUS);
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    assert_eq!(
        condition(&reread(&fake), "Selected"),
        ("False".into(), "NoPrometheus".into())
    );

    let mut second = fake_api::default_prometheus();
    second["metadata"]["name"] = json!("other");
    second["spec"]["serviceMonitorSelector"] = json!({"matchLabels": {"team": "x"}});
    fake.put(fake_api::PROMETHEUS, fake_api::default_prometheus());
    fake.put(
        "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/other",
        second,
    );
    run(&ctx, &reread(&fake)).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Selected"),
        ("False".into(), "AmbiguousPrometheus".into())
    );
    assert!(condition_message(&cbm, "Selected").contains("monitoring/kps, monitoring/other"));

    fake.remove("/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/other");
    let mut own_namespace_only = fake_api::default_prometheus();
    own_namespace_only["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceMonitorNamespaceSelector");
    fake.put(fake_api::PROMETHEUS, own_namespace_only);
    run(&ctx, &reread(&fake)).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Selected"),
        ("False".into(), "NamespaceNotSelected".into())
    );
    assert!(condition_message(&cbm, "Selected").contains("its own namespace monitoring only"));
}

#[tokio::test]
async fn a_network_policy_of_someone_else_with_our_name_is_left_alone() {
    let (ctx, fake) = setup();
    let theirs = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "chatbot", "namespace": NS, "resourceVersion": "7"},
                        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}});
    fake.put(NETWORK_POLICY, theirs.clone());
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    let calls = fake.take_calls();
    assert!(!calls.contains(&format!("PATCH {NETWORK_POLICY}")), "{calls:?}");
    assert_eq!(fake.get(NETWORK_POLICY).unwrap()["spec"], theirs["spec"], "untouched");
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "NetworkPolicyReady"),
        ("False".into(), "NameTaken".into())
    );
    assert!(
        condition_message(&cbm, "NetworkPolicyReady").starts_with("NetworkPolicy default/chatbot exists and is not")
    );

    // Switched off, it is not ours to delete either.
    let mut cbm = cbm;
    cbm.spec.network_policy.enabled = false;
    cbm.metadata.generation = Some(2);
    let cbm = stored(&fake, &cbm);
    run(&ctx, &cbm).await.unwrap();
    assert!(fake.get(NETWORK_POLICY).is_some());
}

#[tokio::test]
async fn mode_none_checks_nothing() {
    let (ctx, fake) = setup();
    let cbm = stored(
        &fake,
        &resource(json!({"monitoring": {"prometheus": {"mode": "none"}}})),
    );
    run(&ctx, &cbm).await.unwrap();
    let calls = fake.take_calls();
    assert!(!calls.iter().any(|c| c.contains("prometheuses")), "{calls:?}");
    assert_eq!(
        condition(&reread(&fake), "Selected"),
        ("False".into(), "Disabled".into())
    );
    // No Prometheus is known to scrape the chatbot, so the NetworkPolicy would let none reach /metrics: said, not
    // hidden.
    assert_eq!(
        condition(&reread(&fake), "NetworkPolicyReady"),
        ("False".into(), "NoScraperAdmitted".into())
    );
    assert_eq!(condition(&reread(&fake), "Ready").0, "False");

    // Naming who scrapes (or switching the NetworkPolicy off) settles it.
    let mut cbm = reread(&fake);
    cbm.spec.network_policy.metrics_from = vec![
        serde_json::from_value(json!(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "victoria-metrics"}}}
        ))
        .unwrap(),
    ];
    cbm.metadata.generation = Some(2);
    let cbm = stored(&fake, &cbm);
    run(&ctx, &cbm).await.unwrap();
    assert_eq!(
        condition(&reread(&fake), "NetworkPolicyReady"),
        ("True".into(), "Applied".into())
    );
    assert_eq!(condition(&reread(&fake), "Ready").0, "True");
    let np = fake.get(NETWORK_POLICY).unwrap();
    assert_eq!(
        np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "victoria-metrics"
    );
}

#[tokio::test]
async fn a_port_renamed_behind_our_back_is_a_port_name_mismatch() {
    let (ctx, fake) = setup();
    // A mutating webhook renames the Service port every time it is applied: the ServiceMonitor scrapes nothing.
    fake.state().webhooks.push(("/services/chatbot".into(), |o| {
        o["spec"]["ports"][1]["name"] = json!("web");
    }));
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Selected"), ("False".into(), "PortNameMismatch".into()));
    assert!(
        condition_message(&cbm, "Selected")
            .contains("Service default/chatbot has no port named \"metrics\" (its ports: http, web)"),
        "{}",
        condition_message(&cbm, "Selected")
    );
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "PortNameMismatch".into()));
    let events = fake.state().events.clone();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "Warning" && e["reason"] == "PortNameMismatch"),
        "{events:?}"
    );
}

/// Puts `status` on the ServiceMonitor as the Prometheus Operator would, reconciles, and returns `Selected` (status,
/// reason, message).
async fn selected_with(ctx: &Arc<Context>, fake: &FakeApi, status: Value) -> (String, String, String) {
    let mut sm = fake.get(SERVICE_MONITOR).unwrap();
    sm["status"] = status;
    fake.put(SERVICE_MONITOR, sm);
    run(ctx, &reread(fake)).await.unwrap();
    let cbm = reread(fake);
    let (status, reason) = condition(&cbm, "Selected");
    (status, reason, condition_message(&cbm, "Selected"))
}

/// What the Prometheus Operator writes in `status.bindings` with its StatusForConfigurationResources gate on.
fn bindings(name: &str, accepted: bool, generation: i64) -> Value {
    json!({"bindings": [{
        "group": "monitoring.coreos.com", "resource": "prometheuses", "name": name, "namespace": "monitoring",
        "conditions": [{"type": "Accepted", "status": if accepted { "True" } else { "False" },
                        "reason": if accepted { "" } else { "InvalidConfiguration" },
                        "message": if accepted { "" } else { "sample_limit exceeds enforcedSampleLimit" },
                        "observedGeneration": generation, "lastTransitionTime": "2026-11-25T10:00:00Z"}],
    }]})
}

#[tokio::test]
async fn the_prometheus_operator_bindings_confirm_or_contradict_our_evaluation() {
    let (ctx, fake) = setup();
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();

    // Confirmed: the message says so, the verdict stands.
    for path in [SERVICE_MONITOR, PROMETHEUS_RULE] {
        let mut o = fake.get(path).unwrap();
        o["metadata"]["generation"] = json!(1);
        o["status"] = bindings("kps", true, 1);
        fake.put(path, o);
    }
    run(&ctx, &reread(&fake)).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Selected"), ("True".into(), "Selected".into()));
    assert!(
        condition_message(&cbm, "Selected").ends_with("confirmed by the Prometheus Operator's status.bindings"),
        "{}",
        condition_message(&cbm, "Selected")
    );

    // Rejected by the Prometheus we found selecting it: reported with the operator's reason.
    let (status, reason, message) = selected_with(&ctx, &fake, bindings("kps", false, 1)).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Rejected"));
    assert!(
        message.contains("InvalidConfiguration: sample_limit exceeds enforcedSampleLimit"),
        "{message}"
    );

    // Bound to another Prometheus than the one our evaluation found: a disagreement, not hidden.
    let (status, reason, message) = selected_with(&ctx, &fake, bindings("other", true, 1)).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "BindingDisagreement"));
    assert!(message.contains("names only monitoring/other"), "{message}");
    let reasons: Vec<String> = fake
        .state()
        .events
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons == ["Reconciled", "Selected", "Rejected", "BindingDisagreement"],
        "{reasons:?}"
    );
}

/// Answers of a Prometheus that scrapes the resource's chatbot, loaded its rules, and has every metric its
/// dashboards read.
fn healthy_prometheus(groups: &[String], up: bool) -> fake_prometheus::Answers {
    fake_prometheus::healthy(
        &[fake_prometheus::Monitored {
            namespace: NS.into(),
            job: "chatbot".into(),
            groups: groups.to_vec(),
        }],
        up,
    )
}

fn rule_groups() -> Vec<String> {
    let desired = chatbot_operator::render::render(&resource(json!({})), &RenderOptions::default()).unwrap();
    desired
        .prometheus_rule
        .unwrap()
        .spec
        .groups
        .iter()
        .map(|g| g.name.clone())
        .collect()
}

fn verifying(period: Duration, url: &str) -> (Arc<Context>, FakeApi) {
    use chatbot_operator::verify::periodic::Verifier;
    let (client, fake) = FakeApi::start();
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    // Judged at once, as they are once Prometheus has had the time to load a change (see the Pending test).
    let ctx = Context::new(client, recorder, RenderOptions::default(), Arc::new(Metrics::new()))
        .with_verifier(Verifier::new(period, Duration::from_secs(2), Some(url.to_owned())))
        .with_load_grace(Duration::ZERO);
    (Arc::new(ctx), fake)
}

/// A new resource is checked in the pass that applies its children, before Prometheus could have loaded them: its
/// checks are `Pending`, with Normal events only, and looked at again in 10 s with fresh answers, not after a
/// whole verification period of cached ones. On a real node every new resource sent four Warning events
/// (NoTarget, RulesNotLoaded, MetricsMissing, RoutesNotLoaded) in its first second.
#[tokio::test]
async fn checks_right_after_a_change_are_pending_with_no_warning() {
    let answers = healthy_prometheus(&[], true);
    *answers.targets.lock().unwrap() = json!({"activeTargets": []});
    *answers.series.lock().unwrap() = json!([]);
    let url = fake_prometheus::start(answers.clone()).await;
    let (ctx, fake) = verifying(Duration::from_secs(60), &url);
    let ctx = Arc::new(Arc::into_inner(ctx).unwrap().with_load_grace(Duration::from_secs(180)));
    let cbm = stored(&fake, &resource(json!({})));
    let action = run(&ctx, &cbm).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));
    let cbm = reread(&fake);
    for c in ["Scraped", "RulesLoaded", "DashboardMetricsPresent"] {
        assert_eq!(condition(&cbm, c), ("False".into(), "Pending".into()), "{c}");
        assert!(
            condition_message(&cbm, c).starts_with("waiting up to 180s for Prometheus to load what was just applied: "),
            "{}",
            condition_message(&cbm, c)
        );
    }
    assert!(
        condition_message(&cbm, "Scraped").ends_with("the ServiceMonitor is not selected, or no pod runs"),
        "the check's own finding is kept"
    );
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "Pending".into()));
    let events = fake.state().events.clone();
    assert!(events.iter().all(|e| e["type"] == "Normal"), "{events:?}");

    // Still waiting a second later: the same status, so no write (the age was once in the message).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fake.take_calls();
    run(&ctx, &reread(&fake)).await.unwrap();
    let calls = fake.take_calls();
    assert!(calls.iter().all(|c| !c.starts_with("PATCH")), "{calls:?}");

    // Prometheus loads it: the next look, 10 s later, asks again instead of reading the round of 10 s ago.
    let loaded = healthy_prometheus(&rule_groups(), true);
    *answers.targets.lock().unwrap() = loaded.targets.lock().unwrap().clone();
    *answers.rules.lock().unwrap() = loaded.rules.lock().unwrap().clone();
    *answers.series.lock().unwrap() = loaded.series.lock().unwrap().clone();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let action = run(&ctx, &reread(&fake)).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let cbm = reread(&fake);
    for c in ["Scraped", "RulesLoaded", "DashboardMetricsPresent", "Ready"] {
        assert_eq!(condition(&cbm, c).0, "True", "{c}: {}", condition_message(&cbm, c));
    }
}

#[tokio::test]
async fn verification_reports_scraping_rules_panels_and_firing_alerts() {
    let answers = healthy_prometheus(&rule_groups(), true);
    let url = fake_prometheus::start(answers.clone()).await;
    let (ctx, fake) = verifying(Duration::ZERO, &url);
    let cbm = stored(&fake, &resource(json!({})));
    let action = run(&ctx, &cbm).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::ZERO.min(Duration::from_secs(300))));
    let cbm = reread(&fake);
    for c in ["Scraped", "RulesLoaded", "DashboardMetricsPresent"] {
        assert_eq!(condition(&cbm, c).0, "True", "{c}: {}", condition_message(&cbm, c));
    }
    assert_eq!(condition(&cbm, "Ready").0, "True");
    let status = cbm.status.clone().unwrap();
    assert_eq!(status.scraped.as_deref(), Some("1/1"));
    assert_eq!(status.firing_alerts, ["HighErrorRate"]);

    // The target goes down: Scraped turns False with the scrape error, and an event tells it.
    *answers.targets.lock().unwrap() = healthy_prometheus(&rule_groups(), false)
        .targets
        .lock()
        .unwrap()
        .clone();
    let before = fake.state().events.len();
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Scraped"), ("False".into(), "TargetDown".into()));
    assert!(condition_message(&cbm, "Scraped").contains("connection refused"));
    assert_eq!(cbm.status.as_ref().unwrap().scraped.as_deref(), Some("0/1"));
    let events = fake.state().events[before..].to_vec();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "TargetDown" && e["type"] == "Warning"),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_a_condition_not_an_error() {
    let (ctx, fake) = verifying(Duration::from_secs(60), "http://127.0.0.1:9");
    let cbm = stored(&fake, &resource(json!({})));
    assert!(run(&ctx, &cbm).await.is_ok());
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Scraped"),
        ("False".into(), "PrometheusUnavailable".into())
    );
    // One sentence for a person, not a request URL with its query (issue 11, defect 3).
    let message = condition_message(&cbm, "DashboardMetricsPresent");
    assert!(
        message.starts_with("Prometheus at http://127.0.0.1:9 could not be reached")
            && !message.contains("/api/v1")
            && message.len() < 200,
        "{message}"
    );
    assert!(cbm.status.unwrap().scraped.is_none());
}

/// Targets and rules are asked once per Prometheus per period, whatever the number of resources, even when they
/// are reconciled at the same time (the controller runs 8 at once); each resource adds one batched series request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_sharing_a_prometheus_share_its_targets_and_rules() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let monitored: Vec<fake_prometheus::Monitored> = names
        .iter()
        .map(|n| fake_prometheus::Monitored {
            namespace: NS.into(),
            job: (*n).into(),
            groups: rule_groups(),
        })
        .collect();
    let answers = fake_prometheus::healthy(&monitored, true);
    let url = fake_prometheus::start(answers.clone()).await;
    let (ctx, fake) = verifying(Duration::from_secs(60), &url);
    let resources: Vec<ChatbotMonitoring> = names
        .iter()
        .map(|name| {
            let mut r = resource(json!({}));
            r.metadata.name = Some((*name).into());
            fake.put(
                &format!("/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/default/chatbotmonitorings/{name}"),
                serde_json::to_value(&r).unwrap(),
            );
            r
        })
        .collect();
    let results = futures::future::join_all(resources.iter().map(|r| run(&ctx, r))).await;
    assert!(results.iter().all(Result::is_ok));
    for name in names {
        let path = format!("/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/default/chatbotmonitorings/{name}");
        let cbm: ChatbotMonitoring = serde_json::from_value(fake.get(&path).unwrap()).unwrap();
        for c in ["Scraped", "RulesLoaded", "DashboardMetricsPresent"] {
            assert_eq!(
                condition(&cbm, c).0,
                "True",
                "{name} {c}: {}",
                condition_message(&cbm, c)
            );
        }
    }
    let requests = answers.requests.lock().unwrap().clone();
    assert_eq!(
        (
            answers.requests("targets"),
            answers.requests("rules"),
            answers.requests("series")
        ),
        (1, 1, names.len()),
        "{requests:?}"
    );
}

const ALERTMANAGER: &str = "/apis/monitoring.coreos.com/v1/namespaces/monitoring/alertmanagers/kps";

/// kube-prometheus-stack's Alertmanager: every AlertmanagerConfig of every namespace (`selector` when given).
fn with_alertmanager(fake: &FakeApi, selector: Value) {
    fake.state().alertmanager_kind = true;
    fake.put(
        ALERTMANAGER,
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
               "metadata": {"name": "kps", "namespace": "monitoring"},
               "spec": {"alertmanagerConfigSelector": selector, "alertmanagerConfigNamespaceSelector": {}}}),
    );
}

fn notifications() -> Value {
    json!({"notifications": {"receivers": [
        {"name": "paging", "pagerduty": {"routingKeySecretRef": {"name": "alerting", "key": "pd"}}},
        {"name": "chat", "webhook": {"urlSecretRef": {"name": "alerting", "key": "hook"}}},
    ]}})
}

/// The resource as the API server stores it after defaulting (the tests do not go through admission).
fn notified() -> ChatbotMonitoring {
    let object = json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                        "metadata": {"name": "chatbot"}, "spec": notifications()});
    let mut cbm = chatbot_operator::admission::admit(&object).unwrap();
    let stored = resource(json!({}));
    cbm.metadata = stored.metadata;
    cbm
}

#[tokio::test]
async fn notifications_apply_an_owned_alertmanager_config_and_routed_names_the_alertmanager() {
    let (ctx, fake) = setup();
    with_alertmanager(&fake, json!({}));
    let cbm = stored(&fake, &notified());
    run(&ctx, &cbm).await.unwrap();
    let amc = fake.get(ALERTMANAGER_CONFIG).expect("applied");
    assert_eq!(
        amc["metadata"]["ownerReferences"][0]["uid"],
        "5e1f7a2c-0000-4000-8000-000000000001"
    );
    assert_eq!(amc["spec"]["route"]["receiver"], "none");
    assert_eq!(amc["spec"]["route"]["routes"][0]["receiver"], "paging");
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "AlertmanagerConfigReady"),
        ("True".into(), "Applied".into())
    );
    assert_eq!(
        condition_message(&cbm, "AlertmanagerConfigReady"),
        "2 receiver(s); critical to paging; warning to chat; info to no one; inhibitions on"
    );
    // No verifier here: selection is what is known.
    assert_eq!(condition(&cbm, "Routed"), ("True".into(), "Selected".into()));
    assert_eq!(
        condition_message(&cbm, "Routed"),
        "selected by Alertmanager monitoring/kps"
    );
    assert_eq!(condition(&cbm, "Ready").0, "True");
    let status = cbm.status.clone().unwrap();
    assert_eq!(status.children.unwrap().alertmanager_config.as_deref(), Some("chatbot"));

    // Unchanged: nothing written again.
    fake.take_calls();
    run(&ctx, &cbm).await.unwrap();
    let writes: Vec<String> = fake
        .take_calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Switched off: removed, and both conditions say so.
    let mut off = reread(&fake);
    off.spec.notifications.as_mut().unwrap().enabled = false;
    off.metadata.generation = Some(2);
    let off = stored(&fake, &off);
    run(&ctx, &off).await.unwrap();
    assert!(fake.get(ALERTMANAGER_CONFIG).is_none(), "deleted when switched off");
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "AlertmanagerConfigReady"),
        ("False".into(), "Disabled".into())
    );
    assert_eq!(condition(&cbm, "Routed"), ("False".into(), "Disabled".into()));
    assert_eq!(
        condition(&cbm, "Ready").0,
        "True",
        "a part switched off is not a failure"
    );
}

/// An AlertmanagerConfig of someone else's with the resource's name is never applied over (its routes would be
/// replaced, and our owner reference would have it deleted with the resource).
#[tokio::test]
async fn an_alertmanager_config_of_someone_else_with_our_name_is_left_alone() {
    let (ctx, fake) = setup();
    with_alertmanager(&fake, json!({}));
    let theirs = json!({"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
                        "metadata": {"name": "chatbot", "namespace": "default"},
                        "spec": {"route": {"receiver": "team"}, "receivers": [{"name": "team"}]}});
    fake.put(ALERTMANAGER_CONFIG, theirs);
    let cbm = stored(&fake, &notified());
    run(&ctx, &cbm).await.unwrap();
    let calls = fake.take_calls();
    assert!(!calls.contains(&format!("PATCH {ALERTMANAGER_CONFIG}")), "{calls:?}");
    let amc = fake.get(ALERTMANAGER_CONFIG).unwrap();
    assert_eq!(amc["spec"]["route"]["receiver"], "team");
    assert!(amc["metadata"].get("ownerReferences").is_none());
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "AlertmanagerConfigReady"),
        ("False".into(), "NameTaken".into())
    );
    assert_eq!(condition(&cbm, "Routed").1, "NameTaken");
    // Switched off, it is still not ours to delete.
    let mut off = cbm.clone();
    off.spec.notifications.as_mut().unwrap().enabled = false;
    off.metadata.generation = Some(2);
    let off = stored(&fake, &off);
    run(&ctx, &off).await.unwrap();
    assert!(fake.get(ALERTMANAGER_CONFIG).is_some());
}

#[tokio::test]
async fn auto_mode_adds_the_label_the_alertmanager_selects_and_says_why_one_does_not() {
    let (ctx, fake) = setup();
    with_alertmanager(&fake, json!({"matchLabels": {"alertmanagerConfig": "chatbots"}}));
    let cbm = stored(&fake, &notified());
    run(&ctx, &cbm).await.unwrap();
    let amc = fake.get(ALERTMANAGER_CONFIG).unwrap();
    assert_eq!(amc["metadata"]["labels"]["alertmanagerConfig"], "chatbots");
    let cbm = reread(&fake);
    assert_eq!(
        condition_message(&cbm, "Routed"),
        "selected by Alertmanager monitoring/kps (labels added: alertmanagerConfig=chatbots)"
    );

    // The user's own labels are never second-guessed: the mismatch is reported instead.
    let mut labelled = cbm.clone();
    labelled.spec.notifications.as_mut().unwrap().labels = [("team".to_owned(), "care".to_owned())].into();
    labelled.metadata.generation = Some(2);
    let labelled = stored(&fake, &labelled);
    run(&ctx, &labelled).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Routed"), ("False".into(), "LabelMismatch".into()));
    assert!(condition_message(&cbm, "Routed").contains("missing label alertmanagerConfig=chatbots"));
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "LabelMismatch".into()));
}

#[tokio::test]
async fn without_the_prometheus_operator_notifications_wait_for_it() {
    let (ctx, fake) = setup();
    fake.state().prometheus_operator = false;
    let cbm = stored(&fake, &notified());
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "AlertmanagerConfigReady"),
        ("False".into(), "PrometheusOperatorMissing".into())
    );
    assert!(condition_message(&cbm, "AlertmanagerConfigReady").contains("monitoring.coreos.com/v1alpha1"));
    assert_eq!(condition(&cbm, "Routed").1, "PrometheusOperatorMissing");
    // Without an Alertmanager at all, Routed says that no one will be told.
    let (ctx, fake) = setup();
    fake.state().alertmanager_kind = true;
    let cbm = stored(&fake, &notified());
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Routed"), ("False".into(), "NoAlertmanager".into()));
    assert_eq!(condition(&cbm, "AlertmanagerConfigReady").0, "True");
}

#[tokio::test]
async fn verification_follows_the_alert_from_prometheus_to_the_loaded_routing() {
    let answers = healthy_prometheus(&rule_groups(), true);
    let url = fake_prometheus::start(answers.clone()).await;
    let (ctx, fake) = verifying(Duration::from_secs(60), &url);
    let ctx = Arc::new(
        Arc::into_inner(ctx).unwrap().with_verifier(
            chatbot_operator::verify::periodic::Verifier::new(
                Duration::ZERO,
                Duration::from_secs(2),
                Some(url.clone()),
            )
            .with_alertmanager_url(Some(url.clone())),
        ),
    );
    with_alertmanager(&fake, json!({}));
    let cbm = stored(&fake, &notified());

    // The Alertmanager has not loaded the routing (the Prometheus Operator skipped it, say).
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(condition(&cbm, "Routed"), ("False".into(), "RoutesNotLoaded".into()));
    assert!(
        condition_message(&cbm, "Routed")
            .contains("default/chatbot/none, default/chatbot/paging, default/chatbot/chat and 1 more missing"),
        "{}",
        condition_message(&cbm, "Routed")
    );
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "RoutesNotLoaded".into()));

    // Loaded, as Alertmanager re-marshals what the Prometheus Operator generated.
    *answers.alertmanager_config.lock().unwrap() = "route:\n  receiver: \"null\"\n  routes:\n  - receiver: default/chatbot/none\n    matchers:\n    - namespace=\"default\"\n    - chatbot=\"chatbot\"\n    - namespace=\"default\"\n    continue: true\n    routes:\n    - receiver: default/chatbot/paging\n      matchers: ['severity=\"critical\"']\n      continue: true\n    - receiver: default/chatbot/chat\n      matchers: ['severity=\"warning\"']\n      continue: true\nreceivers:\n- name: \"null\"\n- name: default/chatbot/none\n- name: default/chatbot/paging\n- name: default/chatbot/chat\n".into();
    let before = fake.state().events.len();
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Routed"),
        ("True".into(), "Routed".into()),
        "{}",
        condition_message(&cbm, "Routed")
    );
    assert!(
        condition_message(&cbm, "Routed")
            .contains("its 2 receiver(s); Prometheus sends its alerts to 1 Alertmanager(s)")
    );
    let events = fake.state().events[before..].to_vec();
    assert!(
        events.iter().any(|e| e["reason"] == "Routed" && e["type"] == "Normal"),
        "{events:?}"
    );

    // Prometheus loses its Alertmanager: every alert would fire and no one be told.
    *answers.alertmanagers.lock().unwrap() = json!({"activeAlertmanagers": [], "droppedAlertmanagers": []});
    run(&ctx, &cbm).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "Routed"),
        ("False".into(), "NoAlertmanagerConnected".into())
    );
    let events = fake.state().events.clone();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "NoAlertmanagerConnected" && e["type"] == "Warning"),
        "{events:?}"
    );
}

/// Pods the API server refuses to create (Pod Security here; a quota, a LimitRange or a webhook look the same):
/// the deployment controller says so on the Deployment, and the resource says it in those words instead of
/// "0/1 pods ready" for as long as it lasts (seen so on a real node).
#[tokio::test]
async fn pods_the_api_server_refuses_are_said_in_its_words() {
    let (ctx, fake) = setup();
    fake.state().pods_ready = false;
    let cbm = stored(&fake, &resource(json!({})));
    run(&ctx, &cbm).await.unwrap();
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["status"] = json!({"replicas": 0, "conditions": [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": "pods \"chatbot-5d8f-abcde\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"chatbot\" must set securityContext.allowPrivilegeEscalation=false)"},
    ]});
    fake.put(DEPLOYMENT, deployment);
    run(&ctx, &reread(&fake)).await.unwrap();
    let cbm = reread(&fake);
    assert_eq!(
        condition(&cbm, "DeploymentReady"),
        ("False".into(), "PodCreationFailed".into())
    );
    assert_eq!(
        condition_message(&cbm, "DeploymentReady"),
        "0/1 pods ready; Deployment chatbot cannot create its pods (FailedCreate): pods \"chatbot-5d8f-abcde\" is \
         forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \
         \"chatbot\" must set securityContext.allowPrivilegeEscalation=false)"
    );
    assert_eq!(condition(&cbm, "Ready"), ("False".into(), "PodCreationFailed".into()));
    let event = fake.state().events.last().cloned().unwrap();
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("PodCreationFailed"))
    );
}

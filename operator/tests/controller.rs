//! The controller as `chatbot-operator run` wires it (its watches, the reconciler, settling), against the scripted
//! API server served over HTTP with watches: it reconciles a resource from its list, settles, then a hand edit to a
//! child comes back through the Deployment watch and is undone; a child's status change is reconciled from the
//! watches' caches without a read; watches that expire are listed again and nothing changed meanwhile is missed;
//! every request, watches included, is one the operator's RBAC grants.

mod fake_api;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatbot_operator::controller::{self, Scope};
use chatbot_operator::metrics::Metrics;
use chatbot_operator::rbac::{CLUSTER_WIDE, WATCHED_NAMESPACES, allows};
use chatbot_operator::reconcile::Context;
use chatbot_operator::render::RenderOptions;
use chatbot_operator::settled::Settled;
use fake_api::FakeApi;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

const CBM: &str = "/apis/monitoring.chatbot-sav.io/v1alpha1/namespaces/default/chatbotmonitorings/chatbot";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/chatbot";

/// Waits up to 10 s for `check` to hold on the fake's state.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ready(cbm: Option<Value>) -> bool {
    cbm.and_then(|c| {
        c["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .map(|c| c["status"] == "True")
    })
    .unwrap_or(false)
}

/// A running controller against `fake`, as `chatbot-operator run` wires it, with one resource named `chatbot`.
struct Running {
    ctx: Arc<Context>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(fake: &FakeApi) -> Running {
    let url = fake.serve().await;
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    fake.put(
        "/api/v1/namespaces/default",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    );
    fake.put(CBM, resource(1, json!({})));
    let recorder = Recorder::new(client.clone(), Reporter::from("chatbot-operator".to_owned()));
    let ctx = Arc::new(
        Context::new(client, recorder, RenderOptions::default(), Arc::new(Metrics::new()))
            .with_settled(Settled::default()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller::run(ctx.clone(), Scope::All, async {
        stopped.await.ok();
    }));
    Running { ctx, stop, task }
}

impl Running {
    /// Waits for the resource's first reconciles to end: Ready, and settled.
    async fn ready_and_settled(&self, fake: &FakeApi) {
        eventually("the resource Ready", || ready(fake.get(CBM))).await;
        eventually("the resource settled", || self.ctx.settled.as_ref().unwrap().len() == 1).await;
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the controller stops when told")
            .unwrap();
    }
}

fn resource(generation: i64, spec: Value) -> Value {
    json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
           "metadata": {"name": "chatbot", "namespace": "default", "uid": "5e1f7a2c-0000-4000-8000-000000000001",
                        "generation": generation},
           "spec": spec})
}

fn condition(cbm: Option<Value>, type_: &str) -> Option<String> {
    let cbm = cbm?;
    let c = cbm["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some(format!("{}/{}", c["status"].as_str()?, c["reason"].as_str()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reconciles_from_its_watches_settles_and_undoes_a_hand_edit() {
    let (_, fake) = FakeApi::start();
    let running = start(&fake).await;
    let ctx = running.ctx.clone();

    // The watch events of its own applies come back and are read once more; then the resource is settled and
    // nothing more is asked of the API server.
    running.ready_and_settled(&fake).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut calls = std::mem::take(&mut fake.state().calls);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.take_calls(),
        Vec::<String>::new(),
        "a settled resource costs no request"
    );

    // A hand edit reaches the controller through the Deployment watch and is undone.
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["spec"]["replicas"] = json!(4);
    fake.put(DEPLOYMENT, deployment);
    eventually("the Deployment restored", || {
        fake.get(DEPLOYMENT).unwrap()["spec"]["replicas"] == 1
    })
    .await;

    calls.extend(fake.state().calls.clone());
    let watched: Vec<String> = calls
        .iter()
        .filter(|c| c.query.contains("watch=true") || c.query.contains("watch=1"))
        .map(|c| c.path.clone())
        .collect();
    for kind in [
        "chatbotmonitorings",
        "deployments",
        "services",
        "configmaps",
        "servicemonitors",
        "prometheusrules",
        "prometheuses",
        "namespaces",
    ] {
        assert!(
            watched.iter().any(|p| p.ends_with(kind)),
            "{kind} is watched: {watched:?}"
        );
    }
    for call in &calls {
        let Some((group, resource, verb)) = call.rbac() else {
            continue;
        };
        assert!(
            allows(WATCHED_NAMESPACES, &group, &resource, verb) || allows(CLUSTER_WIDE, &group, &resource, verb),
            "{call:?} needs {verb} on {group}/{resource}"
        );
    }
    // Deleted: its settled entry goes with it.
    fake.remove(CBM);
    eventually("the settled entry dropped", || {
        ctx.settled.as_ref().unwrap().tracked() == 0
    })
    .await;

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_status_change_is_reconciled_from_the_caches() {
    let (_, fake) = FakeApi::start();
    let running = start(&fake).await;
    running.ready_and_settled(&fake).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.take_calls();

    // The controller manager reports a pod gone: the resource is looked at again, from what the watches cached.
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["status"]["readyReplicas"] = json!(0);
    fake.put(DEPLOYMENT, deployment);
    eventually("DeploymentReady False", || {
        condition(fake.get(CBM), "DeploymentReady").as_deref() == Some("False/Progressing")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = fake.take_calls();
    let reads: Vec<&String> = calls.iter().filter(|c| c.starts_with("GET ")).collect();
    assert!(reads.is_empty(), "no read: {calls:?}");
    assert!(
        calls.iter().any(|c| c == &format!("PATCH {CBM}/status")),
        "the status says so: {calls:?}"
    );
    running.stop().await;
}

/// A pod that cannot start because its Secret is missing: its watch wakes the resource (the Deployment says
/// nothing new), which tells why from the cached pod; no Secret is read; the pod starting clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_stuck_on_a_missing_secret_is_told_from_the_pods_watch() {
    let (_, fake) = FakeApi::start();
    let running = start(&fake).await;
    running.ready_and_settled(&fake).await;
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["status"]["readyReplicas"] = json!(0);
    fake.put(DEPLOYMENT, deployment);
    eventually("DeploymentReady Progressing", || {
        condition(fake.get(CBM), "DeploymentReady").as_deref() == Some("False/Progressing")
    })
    .await;

    let pod = |state: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "chatbot-5d8f-x2x9k", "namespace": "default",
                            "labels": {"app.kubernetes.io/name": "chatbot", "app.kubernetes.io/instance": "chatbot",
                                       "app.kubernetes.io/managed-by": "chatbot-operator"}},
               "status": {"phase": "Pending", "containerStatuses": [{"name": "chatbot", "image": "i", "imageID": "",
                          "ready": false, "restartCount": 0, "state": state}]}})
    };
    const POD: &str = "/api/v1/namespaces/default/pods/chatbot-5d8f-x2x9k";
    fake.put(POD, pod(json!({"waiting": {"reason": "ContainerCreating"}})));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        condition(fake.get(CBM), "DeploymentReady").as_deref(),
        Some("False/Progressing")
    );
    fake.put(
        POD,
        pod(json!({"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"chatbot-openai\" not found"}})),
    );
    eventually("DeploymentReady SecretMissing", || {
        condition(fake.get(CBM), "DeploymentReady").as_deref() == Some("False/SecretMissing")
    })
    .await;
    let cbm = fake.get(CBM).unwrap();
    let message = cbm["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DeploymentReady")
        .unwrap()["message"]
        .to_string();
    assert!(
        message.contains("chatbot-5d8f-x2x9k") && message.contains("chatbot-openai"),
        "{message}"
    );
    assert!(
        !fake.state().calls.iter().any(|c| c.path.contains("/secrets")),
        "no Secret is read"
    );

    // The Secret is created, the kubelet starts the container and the Deployment counts it.
    fake.put(POD, pod(json!({"running": {"startedAt": "2026-12-01T00:00:00Z"}})));
    let mut deployment = fake.get(DEPLOYMENT).unwrap();
    deployment["status"]["readyReplicas"] = json!(1);
    fake.put(DEPLOYMENT, deployment);
    eventually("DeploymentReady True", || {
        condition(fake.get(CBM), "DeploymentReady").as_deref() == Some("True/Available")
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_that_expire_are_listed_again_and_miss_nothing() {
    let (_, fake) = FakeApi::start();
    let running = start(&fake).await;
    running.ready_and_settled(&fake).await;

    // The server goes away; meanwhile the resource changes, and its history is compacted before it returns.
    fake.go_away();
    eventually("the watches failing", || running.ctx.watches.check().is_err()).await;
    fake.put(CBM, resource(2, json!({"chatbot": {"replicas": 3}})));
    fake.take_calls();
    fake.come_back_compacted();

    eventually("the change applied", || {
        fake.get(DEPLOYMENT).unwrap()["spec"]["replicas"] == 3
    })
    .await;
    assert!(fake.state().expired_watches > 0, "a watch was told 410 Expired");
    let calls = fake.take_calls();
    assert!(
        calls.contains(&"GET /apis/monitoring.chatbot-sav.io/v1alpha1/chatbotmonitorings".to_owned()),
        "the resources were listed again: {calls:?}"
    );
    eventually("the watches healthy again", || running.ctx.watches.check().is_ok()).await;
    running.stop().await;
}

/// A Prometheus deleted is a change of who selects every resource: `Selected` says so at once, and the
/// NetworkPolicy stops admitting its pods (its generation did not change, so a generation filter alone misses it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_prometheus_is_noticed_at_once() {
    let (_, fake) = FakeApi::start();
    // As the API server stores it: with a generation.
    let mut prometheus = fake.get(fake_api::PROMETHEUS).expect("the fake serves a Prometheus");
    prometheus["metadata"]["generation"] = json!(1);
    fake.put(fake_api::PROMETHEUS, prometheus);
    let running = start(&fake).await;
    running.ready_and_settled(&fake).await;
    assert_eq!(condition(fake.get(CBM), "Selected").as_deref(), Some("True/Selected"));

    fake.remove(fake_api::PROMETHEUS).expect("the fake serves a Prometheus");
    eventually("Selected False", || {
        condition(fake.get(CBM), "Selected").as_deref() == Some("False/NoPrometheus")
    })
    .await;
    eventually("the metrics port closed", || {
        condition(fake.get(CBM), "NetworkPolicyReady").as_deref() == Some("False/NoScraperAdmitted")
    })
    .await;
    let np = fake
        .get("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/chatbot")
        .unwrap();
    assert_eq!(
        np["spec"]["ingress"].as_array().unwrap().len(),
        1,
        "only the API's rule: {np}"
    );
    running.stop().await;
}

/// Notifications through the running controller: the AlertmanagerConfig deleted by hand comes back through its
/// watch, and an Alertmanager whose selector changes is noticed at once (its watch unsettles every resource).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_follow_the_alertmanager_config_and_alertmanager_watches() {
    const AMC: &str = "/apis/monitoring.coreos.com/v1alpha1/namespaces/default/alertmanagerconfigs/chatbot";
    const ALERTMANAGER: &str = "/apis/monitoring.coreos.com/v1/namespaces/monitoring/alertmanagers/kps";
    let (_, fake) = FakeApi::start();
    fake.state().alertmanager_kind = true;
    let alertmanager = |generation: i64, selector: Value| {
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
               "metadata": {"name": "kps", "namespace": "monitoring", "generation": generation},
               "spec": {"alertmanagerConfigSelector": selector, "alertmanagerConfigNamespaceSelector": {}}})
    };
    fake.put(ALERTMANAGER, alertmanager(1, json!({})));
    let running = start(&fake).await;
    // As stored after defaulting: the routes name `paging` and `chat`.
    let spec = json!({"notifications": {"enabled": true, "receivers": [
        {"name": "paging", "sendResolved": true, "webhook": {"urlSecretRef": {"name": "a", "key": "p"}}},
        {"name": "chat", "sendResolved": true, "webhook": {"urlSecretRef": {"name": "a", "key": "c"}}}],
        "routes": {"critical": ["paging"], "warning": ["chat"], "info": []},
        "groupBy": ["alertname", "namespace", "chatbot"], "groupWait": "30s", "groupInterval": "5m",
        "repeatInterval": "4h", "inhibit": true, "alertmanager": {"mode": "auto"}}});
    fake.put(CBM, resource(2, spec));
    eventually("Routed True", || {
        condition(fake.get(CBM), "Routed").as_deref() == Some("True/Selected")
    })
    .await;
    eventually("the resource settled", || {
        running.ctx.settled.as_ref().unwrap().len() == 1
    })
    .await;

    fake.remove(AMC).expect("applied");
    eventually("the AlertmanagerConfig restored", || fake.get(AMC).is_some()).await;

    fake.put(ALERTMANAGER, alertmanager(2, json!({"matchLabels": {"team": "other"}})));
    eventually("Routed follows the Alertmanager's new selector", || {
        condition(fake.get(CBM), "Routed").as_deref() == Some("True/Selected")
            && fake
                .get(AMC)
                .is_some_and(|a| a["metadata"]["labels"]["team"] == "other")
    })
    .await;
    // Every request, the new watches included, is one the operator's RBAC grants.
    let calls = fake.state().calls.clone();
    for call in &calls {
        if let Some((group, resource, verb)) = call.rbac() {
            assert!(
                allows(WATCHED_NAMESPACES, &group, &resource, verb) || allows(CLUSTER_WIDE, &group, &resource, verb),
                "{} is not granted",
                call.line()
            );
        }
    }
    running.stop().await;
}

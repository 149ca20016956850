//! The notification path end to end without a cluster: the real chatbot, a real Prometheus and a real Alertmanager
//! loaded with what `render --local-prometheus` writes for a resource with notifications, and a webhook receiver
//! that records what it is sent.
//!
//! Healthy traffic notifies no one and `Routed` passes. Faults make `HighErrorRate` reach the critical receiver with
//! the resource's labels, summary and runbook URL, then a resolved notification once they stop. A stopped chatbot
//! makes `ChatbotDown` reach it while a symptom of the same chatbot is inhibited, and a critical alert silences the
//! warning of the same name.
//!
//! Only timing is changed from what the operator renders: the error-rate window and two alerts' `for`, so that
//! the test takes a minute rather than ten. The routing, receivers and inhibitions are exactly the rendered ones.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use chatbot::config::Config;
use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::prometheus_operator::PrometheusRule;
use chatbot_operator::render::local_alertmanager::SecretValues;
use chatbot_operator::render::{Desired, RenderOptions, local_alertmanager, local_prometheus, render};
use chatbot_operator::verify::prometheus_api::PrometheusApi;
use chatbot_operator::verify::routing;
use serde_json::{Value, json};
use tempfile::TempDir;
use testsupport::{TestAlertmanager, TestPrometheus, free_port};

/// Every notification received: (receiver path, payload).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on 127.0.0.1 that records each POST and answers 200, as a real one must to stop retries.
async fn webhook_sink() -> (String, Received) {
    async fn receive(State(received): State<Received>, Path(path): Path<String>, body: axum::Json<Value>) {
        received.lock().unwrap().push((path, body.0));
    }
    let received = Received::default();
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The resource of these tests: `spec` with webhook receivers `paging` and `chat` (Secret `alerting`) and quick
/// notification timing.
fn resource(mut spec: Value) -> ChatbotMonitoring {
    spec["notifications"] = json!({
        "receivers": [
            {"name": "paging", "webhook": {"urlSecretRef": {"name": "alerting", "key": "paging"}}},
            {"name": "chat", "webhook": {"urlSecretRef": {"name": "alerting", "key": "chat"}}},
        ],
        "groupWait": "1s", "groupInterval": "1s", "repeatInterval": "1h",
    });
    let object = json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": "chatbot", "namespace": "default"},
        "spec": spec,
    });
    chatbot_operator::admission::admit(&object).expect("a valid resource")
}

/// A real Prometheus scraping `targets` and a real Alertmanager, loaded with what the operator renders for `cbm`
/// (quickened), the receivers' URLs pointing at `sink`; and the directory of their configuration, to keep.
fn start_alerting(
    cbm: &ChatbotMonitoring,
    targets: &[String],
    sink: &str,
) -> (Desired, TestPrometheus, TestAlertmanager, TempDir) {
    let mut desired = render(cbm, &RenderOptions::default()).unwrap();
    quicken(desired.prometheus_rule.as_mut().unwrap());
    let secrets = SecretValues::from_manifests(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: alerting}}\nstringData:\n  paging: {sink}/paging\n  chat: {sink}/chat\n"
    ))
    .unwrap();
    let am_port = free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alerting = local_prometheus::LocalAlerting {
        alertmanager: &format!("127.0.0.1:{am_port}"),
        secrets: &secrets,
    };
    local_prometheus::write(dir.path(), &desired, targets, Some("1s"), Some(alerting)).unwrap();
    let am = TestAlertmanager::start(&dir.path().join(local_alertmanager::CONFIG_FILE), am_port)
        .expect("start Alertmanager");
    let prom = TestPrometheus::start(dir.path()).expect("start Prometheus");
    (desired, prom, am, dir)
}

/// The timing changes of this test (see the module's comment), on the rendered rules.
fn quicken(rule: &mut PrometheusRule) {
    for r in rule.spec.groups.iter_mut().flat_map(|g| &mut g.rules) {
        match r.alert.as_deref() {
            Some("HighErrorRate") => r.expr = r.expr.replace("[5m]", "[15s]"),
            Some("ChatbotDown") => r.for_ = Some("1s".into()),
            _ => {}
        }
    }
}

/// The chatbot on `api` and `internal` (0: any port), every chat failing with a 503 when `faulty`.
async fn start_chatbot(
    db: &std::path::Path,
    api: SocketAddr,
    internal: SocketAddr,
    faulty: bool,
) -> (
    SocketAddr,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut config = Config::defaults();
    config.listen = api;
    config.internal_listen = internal;
    config.database_url = format!("sqlite://{}", db.join("c.db").display());
    config.model_backend = chatbot::config::ModelBackend::Builtin;
    config.sample_interval = Duration::from_secs(1);
    config.chat_rate_per_session = 0;
    config.chat_rate_per_client = 0;
    config.fault_every = if faulty { 1 } else { 0 };
    let listeners = chatbot::app::Listeners::bind(&config).await.unwrap();
    let addresses = (
        listeners.api.local_addr().unwrap(),
        listeners.internal.local_addr().unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chatbot::app::serve(config, listeners, async {
        let _ = stopped.await;
    }));
    (addresses.0, addresses.1, stop, server)
}

async fn chats(client: &reqwest::Client, api: SocketAddr, n: usize, expected: u16) {
    for _ in 0..n {
        let status = client
            .post(format!("http://{api}/chat"))
            .json(&json!({"message": "Where is my order?"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, expected);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The alerts of `alertname` in notifications to `path` with `status` (`firing`, `resolved`).
fn notified(received: &Received, path: &str, alertname: &str, status: &str) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .flat_map(|(_, payload)| payload["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
        .collect()
}

fn alertnames(received: &Received) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(p, payload)| {
            payload["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| format!("{p}:{}:{}", a["labels"]["alertname"], a["status"]))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_their_receivers_resolve_and_inhibit_their_symptoms() {
    let (sink, received) = webhook_sink().await;
    let db = tempfile::tempdir().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (api, internal, stop, server) = start_chatbot(db.path(), any, any, false).await;

    let cbm = resource(json!({"alerts": {"errorRate": {"threshold": 0.5, "for": "1s", "severity": "critical"}}}));
    let (desired, prom, am, _config) = start_alerting(&cbm, &[internal.to_string()], &sink);
    let client = reqwest::Client::new();

    // Healthy: the path is routed (what `Routed` and `verify --alertmanager-url` check), and nobody is told.
    let prometheus = PrometheusApi::new(&prom.url, Duration::from_secs(5));
    let amc = desired.alertmanager_config.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let check = loop {
        let check = routing::check(&amc, &prometheus, &am.url, Duration::from_secs(5)).await;
        // Prometheus lists its Alertmanagers a few seconds after it starts.
        if check.ok || Instant::now() > deadline {
            break check;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(check.ok, "{}: {}", check.reason, check.message);
    assert_eq!(check.reason, "Routed");
    let mut other = amc.clone();
    other.metadata.name = Some("someone-else".into());
    let not_loaded = routing::check(&other, &prometheus, &am.url, Duration::from_secs(5)).await;
    assert_eq!(not_loaded.reason, "RoutesNotLoaded", "{}", not_loaded.message);
    chats(&client, api, 30, 200).await;
    wait_for("the chatbot scraped", Duration::from_secs(20), || {
        prom.query("up{job=\"chatbot\"} == 1").ok().filter(|r| !r.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "notified without a fault: {:?}",
        alertnames(&received)
    );

    // Faults: every chat fails for a few seconds, HighErrorRate fires and pages, with the resource's labels.
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let (api, _, stop, server) = start_chatbot(db.path(), api, internal, true).await;
    chats(&client, api, 60, 503).await;
    let firing = wait_for("HighErrorRate delivered to paging", Duration::from_secs(60), || {
        notified(&received, "paging", "HighErrorRate", "firing")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(firing["labels"]["severity"], "critical");
    assert_eq!(firing["labels"]["chatbot"], "chatbot");
    assert_eq!(firing["labels"]["namespace"], "default");
    assert_eq!(firing["annotations"]["summary"], "High rate of 5xx responses");
    assert!(
        firing["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("/HighErrorRate.md"),
        "{firing}"
    );
    let payload = received
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == "paging")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(payload["receiver"], "default/chatbot/paging");
    assert_eq!(payload["groupLabels"]["alertname"], "HighErrorRate");
    // Critical goes to the paging receiver only (warnings go to chat).
    assert!(notified(&received, "chat", "HighErrorRate", "firing").is_empty());

    // The faults stop: a resolved notification follows, and the chat receiver was never told of it.
    wait_for("HighErrorRate resolved to paging", Duration::from_secs(90), || {
        notified(&received, "paging", "HighErrorRate", "resolved")
            .into_iter()
            .next()
    })
    .await;
    assert!(
        received.lock().unwrap().iter().all(|(path, _)| path == "paging"),
        "{:?}",
        alertnames(&received)
    );

    // A critical alert silences the warning of the same name (posted as Prometheus would send them; Alertmanager
    // starts them now).
    let of = |severity: &str| {
        json!({"labels": {"alertname": "DatabaseConnectionsSaturated", "severity": severity, "chatbot": "chatbot",
                          "namespace": "default", "job": "chatbot"},
               "annotations": {"summary": "Database connection pool nearly exhausted"}})
    };
    am.post_alerts(&json!([of("critical"), of("warning")])).unwrap();
    wait_for(
        "the critical DatabaseConnectionsSaturated paged",
        Duration::from_secs(30),
        || {
            notified(&received, "paging", "DatabaseConnectionsSaturated", "firing")
                .into_iter()
                .next()
        },
    )
    .await;
    let suppressed = |alertname: &str, severity: &str| {
        am.get(&format!("alerts?filter=alertname%3D%22{alertname}%22"))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .any(|a| {
                a["labels"]["severity"] == severity
                    && a["status"]["state"] == "suppressed"
                    && !a["status"]["inhibitedBy"].as_array().unwrap().is_empty()
            })
    };
    assert!(suppressed("DatabaseConnectionsSaturated", "warning"));

    // The chatbot stops: ChatbotDown pages, and a symptom of the same chatbot is inhibited, never told.
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    wait_for("ChatbotDown delivered to paging", Duration::from_secs(60), || {
        notified(&received, "paging", "ChatbotDown", "firing")
            .into_iter()
            .next()
    })
    .await;
    let symptom = json!([{"labels": {"alertname": "HighResponseTime", "severity": "warning", "chatbot": "chatbot",
                                     "namespace": "default", "job": "chatbot"},
                          "annotations": {"summary": "High HTTP response time (p95)"}}]);
    am.post_alerts(&symptom).unwrap();
    wait_for(
        "HighResponseTime inhibited by ChatbotDown",
        Duration::from_secs(20),
        || suppressed("HighResponseTime", "warning").then_some(()),
    )
    .await;
    // Longer than group_wait and group_interval: had it not been inhibited, it would have been sent by now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        notified(&received, "chat", "HighResponseTime", "firing").is_empty(),
        "{:?}",
        alertnames(&received)
    );
    drop(prom);
    drop(am);
}

/// Three pods of one chatbot: availability rules as rendered, only their `for` shortened.
fn three_pods() -> ChatbotMonitoring {
    resource(json!({
        "chatbot": {"replicas": 3, "database": {"type": "postgres",
                                                "postgres": {"urlSecretRef": {"name": "db", "key": "url"}}}},
        "alerts": {
            "errorRate": {"threshold": 0.5, "for": "1s"},
            "availability": {"for": "1s", "partialFor": "3s"},
        },
    }))
}

/// Issue 24: with `replicas: 3`, one pod down used to page as `ChatbotDown` and, through the inhibition, hide a real
/// `HighErrorRate` of the two others. Now it is a warning for the chat receiver that mutes nothing, and the error
/// rate still pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_down_among_three_warns_the_chat_and_mutes_nothing() {
    let (sink, received) = webhook_sink().await;
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let dbs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut pods = Vec::new();
    for db in &dbs {
        pods.push(start_chatbot(db.path(), any, any, true).await);
    }
    let targets: Vec<String> = pods.iter().map(|(_, internal, _, _)| internal.to_string()).collect();

    let (_, prom, am, _config) = start_alerting(&three_pods(), &targets, &sink);
    wait_for("the three pods scraped", Duration::from_secs(20), || {
        prom.query("count(up{job=\"chatbot\"} == 1) == 3")
            .ok()
            .filter(|r| !r.is_empty())
    })
    .await;

    // One pod goes (evicted, OOM-killed); the two others keep failing every chat.
    let (_, _, stop, server) = pods.remove(0);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut warned = None;
    let mut paged = None;
    while (warned.is_none() || paged.is_none()) && started.elapsed() < Duration::from_secs(90) {
        for (api, _, _, _) in &pods {
            chats(&client, *api, 2, 503).await;
        }
        warned = warned.or_else(|| {
            (!notified(&received, "chat", "ChatbotTargetsDown", "firing").is_empty()).then(|| started.elapsed())
        });
        paged = paged.or_else(|| {
            (!notified(&received, "paging", "HighErrorRate", "firing").is_empty()).then(|| started.elapsed())
        });
    }
    let alerts = alertnames(&received);
    assert!(warned.is_some(), "ChatbotTargetsDown never reached chat: {alerts:?}");
    assert!(
        paged.is_some(),
        "HighErrorRate never paged while a pod was down: {alerts:?}"
    );
    let warning = &notified(&received, "chat", "ChatbotTargetsDown", "firing")[0];
    assert_eq!(warning["labels"]["severity"], "warning");
    assert!(
        warning["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("33.33% of the targets"),
        "{warning}"
    );
    assert!(
        alerts
            .iter()
            .all(|a| !a.contains("ChatbotDown") && !a.starts_with("paging:ChatbotTargetsDown")),
        "one pod of three down paged: {alerts:?}"
    );
    eprintln!(
        "one pod of three down: ChatbotTargetsDown to chat after {:.1}s, HighErrorRate paged after {:.1}s",
        warned.unwrap().as_secs_f64(),
        paged.unwrap().as_secs_f64()
    );
    drop(prom);
    drop(am);
    for (_, _, stop, server) in pods {
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    }
}

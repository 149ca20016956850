//! The operator binary (release build) on a real control plane: N resources created at once, time until every
//! child is applied and every status published, API requests per resource, writes in a minute of steady state, and
//! the operator's peak RSS. Prints figures; needs KUBEBUILDER_ASSETS (skipped otherwise).
//!
//!     cargo bench -p controlplane-tests --bench controlplane [-- 100 1000]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use controlplane_tests::binary::OperatorProcess;
use controlplane_tests::env::install_everything;
use controlplane_tests::requests::{self, Request, since};
use controlplane_tests::{ControlPlane, assets, chart};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// The operator's requests, by verb, resource and code, from kube-apiserver's `apiserver_request_total`.
/// The bench's own creates and polling LISTs of ChatbotMonitorings and ConfigMaps, and the controller manager's
/// Deployment status updates, are left out. (The operator lists those kinds once, when it starts, before the
/// counting begins.)
fn operator_requests(metrics: &str) -> BTreeMap<Request, f64> {
    let ours = requests::operator_resources(&["get", "list", "watch", "create", "patch", "delete"]);
    requests::counts(metrics)
        .into_iter()
        .filter(|(r, _)| {
            let (verb, resource, sub) = (r.verb.as_str(), r.resource.as_str(), r.subresource.as_str());
            ours.contains(resource)
                && !(resource == "chatbotmonitorings" && sub.is_empty() && matches!(verb, "POST" | "APPLY" | "LIST"))
                && !(resource == "configmaps" && verb == "LIST")
                && !(resource == "deployments" && sub == "status")
        })
        .collect()
}

/// Reconciles the operator has run, from its own `chatbot_operator_reconciliations_total`.
async fn reconciles(operator: &OperatorProcess) -> f64 {
    let metrics = operator.metrics().await.expect("the operator serves /metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("chatbot_operator_reconciliations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reads (GET and LIST, not watches) among `requests`.
fn reads(requests: &BTreeMap<Request, f64>) -> f64 {
    requests::total(
        requests
            .iter()
            .filter(|(r, _)| matches!(r.verb.as_str(), "GET" | "LIST"))
            .map(|(_, v)| v),
    )
}

async fn run(assets: &std::path::Path, n: usize) {
    let cp = Arc::new(ControlPlane::start(assets).await);
    let admin = cp.admin().await;
    install_everything(&admin).await;
    let ns = "bench";
    chart::ensure_namespace(&admin, ns).await.unwrap();
    let installed = chart::install_rbac(&admin, "bench", "bench-operator", None)
        .await
        .unwrap();
    let operator = OperatorProcess::start(&cp, &installed, "bench", "release", None);
    let start = Instant::now();
    while !operator.is_leader().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the operator leads; log in {}",
            operator.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle_rss = operator.peak_rss().unwrap_or(0);
    let before = operator_requests(&cp.apiserver_metrics().await);
    let reconciles_before = reconciles(&operator).await;

    let api = Api::<ChatbotMonitoring>::namespaced(admin.clone(), ns);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let api = api.clone();
            async move {
                let name = format!("bot-{i}");
                let cbm = json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                                 "metadata": {"name": name, "namespace": ns}, "spec": {}});
                api.patch(&name, &PatchParams::apply("bench"), &Patch::Apply(&cbm))
                    .await
                    .unwrap();
            }
        })
        .await;
    let created = start.elapsed();
    // The dashboard ConfigMap is each resource's last child, and the status comes after it.
    let dashboards = Api::<ConfigMap>::namespaced(admin.clone(), ns);
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=chatbot-operator");
    loop {
        let children = dashboards.list_metadata(&managed).await.unwrap().items.len();
        let published = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.observed_generation.is_some()))
            .count();
        if children == n && published == n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{children}/{n} dashboards, {published}/{n} statuses after 10 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let applied = start.elapsed();
    let first = since(&operator_requests(&cp.apiserver_metrics().await), &before);
    let first_reconciles = reconciles(&operator).await - reconciles_before;
    let total = requests::total(first.values());
    let conflicts: usize = first.keys().filter(|r| r.code == "409").count();
    let applies = requests::total(
        first
            .iter()
            .filter(|(r, _)| r.verb == "APPLY" && r.subresource.is_empty())
            .map(|(_, v)| v),
    );

    // The controller manager's own work (ReplicaSets, pods, Deployment status, its events) wakes reconciles: the
    // steady state starts once it is done.
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), ns);
    let settle = Instant::now();
    while cp.has_controller_manager() && settle.elapsed() < Duration::from_secs(300) {
        let done = deployments
            .list(&managed)
            .await
            .unwrap()
            .items
            .iter()
            .filter(|d| {
                let s = d.status.clone().unwrap_or_default();
                s.observed_generation == d.metadata.generation && s.replicas == Some(1)
            })
            .count();
        if done == n {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let quiet = operator_requests(&cp.apiserver_metrics().await);
    let quiet_reconciles = reconciles(&operator).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let steady = since(&operator_requests(&cp.apiserver_metrics().await), &quiet);
    let steady_reconciles = reconciles(&operator).await - quiet_reconciles;
    // Events are written by the controller manager too: the operator's are counted from the events themselves.
    let steady_writes = requests::total(
        steady
            .iter()
            .filter(|(r, _)| r.is_write() && r.resource != "events")
            .map(|(_, v)| v),
    );
    let peak = operator.peak_rss().unwrap_or(0);
    // Who wrote events during the quiet minute (the API server's counters do not say).
    let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    for e in events.items {
        let recent = e
            .metadata
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| t.0.duration_until(k8s_openapi::jiff::Timestamp::now()).as_secs() < 65);
        if recent {
            let source = e
                .reporting_component
                .clone()
                .or(e.source.and_then(|s| s.component))
                .unwrap_or_default();
            *by_source
                .entry(format!("{source} {}", e.reason.unwrap_or_default()))
                .or_default() += 1;
        }
    }

    println!(
        "{n} resources created at once ({:.1} s to create them, 32 at a time):",
        created.as_secs_f64()
    );
    println!(
        "  every child applied and every status published: {:.1} s after the first create",
        applied.as_secs_f64()
    );
    println!(
        "  API requests by the operator: {total} ({:.1} per resource); child applies {applies} ({:.1} per resource, 5 children each); answers 409 (conflict): {conflicts}",
        total / n as f64,
        applies / n as f64
    );
    println!(
        "  reconciles: {first_reconciles} ({:.1} per resource), reads (GET, LIST) per reconcile: {:.2}",
        first_reconciles / n as f64,
        reads(&first) / first_reconciles.max(1.0)
    );
    for (k, v) in &first {
        println!("    {k}: {v}");
    }
    let operator_events = by_source
        .iter()
        .filter(|(k, _)| k.starts_with("chatbot-operator"))
        .map(|(_, v)| v)
        .sum::<usize>();
    println!(
        "  steady state: {} writes by the operator in 60 s ({steady_writes} applies or patches, {operator_events} events); {} requests in all",
        steady_writes + operator_events as f64,
        requests::total(steady.values())
    );
    println!(
        "  steady state: {} API requests per minute by the operator, {steady_reconciles} reconciles, {:.2} reads per reconcile",
        requests::total(steady.values()),
        reads(&steady) / steady_reconciles.max(1.0)
    );
    for (k, v) in &steady {
        println!("    {k}: {v}");
    }
    for (k, v) in &by_source {
        println!("    events from {k}: {v}");
    }
    println!(
        "  operator peak RSS: {:.1} MiB (idle before the resources: {:.1} MiB)",
        peak as f64 / 1048576.0,
        idle_rss as f64 / 1048576.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(assets) = assets() else { return };
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 1000] } else { sizes };
    for n in sizes {
        run(&assets, n).await;
    }
}

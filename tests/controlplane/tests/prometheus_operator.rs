//! The Prometheus Operator's CRDs absent, partly present, then installed while the operator runs (issue 11,
//! defect 2), on a control plane of its own (CRDs are cluster-wide) with the chart's cluster-wide install.

use std::sync::Arc;
use std::time::Duration;

use chatbot_operator::crd::ChatbotMonitoring;
use controlplane_tests::ControlPlane;
use controlplane_tests::env::{Env, get, kps_prometheus, resource_of, state};
use controlplane_tests::operator::{install_crd, our_crd, prometheus_operator_crd};
use controlplane_tests::{chart, eventually, require_control_plane};
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

/// Discovery is asked again every 15 s: a kind installed later is seen within that, plus a reconcile.
const PICKED_UP: Duration = Duration::from_secs(45);

fn not_an_api_error(cbm: &ChatbotMonitoring) {
    assert_ne!(state(cbm, "Ready").1, "ApiError", "{:?}", cbm.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_then_partly_present_then_installed_without_a_restart() {
    let assets = require_control_plane!();
    let cp = Arc::new(ControlPlane::start(&assets).await);
    let admin = cp.admin().await;
    install_crd(&admin, &our_crd()).await.unwrap();
    let env = Env::new(cp.clone(), "shop", true, None).await;

    // None of the Prometheus Operator's kinds: the chatbot runs, its monitoring waits.
    env.apply("bot", json!({})).await;
    let cbm = env
        .wait_status("bot", "PrometheusOperatorMissing", PICKED_UP, |c| {
            state(c, "ServiceMonitorReady").1 == "PrometheusOperatorMissing"
        })
        .await;
    not_an_api_error(&cbm);
    assert!(get(&admin, "shop", "Deployment", "bot").await.is_some());
    assert!(
        get(&admin, "shop", "ConfigMap", "bot-dashboard-overview")
            .await
            .is_some()
    );

    // ServiceMonitor and PrometheusRule served, Prometheus not (an OpenTelemetry target allocator, Alloy…).
    for kind in ["servicemonitors", "prometheusrules"] {
        install_crd(&admin, &prometheus_operator_crd(kind)).await.unwrap();
    }
    let cbm = env
        .wait_status("bot", "PrometheusKindMissing", PICKED_UP, |c| {
            state(c, "Selected").1 == "PrometheusKindMissing" && state(c, "ServiceMonitorReady").0 == "True"
        })
        .await;
    not_an_api_error(&cbm);
    assert!(get(&admin, "shop", "ServiceMonitor", "bot").await.is_some());
    assert!(get(&admin, "shop", "PrometheusRule", "bot").await.is_some());

    // The Prometheus CRD and kube-prometheus-stack's Prometheus: selected, with the label added.
    install_crd(&admin, &prometheus_operator_crd("prometheuses"))
        .await
        .unwrap();
    chart::ensure_namespace(&admin, "monitoring").await.unwrap();
    chart::apply(&admin, &kps_prometheus()).await.unwrap();
    env.wait_status("bot", "Selected", PICKED_UP, |c| state(c, "Selected").0 == "True")
        .await;
    let sm = get(&admin, "shop", "ServiceMonitor", "bot").await.unwrap();
    assert_eq!(sm["metadata"]["labels"]["release"], "kps");

    // The ServiceMonitor is watched now, without a restart: a hand edit is undone at once, not at the next resync.
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(admin.clone(), "shop", &resource_of("ServiceMonitor"));
    api.patch(
        "bot",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"endpoints": [{"port": "wrong"}]}})),
    )
    .await
    .unwrap();
    eventually("the ServiceMonitor restored", Duration::from_secs(10), || async {
        let sm = get(&admin, "shop", "ServiceMonitor", "bot").await.unwrap();
        (sm["spec"]["endpoints"][0]["port"] == "metrics")
            .then_some(())
            .ok_or_else(|| sm["spec"].to_string())
    })
    .await;
}

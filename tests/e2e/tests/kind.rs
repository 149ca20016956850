//! On a real cluster where the stack is installed (`scripts/kind-up.sh`, or the CI workflow with kind): apply a
//! ChatbotMonitoring with no labels, wait for its children and Ready, check that Prometheus scrapes the target and
//! loaded the rules, that the resource says so itself (auto mode added the `release` label; Selected, Scraped "1/1",
//! RulesLoaded, DashboardMetricsPresent), that the dashboard ConfigMap is there, then switch alerts off and delete
//! the resource and check the result.
//! It needs a cluster, so a plain `cargo test` lists it as ignored with the reason; asked for explicitly, it fails
//! with a clear message where no cluster answers.
//!
//!   KUBECONFIG=~/.kube/config E2E_PROMETHEUS_URL=http://localhost:9090 cargo test -p e2e-tests -- --ignored

use std::time::{Duration, Instant};

use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::prometheus_operator::{PrometheusRule, ServiceMonitor};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const NAME: &str = "chatbot";

async fn cluster() -> Client {
    let client = Client::try_default().await.unwrap_or_else(|e| {
        panic!("no Kubernetes cluster configured ({e}): run scripts/kind-up.sh and set KUBECONFIG")
    });
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(v)) => eprintln!("e2e: Kubernetes {}", v.git_version),
        Ok(Err(e)) => panic!("the configured cluster does not answer: {e}"),
        Err(_) => panic!("the configured cluster did not answer within 10 s"),
    }
    client
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

fn condition(cbm: &ChatbotMonitoring, type_: &str) -> Option<(String, String)> {
    cbm.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn prometheus(path: &str) -> Result<Value, String> {
    let base = std::env::var("E2E_PROMETHEUS_URL").unwrap_or_else(|_| "http://localhost:9090".into());
    let body: Value = reqwest::get(format!("{base}/api/v1/{path}"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body["data"].clone())
}

#[tokio::test]
#[ignore = "needs a kind cluster with the stack installed: scripts/kind-up.sh, then cargo test -p e2e-tests -- --ignored"]
async fn a_chatbot_monitoring_is_run_scraped_alerted_and_cleaned_up() {
    let client = cluster().await;
    let ns = format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let release = std::env::var("E2E_PROMETHEUS_RELEASE").unwrap_or_else(|_| "chatbot-sav".into());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    let cbms: Api<ChatbotMonitoring> = Api::namespaced(client.clone(), &ns);
    let resource: ChatbotMonitoring = serde_json::from_value(json!({
        "apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
        "metadata": {"name": NAME, "namespace": ns},
        // No labels: auto mode must find the only Prometheus and add the `release` label it selects on.
        "spec": {"monitoring": {"interval": "5s", "scrapeTimeout": "3s"}},
    }))
    .unwrap();
    cbms.create(&PostParams::default(), &resource).await.unwrap();

    // Children, then Ready.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let monitors: Api<ServiceMonitor> = Api::namespaced(client.clone(), &ns);
    let rules: Api<PrometheusRule> = Api::namespaced(client.clone(), &ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    eventually("children created", Duration::from_secs(120), || async {
        let found = (
            deployments.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some(),
            services.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some(),
            monitors.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some(),
            rules.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some(),
            configmaps
                .get_opt(&format!("{NAME}-dashboard-overview"))
                .await
                .map_err(|e| e.to_string())?
                .is_some(),
        );
        if found == (true, true, true, true, true) {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await;
    eventually("Ready", Duration::from_secs(300), || async {
        let cbm = cbms.get(NAME).await.map_err(|e| e.to_string())?;
        match condition(&cbm, "Ready") {
            Some((s, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let cm = configmaps.get(&format!("{NAME}-dashboard-overview")).await.unwrap();
    assert_eq!(cm.metadata.labels.unwrap()["grafana_dashboard"], "1");

    // Prometheus (selected through the release label) scrapes the target and loaded the rules.
    eventually("target up in Prometheus", Duration::from_secs(180), || async {
        let targets = prometheus("targets").await?;
        let up = targets["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["labels"]["namespace"] == ns.as_str() && t["labels"]["job"] == NAME && t["health"] == "up");
        if up {
            Ok(())
        } else {
            Err("no healthy target yet".into())
        }
    })
    .await;
    eventually("rules loaded in Prometheus", Duration::from_secs(180), || async {
        let loaded = prometheus("rules").await?;
        let ours = loaded["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["file"].as_str().is_some_and(|f| f.contains(&ns)))
            .count();
        if ours >= 4 {
            Ok(())
        } else {
            Err(format!("{ours} rule groups of {ns} loaded"))
        }
    })
    .await;

    let sm = monitors.get(NAME).await.unwrap();
    assert_eq!(
        sm.metadata.labels.unwrap_or_default().get("release"),
        Some(&release),
        "auto mode added the label kube-prometheus-stack selects on"
    );

    // The resource knows it: selected, scraped, rules loaded, every panel finds its metrics (the operator asks
    // Prometheus every verification period, 60 s by default).
    eventually("verification conditions", Duration::from_secs(240), || async {
        let cbm = cbms.get(NAME).await.map_err(|e| e.to_string())?;
        let conditions: Vec<_> = ["Selected", "Scraped", "RulesLoaded", "DashboardMetricsPresent"]
            .iter()
            .map(|c| (c, condition(&cbm, c)))
            .collect();
        let scraped = cbm.status.as_ref().and_then(|s| s.scraped.clone());
        if conditions
            .iter()
            .all(|(_, c)| c.as_ref().is_some_and(|(s, _)| s == "True"))
            && scraped.as_deref() == Some("1/1")
        {
            Ok(())
        } else {
            Err(format!("{conditions:?}, scraped {scraped:?}"))
        }
    })
    .await;
    let cbm = cbms.get(NAME).await.unwrap();
    let selected = cbm
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Selected")
        .unwrap();
    assert!(
        selected.message.contains(&format!("labels added: release={release}")),
        "{}",
        selected.message
    );

    // Alerts switched off: the PrometheusRule goes, the condition says so.
    cbms.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"alerts": {"enabled": false}}})),
    )
    .await
    .unwrap();
    eventually("PrometheusRule removed", Duration::from_secs(60), || async {
        let cbm = cbms.get(NAME).await.map_err(|e| e.to_string())?;
        let gone = rules.get_opt(NAME).await.map_err(|e| e.to_string())?.is_none();
        match (gone, condition(&cbm, "PrometheusRuleReady")) {
            (true, Some((_, reason))) if reason == "Disabled" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Deleted: the garbage collector removes the children through their owner references.
    cbms.delete(NAME, &DeleteParams::foreground()).await.unwrap();
    eventually("children deleted", Duration::from_secs(120), || async {
        let left = deployments.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some()
            || services.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some()
            || monitors.get_opt(NAME).await.map_err(|e| e.to_string())?.is_some();
        if left { Err("children remain".into()) } else { Ok(()) }
    })
    .await;
    namespaces.delete(&ns, &DeleteParams::default()).await.unwrap();
}

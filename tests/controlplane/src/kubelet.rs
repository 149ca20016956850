//! The kubelet's part, as far as readiness goes: no container runs, but every pod is bound to a Node and reported
//! Running and Ready, so that Deployment status, `DeploymentReady` and `Ready` flow as in a cluster.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;

pub const NODE: &str = "envtest-node";

/// Starts playing the kubelet for the pods of `namespace` (all when `None`); stops when the handle is aborted.
pub async fn start(admin: Client, namespace: Option<&str>) -> anyhow::Result<Kubelet> {
    let nodes = Api::<Node>::all(admin.clone());
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}});
    nodes
        .patch(NODE, &PatchParams::apply("envtest-kubelet"), &Patch::Apply(&node))
        .await?;
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "envtest kubelet", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(&status))
        .await?;

    let pods: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(admin.clone(), ns),
        None => Api::all(admin.clone()),
    };
    let task = tokio::spawn(async move {
        // A short constant pause: the default backoff grows to 30 s across an API server restart, and pods would
        // wait for it as if the kubelet were slow.
        let mut events = watcher(pods, watcher::Config::default())
            .backoff(Pause)
            .applied_objects()
            .boxed();
        while let Some(event) = events.next().await {
            let Ok(pod) = event else { continue };
            if let Err(e) = run_pod(&admin, &pod).await {
                tracing::debug!(pod = %pod.name_any(), error = %e, "envtest kubelet");
            }
        }
    });
    Ok(Kubelet(task))
}

/// Binds the pod to the node if it is not, then reports it running and ready if it is not.
async fn run_pod(admin: &Client, pod: &Pod) -> anyhow::Result<()> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let api = Api::<Pod>::namespaced(admin.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                             "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}});
        api.create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding)
            .await?;
        return Ok(());
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        return Ok(());
    }
    let now = Timestamp::now().to_string();
    let containers: Vec<_> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let condition = |type_: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now});
    let status = json!({"status": {
        "phase": "Running",
        "startTime": now,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"),
                       condition("Ready")],
        "containerStatuses": containers.iter().map(|c| json!({
            "name": c, "ready": true, "started": true, "restartCount": 0, "image": "envtest", "imageID": "envtest",
            "state": {"running": {"startedAt": now}}})).collect::<Vec<_>>(),
    }});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The running kubelet; stops when dropped.
pub struct Kubelet(JoinHandle<()>);

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Pause;

impl Iterator for Pause {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::from_millis(500))
    }
}

impl kube::runtime::utils::Backoff for Pause {
    fn reset(&mut self) {}
}

//! The operator chart applied server-side, as Helm 4, Flux and Argo CD apply it: what its templates leave to the API
//! server's defaults is owned by no field manager, and an upgrade that changes those fields is refused.

use controlplane_tests::cluster::shared;
use controlplane_tests::{chart, require_control_plane};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// The chart's Deployment for these values, applied by one field manager as `helm upgrade` does server-side.
async fn apply_deployment(api: &Api<DynamicObject>, values: Value) -> Result<DynamicObject, kube::Error> {
    let docs = chart::render("op", "chart-upgrade", &values).expect("the chart renders");
    let deployment = docs
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart renders a Deployment");
    let name = deployment["metadata"]["name"].as_str().unwrap().to_owned();
    api.patch(&name, &PatchParams::apply("helm"), &Patch::Apply(&deployment))
        .await
}

/// Found on a real node: one replica without leader election (`Recreate`) after two replicas (rolling) was refused
/// with `spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy type is 'Recreate'`, the upgrade
/// left half applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_chart_goes_from_two_replicas_back_to_one_under_server_side_apply() {
    let assets = require_control_plane!();
    let cp = shared(&assets).await;
    let admin = cp.admin().await;
    chart::ensure_namespace(&admin, "chart-upgrade").await.unwrap();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), "chart-upgrade", &resource);

    let strategy = |d: &DynamicObject| d.data["spec"]["strategy"].clone();
    let one = apply_deployment(&api, json!({}))
        .await
        .expect("installed with one replica");
    assert_eq!(strategy(&one), json!({"type": "Recreate"}));
    let two = apply_deployment(&api, json!({"replicaCount": 2}))
        .await
        .expect("scaled to two replicas");
    assert_eq!(
        strategy(&two),
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let back = apply_deployment(&api, json!({}))
        .await
        .expect("back to one replica: the rollingUpdate the chart wrote is removed with it");
    assert_eq!(strategy(&back), json!({"type": "Recreate"}));
    let managers: Vec<String> = back
        .metadata
        .managed_fields
        .iter()
        .flatten()
        // The controller manager writes the status subresource, not the spec.
        .filter(|m| m.subresource.is_none())
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["helm"], "one field manager owns the Deployment's spec");
}

//! One test's world on a shared control plane: its own namespace, the operator installed for that namespace with
//! the chart's RBAC and running as its ServiceAccount, a kubelet for its pods, and checks that compare what the
//! API server holds with what `render` says.

use std::sync::Arc;
use std::time::Duration;

use chatbot_operator::controller::Scope;
use chatbot_operator::crd::ChatbotMonitoring;
use chatbot_operator::last_applied;
use chatbot_operator::render::{self, Desired, MANAGER, RenderOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::{ControlPlane, shared};
use crate::kubelet::{self, Kubelet};
use crate::operator::{Operator, Settings, install_crd, our_crd, prometheus_operator_crd};
use crate::{chart, eventually};

/// kube-prometheus-stack's Prometheus as most clusters have it: selects `release: kps` in every namespace.
pub fn kps_prometheus() -> Value {
    let release = json!({"matchLabels": {"release": "kps"}});
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": "kps", "namespace": "monitoring"},
        "spec": {"serviceMonitorSelector": release, "serviceMonitorNamespaceSelector": {},
                 "ruleSelector": release, "ruleNamespaceSelector": {}},
    })
}

/// kube-prometheus-stack's Alertmanager: selects every AlertmanagerConfig of every namespace.
pub fn kps_alertmanager() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager",
        "metadata": {"name": "kps", "namespace": "monitoring"},
        "spec": {"alertmanagerConfigSelector": {}, "alertmanagerConfigNamespaceSelector": {}},
    })
}

/// Our CRD and the Prometheus Operator's, and kube-prometheus-stack's Prometheus and Alertmanager.
pub async fn install_everything(admin: &Client) {
    install_crd(admin, &our_crd()).await.expect("our CRD");
    for kind in [
        "servicemonitors",
        "prometheusrules",
        "prometheuses",
        "alertmanagerconfigs",
        "alertmanagers",
    ] {
        install_crd(admin, &prometheus_operator_crd(kind))
            .await
            .expect("the Prometheus Operator's CRDs");
    }
    chart::ensure_namespace(admin, "monitoring").await.unwrap();
    chart::apply(admin, &kps_prometheus()).await.expect("a Prometheus");
    chart::apply(admin, &kps_alertmanager()).await.expect("an Alertmanager");
}

pub struct Env {
    pub cp: Arc<ControlPlane>,
    pub admin: Client,
    pub ns: String,
    pub operator: Option<Operator>,
    _kubelet: Kubelet,
}

impl Env {
    /// A namespace `ns` on the shared control plane with every CRD installed, watched by an operator installed for it
    /// alone (the chart's one-namespace install) that verifies against `verify` when given.
    pub async fn namespaced(assets: &std::path::Path, ns: &str, verify: Option<(Duration, String)>) -> Env {
        let cp = shared(assets).await;
        install_everything(&cp.admin().await).await;
        Env::new(cp, ns, false, verify).await
    }

    /// The namespace `ns` on `cp`, and an operator installed with the chart's RBAC (cluster-wide, or for `ns` only)
    /// running in the test process as its ServiceAccount. The CRDs are the caller's business.
    pub async fn new(cp: Arc<ControlPlane>, ns: &str, cluster_wide: bool, verify: Option<(Duration, String)>) -> Env {
        let (mut env, installed) = Env::without_operator(cp, ns, cluster_wide).await;
        let client = env
            .cp
            .service_account(&installed.namespace, &installed.service_account)
            .await;
        let scope = match cluster_wide {
            true => Scope::All,
            false => Scope::Namespace(ns.to_owned()),
        };
        env.operator = Some(Operator::start(client, Settings { scope, verify }));
        env
    }

    /// The namespace, the chart's RBAC and a kubelet, but no operator: the test runs its own.
    pub async fn without_operator(cp: Arc<ControlPlane>, ns: &str, cluster_wide: bool) -> (Env, chart::Installed) {
        crate::init_logs();
        let admin = cp.admin().await;
        let watched = (!cluster_wide).then_some(ns);
        chart::ensure_namespace(&admin, ns).await.unwrap();
        let installed = chart::install_rbac(&admin, &format!("op-{ns}"), &format!("{ns}-operator"), watched)
            .await
            .expect("the chart's RBAC");
        let kubelet = kubelet::start(admin.clone(), Some(ns)).await.expect("the kubelet");
        let env = Env {
            cp,
            admin,
            ns: ns.to_owned(),
            operator: None,
            _kubelet: kubelet,
        };
        (env, installed)
    }

    pub fn api(&self) -> Api<ChatbotMonitoring> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    /// Applies a `ChatbotMonitoring` with this spec as a person would (`kubectl apply --server-side`).
    pub async fn apply(&self, name: &str, spec: Value) -> ChatbotMonitoring {
        let cbm = json!({"apiVersion": "monitoring.chatbot-sav.io/v1alpha1", "kind": "ChatbotMonitoring",
                         "metadata": {"name": name, "namespace": self.ns}, "spec": spec});
        self.api()
            .patch(name, &PatchParams::apply("kubectl").force(), &Patch::Apply(&cbm))
            .await
            .expect("the resource is accepted")
    }

    /// Waits until the resource's status is about its current generation and `check` holds on it.
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&ChatbotMonitoring) -> bool,
    ) -> ChatbotMonitoring {
        let api = self.api();
        let check = &check;
        eventually(what, timeout, || {
            let api = api.clone();
            async move {
                let cbm = api.get(name).await.map_err(|e| e.to_string())?;
                let current = cbm.status.as_ref().and_then(|s| s.observed_generation) == cbm.metadata.generation;
                if current && check(&cbm) {
                    Ok(cbm)
                } else {
                    Err(format!("{:?}", cbm.status))
                }
            }
        })
        .await
    }

    /// What the operator should have applied for the resource as it is now.
    pub async fn desired(&self, name: &str) -> Desired {
        let cbm = self.api().get(name).await.unwrap();
        let mut desired = render::render(&cbm, &RenderOptions::default()).unwrap();
        // Auto mode adds the label kube-prometheus-stack's Prometheus selects.
        for meta in desired
            .service_monitor
            .iter_mut()
            .map(|s| &mut s.metadata)
            .chain(desired.prometheus_rule.iter_mut().map(|p| &mut p.metadata))
        {
            if cbm.spec.monitoring.labels.is_empty() {
                meta.labels
                    .get_or_insert_default()
                    .insert("release".into(), "kps".into());
            }
        }
        // The one Prometheus of the control plane selects the resource whenever it has a monitoring child to select.
        let monitored = (desired.service_monitor.is_some() || desired.prometheus_rule.is_some())
            && cbm.spec.monitoring.prometheus.mode != chatbot_operator::crd::SelectionMode::None;
        let kps = chatbot_operator::selection::verdict::PrometheusRef {
            namespace: "monitoring".into(),
            name: "kps".into(),
        };
        let selecting = if monitored { vec![kps] } else { Vec::new() };
        desired.network_policy =
            render::network_policy_for(&cbm, &RenderOptions::default(), &render::scrapers(&cbm, &selecting)).unwrap();
        desired
    }

    /// Every child of the resource is exactly what applying `render`'s output gives: a dry-run server-side apply
    /// of it by our field manager changes nothing (so no field we own is stale, none is missing), and the children of
    /// parts switched off do not exist. `Err` names the first difference.
    pub async fn converged(&self, name: &str) -> Result<(), String> {
        let desired = self.desired(name).await;
        let children = children_of(&desired);
        for (kind, child) in &children {
            let live = get(&self.admin, &self.ns, kind, child["metadata"]["name"].as_str().unwrap()).await;
            let Some(live) = live else {
                return Err(format!("{kind} {} is missing", child["metadata"]["name"]));
            };
            let applied = dry_run_apply(&self.admin, &self.ns, kind, child).await?;
            let (live, applied) = (comparable(&live), comparable(&applied));
            if live != applied {
                return Err(format!(
                    "{kind} {} differs from render's output:\nlive:    {live}\napplied: {applied}",
                    child["metadata"]["name"]
                ));
            }
        }
        let absent: Vec<(&str, String)> = [
            ("ServiceMonitor", desired.service_monitor.is_none(), name.to_owned()),
            ("PrometheusRule", desired.prometheus_rule.is_none(), name.to_owned()),
            (
                "ConfigMap",
                desired.dashboards.is_empty(),
                format!("{name}-dashboard-overview"),
            ),
            ("NetworkPolicy", desired.network_policy.is_none(), name.to_owned()),
            (
                "AlertmanagerConfig",
                desired.alertmanager_config.is_none(),
                name.to_owned(),
            ),
        ]
        .into_iter()
        .filter(|(_, off, _)| *off)
        .map(|(k, _, n)| (k, n))
        .collect();
        for (kind, child) in absent {
            if get(&self.admin, &self.ns, kind, &child).await.is_some() {
                return Err(format!("{kind} {child} should have been removed"));
            }
        }
        Ok(())
    }

    /// The pods and Deployments of the namespace in one line each, for a failure message.
    pub async fn describe_pods(&self) -> String {
        use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
        use k8s_openapi::api::core::v1::Pod;
        let mut out = String::new();
        for p in Api::<Pod>::namespaced(self.admin.clone(), &self.ns)
            .list(&Default::default())
            .await
            .unwrap()
        {
            let s = p.status.unwrap_or_default();
            out += &format!(
                "pod {} node={:?} phase={:?} conditions={:?}\n",
                p.metadata.name.unwrap_or_default(),
                p.spec.and_then(|s| s.node_name),
                s.phase,
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .map(|c| (&c.type_, &c.status))
                    .collect::<Vec<_>>()
            );
        }
        for r in Api::<ReplicaSet>::namespaced(self.admin.clone(), &self.ns)
            .list(&Default::default())
            .await
            .unwrap()
        {
            out += &format!(
                "replicaset {} status={:?}\n",
                r.metadata.name.unwrap_or_default(),
                r.status
            );
        }
        for d in Api::<Deployment>::namespaced(self.admin.clone(), &self.ns)
            .list(&Default::default())
            .await
            .unwrap()
        {
            out += &format!(
                "deployment {} status={:?}\n",
                d.metadata.name.unwrap_or_default(),
                d.status
            );
        }
        out
    }
}

/// The condition `type_` of the resource's status.
pub fn condition(cbm: &ChatbotMonitoring, type_: &str) -> Option<Condition> {
    cbm.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// (status, reason) of a condition, for asserts.
pub fn state(cbm: &ChatbotMonitoring, type_: &str) -> (String, String) {
    condition(cbm, type_).map(|c| (c.status, c.reason)).unwrap_or_default()
}

/// Each child as the operator applies it: render's output with the hash of it in our annotation.
pub fn children_of(desired: &Desired) -> Vec<(&'static str, Value)> {
    fn with_hash<K: serde::Serialize>(child: &K) -> Value {
        let mut v = serde_json::to_value(child).unwrap();
        v["metadata"]["annotations"][last_applied::ANNOTATION] = json!(last_applied::hash(child));
        v
    }
    let mut out = vec![
        ("Deployment", with_hash(&desired.deployment)),
        ("Service", with_hash(&desired.service)),
    ];
    out.extend(desired.service_monitor.iter().map(|c| ("ServiceMonitor", with_hash(c))));
    out.extend(desired.prometheus_rule.iter().map(|c| ("PrometheusRule", with_hash(c))));
    out.extend(desired.network_policy.iter().map(|c| ("NetworkPolicy", with_hash(c))));
    out.extend(
        desired
            .alertmanager_config
            .iter()
            .map(|c| ("AlertmanagerConfig", with_hash(c))),
    );
    out.extend(desired.dashboards.iter().map(|c| ("ConfigMap", with_hash(c))));
    out
}

pub fn resource_of(kind: &str) -> ApiResource {
    let gvk = match kind {
        "Deployment" => GroupVersionKind::gvk("apps", "v1", kind),
        "Service" | "ConfigMap" => GroupVersionKind::gvk("", "v1", kind),
        "NetworkPolicy" => GroupVersionKind::gvk("networking.k8s.io", "v1", kind),
        "AlertmanagerConfig" => GroupVersionKind::gvk("monitoring.coreos.com", "v1alpha1", kind),
        _ => GroupVersionKind::gvk("monitoring.coreos.com", "v1", kind),
    };
    ApiResource::from_gvk(&gvk)
}

/// A child as the API server holds it, if it exists.
pub async fn get(admin: &Client, ns: &str, kind: &str, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns, &resource_of(kind));
    api.get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("GET {kind} {name}: {e}"))
        .map(|o| serde_json::to_value(o).unwrap())
}

async fn dry_run_apply(admin: &Client, ns: &str, kind: &str, child: &Value) -> Result<Value, String> {
    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns, &resource_of(kind));
    let mut params = PatchParams::apply(MANAGER).force();
    params.dry_run = true;
    api.patch(
        child["metadata"]["name"].as_str().unwrap(),
        &params,
        &Patch::Apply(child),
    )
    .await
    .map(|o| serde_json::to_value(o).unwrap())
    .map_err(|e| format!("dry-run apply of {kind}: {e}"))
}

/// An object without what changes on every write or is the server's bookkeeping.
fn comparable(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(meta) = o["metadata"].as_object_mut() {
        for field in ["managedFields", "resourceVersion", "generation"] {
            meta.remove(field);
        }
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    o
}

/// The children of the resource owned by it (controller owner reference to its uid).
pub fn owned_by(child: &Value, cbm: &ChatbotMonitoring) -> bool {
    child["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["controller"] == true && o["uid"].as_str() == cbm.uid().as_deref())
}

//! The operator's permissions exactly as its Helm chart grants them: the chart is rendered with Helm's own engine
//! (`tests/charts/render.py`) and its ServiceAccount, Roles, ClusterRoles and bindings are applied to the cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// The kinds of the chart that make up the operator's identity and rights.
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Who the operator is once installed: its ServiceAccount.
#[derive(Debug, Clone)]
pub struct Installed {
    pub namespace: String,
    pub service_account: String,
}

/// Renders the operator chart as `helm install <release> -n <namespace>` would, with these values.
pub fn render(release: &str, namespace: &str, values: &Value) -> anyhow::Result<Vec<Value>> {
    render_chart(
        &root().join("charts/chatbot-monitoring-operator"),
        release,
        namespace,
        values,
    )
}

/// The same for the operator chart in `chart` (another checkout's, say).
pub fn render_chart(chart: &Path, release: &str, namespace: &str, values: &Value) -> anyhow::Result<Vec<Value>> {
    // .venv's, where scripts/install-deps.sh puts Helm's engine, unless PYTHON names another.
    let venv = root().join(".venv/bin/python");
    let python = std::env::var("PYTHON").ok().unwrap_or_else(|| {
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let out = Command::new(&python)
        .arg(root().join("tests/charts/render.py"))
        .arg(chart)
        .args(["--release", release, "--namespace", namespace, "--values"])
        .arg(values.to_string())
        .output()
        .with_context(|| format!("running {python} tests/charts/render.py"))?;
    if !out.status.success() {
        bail!("rendering the chart failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Applies the chart's RBAC for a release in `namespace` watching `watch_namespace` (all namespaces when `None`),
/// creating the namespaces it needs. Each release name gets its own ClusterRoles, so tests do not share rights.
pub async fn install_rbac(
    admin: &Client,
    release: &str,
    namespace: &str,
    watch_namespace: Option<&str>,
) -> anyhow::Result<Installed> {
    ensure_namespace(admin, namespace).await?;
    if let Some(ns) = watch_namespace {
        ensure_namespace(admin, ns).await?;
    }
    let values = json!({
        "watchNamespace": watch_namespace.unwrap_or(""),
        "leaderElection": {"enabled": true},
    });
    let mut service_account = None;
    for doc in render(release, namespace, &values)? {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if !RBAC_KINDS.contains(&kind) {
            continue;
        }
        if kind == "ServiceAccount" {
            service_account = doc["metadata"]["name"].as_str().map(str::to_owned);
        }
        apply(admin, &doc).await?;
    }
    Ok(Installed {
        namespace: namespace.to_owned(),
        service_account: service_account.context("the chart renders no ServiceAccount")?,
    })
}

/// Creates the namespace if it does not exist.
pub async fn ensure_namespace(admin: &Client, name: &str) -> anyhow::Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    Api::<Namespace>::all(admin.clone())
        .patch(name, &PatchParams::apply("envtest"), &Patch::Apply(&ns))
        .await?;
    Ok(())
}

/// Server-side applies any object given as JSON, as the administrator.
pub async fn apply(admin: &Client, object: &Value) -> anyhow::Result<DynamicObject> {
    let (group, version) = match object["apiVersion"].as_str().unwrap_or_default().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap_or_default().to_owned(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap_or_default());
    let resource = ApiResource::from_gvk(&gvk);
    let obj: DynamicObject = serde_json::from_value(object.clone())?;
    let api: Api<DynamicObject> = match obj.namespace() {
        Some(ns) => Api::namespaced_with(admin.clone(), &ns, &resource),
        None => Api::all_with(admin.clone(), &resource),
    };
    api.patch(
        &obj.name_any(),
        &PatchParams::apply("envtest").force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {} {}", gvk.kind, obj.name_any()))
}

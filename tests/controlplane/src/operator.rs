//! The operator under test, run in the test process as `chatbot-operator run` runs it (`controller::run` with
//! settling on), as a client of the real API server, and the CRDs it needs installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chatbot_operator::controller::{self, Scope};
use chatbot_operator::metrics::Metrics;
use chatbot_operator::reconcile::Context;
use chatbot_operator::render::{MANAGER, RenderOptions};
use chatbot_operator::settled::Settled;
use chatbot_operator::verify::periodic::Verifier;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::eventually;

/// The Prometheus Operator's CRDs (v0.93): from the directory in `PROMETHEUS_OPERATOR_CRDS`, else the project's
/// shared copy beside the repository (`../shared/crds/prometheus-operator/`).
pub fn prometheus_operator_crd(kind_plural: &str) -> PathBuf {
    let dir = std::env::var_os("PROMETHEUS_OPERATOR_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crds/prometheus-operator"));
    dir.join(format!("monitoring.coreos.com_{kind_plural}.yaml"))
}

/// Our CRD, as `crds/` holds it (generated from the Rust types).
pub fn our_crd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds/monitoring.chatbot-sav.io_chatbotmonitorings.yaml")
}

/// Applies a CRD file and waits until the API server says it is Established.
pub async fn install_crd(admin: &Client, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let crd: Value = serde_yaml::from_str(&text)?;
    let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let api = Api::<CustomResourceDefinition>::all(admin.clone());
    api.patch(&name, &PatchParams::apply("envtest").force(), &Patch::Apply(&crd))
        .await?;
    eventually(&format!("CRD {name} Established"), Duration::from_secs(30), || {
        let api = api.clone();
        let name = name.clone();
        async move {
            let crd = api.get(&name).await.map_err(|e| e.to_string())?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(()).ok_or_else(|| "not Established".to_owned())
        }
    })
    .await;
    Ok(())
}

/// What the operator runs with.
pub struct Settings {
    pub scope: Scope,
    /// Verification against Prometheus' HTTP API: (period, URL for every resource).
    pub verify: Option<(Duration, String)>,
}

/// A running operator; stopped (reconciles in flight finish) by [`Operator::stop`], aborted when dropped.
pub struct Operator {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    pub ctx: Arc<Context>,
}

impl Operator {
    /// Starts the controller as `chatbot-operator run` does, with `client` as its identity.
    pub fn start(client: Client, settings: Settings) -> Operator {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: Some("envtest".into()),
        };
        let mut ctx = Context::new(
            client.clone(),
            Recorder::new(client, reporter),
            RenderOptions::default(),
            Arc::new(Metrics::new()),
        );
        if let Some((period, url)) = settings.verify {
            ctx = ctx.with_verifier(Verifier::new(period, Duration::from_secs(2), Some(url)));
        }
        let ctx = Arc::new(ctx.with_settled(Settled::default()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(controller::run(ctx.clone(), settings.scope, async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Operator {
            stop,
            task: Some(task),
            ctx,
        }
    }

    /// Asks the controller to stop and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

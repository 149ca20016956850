//! Wires the reconciler to the API server: watches `ChatbotMonitoring` and the children it owns (a child changed or
//! deleted by hand wakes its owner), and runs until told to stop.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::crd::ChatbotMonitoring;
use crate::prometheus_operator::{PrometheusRule, ServiceMonitor};
use crate::reconcile::{Context, error_policy, prometheus_operator_installed, reconcile};
use crate::render::MANAGER;

/// Which namespaces the operator watches.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match self {
            Scope::All => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

/// Runs the controller until `shutdown` completes; reconciles in flight then finish.
pub async fn run(ctx: Arc<Context>, scope: Scope, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    // Only our children: the watches stay small in a busy cluster.
    let ours = || watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let mut controller = Controller::new(
        scope.api::<ChatbotMonitoring>(&client),
        watcher::Config::default().any_semantic(),
    )
    .owns(scope.api::<Deployment>(&client), ours())
    .owns(scope.api::<Service>(&client), ours())
    .owns(scope.api::<ConfigMap>(&client), ours());
    // Watching a kind the API server does not serve fails without end: own these only when they exist. Installed
    // later, they are still applied (the reconcile looks every minute while they are missing); hand edits to them
    // are then undone at the next resync rather than at once, until the operator restarts.
    match prometheus_operator_installed(&client).await {
        Ok(true) => {
            controller = controller
                .owns(scope.api::<ServiceMonitor>(&client), ours())
                .owns(scope.api::<PrometheusRule>(&client), ours());
        }
        Ok(false) => tracing::warn!(
            "the Prometheus Operator CRDs are not installed: ServiceMonitor and PrometheusRule are applied once they are"
        ),
        Err(e) => tracing::warn!(error = %e, "could not tell whether the Prometheus Operator CRDs are installed"),
    }
    controller
        .with_config(ControllerConfig::default().concurrency(8))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        })
        .await;
}

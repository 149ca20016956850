//! Wires the reconciler to the API server: watches `ChatbotMonitoring` and the children it owns (a child changed or
//! deleted by hand wakes its owner), the `Prometheus` and `Alertmanager` objects and the namespaces' labels (which
//! decide whether a resource is selected), and runs until told to stop. What they see is cached for the reconciler
//! (see `cache`), and every event also unsettles what it may change (see `settled`), which is what lets an
//! unchanged resource be reconciled without even rendering it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::backoff::{TriggerPause, WatchBackoff};
use crate::cache::{Cache, Cached};
use crate::crd::ChatbotMonitoring;
use crate::discovery;
use crate::prometheus_operator::{Alertmanager, AlertmanagerConfig, Prometheus, PrometheusRule, ServiceMonitor};
use crate::reconcile::{Context, error_policy, reconcile};
use crate::render::{INSTANCE_LABEL, MANAGER};
use crate::status::pods::diagnose;

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

/// The objects of kind `K` the operator manages (by its `managed-by` label: the watches stay small in a busy
/// cluster), kept in their cache, as each is touched.
fn ours_cached<K: Cached>(
    api: Api<K>,
    kind: &'static str,
    ctx: &Arc<Context>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K> {
    let ours = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    // Cached before the owner is woken, so that its reconcile reads this very event.
    let cache = K::slot(&ctx.caches).renew();
    watcher(api, ours)
        .backoff(WatchBackoff::default())
        .inspect(tracked(kind, ctx))
        .modify(K::slim)
        .inspect(feed(cache))
        .touched_objects()
}

/// The events of our children of kind `K`, cached, each unsettling the resource that owns the child.
fn children<K>(
    api: Api<K>,
    kind: &'static str,
    ctx: &Arc<Context>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>
where
    K: Cached,
{
    let ctx = ctx.clone();
    ours_cached(api, kind, &ctx).inspect(move |event| {
        let (Ok(child), Some(settled)) = (event, &ctx.settled) else {
            return;
        };
        let owner = child.owner_references().iter().find(|o| {
            o.controller == Some(true)
                && o.kind == ChatbotMonitoring::kind(&())
                && o.api_version == ChatbotMonitoring::api_version(&())
        });
        if let Some(owner) = owner {
            settled.invalidate(&(child.namespace().unwrap_or_default(), owner.name.clone()));
        }
    })
}

/// The chatbots' pods, cached: one that gets stuck (or no longer is) wakes its resource (named by the pod's
/// instance label: a ReplicaSet owns the pod), whose Deployment says nothing of it. Only a change of what
/// `diagnose` makes of a pod passes, not every status update.
fn pods(api: Api<Pod>, ctx: &Arc<Context>) -> impl Stream<Item = Result<Pod, watcher::Error>> + Send + use<> {
    let ctx = ctx.clone();
    ours_cached(api, "Pod", &ctx)
        .predicate_filter(pod_problem, Default::default())
        .inspect(move |event| {
            if let (Ok(pod), Some(settled)) = (event, &ctx.settled)
                && let Some(instance) = pod.labels().get(INSTANCE_LABEL)
            {
                settled.invalidate(&(pod.namespace().unwrap_or_default(), instance.clone()));
            }
        })
}

/// A digest of what is wrong with `pod`, if anything.
fn pod_problem(pod: &Pod) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}", diagnose(std::slice::from_ref(pod))).hash(&mut hasher);
    Some(hasher.finish())
}

/// The Prometheus objects whose spec changed (a new generation), and those deleted: a generation filter alone drops
/// deletions (a deleted object keeps its generation), and a deleted Prometheus no longer selects anything.
type Changed<K> = std::future::Ready<Option<Result<K, watcher::Error>>>;

fn spec_changes<K: Resource + Send + 'static>() -> impl FnMut(Result<watcher::Event<K>, watcher::Error>) -> Changed<K> {
    let mut generations: HashMap<(Option<String>, String), Option<i64>> = HashMap::new();
    move |event| {
        let changed = match event {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                let key = (o.meta().namespace.clone(), o.meta().name.clone().unwrap_or_default());
                let generation = o.meta().generation;
                (generations.insert(key, generation) != Some(generation)).then_some(Ok(o))
            }
            Ok(watcher::Event::Delete(o)) => {
                generations.remove(&(o.meta().namespace.clone(), o.meta().name.clone().unwrap_or_default()));
                Some(Ok(o))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
        };
        std::future::ready(changed)
    }
}

/// Keeps `cache` up to date with a watch's events.
fn feed<K: Cached>(cache: Arc<Cache<K>>) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |event| {
        if let Ok(event) = event {
            cache.apply(event);
        }
    }
}

/// Records each event or error of the watch `name` for `/readyz`.
fn tracked<T>(name: &'static str, ctx: &Arc<Context>) -> impl FnMut(&Result<T, watcher::Error>) + use<T> {
    let ctx = ctx.clone();
    move |event| match event {
        Ok(_) => ctx.watches.ok(name),
        Err(e) => ctx.watches.failed(name, e),
    }
}

/// Runs the controller until `shutdown` completes; reconciles in flight then finish.
pub async fn run(ctx: Arc<Context>, scope: Scope, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (resources, writer) = reflector::store();
    let watched = watcher(
        scope.api::<ChatbotMonitoring>(&client),
        watcher::Config::default().any_semantic(),
    )
    .backoff(WatchBackoff::default())
    .inspect(tracked("ChatbotMonitoring", &ctx))
    .modify(trim)
    .reflect(writer)
    .inspect({
        // A deleted resource is never reconciled again: drop its settled entry here.
        let ctx = ctx.clone();
        move |event| {
            if let (Ok(watcher::Event::Delete(cbm)), Some(settled)) = (event, &ctx.settled) {
                settled.forget(&(cbm.namespace().unwrap_or_default(), cbm.name_any()));
            }
        }
    })
    .applied_objects();
    let mut controller = Controller::for_stream(watched, resources.clone())
        .owns_stream(children(scope.api::<Deployment>(&client), "Deployment", &ctx))
        .owns_stream(children(scope.api::<Service>(&client), "Service", &ctx))
        .owns_stream(children(scope.api::<ConfigMap>(&client), "ConfigMap", &ctx))
        .owns_stream(children(scope.api::<NetworkPolicy>(&client), "NetworkPolicy", &ctx))
        .watches_stream(pods(scope.api::<Pod>(&client), &ctx), |pod| {
            let namespace = pod.namespace()?;
            let instance = pod.labels().get(INSTANCE_LABEL)?;
            Some(ObjectRef::<ChatbotMonitoring>::new(instance).within(&namespace))
        });

    // A namespace whose labels change may now be selected, or no longer: its resources are looked at again.
    let unsettle = ctx.clone();
    let in_namespace = resources.clone();
    let namespaces = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        namespace_watch(&scope),
    )
    .backoff(WatchBackoff::default())
    .inspect(tracked("Namespace", &ctx))
    .modify(PartialObjectMeta::<Namespace>::slim)
    .inspect(feed(ctx.caches.namespaces.renew()))
    .touched_objects()
    .predicate_filter(predicates::labels, Default::default())
    .inspect(move |_| {
        if let Some(settled) = &unsettle.settled {
            settled.invalidate_all();
        }
    });
    controller = controller.watches_stream(namespaces, move |ns| {
        let name = ns.name_any();
        in_namespace
            .state()
            .into_iter()
            .filter(|r| r.namespace().as_deref() == Some(name.as_str()))
            .map(|r| ObjectRef::from_obj(&*r))
            .collect::<Vec<_>>()
    });

    // The Prometheus Operator's kinds come and go independently of us: each is watched only while it is served
    // (watching a kind the API server does not serve fails without end), and any change of what is served
    // re-evaluates every resource.
    let refresh = {
        let ctx = ctx.clone();
        let client = client.clone();
        tokio::spawn(async move { ctx.kinds.refresh(client, discovery::REFRESH).await })
    };
    let unsettle = ctx.clone();
    let kinds_changed = ctx.kinds.changes().map(move |_| {
        if let Some(settled) = &unsettle.settled {
            settled.invalidate_all();
        }
    });
    let unsettle = ctx.clone();
    let watch_prometheuses = move || {
        let unsettle = unsettle.clone();
        // Only a change of a Prometheus' spec (its selectors) matters, not its status.
        watcher(Api::<Prometheus>::all(client.clone()), watcher::Config::default())
            .backoff(WatchBackoff::default())
            .inspect(tracked("Prometheus", &unsettle))
            .modify(Prometheus::slim)
            .inspect(feed(unsettle.caches.prometheuses.renew()))
            .filter_map(spec_changes())
            .inspect(move |_| {
                if let Some(settled) = &unsettle.settled {
                    settled.invalidate_all();
                }
            })
    };
    let prometheuses = ctx.kinds.while_served(|k| k.prometheus, watch_prometheuses);
    // Likewise the Alertmanagers, whose selectors decide who loads an AlertmanagerConfig.
    let unsettle = ctx.clone();
    let am_client = ctx.client.clone();
    let watch_alertmanagers = move || {
        let unsettle = unsettle.clone();
        watcher(Api::<Alertmanager>::all(am_client.clone()), watcher::Config::default())
            .backoff(WatchBackoff::default())
            .inspect(tracked("Alertmanager", &unsettle))
            .modify(Alertmanager::slim)
            .inspect(feed(unsettle.caches.alertmanagers.renew()))
            .filter_map(spec_changes())
            .inspect(move |_| {
                if let Some(settled) = &unsettle.settled {
                    settled.invalidate_all();
                }
            })
    };
    let alertmanagers = ctx.kinds.while_served(|k| k.alertmanager, watch_alertmanagers);
    let all = resources.clone();
    let every = resources.clone();
    let (sm_ctx, sm_scope, sm_client) = (ctx.clone(), scope.clone(), ctx.client.clone());
    let (pr_ctx, pr_scope, pr_client) = (ctx.clone(), scope.clone(), ctx.client.clone());
    let (amc_ctx, amc_scope, amc_client) = (ctx.clone(), scope.clone(), ctx.client.clone());
    controller = controller
        .owns_stream(ctx.kinds.while_served(
            |k| k.service_monitor,
            move || children(sm_scope.api::<ServiceMonitor>(&sm_client), "ServiceMonitor", &sm_ctx),
        ))
        .owns_stream(ctx.kinds.while_served(
            |k| k.prometheus_rule,
            move || children(pr_scope.api::<PrometheusRule>(&pr_client), "PrometheusRule", &pr_ctx),
        ))
        .owns_stream(ctx.kinds.while_served(
            |k| k.alertmanager_config,
            move || {
                let api = amc_scope.api::<AlertmanagerConfig>(&amc_client);
                children(api, "AlertmanagerConfig", &amc_ctx)
            },
        ))
        .watches_stream(prometheuses, move |_| {
            all.state()
                .iter()
                .map(|r| ObjectRef::from_obj(&**r))
                .collect::<Vec<_>>()
        })
        .watches_stream(alertmanagers, move |_| {
            every
                .state()
                .iter()
                .map(|r| ObjectRef::from_obj(&**r))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(kinds_changed);
    controller
        .with_config(ControllerConfig::default().concurrency(8))
        .trigger_backoff(TriggerPause)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                // Logged with its resource and retry by error_policy.
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(controller::Error::QueueError(e)) => tracing::warn!(error = %e, "a watch failed; it is retried"),
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
        })
        .await;
    refresh.abort();
}

/// Drops what the reconciler never reads before a resource is cached, which is most of a resource's memory in
/// the store: `managedFields`, and the copy of the whole spec `kubectl apply` keeps in an annotation.
pub fn trim(cbm: &mut ChatbotMonitoring) {
    cbm.managed_fields_mut().clear();
    if let Some(annotations) = cbm.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The namespaces whose labels matter: the one watched, or all.
fn namespace_watch(scope: &Scope) -> watcher::Config {
    match scope {
        Scope::All => watcher::Config::default(),
        Scope::Namespace(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
    }
}

//! Makes the cluster match `render`: server-side apply of each child that differs from what is live, removal of the
//! children of parts switched off, then the status (patched only when it changed) and events on transitions.
//! `error_policy` turns a failure into exponential backoff per resource.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cache::{Cached, Caches};
use crate::crd::SelectionMode;
use crate::crd::{ChatbotMonitoring, ChatbotMonitoringStatus, Children, DatabaseType, ModelBackend};
use crate::discovery::{KindsCache, PrometheusOperatorKinds};
use crate::last_applied;
use crate::prometheus_operator::{PrometheusRule, ServiceMonitor};
use crate::render::{self, Desired, MANAGER, RenderError, RenderOptions, alert_names};
use crate::settled::{Settled, Snapshot};
use crate::status::{self, Observed, Part, reason};
use crate::telemetry::Metrics;
use crate::verify::periodic::{Verifier, in_cluster_url};
use crate::verify::{binding, ports, workload_bindings};
use crate::watch_health::WatchHealth;

/// Requeue period of a healthy resource: children's changes wake it earlier through the watches.
pub const RESYNC: Duration = Duration::from_secs(300);
/// While the Prometheus Operator is missing, look again this often so its installation is picked up.
pub const PROMETHEUS_OPERATOR_RECHECK: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What reconcile and error_policy share.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub options: RenderOptions,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per resource (namespace, name), for the backoff.
    failures: Mutex<HashMap<(String, String), u32>>,
    /// Checks against Prometheus' HTTP API (scraped, rules loaded, panels' metrics); off when `None`.
    pub verifier: Option<Verifier>,
    /// Resources whose children need not be read again; on when the controller's watches keep it true.
    pub settled: Option<Settled>,
    /// Which Prometheus Operator kinds are served: asked at each reconcile unless the controller keeps it fresh.
    pub kinds: KindsCache,
    /// Whether the controller's watches are established, for `/readyz`.
    pub watches: Arc<WatchHealth>,
    /// What the controller's watches have seen: read instead of the API server once filled.
    pub caches: Arc<Caches>,
}

impl Context {
    pub fn new(client: Client, recorder: Recorder, options: RenderOptions, metrics: Arc<Metrics>) -> Self {
        Context {
            client,
            recorder,
            options,
            metrics,
            failures: Mutex::default(),
            verifier: None,
            settled: None,
            kinds: KindsCache::default(),
            watches: Arc::default(),
            caches: Arc::default(),
        }
    }

    /// Skips reading the children of settled resources: only for a caller whose watches invalidate them.
    pub fn with_settled(mut self, settled: Settled) -> Self {
        self.settled = Some(settled);
        self
    }

    /// Reports the watches' health into `watches` (the one `/readyz` reads).
    pub fn with_watch_health(mut self, watches: Arc<WatchHealth>) -> Self {
        self.watches = watches;
        self
    }

    /// Turns on the periodic checks against Prometheus' HTTP API.
    pub fn with_verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }
}

/// Why a reconcile failed. Each has a condition reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("Secret {name:?} referenced by {field} does not exist in the namespace")]
    SecretMissing { name: String, field: &'static str },
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Render(_) => reason::INVALID_SPEC,
            Error::SecretMissing { .. } => reason::SECRET_MISSING,
            Error::Kube(_) => reason::API_ERROR,
        }
    }
}

/// The controller's reconcile function.
pub async fn reconcile(cbm: Arc<ChatbotMonitoring>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = apply(&cbm, &ctx).await;
    ctx.metrics.record(&result, start.elapsed());
    let key = (cbm.namespace().unwrap_or_default(), cbm.name_any());
    match result {
        Ok(action) => {
            ctx.failures.lock().unwrap().remove(&key);
            Ok(action)
        }
        Err(e) => {
            report_failure(&cbm, &ctx, &e).await;
            Err(e)
        }
    }
}

/// Exponential backoff per resource: 5 s, 10 s, 20 s … up to 5 min; never a hot loop.
pub fn error_policy(cbm: Arc<ChatbotMonitoring>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = (cbm.namespace().unwrap_or_default(), cbm.name_any());
    let mut failures = ctx.failures.lock().unwrap();
    let n = failures.entry(key).or_insert(0);
    let delay = backoff(*n);
    *n = n.saturating_add(1);
    tracing::warn!(resource = %cbm.name_any(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay before retry number `attempt` (0-based).
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_BASE.saturating_mul(1 << attempt.min(10)).min(BACKOFF_MAX)
}

/// Reads every child, applies those that differ from `render`, and says what it found: the reconcile's part that
/// talks to the API server, skipped for a settled resource.
async fn observe(cbm: &ChatbotMonitoring, ctx: &Context) -> Result<(Observed, Snapshot, Desired), Error> {
    let mut desired = render::render(cbm, &ctx.options)?;
    let ns = desired.deployment.metadata.namespace.clone().unwrap_or_default();
    let client = &ctx.client;
    check_secrets(cbm, client, &ns).await?;

    let mut observed = Observed {
        generation: cbm.metadata.generation,
        ..Observed::default()
    };
    let mut children = Children::default();

    let deployment = ensure(ctx, &desired.deployment).await?;
    children.deployment = deployment.metadata.name.clone();
    let want = desired.deployment.spec.replicas.unwrap_or(1);
    let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    observed.desired_replicas = Some(want);
    observed.ready_replicas = Some(ready);
    observed.parts.push((
        status::DEPLOYMENT_READY,
        if ready >= want {
            Part::Ready {
                reason: reason::AVAILABLE,
                message: format!("{ready}/{want} pods ready"),
            }
        } else {
            Part::Progressing {
                message: format!("{ready}/{want} pods ready"),
            }
        },
    ));

    let service = ensure(ctx, &desired.service).await?;
    children.service = service.metadata.name.clone();
    observed.parts.push((
        status::SERVICE_READY,
        Part::Ready {
            reason: reason::APPLIED,
            message: format!("port {} serves the API and /metrics", render::PORT_NAME),
        },
    ));

    let kinds = ctx.kinds.get(client).await?;
    let operator_installed = kinds.writable();
    let missing = || Part::Failed {
        reason: reason::PROMETHEUS_OPERATOR_MISSING,
        message: "the monitoring.coreos.com/v1 API is not served: install the Prometheus Operator \
                  (kube-prometheus-stack); this part is applied as soon as it is"
            .into(),
    };
    // Which Prometheus selects the ServiceMonitor and PrometheusRule; in auto mode its required labels are added to
    // them before they are applied.
    let selection = if !needs_operator(&desired) || cbm.spec.monitoring.prometheus.mode == SelectionMode::None {
        None
    } else if !operator_installed {
        Some(Err(missing()))
    } else {
        Some(Ok(select(cbm, ctx, &ns, kinds, &mut desired).await?))
    };
    let chosen = match &selection {
        Some(Ok((_, binding::Verdict::Selected { prometheus }))) => Some(prometheus.clone()),
        _ => None,
    };
    // The Prometheus Operator's word on each child we apply is compared with this verdict.
    let verdict = match &selection {
        Some(Ok((_, verdict))) => Some(verdict),
        _ => None,
    };
    let mut opinions = Vec::new();

    let part = match (&desired.service_monitor, operator_installed) {
        (Some(_), false) => missing(),
        (Some(sm), true) => {
            let live = ensure(ctx, sm).await?;
            let generation = live.metadata.generation;
            opinions.extend(
                verdict.map(|v| workload_bindings::compare("ServiceMonitor", v, live.status.as_ref(), generation)),
            );
            children.service_monitor = sm.metadata.name.clone();
            Part::Ready {
                reason: reason::APPLIED,
                message: format!("scraped every {}", cbm.spec.monitoring.interval),
            }
        }
        (None, installed) => {
            if installed {
                remove_owned::<ServiceMonitor>(ctx, &cbm.name_any(), cbm).await?;
            }
            Part::Disabled
        }
    };
    observed.parts.push((status::SERVICE_MONITOR_READY, part));

    let part = match (&desired.prometheus_rule, operator_installed) {
        (Some(_), false) => missing(),
        (Some(pr), true) => {
            let live = ensure(ctx, pr).await?;
            let generation = live.metadata.generation;
            opinions.extend(
                verdict.map(|v| workload_bindings::compare("PrometheusRule", v, live.status.as_ref(), generation)),
            );
            children.prometheus_rule = pr.metadata.name.clone();
            let n = alert_names(pr).len() as i32;
            observed.alert_rules = Some(n);
            Part::Ready {
                reason: reason::APPLIED,
                message: format!("{n} alerting rules"),
            }
        }
        (None, installed) => {
            if installed {
                remove_owned::<PrometheusRule>(ctx, &cbm.name_any(), cbm).await?;
            }
            Part::Disabled
        }
    };
    observed.parts.push((status::PROMETHEUS_RULE_READY, part));
    let port_problems = match &desired.service_monitor {
        Some(sm) => ports::port_problems(sm, &service, &deployment),
        None => Vec::new(),
    };
    let selected = match selection {
        None => Part::Disabled,
        Some(Err(missing)) => missing,
        Some(Ok((added, verdict))) => binding::selected_part(verdict, &added, &port_problems, &opinions),
    };
    observed.parts.push((status::SELECTED, selected));

    let part = if desired.dashboards.is_empty() {
        for (id, _) in render::DASHBOARDS {
            remove_owned::<ConfigMap>(ctx, &format!("{}-dashboard-{id}", cbm.name_any()), cbm).await?;
        }
        Part::Disabled
    } else {
        for cm in &desired.dashboards {
            ensure(ctx, cm).await?;
            children.dashboards.extend(cm.metadata.name.clone());
        }
        observed.dashboards = Some(desired.dashboards.len() as i32);
        Part::Ready {
            reason: reason::APPLIED,
            message: format!(
                "{} dashboard ConfigMap(s) for the Grafana sidecar",
                desired.dashboards.len()
            ),
        }
    };
    observed.parts.push((status::DASHBOARDS_READY, part));
    observed.children = children;
    let snapshot = Snapshot {
        uid: cbm.metadata.uid.clone().unwrap_or_default(),
        generation: cbm.metadata.generation,
        chosen,
        prometheus_operator: operator_installed,
        needs_prometheus_operator: needs_operator(&desired),
        // Known once the status is published.
        fingerprint: 0,
    };
    Ok((observed, snapshot, desired))
}

async fn apply(cbm: &ChatbotMonitoring, ctx: &Context) -> Result<Action, Error> {
    let key = (cbm.namespace().unwrap_or_default(), cbm.name_any());
    // Deleting: the API server's garbage collector removes the children through their owner references.
    if cbm.metadata.deletion_timestamp.is_some() {
        if let Some(settled) = &ctx.settled {
            settled.forget(&key);
        }
        return Ok(Action::await_change());
    }
    let uid = cbm.metadata.uid.clone().unwrap_or_default();
    // Settled, and its status is still the one the settling pass published: the children need not be read.
    let cached = ctx
        .settled
        .as_ref()
        .and_then(|s| s.lookup(&key, &uid, cbm.metadata.generation))
        .filter(|snapshot| {
            cbm.status
                .as_ref()
                .is_some_and(|s| status::children_fingerprint(s) == snapshot.fingerprint)
        });
    let (snapshot, mut full_pass) = match cached {
        Some(snapshot) => (snapshot, None),
        None => {
            let ticket = ctx.settled.as_ref().map(|s| s.ticket(&key));
            let (observed, snapshot, desired) = observe(cbm, ctx).await?;
            (Arc::new(snapshot), Some((observed, desired, ticket)))
        }
    };
    let (operator_installed, monitoring) = (snapshot.prometheus_operator, snapshot.needs_prometheus_operator);
    let chosen = snapshot.chosen.as_deref();
    let mut verification = Vec::new();
    let mut scraped = None;
    let mut firing_alerts = Vec::new();

    // Is it really monitored: asked of the chosen Prometheus (or the URL the spec or the operator gives), at most
    // once per verification period per Prometheus for targets and rules. An unreachable Prometheus is a condition.
    let verifying = match &ctx.verifier {
        Some(verifier) if operator_installed && monitoring => {
            let url = cbm
                .spec
                .monitoring
                .prometheus
                .url
                .clone()
                .or_else(|| verifier.url_override.clone())
                .or_else(|| {
                    let c = chosen?;
                    // Several Prometheus servers select us: which to ask is not ours to guess.
                    (!c.contains(',')).then(|| in_cluster_url(c.split('/').next().unwrap_or_default()))
                });
            if let Some(url) = url {
                // A settled resource was not rendered: the checks need its children as they should be.
                let report = match &full_pass {
                    Some((_, desired, _)) => verifier.check(desired, &url).await,
                    None => verifier.check(&render::render(cbm, &ctx.options)?, &url).await,
                };
                for check in &report.checks {
                    let part = if check.ok {
                        Part::Ready {
                            reason: check.reason,
                            message: check.message.clone(),
                        }
                    } else {
                        Part::Failed {
                            reason: check.reason,
                            message: check.message.clone(),
                        }
                    };
                    verification.push((check.name, part));
                    if check.name == status::SCRAPED && check.reason != "PrometheusUnavailable" {
                        scraped = check.message.split_whitespace().next().map(str::to_owned);
                    }
                }
                firing_alerts = report.firing_alerts;
                true
            } else {
                false
            }
        }
        _ => false,
    };

    let new = match (&mut full_pass, &cbm.status) {
        (Some((observed, _, _)), previous) => {
            observed.parts.extend(verification);
            observed.scraped = scraped;
            observed.firing_alerts = firing_alerts;
            status::status_from(observed, previous.as_ref(), Timestamp::now())
        }
        (None, Some(previous)) => {
            status::settled_status(previous, &verification, scraped, firing_alerts, Timestamp::now())
        }
        (None, None) => unreachable!("a settled resource has a status"),
    };
    let fingerprint = status::children_fingerprint(&new);
    publish_status(cbm, ctx, new).await?;
    // Settled once its status is published; while the Prometheus Operator is missing, every pass looks for it.
    if let (Some(settled), Some((_, _, Some(ticket)))) = (&ctx.settled, full_pass)
        && (operator_installed || !monitoring)
    {
        let snapshot = Snapshot {
            fingerprint,
            ..(*snapshot).clone()
        };
        settled.settle(ticket, Arc::new(snapshot));
    }
    Ok(Action::requeue(match &ctx.verifier {
        Some(v) if verifying => v.period().min(RESYNC),
        _ if operator_installed || !monitoring => RESYNC,
        _ => PROMETHEUS_OPERATOR_RECHECK,
    }))
}

/// Which Prometheus is expected to select the ServiceMonitor and PrometheusRule, and does it; in auto mode, the
/// labels it requires are added to them in `desired` (returned too, for the condition's message).
async fn select(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    ns: &str,
    kinds: PrometheusOperatorKinds,
    desired: &mut Desired,
) -> Result<(BTreeMap<String, String>, binding::Verdict), Error> {
    // Something else reads ServiceMonitors here (or only the CRDs were installed): no Prometheus to evaluate.
    if !kinds.prometheus {
        return Ok((
            BTreeMap::new(),
            binding::prometheus_kind_missing(&cbm.spec.monitoring.prometheus),
        ));
    }
    let prometheuses = ctx.caches.prometheuses(&ctx.client).await?;
    let namespace_labels = ctx.caches.namespace_labels(&ctx.client, ns).await?;
    let labels_of = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    let sm_labels = desired.service_monitor.as_ref().map(|s| labels_of(&s.metadata.labels));
    let pr_labels = desired.prometheus_rule.as_ref().map(|p| labels_of(&p.metadata.labels));
    let ours = binding::Ours {
        namespace: ns,
        namespace_labels: &namespace_labels,
        service_monitor_labels: sm_labels.as_ref(),
        rule_labels: pr_labels.as_ref(),
        user_labels_set: !cbm.spec.monitoring.labels.is_empty(),
    };
    let (add, verdict) = binding::evaluate(&cbm.spec.monitoring.prometheus, &prometheuses, &ours);
    for meta in desired
        .service_monitor
        .iter_mut()
        .map(|s| &mut s.metadata)
        .chain(desired.prometheus_rule.iter_mut().map(|p| &mut p.metadata))
    {
        meta.labels.get_or_insert_with(BTreeMap::new).extend(add.clone());
    }
    Ok((add, verdict))
}

fn needs_operator(desired: &Desired) -> bool {
    desired.service_monitor.is_some() || desired.prometheus_rule.is_some()
}

/// Every Secret the spec references must exist; only its metadata is read, never its data.
async fn check_secrets(cbm: &ChatbotMonitoring, client: &Client, ns: &str) -> Result<(), Error> {
    let c = &cbm.spec.chatbot;
    let mut refs = Vec::new();
    if let (ModelBackend::Openai, Some(o)) = (c.model.backend, &c.model.openai) {
        refs.push(("spec.chatbot.model.openai.apiKeySecretRef", &o.api_key_secret_ref.name));
    }
    if let (DatabaseType::Postgres, Some(pg)) = (c.database.type_, &c.database.postgres) {
        refs.push(("spec.chatbot.database.postgres.urlSecretRef", &pg.url_secret_ref.name));
    }
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    for (field, name) in refs {
        if api.get_metadata_opt(name).await?.is_none() {
            return Err(Error::SecretMissing {
                name: name.clone(),
                field,
            });
        }
    }
    Ok(())
}

/// Applies `desired` unless it is what we applied last time and the live object (as cached) still holds every field
/// we set: an unchanged resource writes nothing, a hand edit is undone, and a field we stopped setting is removed.
/// Returns the live object, slim (see [`Cached::slim`]).
async fn ensure<K>(ctx: &Context, desired: &K) -> Result<K, kube::Error>
where
    K: Cached<Scope = k8s_openapi::NamespaceResourceScope> + Serialize,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let ns = desired.meta().namespace.clone().unwrap_or_default();
    let applied = last_applied::hash(desired);
    let mut desired = desired.clone();
    desired
        .meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(last_applied::ANNOTATION.into(), applied.clone());
    if let Some(live) = ctx.caches.get::<K>(&ctx.client, &ns, &name).await? {
        let same_as_last = live
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(last_applied::ANNOTATION))
            == Some(&applied);
        let mut want = desired.clone();
        want.slim();
        let want = serde_json::to_value(&want).expect("children serialize");
        let have = serde_json::to_value(&live).expect("children serialize");
        if same_as_last && is_subset(&want, &have) {
            return Ok(live);
        }
    }
    let api = Api::<K>::namespaced(ctx.client.clone(), &ns);
    let mut live = api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&desired))
        .await?;
    live.slim();
    Ok(live)
}

/// Deletes a child of a part that was switched off, if it exists and is ours (never someone else's object).
async fn remove_owned<K>(ctx: &Context, name: &str, owner: &ChatbotMonitoring) -> Result<(), kube::Error>
where
    K: Cached<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let ns = owner.namespace().unwrap_or_default();
    let Some(live) = ctx.caches.get::<K>(&ctx.client, &ns, name).await? else {
        return Ok(());
    };
    let ours = live
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == owner.metadata.uid.as_ref());
    if ours {
        match Api::<K>::namespaced(ctx.client.clone(), &ns)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// True when every field of `want` is in `have` with the same value. Lists compare element by element; the live
/// object may have more (defaults filled in by the API server, or entries another field manager owns).
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => w.len() <= h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Patches the status when it changed, and tells a person about each transition of `Ready`, `Selected` and the
/// verification conditions with an event.
async fn publish_status(cbm: &ChatbotMonitoring, ctx: &Context, new: ChatbotMonitoringStatus) -> Result<(), Error> {
    if cbm.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let transitions: Vec<_> = new
        .conditions
        .iter()
        .filter(|c| status::ANNOUNCED.contains(&c.type_.as_str()))
        .filter(|c| {
            let was = cbm
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|p| p.type_ == c.type_));
            was.is_none_or(|p| p.status != c.status || p.reason != c.reason)
        })
        .cloned()
        .collect();
    // `Ready` turning False because of another announced condition would tell the same news twice.
    let told_elsewhere = |c: &Condition| {
        c.type_ == status::READY
            && transitions
                .iter()
                .any(|o| o.type_ != status::READY && o.reason == c.reason && o.status == c.status)
    };
    let transitions: Vec<Condition> = transitions.iter().filter(|c| !told_elsewhere(c)).cloned().collect();
    apply_status(ctx, cbm, &new).await?;
    for c in transitions {
        // A disabled part is not news on the first reconcile, and pods starting is news, not trouble.
        if c.reason == reason::DISABLED {
            continue;
        }
        let event = Event {
            type_: if c.status == "True" || c.reason == reason::PROGRESSING {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: c.reason.clone(),
            note: Some(format!("{}: {}", c.type_, c.message)),
            action: "Reconcile".into(),
            secondary: None,
        };
        publish(ctx, cbm, &event).await;
    }
    Ok(())
}

/// On failure: a `Ready=False` condition with the error's reason, and a Warning event when that is news; both best
/// effort, since the API server may be what failed.
async fn report_failure(cbm: &ChatbotMonitoring, ctx: &Context, error: &Error) {
    let previous = cbm.status.as_ref();
    let message = error.to_string();
    let new = status::with_failure(
        previous,
        cbm.metadata.generation,
        error.reason(),
        &message,
        Timestamp::now(),
    );
    if previous == Some(&new) {
        return;
    }
    if let Err(e) = apply_status(ctx, cbm, &new).await {
        tracing::warn!(error = %e, "could not record the failure in the status");
    }
    let event = Event {
        type_: EventType::Warning,
        reason: error.reason().into(),
        note: Some(message),
        action: "Reconcile".into(),
        secondary: None,
    };
    publish(ctx, cbm, &event).await;
}

/// Server-side applies the status subresource with our field manager.
async fn apply_status(
    ctx: &Context,
    cbm: &ChatbotMonitoring,
    status: &ChatbotMonitoringStatus,
) -> Result<(), kube::Error> {
    let api = Api::<ChatbotMonitoring>::namespaced(ctx.client.clone(), &cbm.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": ChatbotMonitoring::api_version(&()),
        "kind": ChatbotMonitoring::kind(&()),
        "status": status,
    });
    api.patch_status(
        &cbm.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

async fn publish(ctx: &Context, cbm: &ChatbotMonitoring, event: &Event) {
    if let Err(e) = ctx.recorder.publish(event, &cbm.object_ref(&())).await {
        tracing::warn!(error = %e, reason = %event.reason, "could not publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_fields_the_server_adds() {
        let want = json!({"spec": {"replicas": 1, "ports": [{"port": 8000}]}});
        let have = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600, "ports": [{"port": 8000, "protocol": "TCP"}]}});
        assert!(is_subset(&want, &have));
        assert!(!is_subset(&json!({"spec": {"replicas": 2}}), &have));
        assert!(!is_subset(
            &json!({"spec": {"ports": [{"port": 8000}, {"port": 9}]}}),
            &have
        ));
        assert!(is_subset(&json!({"x": 1.0}), &json!({"x": 1})));
    }

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }
}

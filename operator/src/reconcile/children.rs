//! Step 1 of a reconcile: the children. Applies each child that differs from `render`'s (server-side apply, reading
//! what the watches cached), removes the children of parts switched off, decides which Prometheus selects the
//! monitoring children, and says what it found. Skipped for a settled resource.

use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, ResourceExt};
use serde_json::Value;

use super::{Context, Error, MissingSecret, SecretsMissing, parts};
use crate::cache::Cached;
use crate::crd::{ChatbotMonitoring, Children, DatabaseType, ModelBackend, SecretKeyRef, SelectionMode};
use crate::discovery::PrometheusOperatorKinds;
use crate::last_applied;
use crate::prometheus_operator::{AlertmanagerConfig, ConfigResourceStatus};
use crate::render::{self, Desired, MANAGER, alert_names};
use crate::selection::{alertmanager, operator_opinion, ports, verdict};
use crate::settled::Snapshot;
use crate::status::{self, Observed, Part};

/// Applies every child that differs from what it should be and says what it found: the reconcile's part that talks
/// to the API server about the children.
pub async fn observe(cbm: &ChatbotMonitoring, ctx: &Context) -> Result<(Observed, Snapshot, Desired), Error> {
    let mut desired = render::render(cbm, &ctx.options)?;
    let ns = desired.deployment.metadata.namespace.clone().unwrap_or_default();
    if ctx.secret_check {
        check_secrets(cbm, ctx, &ns).await?;
    }

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
    let problem = (ready < want)
        .then(|| {
            let pods = ctx.caches.pods_of(&ns, &cbm.name_any());
            status::pods::why_not_ready(&deployment, pods.as_deref())
        })
        .flatten();
    observed
        .parts
        .push((status::DEPLOYMENT_READY, parts::deployment(ready, want, problem)));

    let service = ensure(ctx, &desired.service).await?;
    children.service = service.metadata.name.clone();
    observed.parts.push((status::SERVICE_READY, parts::service()));

    let kinds = ctx.kinds.get(&ctx.client).await?;
    let installed = kinds.writable();
    let monitoring = needs_prometheus_operator(&desired);
    // Which Prometheus selects the ServiceMonitor and PrometheusRule; in auto mode its required labels are added to
    // them before they are applied.
    let selection = if !monitoring || cbm.spec.monitoring.prometheus.mode == SelectionMode::None {
        None
    } else if !installed {
        Some(None)
    } else {
        Some(Some(select(cbm, ctx, &ns, kinds, &mut desired).await?))
    };
    let verdict = match &selection {
        Some(Some((_, verdict))) => Some(verdict),
        _ => None,
    };
    // The Prometheus Operator's word on each child we apply, to compare with the verdict.
    let mut opinions = Vec::new();
    let name = cbm.name_any();

    let sm = desired.service_monitor.as_ref();
    let part = match monitoring_child(ctx, cbm, sm, installed, verdict, &mut opinions).await? {
        _ if sm.is_none() => Part::Disabled,
        None => parts::prometheus_operator_missing(),
        Some(_) => {
            children.service_monitor = sm.and_then(|s| s.metadata.name.clone());
            parts::service_monitor(&cbm.spec.monitoring.interval)
        }
    };
    observed.parts.push((status::SERVICE_MONITOR_READY, part));

    let pr = desired.prometheus_rule.as_ref();
    let part = match monitoring_child(ctx, cbm, pr, installed, verdict, &mut opinions).await? {
        _ if pr.is_none() => Part::Disabled,
        None => parts::prometheus_operator_missing(),
        Some(_) => {
            children.prometheus_rule = pr.and_then(|p| p.metadata.name.clone());
            let n = pr.map(alert_names).unwrap_or_default().len();
            observed.alert_rules = Some(n as i32);
            parts::prometheus_rule(n)
        }
    };
    observed.parts.push((status::PROMETHEUS_RULE_READY, part));

    let port_problems = match &desired.service_monitor {
        Some(sm) => ports::port_problems(sm, &service, &deployment),
        None => Vec::new(),
    };
    let chosen = match verdict {
        Some(verdict::Verdict::Selected { prometheuses }) => prometheuses.clone(),
        _ => Vec::new(),
    };
    let selected = match selection {
        None => Part::Disabled,
        Some(None) => parts::prometheus_operator_missing(),
        Some(Some((added, verdict))) => parts::selected(verdict, &added, &port_problems, &opinions),
    };
    observed.parts.push((status::SELECTED, selected));

    // The metrics port admits the Prometheus servers just found to select the resource.
    let scrapers = render::scrapers(cbm, &chosen);
    desired.network_policy = render::network_policy_for(cbm, &ctx.options, &scrapers)?;
    let part = match &desired.network_policy {
        None => {
            remove_owned::<NetworkPolicy>(ctx, &name, cbm).await?;
            Part::Disabled
        }
        Some(_) if taken_by_another::<NetworkPolicy>(ctx, &ns, &name, cbm).await? => {
            parts::name_taken("NetworkPolicy", &ns, &name, "networkPolicy.enabled")
        }
        Some(np) => {
            ensure(ctx, np).await?;
            children.network_policy = np.metadata.name.clone();
            let (api, metrics) = render::network_policy::admitted(&cbm.spec, &ctx.options);
            let monitored = desired.service_monitor.is_some();
            parts::network_policy(&scrapers, metrics, api, monitored)
        }
    };
    observed.parts.push((status::NETWORK_POLICY_READY, part));

    let (part, routed, alertmanagers) = notifications(cbm, ctx, &ns, kinds, &mut desired, &mut children).await?;
    // A resource that never asked for notifications carries no condition about them (its status is cached for
    // every resource: two `Disabled` conditions each would cost the cache a third more memory).
    let routed = cbm.spec.notifications.is_some().then(|| {
        observed.parts.push((status::ALERTMANAGER_CONFIG_READY, part));
        routed
    });

    let part = if desired.dashboards.is_empty() {
        for (id, _) in render::DASHBOARDS {
            remove_owned::<ConfigMap>(ctx, &format!("{name}-dashboard-{id}"), cbm).await?;
        }
        Part::Disabled
    } else {
        for cm in &desired.dashboards {
            ensure(ctx, cm).await?;
            children.dashboards.extend(cm.metadata.name.clone());
        }
        observed.dashboards = Some(desired.dashboards.len() as i32);
        parts::dashboards(desired.dashboards.len())
    };
    observed.parts.push((status::DASHBOARDS_READY, part));
    observed.children = children;
    let snapshot = Snapshot {
        uid: cbm.metadata.uid.clone().unwrap_or_default(),
        generation: cbm.metadata.generation,
        chosen,
        prometheus_operator: installed,
        needs_prometheus_operator: monitoring,
        routed,
        alertmanagers,
        // Known once the status is published.
        fingerprint: 0,
    };
    Ok((observed, snapshot, desired))
}

/// A child of the Prometheus Operator's kinds (ServiceMonitor, PrometheusRule): applied when wanted and served, with
/// the Prometheus Operator's opinion of it compared with `verdict`; removed when its part is switched off. The live
/// object when applied.
async fn monitoring_child<K>(
    ctx: &Context,
    cbm: &ChatbotMonitoring,
    desired: Option<&K>,
    installed: bool,
    verdict: Option<&verdict::Verdict>,
    opinions: &mut Vec<operator_opinion::Opinion>,
) -> Result<Option<K>, Error>
where
    K: Cached<Scope = NamespaceResourceScope> + HasStatus<Status = ConfigResourceStatus>,
{
    match (desired, installed) {
        (_, false) => Ok(None),
        (Some(child), true) => {
            let live = ensure(ctx, child).await?;
            let kind = K::kind(&());
            opinions
                .extend(verdict.map(|v| operator_opinion::compare(&kind, v, live.status(), live.meta().generation)));
            Ok(Some(live))
        }
        (None, true) => {
            remove_owned::<K>(ctx, &cbm.name_any(), cbm).await?;
            Ok(None)
        }
    }
}

/// Which Prometheus is expected to select the ServiceMonitor and PrometheusRule, and does it; in auto mode, the
/// labels it requires are added to them in `desired` (returned too, for the condition's message).
async fn select(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    ns: &str,
    kinds: PrometheusOperatorKinds,
    desired: &mut Desired,
) -> Result<(BTreeMap<String, String>, verdict::Verdict), Error> {
    // Something else reads ServiceMonitors here (or only the CRDs were installed): no Prometheus to evaluate.
    if !kinds.prometheus {
        return Ok((
            BTreeMap::new(),
            verdict::prometheus_kind_missing(&cbm.spec.monitoring.prometheus),
        ));
    }
    let prometheuses = ctx.caches.prometheuses(&ctx.client).await?;
    let namespace_labels = ctx.caches.namespace_labels(&ctx.client, ns).await?;
    let labels_of = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    let sm_labels = desired.service_monitor.as_ref().map(|s| labels_of(&s.metadata.labels));
    let pr_labels = desired.prometheus_rule.as_ref().map(|p| labels_of(&p.metadata.labels));
    let ours = verdict::Ours {
        namespace: ns,
        namespace_labels: &namespace_labels,
        service_monitor_labels: sm_labels.as_ref(),
        rule_labels: pr_labels.as_ref(),
        user_labels_set: !cbm.spec.monitoring.labels.is_empty(),
    };
    let (add, verdict) = verdict::evaluate(&cbm.spec.monitoring.prometheus, &prometheuses, &ours);
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

/// The AlertmanagerConfig, with the labels the Alertmanager that should load it requires, or removed when
/// notifications are off. Returns its part, `Routed` as selection alone tells it, and the Alertmanagers selecting it.
async fn notifications(
    cbm: &ChatbotMonitoring,
    ctx: &Context,
    ns: &str,
    kinds: PrometheusOperatorKinds,
    desired: &mut Desired,
    children: &mut Children,
) -> Result<(Part, Part, Vec<verdict::PrometheusRef>), Error> {
    let (Some(amc), Some(n)) = (desired.alertmanager_config.as_mut(), &cbm.spec.notifications) else {
        if kinds.alertmanager_config {
            remove_owned::<AlertmanagerConfig>(ctx, &cbm.name_any(), cbm).await?;
        }
        return Ok((Part::Disabled, Part::Disabled, Vec::new()));
    };
    if !kinds.alertmanager_config {
        let missing = parts::alertmanager_config_kind_missing();
        return Ok((missing.clone(), missing, Vec::new()));
    }
    // Someone else's AlertmanagerConfig of that name: applying over it would replace its routes, and our owner
    // reference would have it deleted with the resource.
    let name = cbm.name_any();
    if taken_by_another::<AlertmanagerConfig>(ctx, ns, &name, cbm).await? {
        let taken = parts::name_taken("AlertmanagerConfig", ns, &name, "notifications.enabled");
        return Ok((taken.clone(), taken, Vec::new()));
    }
    let mut added = BTreeMap::new();
    let routing = if n.alertmanager.mode == SelectionMode::None {
        alertmanager::Routing::NotChecked
    } else if !kinds.alertmanager {
        alertmanager::alertmanager_kind_missing(&n.alertmanager)
    } else {
        let candidates = ctx.caches.alertmanagers(&ctx.client).await?;
        let namespace_labels = ctx.caches.namespace_labels(&ctx.client, ns).await?;
        let labels = amc.metadata.labels.clone().unwrap_or_default();
        let ours = alertmanager::Ours {
            namespace: ns,
            namespace_labels: &namespace_labels,
            labels: &labels,
            user_labels_set: !n.labels.is_empty(),
        };
        let (add, routing) = alertmanager::evaluate(&n.alertmanager, &candidates, &ours);
        amc.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(add.clone());
        added = add;
        routing
    };
    ensure(ctx, amc).await?;
    children.alertmanager_config = amc.metadata.name.clone();
    let (routed, alertmanagers) = parts::routing(routing, &added);
    Ok((parts::alertmanager_config(n), routed, alertmanagers))
}

/// Whether any child needs the Prometheus Operator's kinds.
pub fn needs_prometheus_operator(desired: &Desired) -> bool {
    desired.service_monitor.is_some() || desired.prometheus_rule.is_some()
}

/// With `--check-secrets`: every Secret the spec references must exist with the key it names; the Secret is read
/// whole (the API has no narrower read), and only its key names are kept.
async fn check_secrets(cbm: &ChatbotMonitoring, ctx: &Context, ns: &str) -> Result<(), Error> {
    let c = &cbm.spec.chatbot;
    let mut refs = Vec::new();
    if let (ModelBackend::Openai, Some(o)) = (c.model.backend, &c.model.openai) {
        refs.push(("spec.chatbot.model.openai.apiKeySecretRef", &o.api_key_secret_ref));
        // A price table in a ConfigMap is not checked: reading ConfigMaps is a permission of its own.
        if let Some(prices) = o.prices.as_ref().and_then(|p| p.secret_key_ref.as_ref()) {
            refs.push(("spec.chatbot.model.openai.prices.secretKeyRef", prices));
        }
    }
    if let (DatabaseType::Postgres, Some(pg)) = (c.database.type_, &c.database.postgres) {
        refs.push(("spec.chatbot.database.postgres.urlSecretRef", &pg.url_secret_ref));
    }
    if let Some(tokens) = &c.agent_tokens_secret_ref {
        refs.push(("spec.chatbot.agentTokensSecretRef", tokens));
    }
    let mut refs: Vec<(String, &SecretKeyRef)> = refs.into_iter().map(|(f, r)| (f.to_owned(), r)).collect();
    // Only when an AlertmanagerConfig is rendered: without alerts there is nothing to route.
    if let Some(n) = cbm
        .spec
        .notifications
        .as_ref()
        .filter(|n| n.enabled && cbm.spec.alerts.enabled)
    {
        for (i, receiver) in n.receivers.iter().enumerate() {
            refs.extend(receiver.secret_refs(i));
        }
    }
    // Every broken reference at once, each Secret read once: a person fixes them all in one go.
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let mut keys: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    for (_, r) in &refs {
        if !keys.contains_key(r.name.as_str()) {
            // Only the key names are kept; the values are dropped at once.
            let found = api.get_opt(&r.name).await?.map(|s| {
                let data = s.data.into_iter().flat_map(BTreeMap::into_keys);
                data.chain(s.string_data.into_iter().flat_map(BTreeMap::into_keys))
                    .collect()
            });
            keys.insert(&r.name, found);
        }
    }
    let missing: Vec<MissingSecret> = refs
        .iter()
        .filter_map(|(field, r)| match &keys[r.name.as_str()] {
            None => Some(MissingSecret {
                field: field.clone(),
                name: r.name.clone(),
                key: None,
            }),
            Some(present) if !present.contains(&r.key) => Some(MissingSecret {
                field: field.clone(),
                name: r.name.clone(),
                key: Some(r.key.clone()),
            }),
            Some(_) => None,
        })
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(Error::SecretMissing(SecretsMissing(missing))),
    }
}

/// Applies `desired` unless it is what we applied last time and the live object (as cached) still holds every field
/// we set: an unchanged resource writes nothing, a hand edit is undone, and a field we stopped setting is removed.
/// Returns the live object, slim (see [`Cached::slim`]).
async fn ensure<K>(ctx: &Context, desired: &K) -> Result<K, kube::Error>
where
    K: Cached<Scope = NamespaceResourceScope>,
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
        // Only what we applied last time can still be in place: otherwise the apply is due, no comparison needed.
        if same_as_last {
            let mut want = desired.clone();
            want.slim();
            let want = serde_json::to_value(&want).expect("children serialize");
            let have = serde_json::to_value(&live).expect("children serialize");
            if is_subset(&want, &have) {
                return Ok(live);
            }
        }
    }
    let api = Api::<K>::namespaced(ctx.client.clone(), &ns);
    let mut live = api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&desired))
        .await?;
    live.slim();
    if let Some(owner) = desired.meta().owner_references.iter().flatten().next() {
        ctx.note_write((ns, owner.name.clone()));
    }
    Ok(live)
}

/// Whether an object with our child's name exists and is not ours. The watches see only our objects, so one absent
/// from them is asked of the API server (metadata only): a NetworkPolicy of the user's own must never be applied
/// over, adopted, and later deleted with the resource.
async fn taken_by_another<K>(
    ctx: &Context,
    ns: &str,
    name: &str,
    owner: &ChatbotMonitoring,
) -> Result<bool, kube::Error>
where
    K: Cached<Scope = NamespaceResourceScope>,
{
    if let Some(cache) = K::slot(&ctx.caches).ready()
        && cache.get(ns, name).is_some_and(|ours| owned_by(ours.meta(), owner))
    {
        return Ok(false);
    }
    let live = Api::<K>::namespaced(ctx.client.clone(), ns)
        .get_metadata_opt(name)
        .await?;
    Ok(live.is_some_and(|o| !owned_by(&o.metadata, owner)))
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, owner: &ChatbotMonitoring) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == owner.metadata.uid.as_ref())
}

/// Deletes a child of a part that was switched off, if it exists and is ours (never someone else's object).
async fn remove_owned<K>(ctx: &Context, name: &str, owner: &ChatbotMonitoring) -> Result<(), kube::Error>
where
    K: Cached<Scope = NamespaceResourceScope>,
{
    let ns = owner.namespace().unwrap_or_default();
    let Some(live) = ctx.caches.get::<K>(&ctx.client, &ns, name).await? else {
        return Ok(());
    };
    if owned_by(live.meta(), owner) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}

//! What the controller's watches have seen, for the reconciler to read instead of asking the API server: our
//! children, the `Prometheus` objects and the namespaces' labels. A reconcile then costs no read at all; only what
//! differs is written.
//!
//! A cache is read only once its watch has listed everything. Before that, and without a controller (tests that call
//! `reconcile` directly), the reconciler asks the API server. A cache may lag behind the server: a change it has not
//! seen yet arrives as a watch event, which wakes the owner again, the usual contract of a controller's cache.
//!
//! Objects are kept slim ([`Cached::slim`]) and as compact JSON, decoded when read: a typed Deployment takes about
//! 15 KiB of memory and its JSON about 4, which is the difference between a thousand resources fitting the
//! operator's memory target or not.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, PodStatus, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::last_applied;
use crate::prometheus_operator::{
    Alertmanager, AlertmanagerConfig, Prometheus, PrometheusRule, RuleGroup, ServiceMonitor,
};

/// (namespace, name); the namespace is empty for cluster-scoped kinds.
type Key = (String, String);

/// One watch's view of a kind: every object it listed or saw since, as JSON.
pub struct Cache<K> {
    objects: RwLock<HashMap<Key, Box<[u8]>>>,
    /// While the watch (re)lists: what it listed so far, swapped in whole when the list is complete.
    listing: Mutex<Option<HashMap<Key, Box<[u8]>>>>,
    ready: std::sync::atomic::AtomicBool,
    kind: PhantomData<fn() -> K>,
}

impl<K: Cached> Cache<K> {
    fn new() -> Self {
        Cache {
            objects: RwLock::default(),
            listing: Mutex::default(),
            ready: Default::default(),
            kind: PhantomData,
        }
    }

    /// Records one event of the watch that feeds this cache.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let key = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        let json = |o: &K| serde_json::to_vec(o).expect("objects serialize").into_boxed_slice();
        match event {
            watcher::Event::Init => *self.listing.lock().unwrap() = Some(HashMap::new()),
            watcher::Event::InitApply(o) => {
                if let Some(listing) = self.listing.lock().unwrap().as_mut() {
                    listing.insert(key(o), json(o));
                }
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.listing.lock().unwrap().take() {
                    *self.objects.write().unwrap() = listed;
                }
                self.ready.store(true, std::sync::atomic::Ordering::Release);
            }
            watcher::Event::Apply(o) => {
                self.objects.write().unwrap().insert(key(o), json(o));
            }
            watcher::Event::Delete(o) => {
                self.objects.write().unwrap().remove(&key(o));
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The object `name` in `namespace` (empty for a cluster-scoped kind).
    pub fn get(&self, namespace: &str, name: &str) -> Option<K> {
        let objects = self.objects.read().unwrap();
        let json = objects.get(&(namespace.to_owned(), name.to_owned()))?;
        Some(decode(json))
    }

    /// Every object.
    pub fn all(&self) -> Vec<K> {
        self.objects.read().unwrap().values().map(|json| decode(json)).collect()
    }

    pub fn len(&self) -> usize {
        self.objects.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn decode<K: DeserializeOwned>(json: &[u8]) -> K {
    serde_json::from_slice(json).expect("what was serialized decodes")
}

/// The cache of one kind. It is replaced each time its watch starts again: the Prometheus Operator's kinds are
/// watched only while they are served, and each new watch lists from scratch.
pub struct Slot<K>(RwLock<Option<Arc<Cache<K>>>>);

impl<K> Default for Slot<K> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<K: Cached> Slot<K> {
    /// A new cache for a watch about to start; the watch feeds it with [`Cache::apply`].
    pub fn renew(&self) -> Arc<Cache<K>> {
        let cache = Arc::new(Cache::new());
        *self.0.write().unwrap() = Some(cache.clone());
        cache
    }

    /// The cache, once its watch has listed every object.
    pub fn ready(&self) -> Option<Arc<Cache<K>>> {
        self.0.read().unwrap().clone().filter(|c| c.is_ready())
    }
}

/// Every cache the reconciler reads.
#[derive(Default)]
pub struct Caches {
    pub deployments: Slot<Deployment>,
    pub services: Slot<Service>,
    pub config_maps: Slot<ConfigMap>,
    pub network_policies: Slot<NetworkPolicy>,
    pub service_monitors: Slot<ServiceMonitor>,
    pub prometheus_rules: Slot<PrometheusRule>,
    pub alertmanager_configs: Slot<AlertmanagerConfig>,
    pub prometheuses: Slot<Prometheus>,
    pub alertmanagers: Slot<Alertmanager>,
    pub namespaces: Slot<PartialObjectMeta<Namespace>>,
    /// The chatbots' pods, for why they do not start.
    pub pods: Slot<Pod>,
}

/// A kind the reconciler reads through a cache.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    fn slot(caches: &Caches) -> &Slot<Self>;

    /// Drops what the reconciler never reads before an object is cached: `managedFields` (often half of it). Applied
    /// alike to what is compared with a cached object.
    fn slim(&mut self) {
        self.meta_mut().managed_fields = None;
    }
}

impl Cached for Deployment {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.deployments
    }
}

impl Cached for Service {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.services
    }
}

impl Cached for ConfigMap {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.config_maps
    }

    /// A dashboard is about 60 KiB of JSON: what is kept of it is its hash, enough to see that it changed.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        for value in self.data.iter_mut().flat_map(|d| d.values_mut()) {
            *value = format!("hash:{}", last_applied::hash(value));
        }
    }
}

impl Cached for NetworkPolicy {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.network_policies
    }
}

impl Cached for ServiceMonitor {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.service_monitors
    }
}

impl Cached for PrometheusRule {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.prometheus_rules
    }

    /// The rules are the bulk of the object and all ours (the CRD defaults none of their fields): what is kept of
    /// them is one group named after their hash, so that any change to them is a change of that name.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        let digest = format!("hash:{}", last_applied::hash(&self.spec.groups));
        self.spec.groups = vec![RuleGroup {
            name: digest,
            rules: Vec::new(),
        }];
    }
}

impl Cached for AlertmanagerConfig {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.alertmanager_configs
    }
}

impl Cached for Prometheus {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.prometheuses
    }
}

impl Cached for Alertmanager {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.alertmanagers
    }
}

impl Cached for Pod {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.pods
    }

    /// Only what says why a pod does not start: its containers' states and its conditions.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        self.metadata.annotations = None;
        self.spec = None;
        self.status = self.status.take().map(|s| PodStatus {
            conditions: s.conditions,
            container_statuses: s.container_statuses,
            init_container_statuses: s.init_container_statuses,
            phase: s.phase,
            ..PodStatus::default()
        });
    }
}

impl Cached for PartialObjectMeta<Namespace> {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.namespaces
    }
}

impl Caches {
    /// The object `name` of kind `K` in `namespace`, from the cache once it is ready, else from the API server; slim
    /// either way, so that what is compared with it does not depend on where it came from.
    pub async fn get<K>(&self, client: &Client, namespace: &str, name: &str) -> Result<Option<K>, kube::Error>
    where
        K: Cached<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        if let Some(cache) = K::slot(self).ready() {
            return Ok(cache.get(namespace, name));
        }
        let mut live = Api::<K>::namespaced(client.clone(), namespace).get_opt(name).await?;
        if let Some(live) = &mut live {
            live.slim();
        }
        Ok(live)
    }

    /// Every `Prometheus` of the cluster.
    pub async fn prometheuses(&self, client: &Client) -> Result<Vec<Prometheus>, kube::Error> {
        self.all(client).await
    }

    /// Every `Alertmanager` of the cluster.
    pub async fn alertmanagers(&self, client: &Client) -> Result<Vec<Alertmanager>, kube::Error> {
        self.all(client).await
    }

    async fn all<K: Cached<Scope = k8s_openapi::NamespaceResourceScope>>(
        &self,
        client: &Client,
    ) -> Result<Vec<K>, kube::Error> {
        match K::slot(self).ready() {
            Some(cache) => Ok(cache.all()),
            None => Ok(Api::<K>::all(client.clone()).list(&Default::default()).await?.items),
        }
    }

    /// The pods of the chatbot `instance` in `namespace`, from the pods' watch; `None` without it (no controller,
    /// or not listed yet): their diagnosis is worth no read of the API server.
    pub fn pods_of(&self, namespace: &str, instance: &str) -> Option<Vec<Pod>> {
        let cache = self.pods.ready()?;
        let objects = cache.objects.read().unwrap();
        let of_instance = objects
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, json)| decode::<Pod>(json))
            .filter(|pod| pod.labels().get(crate::render::INSTANCE_LABEL).map(String::as_str) == Some(instance));
        Some(of_instance.collect())
    }

    /// The labels of namespace `name` (none if it does not exist).
    pub async fn namespace_labels(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, kube::Error> {
        let namespace = match self.namespaces.ready() {
            Some(cache) => cache.get("", name),
            None => Api::<Namespace>::all(client.clone()).get_metadata_opt(name).await?,
        };
        Ok(namespace.and_then(|n| n.metadata.labels).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus_operator::{PrometheusRuleSpec, Rule};

    #[test]
    fn a_cached_dashboard_keeps_a_hash_of_its_json() {
        let mut a = ConfigMap {
            data: Some([("d.json".to_owned(), "{\"panels\": []}".to_owned())].into()),
            ..Default::default()
        };
        let mut b = a.clone();
        b.data
            .as_mut()
            .unwrap()
            .insert("d.json".into(), "{\"panels\": [1]}".into());
        let original = a.clone();
        a.slim();
        b.slim();
        assert!(a.data.as_ref().unwrap()["d.json"].starts_with("hash:"));
        assert_ne!(a.data, b.data, "a change of the JSON is a change of the hash");
        let mut again = original;
        again.slim();
        assert_eq!(a, again);
    }

    #[test]
    fn a_cached_rule_keeps_a_hash_of_its_groups() {
        let rule = |expr: &str| {
            let mut r = PrometheusRule::new(
                "bot",
                PrometheusRuleSpec {
                    groups: vec![RuleGroup {
                        name: "chatbot".into(),
                        rules: vec![Rule {
                            alert: Some("ChatbotDown".into()),
                            expr: expr.into(),
                            ..Rule::default()
                        }],
                    }],
                },
            );
            r.slim();
            r
        };
        assert_eq!(rule("up == 0"), rule("up == 0"));
        assert_ne!(rule("up == 0"), rule("up < 1"), "an edited rule is a changed rule");
        assert_eq!(rule("up == 0").spec.groups.len(), 1);
    }

    fn service(name: &str) -> watcher::Event<Service> {
        let mut s = Service::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("shop".into());
        watcher::Event::Apply(s)
    }

    #[test]
    fn a_cache_is_read_only_once_its_watch_has_listed_and_a_relist_replaces_it_whole() {
        let slot = Slot::<Service>::default();
        assert!(slot.ready().is_none(), "no watch yet");
        let cache = slot.renew();
        cache.apply(&watcher::Event::Init);
        let watcher::Event::Apply(a) = service("a") else {
            unreachable!()
        };
        cache.apply(&watcher::Event::InitApply(a.clone()));
        assert!(slot.ready().is_none(), "listing");
        cache.apply(&watcher::Event::InitDone);
        let ready = slot.ready().expect("listed");
        assert_eq!(ready.get("shop", "a").unwrap().metadata.name.as_deref(), Some("a"));
        cache.apply(&service("b"));
        assert_eq!(ready.len(), 2);

        // A relist (after 410 Gone) keeps serving the old view until the new one is complete, then only that.
        cache.apply(&watcher::Event::Init);
        let watcher::Event::Apply(b) = service("b") else {
            unreachable!()
        };
        cache.apply(&watcher::Event::InitApply(b));
        assert_eq!(ready.len(), 2);
        cache.apply(&watcher::Event::InitDone);
        assert!(ready.get("shop", "a").is_none(), "deleted while the watch was away");
        assert_eq!(ready.all().len(), 1);
        cache.apply(&watcher::Event::Delete(a));
        assert_eq!(ready.len(), 1);

        // A new watch (the kind served again) starts from an empty, unready cache.
        slot.renew();
        assert!(slot.ready().is_none());
    }
}

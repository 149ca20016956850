//! What the controller's watches have seen, for the reconciler to read instead of asking the API server: our
//! children, the `Prometheus` objects and the namespaces' labels. A reconcile then costs no read at all; only what
//! differs is written.
//!
//! A store is read only once its watch has listed everything. Before that, and without a controller (tests that call
//! `reconcile` directly), the reconciler asks the API server. A store may lag behind the server: a change it has not
//! seen yet arrives as a watch event, which wakes the owner again, the usual contract of a controller's cache.

use std::sync::{Arc, RwLock};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::last_applied;
use crate::prometheus_operator::{Prometheus, PrometheusRule, ServiceMonitor};

/// The store of one kind. It is replaced each time its watch starts again: the Prometheus Operator's kinds are
/// watched only while they are served, and each new watch lists from scratch.
pub struct Slot<K: Resource<DynamicType = ()> + Clone + 'static>(RwLock<Option<Store<K>>>);

impl<K: Resource<DynamicType = ()> + Clone + 'static> Default for Slot<K> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Slot<K> {
    /// A new store for a watch about to start, and the writer that watch feeds it through.
    pub fn renew(&self) -> reflector::store::Writer<K> {
        let (store, writer) = reflector::store();
        *self.0.write().unwrap() = Some(store);
        writer
    }

    /// The store, once its watch has listed every object.
    pub fn ready(&self) -> Option<Store<K>> {
        let store = self.0.read().unwrap().clone()?;
        store.wait_until_ready().now_or_never()?.ok()?;
        Some(store)
    }
}

/// Every store the reconciler reads.
#[derive(Default)]
pub struct Caches {
    pub deployments: Slot<Deployment>,
    pub services: Slot<Service>,
    pub config_maps: Slot<ConfigMap>,
    pub service_monitors: Slot<ServiceMonitor>,
    pub prometheus_rules: Slot<PrometheusRule>,
    pub prometheuses: Slot<Prometheus>,
    pub namespaces: Slot<PartialObjectMeta<Namespace>>,
}

/// A kind the reconciler reads through a cache.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    fn slot(caches: &Caches) -> &Slot<Self>;

    /// Drops what the reconciler never reads before an object is cached: `managedFields` (often half of it).
    /// Applied alike to what is compared with a cached object.
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

    /// A dashboard is about 60 KiB of JSON: what is cached of it is its hash, enough to see that it changed.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        for value in self.data.iter_mut().flat_map(|d| d.values_mut()) {
            *value = format!("hash:{}", last_applied::hash(value));
        }
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
}

impl Cached for Prometheus {
    fn slot(caches: &Caches) -> &Slot<Self> {
        &caches.prometheuses
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
        if let Some(store) = K::slot(self).ready() {
            return Ok(store
                .get(&ObjectRef::new(name).within(namespace))
                .map(Arc::unwrap_or_clone));
        }
        let mut live = Api::<K>::namespaced(client.clone(), namespace).get_opt(name).await?;
        if let Some(live) = &mut live {
            live.slim();
        }
        Ok(live)
    }

    /// Every `Prometheus` of the cluster.
    pub async fn prometheuses(&self, client: &Client) -> Result<Vec<Prometheus>, kube::Error> {
        match self.prometheuses.ready() {
            Some(store) => Ok(store.state().into_iter().map(Arc::unwrap_or_clone).collect()),
            None => Ok(Api::<Prometheus>::all(client.clone())
                .list(&Default::default())
                .await?
                .items),
        }
    }

    /// The labels of namespace `name` (none if it does not exist).
    pub async fn namespace_labels(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, kube::Error> {
        let namespace = match self.namespaces.ready() {
            Some(store) => store.get(&ObjectRef::new(name)).map(Arc::unwrap_or_clone),
            None => Api::<Namespace>::all(client.clone()).get_metadata_opt(name).await?,
        };
        Ok(namespace.and_then(|n| n.metadata.labels).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher;

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

    #[tokio::test]
    async fn a_store_is_read_only_once_its_watch_has_listed() {
        let slot = Slot::<Service>::default();
        assert!(slot.ready().is_none(), "no watch yet");
        let mut writer = slot.renew();
        assert!(slot.ready().is_none(), "listing");
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let store = slot.ready().expect("listed");
        assert!(store.is_empty());
        // A new watch (the kind served again) starts from an empty, unready store.
        let _writer = slot.renew();
        assert!(slot.ready().is_none());
    }
}

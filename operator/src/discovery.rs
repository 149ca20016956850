//! Which Prometheus Operator kinds the API server serves. They come and go independently of the operator: the
//! ServiceMonitor and PrometheusRule CRDs are often installed without the Prometheus one (an OpenTelemetry target
//! allocator, Grafana Alloy or VictoriaMetrics reads them), and any of them may be installed after the operator
//! started. [`KindsCache`] keeps the last answer, refreshed on a period by the controller, so that a reconcile
//! does not ask discovery each time and a change is noticed without a restart.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Client;
use tokio::sync::watch;

use crate::prometheus_operator::GROUP;

/// How often the running controller asks discovery again.
pub const REFRESH: Duration = Duration::from_secs(15);

/// The kinds of `monitoring.coreos.com` the operator writes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrometheusOperatorKinds {
    pub service_monitor: bool,
    pub prometheus_rule: bool,
    /// Only read, to tell which Prometheus selects the resource.
    pub prometheus: bool,
    /// `v1alpha1`, for notifications.
    pub alertmanager_config: bool,
    /// Only read, to tell which Alertmanager loads the AlertmanagerConfig.
    pub alertmanager: bool,
}

impl PrometheusOperatorKinds {
    /// Both kinds we write are served.
    pub fn writable(&self) -> bool {
        self.service_monitor && self.prometheus_rule
    }
}

/// Asks the API server, one request per group version.
pub async fn discover(client: &Client) -> Result<PrometheusOperatorKinds, kube::Error> {
    let (v1, v1alpha1) = tokio::try_join!(served(client, "v1"), served(client, "v1alpha1"))?;
    let has = |kinds: &[String], kind: &str| kinds.iter().any(|k| k == kind);
    Ok(PrometheusOperatorKinds {
        service_monitor: has(&v1, "ServiceMonitor"),
        prometheus_rule: has(&v1, "PrometheusRule"),
        prometheus: has(&v1, "Prometheus"),
        alertmanager_config: has(&v1alpha1, "AlertmanagerConfig"),
        alertmanager: has(&v1, "Alertmanager"),
    })
}

/// The kinds (not subresources) of `monitoring.coreos.com/<version>`. A group version the API server does not serve
/// is answered with a plain-text 404, which is "none of them", not an error.
async fn served(client: &Client, version: &str) -> Result<Vec<String>, kube::Error> {
    match client.list_api_group_resources(&format!("{GROUP}/{version}")).await {
        Ok(list) => Ok(list
            .resources
            .into_iter()
            .filter(|r| !r.name.contains('/'))
            .map(|r| r.kind)
            .collect()),
        // By code: the plain-text body gives no `NotFound` reason, and kube's `is_not_found` wants one.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The last answer of discovery while the controller keeps it fresh; empty otherwise, and then every caller asks.
pub struct KindsCache(watch::Sender<Option<PrometheusOperatorKinds>>);

impl Default for KindsCache {
    fn default() -> Self {
        KindsCache(watch::Sender::new(None))
    }
}

impl KindsCache {
    /// The cached answer, or discovery's when nothing is cached.
    pub async fn get(&self, client: &Client) -> Result<PrometheusOperatorKinds, kube::Error> {
        let cached = *self.0.borrow();
        match cached {
            Some(kinds) => Ok(kinds),
            None => discover(client).await,
        }
    }

    /// Records an answer; true when it differs from the previous one.
    pub fn set(&self, kinds: PrometheusOperatorKinds) -> bool {
        self.0.send_if_modified(|old| {
            let changed = *old != Some(kinds);
            *old = Some(kinds);
            changed
        })
    }

    /// Asks discovery every `period` until dropped; a failed answer keeps the last one (the API server may be away).
    pub async fn refresh(&self, client: Client, period: Duration) {
        loop {
            match discover(&client).await {
                Ok(kinds) => {
                    if self.set(kinds) {
                        tracing::info!(?kinds, "Prometheus Operator kinds served");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "discovery of monitoring.coreos.com failed"),
            }
            tokio::time::sleep(period).await;
        }
    }

    /// Every change of the answer, the first known one included.
    pub fn changes(&self) -> impl Stream<Item = PrometheusOperatorKinds> + Send + 'static {
        let mut rx = self.0.subscribe();
        rx.mark_changed();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                rx.changed().await.ok()?;
                let kinds = *rx.borrow_and_update();
                if let Some(kinds) = kinds {
                    return Some((kinds, rx));
                }
            }
        })
    }

    /// The items of `make()`'s stream while `served` holds: started when the kind appears, stopped when it goes,
    /// started again when it comes back. A watch of a kind the API server does not serve would fail without end.
    pub fn while_served<S>(
        &self,
        served: fn(&PrometheusOperatorKinds) -> bool,
        make: impl Fn() -> S + Send + 'static,
    ) -> impl Stream<Item = S::Item> + Send + 'static
    where
        S: Stream + Send + 'static,
    {
        let rx = self.0.subscribe();
        let is = move |k: &Option<PrometheusOperatorKinds>| k.as_ref().is_some_and(served);
        futures::stream::unfold((rx, make), move |(mut rx, make)| async move {
            rx.wait_for(is).await.ok()?;
            let mut gone = rx.clone();
            let phase = make().take_until(Box::pin(async move {
                let _ = gone.wait_for(|k| !is(k)).await;
            }));
            Some((phase, (rx, make)))
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: PrometheusOperatorKinds = PrometheusOperatorKinds {
        service_monitor: true,
        prometheus_rule: true,
        prometheus: true,
        alertmanager_config: true,
        alertmanager: true,
    };

    #[tokio::test]
    async fn a_stream_runs_only_while_its_kind_is_served() {
        let cache = KindsCache::default();
        let mut items = Box::pin(cache.while_served(
            |k| k.prometheus,
            || futures::stream::iter([1, 2]).chain(futures::stream::pending()),
        ));
        async fn next<S: Stream<Item = i32> + Unpin>(items: &mut S) -> Option<i32> {
            tokio::time::timeout(Duration::from_millis(50), items.next())
                .await
                .ok()
                .flatten()
        }
        assert_eq!(next(&mut items).await, None, "nothing while unknown");
        cache.set(PrometheusOperatorKinds {
            prometheus: false,
            ..ALL
        });
        assert_eq!(next(&mut items).await, None, "nothing while not served");
        cache.set(ALL);
        assert_eq!(next(&mut items).await, Some(1));
        assert_eq!(next(&mut items).await, Some(2));
        // Removed, then installed again: a new stream starts.
        cache.set(PrometheusOperatorKinds::default());
        assert_eq!(next(&mut items).await, None);
        cache.set(ALL);
        assert_eq!(next(&mut items).await, Some(1));
    }

    #[tokio::test]
    async fn changes_are_told_once_each() {
        let cache = KindsCache::default();
        let mut changes = Box::pin(cache.changes());
        assert!(cache.set(ALL));
        assert!(!cache.set(ALL), "the same answer is no change");
        assert_eq!(changes.next().await, Some(ALL));
        cache.set(PrometheusOperatorKinds::default());
        assert_eq!(changes.next().await, Some(PrometheusOperatorKinds::default()));
    }
}

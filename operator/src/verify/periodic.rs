//! The reconciler's side of verification: each Prometheus is asked for its targets and rules at most once per
//! period, whatever the number of resources it monitors; each resource adds one batched series request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::prometheus_api::PrometheusApi;
use super::run::{Report, Shared, fetch_shared, verify_with};
use crate::render::Desired;

pub struct Verifier {
    period: Duration,
    timeout: Duration,
    /// A Prometheus URL from the operator's flags, used when the resource names none.
    pub url_override: Option<String>,
    rounds: Mutex<HashMap<String, (Instant, Arc<Shared>)>>,
}

impl Verifier {
    pub fn new(period: Duration, timeout: Duration, url_override: Option<String>) -> Self {
        Verifier {
            period,
            timeout,
            url_override,
            rounds: Mutex::default(),
        }
    }

    /// How often a resource is verified (its requeue period while verification runs).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The checks of `desired` against the Prometheus at `url`.
    pub async fn check(&self, desired: &Desired, url: &str) -> Report {
        let api = PrometheusApi::new(url, self.timeout);
        let cached = {
            let rounds = self.rounds.lock().unwrap();
            rounds
                .get(url)
                .filter(|(at, _)| at.elapsed() < self.period)
                .map(|(_, shared)| shared.clone())
        };
        let shared = match cached {
            Some(shared) => shared,
            None => {
                let shared = Arc::new(fetch_shared(&api).await);
                self.rounds
                    .lock()
                    .unwrap()
                    .insert(url.to_owned(), (Instant::now(), shared.clone()));
                shared
            }
        };
        verify_with(desired, &shared, &api).await
    }
}

/// The in-cluster URL of a Prometheus the Prometheus Operator runs: its governing Service `prometheus-operated`.
pub fn in_cluster_url(namespace: &str) -> String {
    format!("http://prometheus-operated.{namespace}.svc:9090")
}

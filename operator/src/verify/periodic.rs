//! The reconciler's side of verification: each Prometheus is asked for its targets and rules at most once per
//! period, whatever the number of resources it monitors; each resource adds one batched series request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::checks::Check;
use super::prometheus_api::PrometheusApi;
use super::routing;
use super::run::{Report, Shared, fetch_shared, verify_with};
use crate::prometheus_operator::AlertmanagerConfig;
use crate::render::Desired;

/// How old a round's answers may be for a resource changed moments ago, whose checks are waiting for Prometheus to
/// load the change: answers from before the change say nothing of it.
pub const FRESH_AFTER_CHANGE: Duration = Duration::from_secs(10);

pub struct Verifier {
    period: Duration,
    timeout: Duration,
    /// A Prometheus URL from the operator's flags, used when the resource names none.
    pub url_override: Option<String>,
    /// An Alertmanager URL from the operator's flags, used when the resource names none.
    pub alertmanager_url_override: Option<String>,
    /// The current round per Prometheus URL. Resources reconciled concurrently wait for the one fetch of their
    /// round instead of each making their own.
    rounds: Rounds<String, Shared>,
    /// Likewise per (Prometheus, Alertmanager) for `Routed`: Alertmanager's status is its whole configuration.
    routing_rounds: Rounds<(String, String), routing::Answers>,
}

/// The current round of each server (or pair of servers).
type Rounds<K, T> = Mutex<HashMap<K, Arc<Round<T>>>>;

struct Round<T> {
    started: Instant,
    answers: OnceCell<T>,
}

impl Verifier {
    pub fn new(period: Duration, timeout: Duration, url_override: Option<String>) -> Self {
        Verifier {
            period,
            timeout,
            url_override,
            alertmanager_url_override: None,
            rounds: Mutex::default(),
            routing_rounds: Mutex::default(),
        }
    }

    pub fn with_alertmanager_url(mut self, url: Option<String>) -> Self {
        self.alertmanager_url_override = url;
        self
    }

    /// `Routed`: the Prometheus at `prometheus` sends to an Alertmanager, and the one at `alertmanager` loaded `amc`.
    pub async fn check_routing(
        &self,
        amc: &AlertmanagerConfig,
        prometheus: &str,
        alertmanager: &str,
        max_age: Duration,
    ) -> Check {
        let key = (prometheus.to_owned(), alertmanager.to_owned());
        let round = current(&self.routing_rounds, key, max_age);
        // A client is built only by the resource that fetches the round's answers, not by every one reading them.
        let answers = round
            .answers
            .get_or_init(|| async {
                let api = PrometheusApi::new(prometheus, self.timeout);
                routing::fetch(&api, alertmanager, self.timeout).await
            })
            .await;
        routing::judge(amc, answers, prometheus, alertmanager)
    }

    /// How often a resource is verified (its requeue period while verification runs).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// How old the answers a resource is checked against may be: a period, or much less right after a change.
    pub fn max_age(&self, recently_changed: bool) -> Duration {
        match recently_changed {
            true => FRESH_AFTER_CHANGE.min(self.period),
            false => self.period,
        }
    }

    /// The checks of `desired` against the Prometheus at `url`, on answers at most `max_age` old.
    pub async fn check(&self, desired: &Desired, url: &str, max_age: Duration) -> Report {
        let api = PrometheusApi::new(url, self.timeout);
        let round = current(&self.rounds, url.to_owned(), max_age);
        let shared = round.answers.get_or_init(|| fetch_shared(&api)).await;
        verify_with(desired, shared, &api).await
    }
}

/// The round of `key`, a new one once `period` has passed since it started.
fn current<K: std::hash::Hash + Eq, T>(
    rounds: &Mutex<HashMap<K, Arc<Round<T>>>>,
    key: K,
    period: Duration,
) -> Arc<Round<T>> {
    let mut rounds = rounds.lock().unwrap();
    let round = rounds
        .entry(key)
        .and_modify(|r| {
            if r.started.elapsed() >= period {
                *r = Arc::new(Round::new());
            }
        })
        .or_insert_with(|| Arc::new(Round::new()));
    round.clone()
}

impl<T> Round<T> {
    fn new() -> Self {
        Round {
            started: Instant::now(),
            answers: OnceCell::new(),
        }
    }
}

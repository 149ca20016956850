//! Makes the cluster match `render`, one resource at a time, in three steps:
//! 1. [`children`]: apply each child that differs from what it should be, remove those of parts switched off, and say
//!    what was found; skipped for a settled resource (see `settled`), whose status already says it;
//! 2. [`verification`]: ask Prometheus whether the resource is really monitored;
//! 3. [`publish`]: patch the status when it changed, with an event for each transition a person should hear about.
//!
//! `error_policy` turns a failure into exponential backoff per resource.

mod children;
mod parts;
mod publish;
mod verification;

pub use children::is_subset;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};

use crate::cache::Caches;
use crate::crd::ChatbotMonitoring;
use crate::discovery::KindsCache;
use crate::metrics::Metrics;
use crate::render::{RenderError, RenderOptions};
use crate::settled::{Settled, Snapshot};
use crate::status::{self, reason};
use crate::verify::periodic::Verifier;
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
    /// When this process last wrote a child of each resource, while that is recent: a check failing then is
    /// `Pending` (see `parts::LOAD_GRACE`).
    writes: Mutex<HashMap<(String, String), Instant>>,
    /// How long after a write a check not passed yet is `Pending` (`parts::LOAD_GRACE`; tests shorten it).
    pub load_grace: Duration,
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
    /// Check that the Secrets a spec references exist before applying anything. Off by default: RBAC cannot grant
    /// a Secret's metadata without its data; a missing Secret is then told by the pods (`CreateContainerConfigError`).
    pub secret_check: bool,
}

impl Context {
    pub fn new(client: Client, recorder: Recorder, options: RenderOptions, metrics: Arc<Metrics>) -> Self {
        Context {
            client,
            recorder,
            options,
            metrics,
            failures: Mutex::default(),
            writes: Mutex::default(),
            load_grace: parts::LOAD_GRACE,
            verifier: None,
            settled: None,
            kinds: KindsCache::default(),
            watches: Arc::default(),
            caches: Arc::default(),
            secret_check: false,
        }
    }

    /// Checks that referenced Secrets exist before applying anything (needs `get` on Secrets).
    pub fn with_secret_check(mut self, on: bool) -> Self {
        self.secret_check = on;
        self
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

    /// Notes that a child of the resource `key` was just written.
    fn note_write(&self, key: (String, String)) {
        let mut writes = self.writes.lock().unwrap();
        // Only recent writes matter: the map stays as small as the resources changed in the last few minutes.
        writes.retain(|_, at| at.elapsed() < self.load_grace);
        writes.insert(key, Instant::now());
    }

    /// How long ago this process last wrote a child of the resource `key`, if recently.
    fn since_write(&self, key: &(String, String)) -> Option<Duration> {
        let writes = self.writes.lock().unwrap();
        writes
            .get(key)
            .map(Instant::elapsed)
            .filter(|age| *age < self.load_grace)
    }

    /// How long after a write a check not passed yet is `Pending` rather than failed.
    pub fn with_load_grace(mut self, grace: Duration) -> Self {
        self.load_grace = grace;
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
    #[error("{0}")]
    SecretMissing(SecretsMissing),
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Render(_) => reason::INVALID_SPEC,
            Error::SecretMissing(_) => reason::SECRET_MISSING,
            Error::Kube(_) => reason::API_ERROR,
        }
    }
}

/// A Secret reference that leads nowhere: no such Secret in the namespace, or no such `key` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret {
    pub field: String,
    pub name: String,
    /// The key the Secret lacks; `None` when the Secret itself does not exist.
    pub key: Option<String>,
}

/// Every broken Secret reference of a resource, said in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsMissing(pub Vec<MissingSecret>);

impl std::fmt::Display for SecretsMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let each: Vec<String> = self
            .0
            .iter()
            .map(|m| match &m.key {
                None => format!(
                    "Secret {:?} referenced by {} does not exist in the namespace",
                    m.name, m.field
                ),
                Some(key) => format!("Secret {:?} has no key {key:?}, which {} names", m.name, m.field),
            })
            .collect();
        f.write_str(&each.join("; "))
    }
}

/// While a referenced Secret is missing, look again this often: someone is probably creating it now, and a check is
/// one read per Secret (a backoff would leave the resource broken for minutes after the fix).
pub const SECRET_RECHECK: Duration = Duration::from_secs(10);

/// The controller's reconcile function.
pub async fn reconcile(cbm: Arc<ChatbotMonitoring>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = apply(&cbm, &ctx).await;
    ctx.metrics
        .record(result.as_ref().err().map(Error::reason), start.elapsed());
    let key = (cbm.namespace().unwrap_or_default(), cbm.name_any());
    match result {
        Ok(action) => {
            ctx.failures.lock().unwrap().remove(&key);
            Ok(action)
        }
        Err(e) => {
            publish::failure(&cbm, &ctx, &e).await;
            Err(e)
        }
    }
}

/// Exponential backoff per resource: 5 s, 10 s, 20 s … up to 5 min; never a hot loop.
pub fn error_policy(cbm: Arc<ChatbotMonitoring>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = (cbm.namespace().unwrap_or_default(), cbm.name_any());
    if let Error::SecretMissing(missing) = error {
        tracing::warn!(resource = %cbm.name_any(), %missing, retry_in = ?SECRET_RECHECK, "reconcile failed");
        return Action::requeue(SECRET_RECHECK);
    }
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

/// One pass over a resource: its children unless settled, then verification, then the status.
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
            let (observed, snapshot, desired) = children::observe(cbm, ctx).await?;
            (Arc::new(snapshot), Some((observed, desired, ticket)))
        }
    };
    let (operator_installed, monitoring) = (snapshot.prometheus_operator, snapshot.needs_prometheus_operator);
    let desired = full_pass.as_ref().map(|(_, desired, _)| desired);
    let verification = verification::verify(cbm, ctx, &snapshot, desired, ctx.since_write(&key)).await?;
    let verifying = verification.ran;
    let pending = verification
        .parts
        .iter()
        .any(|(_, part)| matches!(part, status::Part::Pending { .. }));

    let new = match (&mut full_pass, &cbm.status) {
        (Some((observed, _, _)), previous) => {
            observed.parts.extend(verification.parts);
            observed.scraped = verification.scraped;
            observed.firing_alerts = verification.firing_alerts;
            status::status_from(observed, previous.as_ref(), Timestamp::now())
        }
        (None, Some(previous)) => status::settled_status(
            previous,
            &verification.parts,
            verification.scraped,
            verification.firing_alerts,
            Timestamp::now(),
        ),
        (None, None) => unreachable!("a settled resource has a status"),
    };
    let fingerprint = status::children_fingerprint(&new);
    publish::status(cbm, ctx, new).await?;
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
        Some(v) if pending => v.max_age(true),
        Some(v) if verifying => v.period().min(RESYNC),
        _ if operator_installed || !monitoring => RESYNC,
        _ => PROMETHEUS_OPERATOR_RECHECK,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }
}

//! Which resources are settled: their last full reconcile found every child as rendered (or applied it), and no
//! watch event has touched one of their children, a `Prometheus` or their namespace since. Reconciling a settled
//! resource at the same generation reuses what that pass observed instead of reading each child again, so an
//! unchanged resource costs no request to the API server.
//!
//! The controller's watches call [`Settled::invalidate`] for each event on a child (its owner is unsettled) and
//! [`Settled::invalidate_all`] for a change of a `Prometheus` or a namespace's labels. A pass records its result
//! with the [`Ticket`] it took before reading: an event that arrived meanwhile makes the record void, so a change
//! made while the pass was reading is never hidden. Entries also expire, as a bound on anything not watched (a
//! Secret deleted later).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::selection::verdict::PrometheusRef;
use crate::status::Part;

/// A settled entry older than this is read again in full whatever the watches said.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// What a full pass leaves for the next ones to go on without reading the children. Small on purpose: what the
/// children looked like is in the resource's own status, which the fingerprint ties to this pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub uid: String,
    pub generation: Option<i64>,
    /// The Prometheus servers that select the resource.
    pub chosen: Vec<PrometheusRef>,
    /// The monitoring.coreos.com API is served.
    pub prometheus_operator: bool,
    /// The spec asks for a ServiceMonitor or a PrometheusRule.
    pub needs_prometheus_operator: bool,
    /// `Routed` as the full pass found it: which Alertmanager selects the AlertmanagerConfig (`Ready`, with
    /// `alertmanagers`), or why none does; verification rounds then check what those loaded. `None` when the spec
    /// has no notifications: no condition at all, rather than two `Disabled` ones on every resource.
    pub routed: Option<Part>,
    pub alertmanagers: Vec<PrometheusRef>,
    /// `status::children_fingerprint` of the status the pass published.
    pub fingerprint: u64,
}

/// The resource's key: namespace and name.
pub type Key = (String, String);

#[derive(Default)]
pub struct Settled {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every `invalidate_all`.
    epoch: u64,
    entries: HashMap<Key, Entry>,
}

#[derive(Default)]
struct Entry {
    /// Bumped by every `invalidate` of this resource.
    epoch: u64,
    settled: Option<(Instant, Arc<Snapshot>)>,
}

/// Taken before a full pass reads anything; `settle` honours it only if nothing was invalidated since.
#[derive(Debug)]
pub struct Ticket {
    key: Key,
    global: u64,
    local: u64,
}

impl Settled {
    /// The snapshot of a settled resource, if it is still valid for this uid and generation.
    pub fn lookup(&self, key: &Key, uid: &str, generation: Option<i64>) -> Option<Arc<Snapshot>> {
        let inner = self.inner.lock().unwrap();
        let (at, snapshot) = inner.entries.get(key)?.settled.as_ref()?;
        (snapshot.uid == uid && snapshot.generation == generation && at.elapsed() < MAX_AGE).then(|| snapshot.clone())
    }

    /// Starts tracking the resource (so that events during the pass are counted against it).
    pub fn ticket(&self, key: &Key) -> Ticket {
        let mut inner = self.inner.lock().unwrap();
        let global = inner.epoch;
        let local = inner.entries.entry(key.clone()).or_default().epoch;
        Ticket {
            key: key.clone(),
            global,
            local,
        }
    }

    /// Records a full pass; ignored when an event came after its ticket was taken.
    pub fn settle(&self, ticket: Ticket, snapshot: Arc<Snapshot>) {
        let mut inner = self.inner.lock().unwrap();
        if inner.epoch != ticket.global {
            return;
        }
        // Gone (forgotten while the pass ran, the resource deleted): nothing to record.
        if let Some(entry) = inner.entries.get_mut(&ticket.key)
            && entry.epoch == ticket.local
        {
            entry.settled = Some((Instant::now(), snapshot));
        }
    }

    /// A child of this resource changed (or was deleted): read everything again next time.
    /// Only resources already tracked: the children that the garbage collector deletes after their owner must not
    /// bring its entry back.
    pub fn invalidate(&self, key: &Key) {
        if let Some(entry) = self.inner.lock().unwrap().entries.get_mut(key) {
            entry.epoch += 1;
            entry.settled = None;
        }
    }

    /// Something every resource depends on changed (a `Prometheus`, a namespace's labels).
    pub fn invalidate_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.epoch += 1;
        for entry in inner.entries.values_mut() {
            entry.epoch += 1;
            entry.settled = None;
        }
    }

    /// The resource is gone (the controller's watch saw it deleted).
    pub fn forget(&self, key: &Key) {
        self.inner.lock().unwrap().entries.remove(key);
    }

    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.entries.values().filter(|e| e.settled.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resources tracked, settled or not.
    pub fn tracked(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        ("shop".into(), "bot".into())
    }

    fn snapshot(generation: i64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            uid: "u1".into(),
            generation: Some(generation),
            chosen: Vec::new(),
            prometheus_operator: true,
            needs_prometheus_operator: true,
            routed: None,
            alertmanagers: Vec::new(),
            fingerprint: 7,
        })
    }

    #[test]
    fn a_settled_resource_is_found_for_its_uid_and_generation_only() {
        let s = Settled::default();
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());
        s.settle(s.ticket(&key()), snapshot(1));
        assert!(s.lookup(&key(), "u1", Some(1)).is_some());
        assert!(s.lookup(&key(), "u1", Some(2)).is_none(), "a new generation");
        assert!(
            s.lookup(&key(), "u2", Some(1)).is_none(),
            "recreated under the same name"
        );
        s.forget(&key());
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());
    }

    #[test]
    fn events_unsettle_and_void_a_pass_in_flight() {
        let s = Settled::default();
        s.settle(s.ticket(&key()), snapshot(1));
        s.invalidate(&key());
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());

        // A child changed while the pass was reading: its result must not be recorded.
        let ticket = s.ticket(&key());
        s.invalidate(&key());
        s.settle(ticket, snapshot(1));
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());

        // Same with a Prometheus changing meanwhile.
        let ticket = s.ticket(&key());
        s.invalidate_all();
        s.settle(ticket, snapshot(1));
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());

        s.settle(s.ticket(&key()), snapshot(1));
        let other: Key = ("shop".into(), "other".into());
        s.invalidate(&other);
        assert!(s.lookup(&key(), "u1", Some(1)).is_some(), "another resource's child");
        s.invalidate_all();
        assert!(s.lookup(&key(), "u1", Some(1)).is_none());
    }

    #[test]
    fn deleted_resources_are_not_brought_back_by_their_childrens_events() {
        let s = Settled::default();
        s.settle(s.ticket(&key()), snapshot(1));
        s.forget(&key());
        // The garbage collector deletes the children after the owner: their events must not re-create the entry.
        s.invalidate(&key());
        assert_eq!(s.tracked(), 0);
    }
}

//! Leader election on a `coordination.k8s.io` Lease, so that two replicas never reconcile at once. A replica that
//! loses the lease stops at once (the process exits and Kubernetes restarts it as a standby), as controller-runtime
//! managers do: a deposed leader must not keep writing.

use std::future::Future;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

/// Where the lease lives and who we are.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// Seconds a lease is valid without renewal; a standby takes over after this.
    pub duration_seconds: u64,
    /// Renew this many seconds before expiry.
    pub grace_seconds: u64,
}

/// A held (or awaited) lease: `is_leader` flips when it is won or lost.
pub struct Lease {
    pub is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Lease {
    /// Starts competing for the lease.
    pub async fn start(client: Client, s: &LeaseSettings) -> anyhow::Result<Lease> {
        anyhow::ensure!(
            s.duration_seconds > s.grace_seconds && s.grace_seconds > 0,
            "the lease duration must be longer than its grace period, both above zero"
        );
        let manager = LeaseManagerBuilder::new(client, &s.name)
            .with_namespace(&s.namespace)
            .with_identity(&s.identity)
            .with_duration(s.duration_seconds)
            .with_grace(s.grace_seconds)
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Lease { is_leader, task })
    }

    /// Gives the lease up (dropping the last receiver tells the manager to release it).
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease"),
            Err(e) => tracing::warn!(error = %e, "the lease task failed"),
        }
    }
}

/// Runs `work` while this replica leads: waits for `is_leader` (or for `stopped`, then returns without working), then
/// runs `work` until it ends, or fails as soon as the lease is lost: a deposed leader must not keep writing, and
/// exiting makes Kubernetes restart it as a standby. `leading` is told each change (the leader metric).
pub async fn lead<W>(
    mut is_leader: watch::Receiver<bool>,
    work: impl FnOnce() -> W,
    stopped: impl Future<Output = ()>,
    leading: impl Fn(bool),
) -> anyhow::Result<()>
where
    W: Future<Output = ()>,
{
    let won = tokio::select! {
        r = is_leader.wait_for(|leader| *leader) => r.is_ok(),
        _ = stopped => false,
    };
    if !won {
        return Ok(());
    }
    tracing::info!("leading: reconciling");
    leading(true);
    let result = tokio::select! {
        _ = work() => Ok(()),
        _ = is_leader.wait_for(|leader| !*leader) => {
            Err(anyhow::anyhow!("lost the leader lease; exiting so as not to act as a deposed leader"))
        }
    };
    leading(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// `lead` with a work that runs until `done` and records that it ran, and the leadership changes.
    struct Run {
        worked: Arc<AtomicBool>,
        told: Arc<Mutex<Vec<bool>>>,
    }

    fn run(
        is_leader: watch::Receiver<bool>,
        done: impl Future<Output = ()> + Send + 'static,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> (Run, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let run = Run {
            worked: Arc::default(),
            told: Arc::default(),
        };
        let (worked, told) = (run.worked.clone(), run.told.clone());
        let task = tokio::spawn(lead(
            is_leader,
            move || async move {
                worked.store(true, Ordering::SeqCst);
                done.await
            },
            stopped,
            move |leading| told.lock().unwrap().push(leading),
        ));
        (run, task)
    }

    #[tokio::test]
    async fn a_standby_stopped_before_leading_never_works() {
        let (_tx, rx) = watch::channel(false);
        let (run, task) = run(rx, std::future::pending(), async {});
        task.await.unwrap().unwrap();
        assert!(!run.worked.load(Ordering::SeqCst));
        assert!(run.told.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_leader_works_until_the_work_ends() {
        let (tx, rx) = watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (run, task) = run(rx, async { done_rx.await.unwrap() }, std::future::pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!run.worked.load(Ordering::SeqCst), "not before it leads");
        tx.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(run.worked.load(Ordering::SeqCst));
        done_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(*run.told.lock().unwrap(), [true, false]);
    }

    #[tokio::test]
    async fn losing_the_lease_stops_the_work_with_an_error() {
        let (tx, rx) = watch::channel(true);
        let (run, task) = run(rx, std::future::pending(), std::future::pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(false).unwrap();
        let error = task.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("lost the leader lease"), "{error}");
        assert!(run.worked.load(Ordering::SeqCst));
        assert_eq!(*run.told.lock().unwrap(), [true, false]);
    }
}

//! Leader election on a `coordination.k8s.io` Lease, so that two replicas never reconcile at once. A replica that
//! loses the lease stops at once (the process exits and Kubernetes restarts it as a standby), as controller-runtime
//! managers do: a deposed leader must not keep writing.

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

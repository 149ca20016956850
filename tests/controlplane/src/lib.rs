//! A real Kubernetes control plane for tests: etcd and kube-apiserver (and kube-controller-manager when present)
//! started from the directory in `KUBEBUILDER_ASSETS`, controller-runtime envtest's convention, on free 127.0.0.1
//! ports in a temporary directory, with token authentication and RBAC authorization. What a scripted API server
//! cannot show is shown here: server-side apply, CEL as the server evaluates it, plain-text 404s, garbage
//! collection, RBAC.
//!
//! Tests call [`assets`] first and return early (printing how to get the binaries) when it is `None`.

pub mod binary;
pub mod chart;
pub mod cluster;
pub mod env;
pub mod kubelet;
pub mod operator;
mod process;
pub mod relay;
pub mod requests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use cluster::ControlPlane;

/// Where the binaries are, or `None` (with the reason printed) when this tier must be skipped.
pub fn assets() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()) else {
        eprintln!(
            "skipped: KUBEBUILDER_ASSETS is not set. It names a directory holding etcd and kube-apiserver (and \
             kube-controller-manager for garbage collection); on a machine with internet, \
             `go run sigs.k8s.io/controller-runtime/tools/setup-envtest@latest use 1.36 -p path` prints one \
             (see README.md, 'Tests on a real control plane')."
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    for binary in ["etcd", "kube-apiserver"] {
        assert!(
            dir.join(binary).is_file(),
            "KUBEBUILDER_ASSETS={} has no {binary}",
            dir.display()
        );
    }
    Some(dir)
}

/// Skips the calling test (returns from it) when the control-plane binaries are not available.
#[macro_export]
macro_rules! require_control_plane {
    () => {
        match $crate::assets() {
            Some(dir) => dir,
            None => return,
        }
    };
}

/// Waits up to `timeout` for `check` to return `Some`, polling every 100 ms; panics naming `what` otherwise, with
/// the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Logs of the operator under test, once per process (RUST_LOG, default warnings).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client::client::tls=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

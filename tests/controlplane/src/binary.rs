//! The operator as a new user runs it out of cluster: the `chatbot-operator run` binary with a kubeconfig that acts
//! as the chart's ServiceAccount (`as:`, impersonation), for what only a separate process shows (leader election
//! between replicas, its own memory).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::chart::Installed;
use crate::cluster::ControlPlane;
use crate::process;

/// The operator binary of this workspace (`profile` is `debug` or `release`), built when missing; or the one
/// `CHATBOT_OPERATOR_BINARY` names (a benchmark's "before" figures, from another commit's build).
pub fn operator_binary(profile: &str) -> PathBuf {
    if let Some(binary) = std::env::var_os("CHATBOT_OPERATOR_BINARY").filter(|b| !b.is_empty()) {
        return PathBuf::from(binary);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let binary = root.join("target").join(profile).join("chatbot-operator");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "chatbot-operator"]).current_dir(&root);
        if profile == "release" {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo runs").success(), "building the operator");
    }
    binary
}

/// A running `chatbot-operator run`; killed when dropped.
pub struct OperatorProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`: /metrics, /healthz, /readyz.
    pub url: String,
    pub log: PathBuf,
}

impl OperatorProcess {
    /// Starts the binary as `installed`'s ServiceAccount with leader election, identity `identity`, verification off.
    pub fn start(cp: &ControlPlane, installed: &Installed, identity: &str, profile: &str, watch: Option<&str>) -> Self {
        let dir = cp.dir().join(format!("operator-{identity}"));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            cp.kubeconfig_as(&format!(
                "system:serviceaccount:{}:{}",
                installed.namespace, installed.service_account
            )),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("operator.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(operator_binary(profile));
        command
            .arg("run")
            .env("KUBECONFIG", &kubeconfig)
            .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("LEADER_ELECTION", "true")
            .env("POD_NAMESPACE", &installed.namespace)
            .env("POD_NAME", identity)
            .env("WATCH_NAMESPACE", watch.unwrap_or(""))
            .env("VERIFY_PERIOD", "0s")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = process::spawn(command).expect("the operator starts");
        OperatorProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Its `/metrics`, or `None` while it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let response = reqwest::get(format!("{}/metrics", self.url)).await.ok()?;
        response.text().await.ok()
    }

    /// The status code of its `/readyz`, or `None` while it does not answer.
    pub async fn readyz(&self) -> Option<u16> {
        let response = reqwest::get(format!("{}/readyz", self.url)).await.ok()?;
        Some(response.status().as_u16())
    }

    /// Whether it says it holds the lease (`chatbot_operator_leader 1`).
    pub async fn is_leader(&self) -> bool {
        self.metrics()
            .await
            .is_some_and(|m| m.lines().any(|l| l.trim() == "chatbot_operator_leader 1"))
    }

    /// Stops it as Kubernetes does (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        process::stop(&mut self.child, Duration::from_secs(10));
    }

    /// Peak resident memory so far, in bytes (VmHWM).
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

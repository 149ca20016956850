//! The control plane's processes: etcd, kube-apiserver, and kube-controller-manager when the assets have it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::process;

/// The bearer token of the cluster's administrator (group system:masters).
const ADMIN_TOKEN: &str = "envtest-admin-token";

/// A running control plane. Stopped (and its directory removed) when dropped, or at exit for [`shared`].
pub struct ControlPlane {
    assets: PathBuf,
    dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    etcd_url: String,
    pub apiserver_port: u16,
    /// Flags added to kube-apiserver's own.
    apiserver_args: Vec<String>,
    processes: Mutex<Processes>,
}

#[derive(Default)]
struct Processes {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    controller_manager: Option<Child>,
}

static SHARED: OnceLock<Arc<ControlPlane>> = OnceLock::new();

/// One control plane for every test of this test binary that does not change cluster-wide state (each such test
/// works in its own namespace), started on first use and stopped when the process exits.
pub async fn shared(assets: &Path) -> Arc<ControlPlane> {
    let assets = assets.to_owned();
    tokio::task::spawn_blocking(move || {
        SHARED
            .get_or_init(|| {
                let cp = Arc::new(ControlPlane::start_blocking(&assets, Vec::new()).expect("the control plane starts"));
                // SAFETY: registering a plain function to run at exit.
                unsafe { libc::atexit(stop_shared) };
                cp
            })
            .clone()
    })
    .await
    .expect("starting the control plane")
}

extern "C" fn stop_shared() {
    if let Some(cp) = SHARED.get() {
        cp.shutdown();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and (when present) kube-controller-manager; returns once the API server is ready.
    pub async fn start(assets: &Path) -> ControlPlane {
        ControlPlane::start_with(assets, &[]).await
    }

    /// The same, with these flags added to kube-apiserver's (on restarts too).
    pub async fn start_with(assets: &Path, apiserver_args: &[&str]) -> ControlPlane {
        let assets = assets.to_owned();
        let args = apiserver_args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || ControlPlane::start_blocking(&assets, args))
            .await
            .expect("starting the control plane")
            .expect("the control plane starts")
    }

    fn start_blocking(assets: &Path, apiserver_args: Vec<String>) -> anyhow::Result<ControlPlane> {
        let dir = tempfile::Builder::new().prefix("controlplane-").tempdir()?.keep();
        let (client_port, peer_port, apiserver_port) = (free_port(), free_port(), free_port());
        let cp = ControlPlane {
            assets: assets.to_owned(),
            url: format!("https://127.0.0.1:{apiserver_port}"),
            etcd_url: format!("http://127.0.0.1:{client_port}"),
            apiserver_port,
            apiserver_args,
            dir,
            processes: Mutex::default(),
        };
        fs::write(
            cp.dir.join("tokens.csv"),
            format!("{ADMIN_TOKEN},envtest-admin,envtest-admin-uid,\"system:masters\"\n"),
        )?;
        let key = cp.dir.join("sa.key");
        let openssl = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .context("openssl makes the service-account signing key")?;
        anyhow::ensure!(openssl.success(), "openssl genrsa failed");
        fs::write(cp.dir.join("kubeconfig"), cp.kubeconfig())?;

        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Command::new(assets.join("etcd"));
        etcd.arg(format!("--data-dir={}", cp.dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={}", cp.etcd_url))
            .arg(format!("--advertise-client-urls={}", cp.etcd_url))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--unsafe-no-fsync=true");
        cp.processes.lock().unwrap().etcd = Some(cp.spawn(etcd, "etcd")?);
        cp.wait_for("etcd", Duration::from_secs(30), || {
            reqwest::blocking::get(format!("{}/health", cp.etcd_url))
                .ok()
                .filter(|r| r.status().is_success())
                .is_some()
        })?;
        cp.start_apiserver()?;
        if assets.join("kube-controller-manager").is_file() {
            let mut kcm = Command::new(assets.join("kube-controller-manager"));
            kcm.arg(format!("--kubeconfig={}", cp.dir.join("kubeconfig").display()))
                .arg("--leader-elect=false")
                .arg("--controllers=garbagecollector,namespace,deployment,replicaset,clusterrole-aggregation")
                .arg(format!("--secure-port={}", free_port()))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--cert-dir={}", cp.dir.join("kcm-certs").display()))
                .arg(format!(
                    "--authentication-kubeconfig={}",
                    cp.dir.join("kubeconfig").display()
                ))
                .arg(format!(
                    "--authorization-kubeconfig={}",
                    cp.dir.join("kubeconfig").display()
                ))
                // Token authentication only: no client-CA ConfigMap to look up.
                .arg("--authentication-skip-lookup=true")
                .arg("--concurrent-gc-syncs=5");
            cp.processes.lock().unwrap().controller_manager = Some(cp.spawn(kcm, "kube-controller-manager")?);
        }
        Ok(cp)
    }

    fn apiserver_command(&self) -> Command {
        let dir = &self.dir;
        let mut c = Command::new(self.assets.join("kube-apiserver"));
        c.arg(format!("--etcd-servers={}", self.etcd_url))
            .arg(format!("--cert-dir={}", dir.join("apiserver-certs").display()))
            .arg(format!("--secure-port={}", self.apiserver_port))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg("--service-cluster-ip-range=10.0.0.0/16")
            .arg(format!("--token-auth-file={}", dir.join("tokens.csv").display()))
            .arg("--authorization-mode=RBAC")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!("--service-account-key-file={}", dir.join("sa.key").display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                dir.join("sa.key").display()
            ))
            // No kubelet, no Endpoints of its own on loopback, no token controller for pods' service accounts.
            .arg("--endpoint-reconciler-type=none")
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--allow-privileged=true")
            .args(&self.apiserver_args);
        c
    }

    fn start_apiserver(&self) -> anyhow::Result<()> {
        let child = self.spawn(self.apiserver_command(), "kube-apiserver")?;
        self.processes.lock().unwrap().apiserver = Some(child);
        self.wait_for("kube-apiserver /readyz", Duration::from_secs(90), || {
            self.http()
                .get(format!("{}/readyz", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .is_some()
        })
    }

    /// Kills kube-apiserver (SIGKILL, as a crash or a node loss would), waits `away`, starts it again on the same
    /// port and etcd, and returns once it is ready.
    pub async fn restart_apiserver(self: &Arc<Self>, away: Duration) {
        let cp = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(mut child) = cp.processes.lock().unwrap().apiserver.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            std::thread::sleep(away);
            cp.start_apiserver()
        })
        .await
        .expect("restarting kube-apiserver")
        .expect("kube-apiserver starts again");
    }

    /// Whether kube-controller-manager runs (garbage collection, Deployments' ReplicaSets and pods).
    pub fn has_controller_manager(&self) -> bool {
        self.processes.lock().unwrap().controller_manager.is_some()
    }

    fn spawn(&self, mut command: Command, name: &str) -> anyhow::Result<Child> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))?;
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        process::spawn(command).with_context(|| format!("starting {name}"))
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
        let start = Instant::now();
        while !ready() {
            if start.elapsed() > timeout {
                bail!("{what} not ready after {timeout:?}; logs in {}", self.dir.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn http(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client")
    }

    /// The directory of this control plane's files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A kubeconfig that acts as `user` (a ServiceAccount's `system:serviceaccount:<ns>:<name>`).
    pub fn kubeconfig_as(&self, user: &str) -> String {
        self.kubeconfig()
            .replace("    token: ", &format!("    as: {user}\n    token: "))
    }

    fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\n\
             contexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: admin\n\
             current-context: envtest\n",
            self.url
        )
    }

    async fn config(&self) -> kube::Config {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig()).expect("our kubeconfig parses");
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("our kubeconfig is usable")
    }

    /// Compacts etcd's history up to its current revision, as kube-apiserver does every 5 minutes: a watch that
    /// resumes from an older resourceVersion is then told 410 Expired (unless the watch cache still holds it).
    /// Returns the revision.
    pub async fn compact_etcd(&self) -> u64 {
        let http = reqwest::Client::new();
        // etcd's JSON gateway to its gRPC API; any read returns the current revision in its header.
        let range: serde_json::Value = http
            .post(format!("{}/v3/kv/range", self.etcd_url))
            .body(r#"{"key": "AA=="}"#)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd answers a range request")
            .json()
            .await
            .expect("etcd's answer is JSON");
        let revision: u64 = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("etcd says its revision");
        http.post(format!("{}/v3/kv/compaction", self.etcd_url))
            .body(format!(r#"{{"revision": "{revision}", "physical": true}}"#))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd compacts");
        revision
    }

    /// A client that acts as the user `name` (impersonation), with no group but `system:authenticated`: a person whose
    /// rights are the role bindings made for them.
    pub async fn user(&self, name: &str) -> Client {
        self.impersonating(name, None).await
    }

    /// Like [`service_account`](Self::service_account), through `url` (a [`Relay`](crate::relay::Relay)'s).
    pub async fn service_account_via(&self, namespace: &str, name: &str, url: &str) -> Client {
        self.impersonating(&format!("system:serviceaccount:{namespace}:{name}"), Some(url))
            .await
    }

    /// A client that acts as `user`, to this API server or through `url`.
    async fn impersonating(&self, user: &str, url: Option<&str>) -> Client {
        let mut config = self.config().await;
        if let Some(url) = url {
            config.cluster_url = url.parse().expect("a URL");
        }
        config.auth_info.impersonate = Some(user.to_owned());
        Client::try_from(config).expect("an impersonating client")
    }

    /// A client with every right (system:masters), for the test's own setup and checks.
    pub async fn admin(&self) -> Client {
        Client::try_from(self.config().await).expect("an admin client")
    }

    /// A client that acts as the ServiceAccount `namespace/name` (impersonation: the API server authorizes each
    /// request as that account, with its groups).
    pub async fn service_account(&self, namespace: &str, name: &str) -> Client {
        self.impersonating(&format!("system:serviceaccount:{namespace}:{name}"), None)
            .await
    }

    /// The API server's own metrics (Prometheus text), read as the administrator.
    pub async fn apiserver_metrics(&self) -> String {
        let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
        self.admin().await.request_text(request).await.expect("GET /metrics")
    }

    /// Stops every process and removes the directory.
    fn shutdown(&self) {
        let p = std::mem::take(&mut *self.processes.lock().unwrap());
        for mut child in [p.controller_manager, p.apiserver, p.etcd].into_iter().flatten() {
            process::stop(&mut child, Duration::from_secs(5));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

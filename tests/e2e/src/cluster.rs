//! What the e2e suite asks of a cluster, so that one suite runs on the real node this machine starts (`node`) and
//! on a kind cluster (`kind`: a laptop with Docker, the hosted CI). The scenario talks to the cluster through
//! `kubectl` and reaches pods over HTTP; only how it gets there differs.

use std::any::Any;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub trait Cluster {
    /// `kubectl` with the cluster administrator's credentials, from where the API server is reached.
    fn kubectl_command(&self) -> Command;

    /// A directory for the suite's files (image archives), removed with the cluster.
    fn workdir(&self) -> &Path;

    /// Loads an OCI image archive where the kubelet finds it (`imagePullPolicy: Never`).
    fn import_image(&self, archive: &Path) -> anyhow::Result<()>;

    /// An HTTP base URL, from the test process, for `port` of `target` (`pod/<name>` or `service/<name>`) in
    /// `namespace`: the address itself where the test's host routes to it, a port forward otherwise.
    fn http(&self, namespace: &str, target: &str, port: u16) -> anyhow::Result<Http>;

    /// A PostgreSQL server the cluster's pods reach, with a database `chatbot` its user owns; stopped when dropped.
    fn postgres(&self) -> anyhow::Result<Postgres>;

    /// The node agent's last log lines, for a failure's message.
    fn node_log(&self) -> String;

    /// Drops what pod `from` sends pod `to` (their IPs) where the node forwards it, until the value returned is
    /// dropped: a network partition between two pods, both still running and Ready to their kubelet.
    fn cut_off(&self, from: &str, to: &str) -> anyhow::Result<CutOff>;

    /// `kubectl` as the administrator.
    fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        run_ok(self.kubectl_command().args(args))
    }

    /// `kubectl apply --server-side` of YAML as the administrator.
    fn kubectl_apply(&self, yaml: &str) -> anyhow::Result<String> {
        apply(self.kubectl_command(), yaml)
    }

    /// The same as `user` (impersonated by the administrator): what that user's RBAC allows.
    fn kubectl_apply_as(&self, user: &str, yaml: &str) -> anyhow::Result<String> {
        let mut command = self.kubectl_command();
        command.arg(format!("--as={user}"));
        apply(command, yaml)
    }
}

/// Where to send HTTP requests for a pod or Service; a port forward behind it lasts as long as this value.
pub struct Http {
    pub base: String,
    forward: Option<Child>,
}

impl Http {
    pub fn direct(host: &str, port: u16) -> Http {
        Http {
            base: format!("http://{host}:{port}"),
            forward: None,
        }
    }

    /// `kubectl port-forward` to `target` on a free local port, once it listens. Through the kubelet into the pod's
    /// network namespace: neither the host's routes nor the chatbot's NetworkPolicy stand in the way.
    pub fn forwarded(mut kubectl: Command, namespace: &str, target: &str, port: u16) -> anyhow::Result<Http> {
        let mut child = kubectl
            .args(["-n", namespace, "port-forward", target, &format!(":{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting kubectl port-forward")?;
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line).context("reading kubectl port-forward")?;
        // "Forwarding from 127.0.0.1:40123 -> 8000"
        let local = line
            .split_whitespace()
            .nth(2)
            .and_then(|address| address.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        let Some(local) = local else {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "kubectl port-forward {namespace}/{target}:{port}: {}{}",
                line.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        };
        // kubectl goes on writing a line per connection: read to the end, as a closed pipe would kill it (SIGPIPE
        // on its standard output) and a full one would stall it.
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        std::thread::spawn(move || std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink()));
        Ok(Http {
            base: format!("http://127.0.0.1:{local}"),
            forward: Some(child),
        })
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(child) = &mut self.forward {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A rule of the node's `iptables` FORWARD chain, deleted when dropped; `iptables` is the command that runs the
/// node's own (`-I` or `-D` and the rule are added).
pub struct CutOff {
    iptables: Box<dyn Fn() -> Command>,
    rule: Vec<String>,
}

impl CutOff {
    pub fn new(iptables: impl Fn() -> Command + 'static, from: &str, to: &str) -> anyhow::Result<CutOff> {
        let rule: Vec<String> = ["FORWARD", "-s", from, "-d", to, "-j", "DROP"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        run_ok(iptables().arg("-I").args(&rule))?;
        Ok(CutOff {
            iptables: Box::new(iptables),
            rule,
        })
    }
}

impl Drop for CutOff {
    fn drop(&mut self) {
        let _ = run_ok((self.iptables)().arg("-D").args(&self.rule));
    }
}

/// A PostgreSQL server for the cluster's pods: their connection URL, and what stops the server when dropped.
pub struct Postgres {
    pub url: String,
    _server: Box<dyn Any>,
}

impl Postgres {
    pub fn new(url: String, server: impl Any) -> Postgres {
        Postgres {
            url,
            _server: Box::new(server),
        }
    }
}

/// Polls `check` every 200 ms until it succeeds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while !check() {
        if Instant::now() > end {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs `command`, its standard output, or why it failed with its standard error.
pub fn run_ok(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn apply(mut kubectl: Command, yaml: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = kubectl
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped").write_all(yaml.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `tool` is on PATH.
pub fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Prometheus Operator's own manifests, which the suite installs as kube-prometheus-stack would: its CRDs
/// (`example/prometheus-operator-crd/`) and its Deployment with RBAC (`example/rbac/prometheus-operator/`).
#[derive(Debug, Clone)]
pub struct PrometheusOperatorAssets {
    pub crds: PathBuf,
    pub bundle: PathBuf,
}

impl PrometheusOperatorAssets {
    /// `prometheus-operator-crds/` and `prometheus-operator-bundle/` in `dir`, or what is missing.
    pub fn in_dir(dir: &Path) -> Result<PrometheusOperatorAssets, String> {
        let assets = PrometheusOperatorAssets {
            crds: dir.join("prometheus-operator-crds"),
            bundle: dir.join("prometheus-operator-bundle"),
        };
        for file in [
            assets.bundle.join("prometheus-operator-deployment.yaml"),
            assets.crds.join("monitoring.coreos.com_servicemonitors.yaml"),
        ] {
            if !file.is_file() {
                return Err(format!("{} is missing", file.display()));
            }
        }
        Ok(assets)
    }
}

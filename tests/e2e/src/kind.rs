//! A kind cluster as the e2e suite's cluster: the path of a laptop with Docker and of the hosted CI
//! (`scripts/kind-e2e.sh` makes one and runs the suite on it). The product's images are loaded with
//! `kind load image-archive`; the Prometheus Operator's and PostgreSQL's come from their registries; pods are reached
//! through `kubectl port-forward`, which needs no route from the host into the cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use crate::cluster::{Cluster, CutOff, Http, Postgres, installed, run_ok, wait_for};

/// The variable naming the kind cluster to run on.
pub const CLUSTER_VAR: &str = "E2E_KIND_CLUSTER";

pub struct Kind {
    name: String,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Kind {
    /// The kind cluster named by `E2E_KIND_CLUSTER`, or why there is none to run on.
    pub fn from_env() -> Result<Kind, String> {
        let name = std::env::var(CLUSTER_VAR).map_err(|_| format!("{CLUSTER_VAR} is not set"))?;
        for tool in ["kind", "kubectl", "docker"] {
            if !installed(tool) {
                return Err(format!("{tool} is not installed"));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("e2e-kind-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let kubeconfig = dir.path().join("kubeconfig");
        let yaml = run_ok(Command::new("kind").args(["get", "kubeconfig", "--name", &name]))
            .map_err(|e| format!("no kind cluster {name}: {e}"))?;
        std::fs::write(&kubeconfig, yaml).map_err(|e| e.to_string())?;
        Ok(Kind { name, kubeconfig, dir })
    }
}

/// PostgreSQL from its official image, in a namespace of its own (the image runs as root, which the suite's
/// `restricted` namespaces refuse), `NAMESPACE` replaced by its name.
const POSTGRES: &str = "apiVersion: v1
kind: Namespace
metadata: {name: NAMESPACE}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: NAMESPACE}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: postgres
        image: docker.io/library/postgres:17-alpine
        env:
        - {name: POSTGRES_USER, value: chatbot}
        - {name: POSTGRES_PASSWORD, value: chatbot-password}
        - {name: POSTGRES_DB, value: chatbot}
        ports: [{containerPort: 5432}]
        readinessProbe:
          exec: {command: [pg_isready, -U, chatbot, -d, chatbot, -h, 127.0.0.1]}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: NAMESPACE}
spec:
  selector: {app: db}
  ports: [{port: 5432}]
";

/// Deletes a PostgreSQL's namespace when the suite is done with it.
struct PostgresNamespace(Command, String);

impl Drop for PostgresNamespace {
    fn drop(&mut self) {
        let _ = self.0.args(["delete", "namespace", &self.1, "--wait=false"]).output();
    }
}

/// Each PostgreSQL gets a namespace of its own: an earlier one's may still be terminating.
static POSTGRES_SERVERS: AtomicUsize = AtomicUsize::new(0);

impl Cluster for Kind {
    fn kubectl_command(&self) -> Command {
        let mut command = Command::new("kubectl");
        command.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        command
    }

    fn workdir(&self) -> &Path {
        self.dir.path()
    }

    fn import_image(&self, archive: &Path) -> anyhow::Result<()> {
        run_ok(
            Command::new("kind")
                .args(["load", "image-archive", "--name", &self.name])
                .arg(archive),
        )?;
        Ok(())
    }

    fn http(&self, namespace: &str, target: &str, port: u16) -> anyhow::Result<Http> {
        Http::forwarded(self.kubectl_command(), namespace, target, port)
    }

    fn postgres(&self) -> anyhow::Result<Postgres> {
        let namespace = format!("e2e-postgres-{}", POSTGRES_SERVERS.fetch_add(1, Ordering::Relaxed));
        self.kubectl_apply(&POSTGRES.replace("NAMESPACE", &namespace))?;
        wait_for("PostgreSQL Ready", Duration::from_secs(180), || {
            self.kubectl(&[
                "-n",
                &namespace,
                "get",
                "deployment",
                "db",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .is_ok_and(|r| r.trim() == "1")
        })
        .context("PostgreSQL on kind")?;
        Ok(Postgres::new(
            format!("postgres://chatbot:chatbot-password@db.{namespace}.svc.cluster.local:5432/chatbot"),
            PostgresNamespace(self.kubectl_command(), namespace),
        ))
    }

    /// kind's pods have a veth each, routed by the node: traffic between two of them passes its FORWARD chain.
    fn cut_off(&self, from: &str, to: &str) -> anyhow::Result<CutOff> {
        let node = format!("{}-control-plane", self.name);
        CutOff::new(
            move || {
                let mut command = Command::new("docker");
                command.args(["exec", &node, "iptables"]);
                command
            },
            from,
            to,
        )
    }

    fn node_log(&self) -> String {
        run_ok(Command::new("docker").args([
            "exec",
            &format!("{}-control-plane", self.name),
            "journalctl",
            "-u",
            "kubelet",
            "--no-pager",
            "-n",
            "30",
        ]))
        .unwrap_or_else(|e| e.to_string())
    }
}

//! A real one-node cluster for the tests, on this machine: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, containerd with runc, the kubelet, kube-proxy and CoreDNS, every one inside a network namespace
//! with no route out (each daemon enters only the network namespace, so the mount namespace stays shared and the
//! kubelet's volume mounts reach runc). The tests reach it through a veth pair with routes to the node's, pods' and
//! Services' ranges; nothing inside can reach anything outside it.
//!
//! The binaries are built outside the repository (see the README, "The components of a real node"):
//! `KUBEBUILDER_ASSETS` holds etcd, kube-apiserver and kube-controller-manager; `NODE_ASSETS` holds `bin/` (kubelet,
//! kube-scheduler, kube-proxy, coredns) and `images/` (OCI archives, the sandbox's pause among them). Debian's
//! containerd, runc, containernetworking-plugins, iptables, conntrack and openssl do the rest. Root is needed.

pub mod config;
pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use config::{ADDRESSES, Addresses};

use crate::cluster::{Cluster, CutOff, Http, Postgres, PrometheusOperatorAssets, installed, run_ok, wait_for};

/// The network namespace the node lives in.
pub const NETNS: &str = "cbnode";
pub const NODE_NAME: &str = "cbnode";
const CGROUP_ROOT: &str = "/cbnode";
const HOST_LINK: &str = "cbveth-h";
const NETNS_LINK: &str = "cbveth-n";

/// Where the binaries and images are, from the environment.
#[derive(Debug, Clone)]
pub struct NodeAssets {
    pub control_plane: PathBuf,
    pub bin: PathBuf,
    pub images: PathBuf,
    /// The Prometheus Operator's CRDs and manifests, run as a pod from its image (in `images/`).
    pub prometheus_operator: PrometheusOperatorAssets,
}

impl NodeAssets {
    /// `KUBEBUILDER_ASSETS` and `NODE_ASSETS`, or why the tier cannot run here.
    pub fn from_env() -> Result<NodeAssets, String> {
        let dir = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .ok_or(format!("{var} is not set"))
        };
        let control_plane = dir("KUBEBUILDER_ASSETS")?;
        let node = dir("NODE_ASSETS")?;
        let assets = NodeAssets {
            control_plane,
            bin: node.join("bin"),
            images: node.join("images"),
            prometheus_operator: PrometheusOperatorAssets::in_dir(&node)?,
        };
        for (dir, name) in [
            (&assets.control_plane, "etcd"),
            (&assets.control_plane, "kube-apiserver"),
            (&assets.control_plane, "kube-controller-manager"),
            (&assets.bin, "kubelet"),
            (&assets.bin, "kube-scheduler"),
            (&assets.bin, "kube-proxy"),
            (&assets.bin, "coredns"),
        ] {
            if !dir.join(name).is_file() {
                return Err(format!("{} is missing", dir.join(name).display()));
            }
        }
        for tool in [
            "containerd",
            "ctr",
            "runc",
            "nsenter",
            "ip",
            "iptables",
            "openssl",
            "kubectl",
            "curl",
        ] {
            if !installed(tool) {
                return Err(format!("{tool} is not installed"));
            }
        }
        if !Path::new("/usr/lib/cni/bridge").is_file() {
            return Err("the CNI plugins are not installed (Debian's containernetworking-plugins)".into());
        }
        // SAFETY: geteuid reads the process's effective user id and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        // The harness makes and removes the kubelet's cgroups in each cgroup v1 hierarchy; a unified (v2) hierarchy
        // has none, and would leave the pods' cgroups behind.
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            return Err("this host mounts cgroup v2 only; the harness handles cgroup v1 hierarchies".into());
        }
        Ok(assets)
    }
}

/// A running node; stopped and cleaned up (processes, mounts, cgroups, the namespace) when dropped.
pub struct Node {
    pub run: PathBuf,
    pub addresses: Addresses,
    pub admin_token: String,
    processes: Vec<(String, Child)>,
    sysctls: Vec<(String, String)>,
    _dir: tempfile::TempDir,
    pub started: Instant,
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    run_ok(Command::new("ip").args(args))
}

/// A command inside the node's network namespace.
pub fn in_netns(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{NETNS}")).arg(program);
    c
}

/// Sysctls the kubelet rewrites (protectKernelDefaults off): put back when the node stops.
const SYSCTLS: &[&str] = &[
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
];

impl Node {
    /// Starts the whole node and waits until it is Ready.
    pub fn start(assets: &NodeAssets) -> anyhow::Result<Node> {
        let started = Instant::now();
        if Path::new(&format!("/run/netns/{NETNS}")).exists() {
            bail!("the network namespace {NETNS} exists: another node runs, or one was not cleaned up");
        }
        let dir = tempfile::Builder::new().prefix("cbnode-").tempdir()?;
        let run = dir.path().to_owned();
        for sub in [
            "logs",
            "pki",
            "kubeconfig",
            "etcd",
            "containerd",
            "kubelet",
            "kubelet-plugins",
            "pod-logs",
            "cni/net.d",
            "cni/ipam",
        ] {
            std::fs::create_dir_all(run.join(sub))?;
        }
        let sysctls = SYSCTLS
            .iter()
            .filter_map(|k| {
                run_ok(Command::new("sysctl").args(["-n", k]))
                    .ok()
                    .map(|v| (k.to_string(), v.trim().to_owned()))
            })
            .collect();
        let mut node = Node {
            run: run.clone(),
            addresses: ADDRESSES,
            admin_token: String::new(),
            processes: Vec::new(),
            sysctls,
            _dir: dir,
            started,
        };
        node.network()?;
        node.bring_up(assets)?;
        Ok(node)
    }

    /// The namespace: a bridge holding the node's address, a route for the Service range to it, no default route
    /// (an IPv6 `unreachable` default only, which etcd requires to find "a default route"), and the veth to the host.
    fn network(&self) -> anyhow::Result<()> {
        let a = &self.addresses;
        ip(&["netns", "add", NETNS])?;
        ip(&["-n", NETNS, "link", "set", "lo", "up"])?;
        ip(&["-n", NETNS, "link", "add", "cbbr0", "type", "bridge"])?;
        ip(&["-n", NETNS, "addr", "add", &format!("{}/24", a.node_ip), "dev", "cbbr0"])?;
        ip(&["-n", NETNS, "link", "set", "cbbr0", "up"])?;
        ip(&["-n", NETNS, "route", "add", a.service_cidr, "dev", "cbbr0"])?;
        ip(&["-n", NETNS, "-6", "route", "add", "unreachable", "default"])?;
        ip(&["link", "add", HOST_LINK, "type", "veth", "peer", "name", NETNS_LINK])?;
        ip(&["link", "set", NETNS_LINK, "netns", NETNS])?;
        ip(&["addr", "add", &format!("{}/30", a.host_link_ip), "dev", HOST_LINK])?;
        ip(&["link", "set", HOST_LINK, "up"])?;
        ip(&[
            "-n",
            NETNS,
            "addr",
            "add",
            &format!("{}/30", a.netns_link_ip),
            "dev",
            NETNS_LINK,
        ])?;
        ip(&["-n", NETNS, "link", "set", NETNS_LINK, "up"])?;
        for range in [a.node_cidr, a.pod_cidr, a.service_cidr] {
            ip(&["route", "add", range, "via", a.netns_link_ip])?;
        }
        run_ok(in_netns("sysctl").args(["-qw", "net.ipv4.ip_forward=1"]))?;
        run_ok(in_netns("sysctl").args(["-qw", "net.bridge.bridge-nf-call-iptables=1"]))?;
        // Pods reach nothing outside the namespace, the host included: a connection they open through the veth is
        // refused (the test's own connections into pods come back through it as established).
        run_ok(in_netns("iptables").args([
            "-I",
            "FORWARD",
            "-o",
            NETNS_LINK,
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-j",
            "REJECT",
        ]))?;
        Ok(())
    }

    /// Starts `program` inside the namespace, in its own process group, logging to `logs/<name>.log`.
    fn spawn(&mut self, name: &str, program: &Path, args: &[String]) -> anyhow::Result<()> {
        self.spawn_with_env(name, program, args, &[])
    }

    /// Starts another process inside the namespace (the Prometheus Operator, say), stopped with the node, with
    /// `env` added; `KUBECONFIG` names the administrator's kubeconfig.
    pub fn spawn_with_env(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.run.join(format!("logs/{name}.log")))?;
        let child = in_netns(program)
            .args(args)
            .env("KUBECONFIG", self.run.join("kubeconfig/admin.kubeconfig"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.processes.push((name.to_owned(), child));
        Ok(())
    }

    fn path(&self, p: &str) -> String {
        self.run.join(p).display().to_string()
    }

    fn bring_up(&mut self, assets: &NodeAssets) -> anyhow::Result<()> {
        let a = self.addresses.clone();
        let tokens = pki::make(&self.run.join("pki"), &a, NODE_NAME)?;
        let token = |user: &str| {
            tokens
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        self.admin_token = token("admin");
        let server = format!("https://{}:6443", a.node_ip);
        let ca = self.run.join("pki/ca.crt");
        for (file, user) in [
            ("admin", "admin"),
            ("kubelet", &*format!("system:node:{NODE_NAME}")),
            ("kcm", "system:kube-controller-manager"),
            ("scheduler", "system:kube-scheduler"),
            ("kube-proxy", "system:kube-proxy"),
            ("coredns", "system:coredns"),
        ] {
            std::fs::write(
                self.run.join(format!("kubeconfig/{file}.kubeconfig")),
                config::kubeconfig(&server, &ca, user, &token(user)),
            )?;
        }
        std::fs::write(self.run.join("containerd.toml"), config::containerd(&self.run))?;
        std::fs::write(
            self.run.join("cni/net.d/10-cbnode.conflist"),
            config::cni(&self.run, &a),
        )?;
        std::fs::write(
            self.run.join("kubelet-config.yaml"),
            config::kubelet(&self.run, &a, CGROUP_ROOT),
        )?;
        std::fs::write(
            self.run.join("kube-proxy-config.yaml"),
            config::kube_proxy(&self.run, &a, NODE_NAME),
        )?;
        std::fs::write(self.run.join("Corefile"), config::corefile(&self.run, &a))?;
        // The pods' resolver is CoreDNS alone: no upstream, no search domains of the host.
        std::fs::write(self.run.join("resolv.conf"), format!("nameserver {}\n", a.node_ip))?;
        // The kubelet's cgroup root, in every v1 hierarchy (cpuset needs its cpus and mems).
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
            let p = hierarchy.path();
            if p.join("cgroup.procs").exists() && !p.join("cgroup.controllers").exists() {
                std::fs::create_dir_all(p.join(CGROUP_ROOT.trim_start_matches('/')))?;
            }
        }
        let cpuset = Path::new("/sys/fs/cgroup/cpuset");
        if cpuset.is_dir() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(cpuset.join(f))?;
                std::fs::write(cpuset.join("cbnode").join(f), v)?;
            }
        }

        let cp = &assets.control_plane;
        let etcd_data = self.path("etcd");
        self.spawn(
            "etcd",
            &cp.join("etcd"),
            &[
                "--name=cbnode".into(),
                format!("--data-dir={etcd_data}"),
                "--listen-client-urls=http://127.0.0.1:2379".into(),
                "--advertise-client-urls=http://127.0.0.1:2379".into(),
                "--listen-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-cluster=cbnode=http://127.0.0.1:2380".into(),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        )?;
        let containerd_config = self.path("containerd.toml");
        self.spawn(
            "containerd",
            Path::new("/usr/bin/containerd"),
            &[format!("--config={containerd_config}")],
        )?;
        let sock = self.path("containerd/containerd.sock");
        wait_for("etcd", Duration::from_secs(30), || {
            in_netns("curl")
                .args(["-sf", "http://127.0.0.1:2379/health"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        wait_for("containerd", Duration::from_secs(30), || {
            Command::new("ctr")
                .args(["--address", &sock, "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        let run = self.run.clone();
        let pki = |f: &str| run.join("pki").join(f).display().to_string();
        let apiserver_args = vec![
            "--etcd-servers=http://127.0.0.1:2379".into(),
            "--bind-address=0.0.0.0".into(),
            "--secure-port=6443".into(),
            format!("--advertise-address={}", a.node_ip),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--client-ca-file={}", pki("ca.crt")),
            format!("--token-auth-file={}", pki("tokens.csv")),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            format!("--service-cluster-ip-range={}", a.service_cidr),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            format!("--kubelet-client-certificate={}", pki("apiserver-kubelet-client.crt")),
            format!("--kubelet-client-key={}", pki("apiserver-kubelet-client.key")),
            format!("--kubelet-certificate-authority={}", pki("ca.crt")),
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            "--profiling=false".into(),
        ];
        self.spawn("kube-apiserver", &cp.join("kube-apiserver"), &apiserver_args)?;
        // The third-party images (the sandbox's pause among them) while the API server starts.
        for entry in std::fs::read_dir(&assets.images)?.flatten() {
            self.import_image(&entry.path())?;
        }
        let readyz = format!("https://{}:6443/readyz", a.node_ip);
        let auth = format!("Authorization: Bearer {}", self.admin_token);
        let ca_path = pki("ca.crt");
        wait_for("kube-apiserver", Duration::from_secs(90), || {
            in_netns("curl")
                .args(["-sf", "--cacert", &ca_path, "-H", &auth, &readyz])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;

        let kc = |f: &str| run.join(format!("kubeconfig/{f}.kubeconfig")).display().to_string();
        let kcm = kc("kcm");
        self.spawn(
            "kube-controller-manager",
            &cp.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={kcm}"),
                format!("--authentication-kubeconfig={kcm}"),
                format!("--authorization-kubeconfig={kcm}"),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=10257".into(),
                "--leader-elect=false".into(),
                "--controllers=*".into(),
                "--use-service-account-credentials=true".into(),
                format!("--service-account-private-key-file={}", pki("sa.key")),
                format!("--root-ca-file={}", pki("ca.crt")),
                format!("--cluster-signing-cert-file={}", pki("ca.crt")),
                format!("--cluster-signing-key-file={}", pki("ca.key")),
                "--cluster-name=cbnode".into(),
                "--allocate-node-cidrs=false".into(),
                format!("--service-cluster-ip-range={}", a.service_cidr),
                "--kube-api-qps=200".into(),
                "--kube-api-burst=400".into(),
                "--profiling=false".into(),
            ],
        )?;
        let sched = kc("scheduler");
        self.spawn(
            "kube-scheduler",
            &assets.bin.join("kube-scheduler"),
            &[
                format!("--kubeconfig={sched}"),
                format!("--authentication-kubeconfig={sched}"),
                format!("--authorization-kubeconfig={sched}"),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=10259".into(),
                "--leader-elect=false".into(),
                "--profiling=false".into(),
            ],
        )?;
        self.spawn(
            "kubelet",
            &assets.bin.join("kubelet"),
            &[
                format!("--config={}", self.path("kubelet-config.yaml")),
                format!("--kubeconfig={}", kc("kubelet")),
                format!("--root-dir={}", self.path("kubelet")),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={}", a.node_ip),
            ],
        )?;
        self.spawn(
            "kube-proxy",
            &assets.bin.join("kube-proxy"),
            &[format!("--config={}", self.path("kube-proxy-config.yaml"))],
        )?;
        self.kubectl_apply(COREDNS_RBAC)?;
        self.spawn(
            "coredns",
            &assets.bin.join("coredns"),
            &["-conf".into(), self.path("Corefile")],
        )?;
        wait_for("the node Ready", Duration::from_secs(120), || {
            self.kubectl(&[
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .is_ok_and(|s| s.trim() == "True")
        })?;
        Ok(())
    }

    /// A kube client as the administrator, over the veth from the host.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let yaml = std::fs::read_to_string(self.run.join("kubeconfig/admin.kubeconfig"))?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A component's log so far, for a failure's message.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.run.join(format!("logs/{name}.log"))).unwrap_or_default()
    }

    fn stop(&mut self, names: &[&str]) {
        let chosen: Vec<usize> = (0..self.processes.len())
            .filter(|&i| names.contains(&self.processes[i].0.as_str()))
            .collect();
        for &i in &chosen {
            let pid = self.processes[i].1.id();
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let end = Instant::now() + Duration::from_secs(10);
        for &i in &chosen {
            let child = &mut self.processes[i].1;
            while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster for Node {
    /// From inside the namespace, where the API server's address is.
    fn kubectl_command(&self) -> Command {
        let mut command = in_netns("kubectl");
        command.arg(format!("--kubeconfig={}", self.path("kubeconfig/admin.kubeconfig")));
        command
    }

    fn workdir(&self) -> &Path {
        &self.run
    }

    /// Into the node's containerd, in the namespace the kubelet uses.
    fn import_image(&self, archive: &Path) -> anyhow::Result<()> {
        let sock = self.path("containerd/containerd.sock");
        run_ok(
            Command::new("ctr")
                .args(["--address", &sock, "-n", "k8s.io", "images", "import"])
                .arg(archive),
        )?;
        Ok(())
    }

    /// Pod and Service addresses are routed from the host over the veth: the request goes as a client's would,
    /// through the pod network or kube-proxy's rules.
    fn http(&self, namespace: &str, target: &str, port: u16) -> anyhow::Result<Http> {
        let field = match target.split_once('/') {
            Some(("pod", _)) => "{.status.podIP}",
            Some(("service", _)) => "{.spec.clusterIP}",
            _ => bail!("{target}: neither pod/<name> nor service/<name>"),
        };
        let address = self.kubectl(&["-n", namespace, "get", target, "-o", &format!("jsonpath={field}")])?;
        if address.trim().is_empty() {
            bail!("{namespace}/{target} has no address yet");
        }
        Ok(Http::direct(address.trim(), port))
    }

    /// Debian's PostgreSQL in the node's network namespace, on the node's address, admitting the pod range.
    fn postgres(&self) -> anyhow::Result<Postgres> {
        let server = testsupport::postgres::TestPostgres::start_with(testsupport::postgres::Listen {
            netns: Some(NETNS.into()),
            address: self.addresses.node_ip.into(),
            port: Some(5432),
            clients: Some(self.addresses.pod_cidr.into()),
        })?;
        Ok(Postgres::new(server.client_url(), server))
    }

    /// Pods share the node's bridge, whose frames pass the namespace's iptables (`bridge-nf-call-iptables`).
    fn cut_off(&self, from: &str, to: &str) -> anyhow::Result<CutOff> {
        CutOff::new(|| in_netns("iptables"), from, to)
    }

    fn node_log(&self) -> String {
        let log = self.log("kubelet");
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// The node's own processes (others, started by tests, are stopped first).
const CORE: &[&str] = &[
    "etcd",
    "containerd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
];

/// CoreDNS reads Services, EndpointSlices, pods and namespaces.
const COREDNS_RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:coredns'}
rules:
- apiGroups: ['']
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:coredns'}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:coredns'}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: 'system:coredns'}
";

impl Drop for Node {
    /// Node agents first (nothing restarts pods), then every pod process (all under the kubelet's cgroup root), the
    /// shims of this containerd, containerd and the API server, etcd; then the mounts under the run directory, the
    /// namespace (its links and iptables go with it), the cgroups, the host's routes, the sysctls the kubelet set.
    fn drop(&mut self) {
        let extra: Vec<String> = self
            .processes
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !CORE.contains(&n.as_str()))
            .collect();
        self.stop(&extra.iter().map(String::as_str).collect::<Vec<_>>());
        self.stop(&[
            "coredns",
            "kube-proxy",
            "kubelet",
            "kube-scheduler",
            "kube-controller-manager",
        ]);
        for _ in 0..3 {
            let mut pids = Vec::new();
            for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                let root = hierarchy.path().join(CGROUP_ROOT.trim_start_matches('/'));
                collect_procs(&root, &mut pids);
            }
            pids.sort_unstable();
            pids.dedup();
            if pids.is_empty() {
                break;
            }
            for pid in &pids {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let sock = self.path("containerd/containerd.sock");
        for proc_dir in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(proc_dir.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("containerd-shim") && cmdline.contains(&sock) {
                let _ = Command::new("kill")
                    .args(["-KILL", &proc_dir.file_name().to_string_lossy()])
                    .status();
            }
        }
        self.stop(&["containerd", "kube-apiserver"]);
        self.stop(&["etcd"]);
        let prefix = format!("{}/", self.run.display());
        for _ in 0..3 {
            let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            if mounts.is_empty() {
                break;
            }
            mounts.sort_unstable_by(|a, b| b.cmp(a));
            for m in mounts {
                if !Command::new("umount")
                    .arg(&m)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    let _ = Command::new("umount").args(["-l", &m]).status();
                }
            }
        }
        let _ = ip(&["netns", "del", NETNS]);
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            remove_cgroups(&hierarchy.path().join(CGROUP_ROOT.trim_start_matches('/')));
        }
        for range in [
            self.addresses.node_cidr,
            self.addresses.pod_cidr,
            self.addresses.service_cidr,
        ] {
            // Only the route this node added (via its veth): one of the host's own for the range stays.
            let _ = ip(&["route", "del", range, "via", self.addresses.netns_link_ip]);
        }
        let _ = ip(&["link", "del", HOST_LINK]);
        for (key, value) in &self.sysctls {
            let _ = Command::new("sysctl").args(["-qw", &format!("{key}={value}")]).status();
        }
        // The kubelet links container logs from /var/log/containers, whatever its pod logs directory.
        for link in std::fs::read_dir("/var/log/containers").into_iter().flatten().flatten() {
            if std::fs::read_link(link.path()).is_ok_and(|t| t.starts_with(&self.run)) {
                let _ = std::fs::remove_file(link.path());
            }
        }
        // libcni's cache of this network's attachments (its directory is not configurable through containerd).
        let ours = format!("{}-", config::CNI_NETWORK);
        for cached in std::fs::read_dir("/var/lib/cni/results")
            .into_iter()
            .flatten()
            .flatten()
        {
            if cached.file_name().to_string_lossy().starts_with(&ours) {
                let _ = std::fs::remove_file(cached.path());
            }
        }
    }
}

fn collect_procs(dir: &Path, pids: &mut Vec<String>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().map(str::to_owned));
    }
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.path().is_dir() {
            collect_procs(&sub.path(), pids);
        }
    }
}

/// Removes a cgroup directory tree, deepest first (a cgroup is removed with rmdir, once empty).
fn remove_cgroups(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.path().is_dir() {
            remove_cgroups(&sub.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

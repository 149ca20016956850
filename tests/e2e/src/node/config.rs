//! The configuration files of a one-node cluster, as pure functions of where it runs (its run directory) and its
//! addresses: containerd's, the CNI network's, the kubelet's, kube-proxy's, CoreDNS's, and kubeconfigs.

use std::path::Path;

/// The addresses of a node: everything lives in one network namespace with no route out.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The bridge's address inside the namespace: API server, kubelet, CoreDNS.
    pub node_ip: &'static str,
    pub node_cidr: &'static str,
    pub pod_cidr: &'static str,
    pub pod_gateway: &'static str,
    pub service_cidr: &'static str,
    /// The `kubernetes` Service's ClusterIP: the first of the Service range.
    pub kubernetes_service_ip: &'static str,
    /// The link between the host (where the tests run) and the namespace: host end, namespace end.
    pub host_link_ip: &'static str,
    pub netns_link_ip: &'static str,
}

pub const ADDRESSES: Addresses = Addresses {
    node_ip: "10.79.0.1",
    node_cidr: "10.79.0.0/24",
    pod_cidr: "10.80.0.0/24",
    pod_gateway: "10.80.0.1",
    service_cidr: "10.97.0.0/16",
    kubernetes_service_ip: "10.97.0.1",
    host_link_ip: "10.79.255.1",
    netns_link_ip: "10.79.255.2",
};

/// containerd 1.6's CRI: its own root, state and socket under `run`; the sandbox image imported locally; no
/// oom_score_adj changes (root here lacks CAP_SYS_RESOURCE).
pub fn containerd(run: &Path) -> String {
    let r = run.display();
    format!(
        r#"version = 2
root = "{r}/containerd/root"
state = "{r}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{r}/containerd/containerd.sock"

[ttrpc]
  address = "{r}/containerd/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{r}/containerd/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_tcp_service = true
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "{r}/containerd/runc"
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{r}/cni/net.d"
      max_conf_num = 1
"#
    )
}

/// The CNI network's name: libcni caches each attachment's result as `/var/lib/cni/results/<name>-…`.
pub const CNI_NETWORK: &str = "cbnode";

/// A bridge network with host-local addresses on the pod range.
pub fn cni(run: &Path, a: &Addresses) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {"type": "bridge", "bridge": "cbcni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": a.pod_cidr, "gateway": a.pod_gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": run.join("cni/ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// The kubelet on a cgroup v1 host with the cgroupfs driver, under its own cgroup root, serving with a certificate
/// the cluster's CA signed, and CoreDNS as the pods' resolver.
pub fn kubelet(run: &Path, a: &Addresses, cgroup_root: &str) -> String {
    let r = run.display();
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix://{r}/containerd/containerd.sock
imageServiceEndpoint: unix://{r}/containerd/containerd.sock
address: {ip}
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {r}/pki/ca.crt
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS:
  - {ip}
resolvConf: {r}/resolv.conf
podLogsDir: {r}/pod-logs
volumePluginDir: {r}/kubelet-plugins
staticPodPath: \"\"
registerNode: true
rotateCertificates: false
serverTLSBootstrap: false
tlsCertFile: {r}/pki/kubelet.crt
tlsPrivateKeyFile: {r}/pki/kubelet.key
hairpinMode: hairpin-veth
maxPods: 50
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
evictionHard:
  memory.available: \"100Mi\"
  nodefs.available: \"1%\"
  nodefs.inodesFree: \"1%\"
  imagefs.available: \"1%\"
evictionPressureTransitionPeriod: 10s
nodeStatusUpdateFrequency: 10s
nodeStatusReportFrequency: 1m
syncFrequency: 10s
fileCheckFrequency: 20s
serializeImagePulls: false
",
        ip = a.node_ip
    )
}

/// kube-proxy in iptables mode, leaving the kernel's conntrack limits alone (not writable from a namespace).
pub fn kube_proxy(run: &Path, a: &Addresses, node: &str) -> String {
    format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
mode: iptables
hostnameOverride: {node}
bindAddress: {ip}
clusterCIDR: {pods}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [\"{ip}/32\"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  masqueradeAll: false
  localhostNodePorts: false
  syncPeriod: 30s
  minSyncPeriod: 1s
",
        kubeconfig = run.join("kubeconfig/kube-proxy.kubeconfig").display(),
        ip = a.node_ip,
        pods = a.pod_cidr
    )
}

/// CoreDNS answering for the cluster only: no `forward`, nothing is asked outside.
pub fn corefile(run: &Path, a: &Addresses) -> String {
    format!(
        ".:53 {{
    bind {ip}
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 5
    }}
    cache 5
}}
",
        ip = a.node_ip,
        kubeconfig = run.join("kubeconfig/coredns.kubeconfig").display()
    )
}

/// A kubeconfig for `user`, authenticated by its token.
pub fn kubeconfig(server: &str, ca: &Path, user: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: cbnode
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: cbnode
  context: {{cluster: cbnode, user: {user}}}
current-context: cbnode
",
        ca = ca.display()
    )
}

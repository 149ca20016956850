#!/usr/bin/env bash
# Installs what the tests and benchmarks need, only what is missing. Debian 12+ and Ubuntu 22.04+ (apt, with root or
# sudo); Python tools go in .venv (scripts/venv.sh), never in the system Python.
#   scripts/install-deps.sh          the tests: PostgreSQL server, promtool (Debian's prometheus), Alertmanager and
#                                    amtool (prometheus-alertmanager), python3-venv, and in .venv kubernetes-validate
#                                    (Kubernetes' own schemas, offline)
#   scripts/install-deps.sh --demo   what `make demo` needs, and no more: Prometheus, Alertmanager and curl
#   scripts/install-deps.sh --bench  the tests' and the load generator (wrk)
# With KUBEBUILDER_ASSETS set, also what the real-control-plane tests need (openssl; helm-python-sdk in .venv); with
# NODE_ASSETS set, what a real node needs (containerd, runc, CNI plugins, iptables, conntrack).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
# Alertmanager and amtool come in one package, which also holds the templates its binary loads from disk.
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [[ "$mode" == "--demo" ]]; then
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
else
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v runuser >/dev/null 2>&1 || need+=(util-linux)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  # Debian splits venv's pip bootstrap out of python3.
  python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
  [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && { command -v openssl >/dev/null 2>&1 || need+=(openssl); }
  # With NODE_ASSETS set, what a real node needs besides the binaries built from source (README, "Tests on a real
  # node"): Debian's container runtime, CNI plugins, and kube-proxy's iptables and conntrack.
  if [[ -n "${NODE_ASSETS:-}" ]]; then
    command -v containerd >/dev/null 2>&1 || need+=(containerd)
    command -v runc >/dev/null 2>&1 || need+=(runc)
    [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
    command -v iptables >/dev/null 2>&1 || need+=(iptables)
    command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
    command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v kubectl >/dev/null 2>&1 || echo "install-deps: the real-node tests drive the node with kubectl, which is not on PATH" >&2
  fi
fi
if [[ "$mode" == "--bench" ]]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi

if [[ ${#need[@]} -gt 0 ]]; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's package starts a cluster of its own; the tests start their own on free ports and need none.
  if command -v pg_lsclusters >/dev/null 2>&1 && [[ " ${need[*]} " == *" postgresql "* ]]; then
    $sudo pg_ctlcluster --force "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main stop 2>/dev/null || true
  fi
  # Debian's prometheus package starts its own server on :9090 where systemd runs, and `make demo` needs that port
  # for the Prometheus it runs on the operator's configuration. Only a package installed here and now is stopped
  # (and kept from starting at boot): a Prometheus the machine already ran is left alone.
  if [[ " ${need[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
    $sudo systemctl disable --now prometheus.service 2>/dev/null || true
  fi
  # The tests' node runs its own containerd, on its own socket: the package's service is not needed.
  if [[ " ${need[*]} " == *" containerd "* ]] && [[ -d /run/systemd/system ]]; then
    $sudo systemctl disable --now containerd.service 2>/dev/null || true
  fi
  # Likewise its Alertmanager on :9093 (and its cluster port :9094), which the demo's Alertmanager needs.
  if [[ " ${need[*]} " == *" prometheus-alertmanager "* ]] && [[ -d /run/systemd/system ]]; then
    $sudo systemctl disable --now prometheus-alertmanager.service 2>/dev/null || true
  fi
fi

if [[ "$mode" != "--demo" ]]; then
  python=(kubernetes_validate=kubernetes-validate)
  # The real-control-plane tests render the chart's RBAC with Helm's engine.
  [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && python+=(helm_python=helm-python-sdk yaml=pyyaml)
  scripts/venv.sh "${python[@]}"
fi

#!/usr/bin/env bash
# Installs what the tests and benchmarks need, only what is missing.
#   scripts/install-deps.sh          test dependencies: PostgreSQL server, promtool (Debian's prometheus),
#                                    kubernetes-validate (PyPI: Kubernetes' own schemas, offline)
#   scripts/install-deps.sh --demo   what `make demo` needs (Prometheus, curl)
#   scripts/install-deps.sh --bench  also the load generator (wrk)
# With KUBEBUILDER_ASSETS set, also what the real-control-plane tests need (openssl, helm-python-sdk).
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [[ "${1:-}" == "--demo" ]]; then
  command -v curl >/dev/null 2>&1 || need+=(curl)
fi
if [[ "${1:-}" == "--bench" ]]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
fi

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "install-deps: installing kubernetes-validate (PyPI)"
  python3 -m pip install -q --disable-pip-version-check kubernetes-validate
  # pyenv installs console scripts behind shims that need a rehash.
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# The real-control-plane tests (only when KUBEBUILDER_ASSETS names the binaries): openssl for the service-account
# key, and Helm's engine (helm-python-sdk) to render the chart's RBAC the operator runs with.
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  if ! python3 -c "import helm_python, yaml" >/dev/null 2>&1; then
    echo "install-deps: installing helm-python-sdk and pyyaml (PyPI) for the real-control-plane tests"
    python3 -m pip install -q --disable-pip-version-check helm-python-sdk pyyaml
  fi
fi

if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's package starts a cluster of its own; the tests start their own on free ports and need none.
if command -v pg_lsclusters >/dev/null 2>&1; then
  $sudo pg_ctlcluster --force "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main stop 2>/dev/null || true
fi
# Debian's prometheus package starts its own server on :9090 where systemd runs, and `make demo` needs that port for
# the Prometheus it runs on the operator's configuration. Only a package installed here and now is stopped (and kept
# from starting at boot): a Prometheus the machine already ran is left alone.
if [[ " ${need[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
  $sudo systemctl disable --now prometheus.service 2>/dev/null || true
fi

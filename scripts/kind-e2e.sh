#!/usr/bin/env bash
# The e2e suite on kind: the scenario `make test-node` runs on this machine's real node (tests/e2e/tests/product.rs),
# on a kind cluster instead, for a laptop with Docker and the hosted CI.
#   - creates the kind cluster chatbot-sav-e2e when absent (one node, no host ports: it can live beside the cluster
#     of `make kind-up`), and deletes it at the end unless KEEP_CLUSTER=1;
#   - fetches the Prometheus Operator's own manifests (its CRDs, and its Deployment with RBAC) of the version the
#     suite is written against into .e2e/; the suite installs them, and kind pulls the images they name;
#   - puts Helm's engine in .venv (the suite renders the operator chart with it, as on the node);
#   - runs the suite's kind entry: it builds the chatbot's and the operator's images from their Dockerfiles without
#     Docker and loads them with `kind load image-archive`, and reaches pods through `kubectl port-forward`.
# Needs docker, kind, kubectl, curl, cargo and python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${E2E_KIND_CLUSTER:-chatbot-sav-e2e}
# The version of tests/e2e's real node (README, "Getting the components"): the same scenario, the same operator.
PROMETHEUS_OPERATOR_VERSION=v0.87.1

missing=()
for tool in docker kind kubectl curl cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "kind-e2e: missing on PATH: ${missing[*]}" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "kind-e2e: docker is installed but its daemon does not answer; start Docker and retry" >&2
  exit 1
fi

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "kind-e2e: reusing the kind cluster $CLUSTER"
else
  kind create cluster --name "$CLUSTER" --wait 2m
fi
if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
  trap 'kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true' EXIT
fi

assets=.e2e/prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}
if [[ ! -f $assets/prometheus-operator-bundle/prometheus-operator-deployment.yaml ]]; then
  echo "kind-e2e: fetching the Prometheus Operator ${PROMETHEUS_OPERATOR_VERSION}'s manifests into $assets"
  base=https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/${PROMETHEUS_OPERATOR_VERSION}/example
  mkdir -p "$assets/prometheus-operator-crds" "$assets/prometheus-operator-bundle"
  for kind in alertmanagerconfigs alertmanagers podmonitors probes prometheusagents prometheuses prometheusrules \
    scrapeconfigs servicemonitors thanosrulers; do
    curl -fsSL -o "$assets/prometheus-operator-crds/monitoring.coreos.com_$kind.yaml" \
      "$base/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml"
  done
  # Its own installation but the Service and ServiceMonitor, which the suite does not need.
  for file in cluster-role-binding cluster-role deployment service-account; do
    curl -fsSL -o "$assets/prometheus-operator-bundle/prometheus-operator-$file.yaml" \
      "$base/rbac/prometheus-operator/prometheus-operator-$file.yaml"
  done
fi

scripts/venv.sh helm_python=helm-python-sdk yaml=pyyaml

E2E_KIND_CLUSTER=$CLUSTER E2E_PROMETHEUS_OPERATOR=$PWD/$assets \
  cargo test -p e2e-tests --test product on_kind -- --nocapture

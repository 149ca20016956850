#!/usr/bin/env bash
# One command from a laptop with Docker to a running, monitored chatbot on kind:
#   creates the kind cluster "chatbot-sav" (kind-config.yaml) when absent, builds the chatbot and operator images,
#   loads them into the cluster, installs charts/chatbot-stack (operator + kube-prometheus-stack + a ChatbotMonitoring)
#   with the local profile, waits until the ChatbotMonitoring is Ready, sends some traffic and prints the URLs.
# Idempotent: run it again after a code change to rebuild, reload and upgrade. scripts/kind-down.sh removes it all.
# Needs docker, kind, helm and kubectl on PATH (and curl for the traffic).
set -euo pipefail

cd "$(dirname "$0")/.."

CLUSTER=chatbot-sav
RELEASE=chatbot-sav
NAMESPACE=chatbot-sav
VERSION=0.1.0
CHATBOT_IMAGE=ghcr.io/chatbot-sav/chatbot:${VERSION}
OPERATOR_IMAGE=ghcr.io/chatbot-sav/chatbot-operator:${VERSION}

log() { printf '\n==> %s\n' "$*"; }

# Fail early, by name, rather than halfway through with "command not found".
missing=()
for tool in docker kind helm kubectl curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "kind-up: missing on PATH: ${missing[*]}" >&2
  echo "kind-up: install them first: Docker (https://docs.docker.com/get-docker/), kind (https://kind.sigs.k8s.io)," >&2
  echo "kind-up: helm (https://helm.sh/docs/intro/install/), kubectl (https://kubernetes.io/docs/tasks/tools/)." >&2
  exit 1
fi
# docker on PATH is not enough: the daemon must answer (Docker Desktop not started is the usual case).
if ! docker info >/dev/null 2>&1; then
  echo "kind-up: docker is installed but its daemon does not answer; start Docker and retry" >&2
  exit 1
fi

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "kind cluster $CLUSTER exists; reusing it"
else
  log "creating kind cluster $CLUSTER (ports 8001, 9090, 3000 on 127.0.0.1)"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 2m
fi
# Every kubectl and helm call below targets this cluster, whatever the current context is.
CONTEXT="kind-${CLUSTER}"
kubectl config use-context "$CONTEXT" >/dev/null

# BuildKit for the cache mounts of the Dockerfiles (the default builder on current Docker; explicit for older ones).
export DOCKER_BUILDKIT=1
log "building $CHATBOT_IMAGE"
docker build -f chatbot/Dockerfile --build-arg VERSION="$VERSION" -t "$CHATBOT_IMAGE" .
log "building $OPERATOR_IMAGE"
docker build -f operator/Dockerfile --build-arg VERSION="$VERSION" -t "$OPERATOR_IMAGE" .

# The images are not pulled from a registry: kind load puts them on the node, and IfNotPresent uses them.
log "loading the images into kind"
kind load docker-image --name "$CLUSTER" "$CHATBOT_IMAGE" "$OPERATOR_IMAGE"

# kube-prometheus-stack comes from its Helm repository; Helm needs the repository known to build the dependencies.
log "building the chart dependencies"
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
helm repo update prometheus-community >/dev/null
helm dependency build charts/chatbot-stack

# After a rebuild with the same tag, pods keep the old image: restart the operator's pods if the release exists
# (the operator then rolls the chatbot only when its spec changes; delete the chatbot pods to pick a new image).
existed=false
helm status "$RELEASE" -n "$NAMESPACE" >/dev/null 2>&1 && existed=true

# Helm installs a chart's crds/ once and never upgrades them: on a re-run, bring the CRD to this tree's schema first
# (docs/upgrading.md), or new fields would be pruned.
if [[ $existed == true ]]; then
  log "upgrading the ChatbotMonitoring CRD"
  kubectl apply --server-side --force-conflicts -f charts/chatbot-stack/crds/
fi

log "installing charts/chatbot-stack as release $RELEASE in namespace $NAMESPACE (this takes a few minutes)"
helm upgrade --install "$RELEASE" charts/chatbot-stack \
  --namespace "$NAMESPACE" --create-namespace \
  -f charts/chatbot-stack/values-local.yaml \
  --wait --timeout 10m

if [[ $existed == true ]]; then
  log "restarting pods so that they run the freshly loaded images"
  kubectl -n "$NAMESPACE" rollout restart deployment -l app.kubernetes.io/name=chatbot-monitoring-operator || true
  kubectl -n "$NAMESPACE" rollout restart deployment -l app.kubernetes.io/name=chatbot || true
  kubectl -n "$NAMESPACE" rollout status deployment/"$RELEASE"-chatbot-monitoring-operator --timeout=3m
fi

# helm --wait covers the release's own objects; the chatbot's Deployment is created later by the operator.
# The ChatbotMonitoring is Ready when its children are (Deployment available, ServiceMonitor, rules, dashboards).
log "waiting for the ChatbotMonitoring to be Ready"
if ! kubectl -n "$NAMESPACE" wait cbm --all --for=condition=Ready --timeout=5m; then
  echo "kind-up: the ChatbotMonitoring did not become Ready; its conditions and the operator's logs:" >&2
  kubectl get cbm -A -o yaml >&2 || true
  kubectl -n "$NAMESPACE" logs deployment/"$RELEASE"-chatbot-monitoring-operator --tail=50 >&2 || true
  exit 1
fi
kubectl get cbm -A

# The NodePort Service exists before the pod answers through it: retry briefly.
log "sending some traffic to http://localhost:8001/chat"
for _ in $(seq 1 30); do
  # Any HTTP answer will do: the probes are on the chatbot's internal port, not behind this NodePort.
  curl -s -o /dev/null http://localhost:8001/ && break
  sleep 2
done
messages=(
  '{"message": "Bonjour"}'
  '{"message": "Où est ma commande ?"}'
  '{"message": "Je veux retourner un article", "user_type": "guest"}'
  '{"message": "When will my refund arrive?"}'
  '{"message": "What are your opening hours?"}'
  '{"message": "I want to talk to a human", "user_type": "premium"}'
  '{"message": "blorp zzz"}'
)
sent=0
for _ in 1 2 3; do
  for m in "${messages[@]}"; do
    # A failed chat is left out of the count, not fatal: the traffic only gives the dashboards something to show.
    if curl -fsS -o /dev/null http://localhost:8001/chat -H 'content-type: application/json' -d "$m"; then
      sent=$((sent + 1))
    fi
  done
done
echo "sent $sent chat messages"

cat <<MSG

The chatbot stack is up (kubectl context $CONTEXT, namespace $NAMESPACE):
  chatbot     http://localhost:8001   curl -s localhost:8001/chat -H 'content-type: application/json' -d '{"message": "Où est ma commande ?"}'
  Prometheus  http://localhost:9090   /targets (the chatbot's ServiceMonitor), /alerts (its rules)
  Grafana     http://localhost:3000   admin / admin, folder "Chatbot SAV"
Tear it down with scripts/kind-down.sh.
MSG

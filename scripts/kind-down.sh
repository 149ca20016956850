#!/usr/bin/env bash
# Removes the kind cluster made by scripts/kind-up.sh, and everything in it (the images stay in the local Docker).
set -euo pipefail

CLUSTER=chatbot-sav

# Without kind there is no cluster of ours to delete.
command -v kind >/dev/null 2>&1 || { echo "kind-down: kind is not on PATH" >&2; exit 1; }

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  echo "kind-down: no kind cluster named $CLUSTER; nothing to do"
fi

#!/usr/bin/env bash
# The chart tests (tests/charts): Helm's own lint, schema validation and rendering through the PyPI package
# helm-python-sdk (Helm's Go SDK in a bundled library: no helm binary, no cluster, no network), plus the checks lint
# cannot make (CRD copy, exact RBAC, schema rejections, kind port mappings). Runs in .venv (scripts/venv.sh), which
# gets what is missing, only that.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/venv.sh helm_python=helm-python-sdk pytest=pytest yaml=pyyaml jsonschema=jsonschema \
  kubernetes_validate=kubernetes-validate

# No .pytest_cache or __pycache__ left in the work tree.
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/charts "$@"

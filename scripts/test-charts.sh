#!/usr/bin/env bash
# The chart tests (tests/charts): Helm's own lint, schema validation and rendering through the PyPI package
# helm-python-sdk (Helm's Go SDK in a bundled library: no helm binary, no cluster, no network), plus the checks lint
# cannot make (CRD copy, exact RBAC, schema rejections, kind port mappings). Installs what is missing, only that.
set -euo pipefail

cd "$(dirname "$0")/.."

# module to import -> PyPI package that provides it
declare -A packages=(
  [helm_python]=helm-python-sdk
  [pytest]=pytest
  [yaml]=pyyaml
  [jsonschema]=jsonschema
)
need=()
for module in "${!packages[@]}"; do
  python3 -c "import $module" >/dev/null 2>&1 || need+=("${packages[$module]}")
done
if [[ ${#need[@]} -gt 0 ]]; then
  echo "test-charts: installing ${need[*]} (PyPI)"
  python3 -m pip install -q --disable-pip-version-check "${need[@]}"
fi

# No .pytest_cache or __pycache__ left in the work tree.
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m pytest -q -p no:cacheprovider tests/charts "$@"

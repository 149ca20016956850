#!/usr/bin/env bash
# The Python tools the tests use live in .venv at the repository's root, never in the system Python: Debian 12 and
# Ubuntu 24.04 refuse to let pip change it (PEP 668). Creates .venv when missing, then installs into it the PyPI
# packages given as module=package arguments, only those whose module does not import yet.
#   scripts/venv.sh kubernetes_validate=kubernetes-validate yaml=pyyaml
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv || {
    rm -rf .venv
    echo "venv: python3 cannot create a virtual environment; install python3-venv (scripts/install-deps.sh does)" >&2
    exit 1
  }
fi
need=()
for spec in "$@"; do
  .venv/bin/python -c "import ${spec%%=*}" >/dev/null 2>&1 || need+=("${spec#*=}")
done
if [[ ${#need[@]} -gt 0 ]]; then
  echo "venv: installing ${need[*]} (PyPI) into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${need[@]}"
fi

"""Renders a chart offline with Helm's engine (helm-python-sdk, as the chart tests do) and prints its manifests as
one YAML stream, NOTES.txt excluded. The real-control-plane tests apply the operator chart's RBAC this way, so the
operator runs there with exactly what the chart grants.

    python3 tests/charts/render.py CHART_DIR --release NAME --namespace NS [--values JSON]
"""

from __future__ import annotations

import argparse
import json
import sys

try:
    import helm_python as helm
except ImportError:
    sys.exit("render.py: the PyPI package helm-python-sdk is missing (scripts/install-deps.sh installs it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart")
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--values", default="{}", help="values as a JSON object")
    args = parser.parse_args()
    with helm.Chart.load(args.chart) as chart:
        manifests = chart.render(json.loads(args.values), name=args.release, namespace=args.namespace, is_install=True)
    for path, text in sorted(manifests.items()):
        if not path.endswith("NOTES.txt") and text.strip():
            sys.stdout.write(f"---\n# {path}\n{text.strip()}\n")


if __name__ == "__main__":
    main()

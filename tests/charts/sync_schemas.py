"""Refreshes what the charts derive from the repository's CRD (crds/, generated from the Rust types):

- the CRD copies the charts ship: charts/chatbot-monitoring-operator/files/crds/ (read by its CRD template) and
  charts/chatbot-stack/crds/ (installed by Helm before the stack's ChatbotMonitoring), byte for byte;
- chatbot.spec in charts/chatbot-stack/values.schema.json: the CRD's spec schema (openAPIV3Schema.properties.spec)
  turned into draft-07 JSON Schema, so that `helm install`/`helm template` refuse a bad spec by its field's name.

    python3 tests/charts/sync_schemas.py      # after `chatbot-operator crd > crds/...`

tests/charts/test_charts.py checks that each of these is what this script would write, and names this script when one
is stale. Needs PyYAML only (the system python3 or .venv's).
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_NAME = "monitoring.chatbot-sav.io_chatbotmonitorings.yaml"
CRD = ROOT / "crds" / CRD_NAME
CRD_COPIES = (
    ROOT / "charts" / "chatbot-monitoring-operator" / "files" / "crds" / CRD_NAME,
    ROOT / "charts" / "chatbot-stack" / "crds" / CRD_NAME,
)
STACK_SCHEMA = ROOT / "charts" / "chatbot-stack" / "values.schema.json"

SPEC_DESCRIPTION = (
    "The ChatbotMonitoring spec (see crds/ and examples/full.yaml), checked against the CRD's own schema "
    "(tests/charts/sync_schemas.py derives it); only the CEL rules are left to the API server. With "
    "kube-prometheus-stack enabled, monitoring.labels.release is set to the release name."
)
# OpenAPI formats that are Kubernetes' or OpenAPI's own, not draft-07's: dropped (types and bounds say the same).
OPENAPI_ONLY_FORMATS = {"int32", "int64", "float", "double", "byte", "binary", "int-or-string", "password"}


def crd_spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    """openAPIV3Schema.properties.spec of the CRD's storage version."""
    version = next(v for v in crd["spec"]["versions"] if v.get("storage", True))
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def to_draft7(node: dict[str, Any], path: str) -> dict[str, Any]:
    """A Kubernetes structural schema as draft-07 JSON Schema, with what a cluster does made explicit:
    - nullable: true becomes a "null" type (and a null enum member);
    - x-kubernetes-int-or-string: true becomes type [integer, string];
    - an object with properties refuses other keys (additionalProperties: false), where the API server would
      refuse them too (kubectl's strict field validation) or prune them silently;
    - x-kubernetes-validations (CEL) cannot be said in JSON Schema: their messages go into the description;
    - every property gets a description (the CRD's, or one naming it), as the chart tests require."""
    out: dict[str, Any] = {}
    name = path.rsplit(".", 1)[-1]
    description = node.get("description")
    if not description:
        if "enum" in node:
            description = "One of " + ", ".join(str(v) for v in node["enum"]) + "."
        else:
            parent = path.rsplit(".", 1)[0] if "." in path else "the spec"
            description = f"{name} of {parent}."
    rules = [v["message"] for v in node.get("x-kubernetes-validations", []) if v.get("message")]
    if rules:
        description = description.rstrip() + " Checked when applied: " + "; ".join(rules) + "."
    out["description"] = description

    types: list[str] = []
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif "type" in node:
        types = [node["type"]]
    if node.get("nullable") and types:
        types.append("null")
    if types:
        out["type"] = types[0] if len(types) == 1 else types

    for key, value in node.items():
        if key in {"description", "type", "nullable", "properties", "items", "additionalProperties"}:
            continue
        if key.startswith("x-kubernetes-"):
            continue
        if key == "format" and value in OPENAPI_ONLY_FORMATS:
            continue
        if key == "enum" and node.get("nullable") and None not in value:
            value = [*value, None]
        out[key] = copy.deepcopy(value)

    if "properties" in node:
        out["properties"] = {k: to_draft7(v, f"{path}.{k}") for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_draft7(node["additionalProperties"], f"{path}.*")
    elif "additionalProperties" in node:
        out["additionalProperties"] = node["additionalProperties"]
    if "items" in node:
        out["items"] = to_draft7(node["items"], f"{path}[]")
    return out


def stack_spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    """What charts/chatbot-stack/values.schema.json must hold at properties.chatbot.properties.spec.

    The CRD's `required` lists stay: none is on spec or on what the stack's template fills in (monitoring.labels),
    only on nested objects that the API server would refuse incomplete anyway (an alert without `for`, a Secret
    reference without `key`). A partial spec, `{}` included, is valid: the API server applies the CRD's defaults."""
    schema = to_draft7(crd_spec_schema(crd), "spec")
    schema["description"] = SPEC_DESCRIPTION
    return schema


def stack_schema(current: dict[str, Any], crd: dict[str, Any]) -> dict[str, Any]:
    """The stack's values schema with chatbot.spec replaced by the derived one, everything else as it is."""
    out = copy.deepcopy(current)
    out["properties"]["chatbot"]["properties"]["spec"] = stack_spec_schema(crd)
    return out


def dumps(schema: dict[str, Any]) -> str:
    """The charts' JSON style: 2-space indent, UTF-8, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    source = CRD.read_bytes()
    if not source.strip():
        print(f"sync_schemas: {CRD.relative_to(ROOT)} is empty (being regenerated?); nothing written", file=sys.stderr)
        return 1
    changed: list[str] = []
    for target in CRD_COPIES:
        if not target.exists() or target.read_bytes() != source:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CRD, target)
            changed.append(str(target.relative_to(ROOT)))
    crd = yaml.safe_load(source)
    text = dumps(stack_schema(json.loads(STACK_SCHEMA.read_text()), crd))
    if STACK_SCHEMA.read_text() != text:
        STACK_SCHEMA.write_text(text)
        changed.append(str(STACK_SCHEMA.relative_to(ROOT)))
    print("sync_schemas: " + (", ".join(changed) + " updated" if changed else "everything up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

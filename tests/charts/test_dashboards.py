"""Every Grafana dashboard the project ships or renders, validated against Grafana's own JSON schemas.

Grafana loads a dashboard whatever it holds and silently drops or "migrates" what it does not understand, so a
malformed field (an empty variable `current`, a footer option of the wrong type, an old `schemaVersion`) only shows
as a panel that behaves oddly. The schemas are grafana-foundation-sdk's (see the README next to them): the classic
dashboard kind, each panel plugin's `Options` and `FieldConfig`, the Prometheus query. Covered: every file in
dashboards/ and every dashboard JSON held by a ConfigMap in the operator's golden renders (operator/tests/golden/),
found by content, so a new dashboard or a new golden file is checked without touching this file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[2]
# The schemas are shared data beside the repository (../shared); GRAFANA_SCHEMAS points elsewhere.
SCHEMA_DIR = Path(os.environ.get("GRAFANA_SCHEMAS", ROOT.parent / "shared" / "schemas" / "grafana"))
# A base URI only so that each file's own "#/definitions/..." refs resolve inside that file.
BASE = "https://grafana-schemas.invalid/"

# Grafana's current dashboard schemaVersion: the default of `schemaVersion` in the dashboard kind these schemas are
# generated from (dashboard.json, grafana-foundation-sdk), matching Grafana's last migration in that release line
# (apps/dashboard/pkg/migration/schemaversion/v42.go). 40-42 only normalize fields this dashboard already has right
# (refresh as a string, no timepicker.time_options, hideFrom.tooltip with hideFrom.viz).
CURRENT_SCHEMA_VERSION = 42

PANEL_SCHEMAS = {"timeseries", "stat", "gauge", "table"}


def load_schemas() -> dict[str, Any]:
    if not (SCHEMA_DIR / "dashboard.json").exists():
        pytest.fail(f"Grafana's JSON schemas not found in {SCHEMA_DIR} (set GRAFANA_SCHEMAS)", pytrace=False)
    return {p.name: json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}


SCHEMAS = load_schemas()
REGISTRY: Registry = Registry().with_resources(
    (BASE + name, Resource.from_contents(schema, default_specification=DRAFT7)) for name, schema in SCHEMAS.items()
)


def validator(ref: str) -> jsonschema.Draft7Validator:
    """A validator for one schema of the set, e.g. "table.json#/definitions/Options"."""
    return jsonschema.Draft7Validator({"$ref": BASE + ref}, registry=REGISTRY)


# ---------------------------------------------------------------------------------------------------------------
# The dashboards


def shipped_dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(p.relative_to(ROOT)), json.loads(p.read_text())) for p in sorted((ROOT / "dashboards").glob("*.json"))
    ]


def is_dashboard(value: Any) -> bool:
    return isinstance(value, dict) and "panels" in value and "schemaVersion" in value


def golden_dashboards() -> list[tuple[str, dict[str, Any]]]:
    """Every ConfigMap value in the golden renders that is dashboard JSON, whatever the key or ConfigMap name."""
    out = []
    for path in sorted((ROOT / "operator" / "tests" / "golden").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "ConfigMap":
                continue
            for key, text in sorted((doc.get("data") or {}).items()):
                try:
                    value = json.loads(text)
                except ValueError:
                    continue  # not JSON: not a dashboard
                if is_dashboard(value):
                    out.append((f"{path.relative_to(ROOT)}:{doc['metadata']['name']}/{key}", value))
    return out


SHIPPED = shipped_dashboards()
GOLDEN = golden_dashboards()
ALL = SHIPPED + GOLDEN


def test_dashboards_are_found() -> None:
    # An empty parametrization would pass silently: make sure both sources still yield dashboards.
    assert SHIPPED, "no dashboard in dashboards/"
    assert GOLDEN, "no dashboard ConfigMap in operator/tests/golden/"


def all_panels(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, panel), rows' nested panels (collapsed rows) included."""
    for i, panel in enumerate(dashboard.get("panels", [])):
        yield f"$.panels[{i}]", panel
        for j, nested in enumerate(panel.get("panels", [])):
            yield f"$.panels[{i}].panels[{j}]", nested


# ---------------------------------------------------------------------------------------------------------------
# Errors


def leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """The errors that say what is wrong: an anyOf/oneOf failure (a panel is a Panel or a RowPanel, a variable's text
    a string or a list) is replaced by the errors of the branch that got furthest, the one the value was meant for."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    # Deepest first; on a tie, a branch that failed on more than the value's very type (not "is not of type
    # 'null'"), then the fewest errors.
    best = max(
        branches.values(),
        key=lambda errs: (
            max(len(e.absolute_path) for e in errs),
            any(e.validator not in ("type", "const", "enum") for e in errs),
            -len(errs),
        ),
    )
    for sub in best:
        yield from leaf_errors(sub)


def json_path(prefix: str, error: jsonschema.ValidationError) -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def known_artefact(error: jsonschema.ValidationError, options_schema: dict[str, Any] | None) -> bool:
    """The two schema artefacts the schemas' README names, and only them.

    - In some panel `Options`, fields that have a CUE default are also listed as required, although Grafana fills
      in the default (e.g. the table's `frameIndex`): accepted only for a `required` failure on the Options object
      itself, and only when every missing field has a default there.
    - A field override's matcher `options` is typed as an object, but Grafana's matchers (byName, byRegexp, ...)
      take a string: accepted only for a string at `...matcher.options`.
    """
    if options_schema is not None and error.validator == "required" and error.schema is options_schema:
        missing = [f for f in error.validator_value if f not in error.instance]
        return all("default" in options_schema["properties"].get(f, {}) for f in missing)
    path = list(error.absolute_path)
    return (
        error.validator == "type"
        and path[-2:] == ["matcher", "options"]
        and isinstance(error.instance, str)
    )


def discriminated_branch(ref: str, error: jsonschema.ValidationError) -> str | None:
    """The branch a `oneOf` meant for `instance["type"]`, when the oneOf failed because several branches match.

    A third artefact, not in the README: the table's cell options (`TableCellOptions`) are a union discriminated by
    `type`, but the generated branches constrain `type` only to the whole `TableCellDisplayMode` enum (the CUE
    literal became a mere `default`), so the default cell, `{"type": "auto"}`, matches every branch that needs
    nothing else and fails the oneOf. The branch whose `type` default is the value's type is the one Grafana uses:
    the value is validated against it instead, so wrong cell options are still caught.
    """
    if error.validator != "oneOf" or error.context or not isinstance(error.instance, dict):
        return None  # context set: no branch matched, a real error
    file = ref.split("#")[0]
    matching = []
    for branch in error.validator_value:
        target = branch.get("$ref", "")
        if not target.startswith("#/definitions/"):
            return None
        definition = SCHEMAS[file]["definitions"][target.removeprefix("#/definitions/")]
        if definition.get("properties", {}).get("type", {}).get("default") == error.instance.get("type"):
            matching.append(file + target)
    return matching[0] if len(matching) == 1 else None


def errors(
    ref: str, instance: Any, prefix: str, options_schema: dict[str, Any] | None = None
) -> list[tuple[str, jsonschema.ValidationError]]:
    """(JSON path, error) for each failure of instance against ref that is not a known artefact."""
    out = []
    for error in validator(ref).iter_errors(instance):
        for leaf in leaf_errors(error):
            branch = discriminated_branch(ref, leaf)
            if branch is not None:
                out += errors(branch, leaf.instance, json_path(prefix, leaf))
            elif not known_artefact(leaf, options_schema):
                out.append((json_path(prefix, leaf), leaf))
    return out


def panel_title(dashboard: dict[str, Any], path: str) -> str:
    """The title of the panel a dashboard-level error lies in, from its JSON path."""
    for panel_path, panel in sorted(all_panels(dashboard), key=lambda pp: -len(pp[0])):
        if path == panel_path or path.startswith(panel_path + ".") or path.startswith(panel_path + "["):
            return "panel " + repr(panel.get("title", f"id {panel.get('id')}"))
    return "dashboard level"


def report(name: str, dashboard: dict[str, Any], found: list[tuple[str, jsonschema.ValidationError]]) -> str:
    lines = [f"{name}: {len(found)} schema error(s):"]
    for path, error in found:
        lines.append(f"  {panel_title(dashboard, path)} at {path}: {error.message}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The checks, once per dashboard


@pytest.fixture(params=ALL, ids=[name for name, _ in ALL])
def dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param


def test_current_schema_version(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, d = dashboard
    # If the schemas are updated to a newer Grafana, this says so instead of letting the two drift apart.
    assert SCHEMAS["dashboard.json"]["definitions"]["Dashboard"]["properties"]["schemaVersion"]["default"] == (
        CURRENT_SCHEMA_VERSION
    )
    assert d.get("schemaVersion") == CURRENT_SCHEMA_VERSION, f"{name}: schemaVersion {d.get('schemaVersion')}"


def test_dashboard_matches_the_dashboard_kind(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, d = dashboard
    found = errors("dashboard.json", d, "$")
    assert not found, report(name, d, found)


def test_panels_match_their_plugin_schemas(dashboard: tuple[str, dict[str, Any]]) -> None:
    """The dashboard kind leaves `options`, `fieldConfig.defaults.custom` and the targets free-form: each panel
    plugin and data source has its own schema for them."""
    name, d = dashboard
    found: list[tuple[str, jsonschema.ValidationError]] = []
    for path, panel in all_panels(d):
        kind = panel.get("type")
        if kind == "row":
            continue  # no options, field config or targets: the dashboard kind's RowPanel covers it
        title = panel.get("title")
        assert kind in PANEL_SCHEMAS, f"{name}: panel {title!r} at {path}: no schema for panel type {kind!r}"
        plugin = SCHEMAS[f"{kind}.json"]["definitions"]
        options = panel.get("options", {})
        found += errors(f"{kind}.json#/definitions/Options", options, f"{path}.options", plugin["Options"])
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if "FieldConfig" in plugin:
            custom_path = f"{path}.fieldConfig.defaults.custom"
            found += errors(f"{kind}.json#/definitions/FieldConfig", custom or {}, custom_path)
        else:
            # stat and gauge define no custom field config: Grafana would drop whatever is there.
            assert not custom, f"{name}: panel {title!r} at {path}.fieldConfig.defaults.custom: {kind} has none"
        targets = panel.get("targets", [])
        assert targets, f"{name}: panel {title!r} at {path}.targets: no query"
        for i, target in enumerate(targets):
            # Every query here is Prometheus' (through ${datasource}); another data source would need its schema.
            ds_type = (target.get("datasource") or panel.get("datasource") or {}).get("type")
            assert ds_type == "prometheus", f"{name}: panel {title!r} at {path}.targets[{i}]: data source {ds_type!r}"
            found += errors("prometheus.json", target, f"{path}.targets[{i}]")
    assert not found, report(name, d, found)

"""Checks of the Helm charts, the kind config and the chart/CRD/image consistency, without a cluster.

Helm itself does the linting, the schema validation and the rendering: the PyPI package helm-python-sdk (import name
`helm_python`) binds Helm's Go SDK (v4) through a bundled shared library, so no helm binary is needed.
Run with scripts/test-charts.sh (installs what is missing), or `python3 -m pytest -q tests/charts`.

The stack chart depends on kube-prometheus-stack, which cannot be downloaded here (its Helm repository is out of
reach, and `helm dependency build` needs it). Its tests therefore run on a staged copy of charts/chatbot-stack whose
charts/ holds the real operator chart (the file:// dependency) and a stub kube-prometheus-stack chart (Chart.yaml
only, no templates): enough for Helm to resolve both dependencies, evaluate the condition, validate every schema and
render this repository's own templates. What kube-prometheus-stack itself renders is covered by the kind e2e run.

What the charts derive from crds/ (the CRD copies, the stack's chatbot.spec schema) is written by
tests/charts/sync_schemas.py; the tests here say when to run it. Rendering is offline, so a "helm upgrade" is a render
with is_upgrade set: enough to see that the templated CRD follows the chart, not what the API server does with it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

import sync_schemas

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
OPERATOR_CHART = CHARTS / "chatbot-monitoring-operator"
STACK_CHART = CHARTS / "chatbot-stack"
CRD_NAME = "monitoring.chatbot-sav.io_chatbotmonitorings.yaml"
KUBE_VERSION = "v1.30.0"
# prometheus-operator's CRDs (v0.93), beside the repository: what a cluster with it enforces on ServiceMonitors and
# PrometheusRules.
PROMETHEUS_OPERATOR_CRDS = ROOT.parent / "shared" / "crds" / "prometheus-operator"
RELEASE = "chatbot-sav"
NAMESPACE = "chatbot-sav"



def operator_rbac(*flags: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rules the operator's code needs, from the operator itself (`chatbot-operator rbac`, generated from
    operator/src/rbac.rs, which the reconcile tests check every API request against): the chart must grant exactly
    these."""
    binary = ROOT / "target" / "debug" / "chatbot-operator"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "chatbot-operator"], cwd=ROOT, check=True)
    out = subprocess.run([str(binary), "rbac", *flags], check=True, capture_output=True, text=True).stdout
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out) if d}
    return (
        docs["chatbot-operator"]["rules"],
        docs["chatbot-operator-prometheus-selection"]["rules"],
        docs["chatbot-operator-leader-election"]["rules"],
    )


EXPECTED_RULES, EXPECTED_SELECTION_RULES, EXPECTED_LEASE_RULES = operator_rbac()


def cluster_roles(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ClusterRoles by name suffix: the watched namespaces' rules, and the Prometheus selection rules."""
    out = {}
    for role in of_kind(docs, "ClusterRole"):
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in role["metadata"]["labels"]):
            continue  # for people, through view/edit/admin: see test_people_get_chatbotmonitorings_through_view_edit_admin
        key = "selection" if role["metadata"]["name"].endswith("-prometheus-selection") else "watched"
        out[key] = role
    return out


def triples(rules: list[tuple[list[str], list[str], list[str]]] | list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Flatten RBAC rules into (apiGroup, resource, verb) triples."""
    out: set[tuple[str, str, str]] = set()
    for rule in rules:
        if isinstance(rule, dict):
            assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"
            groups, resources, verbs = rule["apiGroups"], rule["resources"], rule["verbs"]
        else:
            groups, resources, verbs = rule
        out |= {(g, r, v) for g in groups for r in resources for v in verbs}
    return out


def render(chart_dir: Path, values: dict[str, Any] | None = None, *, upgrade: bool = False) -> list[dict[str, Any]]:
    """Render a chart offline with Helm's engine, as `helm install` (or `helm upgrade` with upgrade=True) would; every
    non-empty manifest document, NOTES.txt excluded."""
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=not upgrade, is_upgrade=upgrade
        )
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def notes(chart_dir: Path, values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for path, text in manifests.items() if path == f"{chart_dir.name}/templates/NOTES.txt")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def lint_errors(report: dict[str, Any]) -> list[str]:
    """Messages of severity error (3), and the report's errors."""
    errors = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 3]
    return errors + [e for e in report.get("errors", []) if not any(e in x for x in errors)]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def stack_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """charts/chatbot-stack with its dependencies in charts/: the real operator chart, a stub kube-prometheus-stack."""
    staged = tmp_path_factory.mktemp("stack") / "chatbot-stack"
    shutil.copytree(STACK_CHART, staged, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    shutil.copytree(OPERATOR_CHART, staged / "charts" / "chatbot-monitoring-operator")
    stub = staged / "charts" / "kube-prometheus-stack"
    stub.mkdir(parents=True)
    kps_dep = next(d for d in load_yaml(STACK_CHART / "Chart.yaml")["dependencies"] if d["name"] == "kube-prometheus-stack")
    # A version inside the declared range (~88.5.0 style constraints: the lowest one it names).
    version = kps_dep["version"].lstrip("~^=v ").split()[0]
    if version.count(".") == 1:
        version += ".0"
    (stub / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: kube-prometheus-stack\nversion: {version}\ndescription: test stub, no templates\n"
    )
    return staged


# ---------------------------------------------------------------------------------------------------------------------
# lint


def test_lint_operator_chart_strict() -> None:
    report = helm.lint(OPERATOR_CHART, strict=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert report["total_charts_linted"] == 1
    assert lint_errors(report) == []
    # strict: warnings count too (info such as "icon is recommended" is fine).
    assert [m for m in report["messages"] if m["severity"] == 2] == []


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 3},
        {"watchNamespace": "shop"},
        {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
        {"logFormat": "text", "leaderElection": {"enabled": True}},
        {"crds": {"enabled": False}},
        {
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "verify": {"period": "0s", "prometheusUrl": "https://mimir.example.com/prometheus"},
            "image": {"digest": "sha256:" + "f" * 64},
            "replicaCount": 2,
            "podDisruptionBudget": {"maxUnavailable": 1},
        },
    ],
)
def test_lint_operator_chart_with_values(values: dict[str, Any]) -> None:
    report = helm.lint(OPERATOR_CHART, values, strict=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert lint_errors(report) == []


def test_lint_reports_bad_values_as_errors() -> None:
    report = helm.lint(OPERATOR_CHART, {"logFormat": "xml"}, kube_version=KUBE_VERSION)
    assert any("logFormat" in e for e in lint_errors(report)), report


def test_lint_stack_chart(stack_chart: Path) -> None:
    for values in (None, helm.values_from_yaml((STACK_CHART / "values-local.yaml").read_text())):
        report = helm.lint(
            stack_chart, values, strict=True, with_subcharts=True, kube_version=KUBE_VERSION, namespace=NAMESPACE
        )
        assert lint_errors(report) == []
        assert [m for m in report["messages"] if m["severity"] == 2] == []


def test_stack_chart_unstaged_lints_with_only_missing_dependencies() -> None:
    """The chart as committed: no error; the one warning is the dependencies that `helm dependency build` fetches."""
    report = helm.lint(STACK_CHART, kube_version=KUBE_VERSION)
    assert lint_errors(report) == []
    warnings = [m["error"] for m in report["messages"] if m["severity"] == 2]
    assert all("missing these dependencies" in w for w in warnings), warnings


# ---------------------------------------------------------------------------------------------------------------------
# versions


def test_chart_versions_carry_the_app_version() -> None:
    # The [workspace.package] version, read without tomllib (Python 3.11+) so that older Pythons run these tests too.
    package = (ROOT / "Cargo.toml").read_text().split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    workspace_version = re.search(r'^version = "([^"]+)"', package, re.MULTILINE).group(1)
    semver = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
    for chart_dir in (OPERATOR_CHART, STACK_CHART):
        meta = load_yaml(chart_dir / "Chart.yaml")
        assert meta["apiVersion"] == "v2"
        assert jsonschema.Draft7Validator({"type": "string", "pattern": semver}).is_valid(meta["version"])
        assert meta["appVersion"] == workspace_version, chart_dir
    stack_deps = {d["name"]: d for d in load_yaml(STACK_CHART / "Chart.yaml")["dependencies"]}
    assert stack_deps["chatbot-monitoring-operator"]["version"] == load_yaml(OPERATOR_CHART / "Chart.yaml")["version"]
    assert stack_deps["chatbot-monitoring-operator"]["repository"] == "file://../chatbot-monitoring-operator"
    assert stack_deps["kube-prometheus-stack"]["condition"] == "kube-prometheus-stack.enabled"
    # The default images are the ones scripts/kind-up.sh builds.
    values = load_yaml(OPERATOR_CHART / "values.yaml")
    assert values["chatbotImage"] == f"ghcr.io/chatbot-sav/chatbot:{workspace_version}"
    deployment = one(render(OPERATOR_CHART), "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/chatbot-sav/chatbot-operator:{workspace_version}"
    kind_up = (ROOT / "scripts" / "kind-up.sh").read_text()
    assert f"VERSION={workspace_version}" in kind_up


# ---------------------------------------------------------------------------------------------------------------------
# the operator chart


def crd_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    crd = one(docs, "CustomResourceDefinition")
    assert crd["metadata"]["name"] == "chatbotmonitorings.monitoring.chatbot-sav.io"
    return crd


def crd_spec_properties(crd: dict[str, Any]) -> dict[str, Any]:
    return sync_schemas.crd_spec_schema(crd)["properties"]


def test_chart_crd_copies_are_byte_identical_to_crds_dir() -> None:
    """One source of truth, crds/ (generated from the Rust types); the charts ship copies of it, byte for byte."""
    source = (ROOT / "crds" / CRD_NAME).read_bytes()
    assert source.strip(), f"crds/{CRD_NAME} is empty"
    for copy in sync_schemas.CRD_COPIES:
        assert copy.exists() and copy.read_bytes() == source, (
            f"{copy.relative_to(ROOT)} is stale: cp crds/{CRD_NAME} {copy.relative_to(ROOT)} "
            "(python3 tests/charts/sync_schemas.py refreshes every copy and the stack's spec schema)"
        )
    assert sorted(p.name for p in (OPERATOR_CHART / "files" / "crds").iterdir()) == [CRD_NAME]
    assert sorted(p.name for p in (STACK_CHART / "crds").iterdir()) == [CRD_NAME]


def test_operator_chart_templates_the_crd_and_has_no_crds_dir() -> None:
    """Helm installs a crds/ directory once and never upgrades it: the operator chart templates its CRD instead."""
    assert not (OPERATOR_CHART / "crds").exists(), "Helm would also install crds/ the old way, and never upgrade it"
    with helm.Chart.load(OPERATOR_CHART) as chart:
        assert chart.crds == []
    docs = render(OPERATOR_CHART)
    crd = crd_of(docs)
    source = load_yaml(ROOT / "crds" / CRD_NAME)
    # The CRD as generated, only the metadata added: the chart's labels, and the keep annotation.
    assert {k: v for k, v in crd.items() if k != "metadata"} == {k: v for k, v in source.items() if k != "metadata"}
    assert crd["metadata"]["labels"] == one(docs, "Deployment")["metadata"]["labels"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "namespace" not in crd["metadata"]
    # Kubernetes' own CRD schema, strictly.
    kubernetes_validate.validate(crd, KUBE_VERSION.lstrip("v"), strict=True)


def test_crd_can_be_left_out_or_deleted_on_uninstall() -> None:
    assert of_kind(render(OPERATOR_CHART, {"crds": {"enabled": False}}), "CustomResourceDefinition") == []
    crd = crd_of(render(OPERATOR_CHART, {"crds": {"keep": False}}))
    assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})
    text = notes(OPERATOR_CHART, {"crds": {"enabled": False}})
    assert "kubectl apply --server-side -f crds/monitoring.chatbot-sav.io_chatbotmonitorings.yaml" in text
    assert "helm upgrade upgrades it" in notes(OPERATOR_CHART)


def test_an_upgrade_renders_the_changed_crd(tmp_path: Path) -> None:
    """A chart version whose CRD gained a field: `helm upgrade` applies the new schema (a crds/ directory would be
    skipped on upgrade, leaving the cluster on the old schema)."""
    installed = crd_of(render(OPERATOR_CHART))
    assert "newField" not in crd_spec_properties(installed)

    staged = tmp_path / OPERATOR_CHART.name
    shutil.copytree(OPERATOR_CHART, staged)
    staged_crd = staged / "files" / "crds" / CRD_NAME
    newer = load_yaml(staged_crd)
    crd_spec_properties(newer)["newField"] = {"description": "Added by the next version.", "type": "string"}
    staged_crd.write_text(yaml.safe_dump(newer, sort_keys=False))

    upgraded = crd_of(render(staged, upgrade=True))
    assert crd_spec_properties(upgraded)["newField"] == {"description": "Added by the next version.", "type": "string"}
    assert {k: v for k, v in crd_spec_properties(upgraded).items() if k != "newField"} == crd_spec_properties(installed)
    assert upgraded["metadata"] == installed["metadata"]


def test_readme_gives_the_commands_that_hand_an_existing_crd_to_helm() -> None:
    """A release installed with the old crds/ left a CRD that Helm does not own: helm upgrade refuses to adopt it
    until it carries the release's ownership metadata."""
    readme = (OPERATOR_CHART / "README.md").read_text()
    crd = "crd/chatbotmonitorings.monitoring.chatbot-sav.io"
    assert f"kubectl label {crd} app.kubernetes.io/managed-by=Helm --overwrite" in readme
    assert f'kubectl annotate {crd} meta.helm.sh/release-name="$RELEASE" --overwrite' in readme
    assert f'kubectl annotate {crd} meta.helm.sh/release-namespace="$NAMESPACE" --overwrite' in readme
    assert "helm.sh/resource-policy" in readme


def test_cluster_role_grants_exactly_what_the_operator_uses() -> None:
    docs = render(OPERATOR_CHART)
    roles_by_use = cluster_roles(docs)
    assert set(roles_by_use) == {"watched", "selection"}
    cluster_role = roles_by_use["watched"]
    assert triples(cluster_role["rules"]) == triples(EXPECTED_RULES)
    assert triples(roles_by_use["selection"]["rules"]) == triples(EXPECTED_SELECTION_RULES)
    binding = next(b for b in of_kind(docs, "ClusterRoleBinding") if b["roleRef"]["name"] == cluster_role["metadata"]["name"])
    sa = one(docs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    # Only the Lease Role besides: no other Role, and nothing namespaced elsewhere.
    roles = of_kind(docs, "Role")
    assert len(roles) == 1
    assert roles[0]["metadata"]["namespace"] == NAMESPACE
    assert triples(roles[0]["rules"]) == triples(EXPECTED_LEASE_RULES)
    lease_binding = one(docs, "RoleBinding")
    assert lease_binding["metadata"]["namespace"] == NAMESPACE
    assert lease_binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    assert lease_binding["subjects"][0]["name"] == sa["metadata"]["name"]


def readme_rbac_table() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every row of the operator chart README's RBAC table."""
    text = (OPERATOR_CHART / "README.md").read_text()
    out: set[tuple[str, str, str]] = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        group = cells[0].strip("`").replace('""', "")
        resources = [r.strip().strip("`") for r in cells[1].split(",")]
        verbs = [v.strip() for v in cells[2].split("(")[0].split(",")]
        out |= {(group, r, v) for r in resources for v in verbs}
    return out


def test_readme_rbac_table_says_what_the_chart_grants() -> None:
    expected = triples(EXPECTED_RULES) | triples(EXPECTED_SELECTION_RULES) | triples(EXPECTED_LEASE_RULES)
    assert readme_rbac_table() == expected


def test_secrets_are_read_only_with_check_secrets() -> None:
    assert not any(r == "secrets" for _, r, _ in triples(EXPECTED_RULES)), "no Secret read by default"
    docs = render(OPERATOR_CHART, {"checkSecrets": True})
    with_check, _, _ = operator_rbac("--check-secrets")
    assert triples(cluster_roles(docs)["watched"]["rules"]) == triples(with_check)
    assert triples(with_check) - triples(EXPECTED_RULES) == {("", "secrets", "get")}
    assert env_of(one(docs, "Deployment"))["CHECK_SECRETS"] == "true"
    assert "CHECK_SECRETS" not in env_of(one(render(OPERATOR_CHART), "Deployment"))
    role = {r["metadata"]["namespace"]: r for r in of_kind(render(OPERATOR_CHART, {"checkSecrets": True, "watchNamespace": "shop"}), "Role")}
    assert triples(role["shop"]["rules"]) == triples(with_check)


def test_watch_namespace_uses_a_role_there_and_no_cluster_role() -> None:
    docs = render(OPERATOR_CHART, {"watchNamespace": "shop"})
    # Only the Prometheus selection rules stay cluster-wide: a Role cannot grant them.
    assert set(cluster_roles(docs)) == {"selection"}
    assert len(of_kind(docs, "ClusterRoleBinding")) == 1
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    assert set(roles) == {"shop", NAMESPACE}
    assert triples(roles["shop"]["rules"]) == triples(EXPECTED_RULES)
    assert triples(roles[NAMESPACE]["rules"]) == triples(EXPECTED_LEASE_RULES)
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(bindings) == {"shop", NAMESPACE}
    assert bindings["shop"]["roleRef"]["name"] == roles["shop"]["metadata"]["name"]
    assert bindings["shop"]["subjects"][0]["namespace"] == NAMESPACE
    assert env_of(one(docs, "Deployment"))["WATCH_NAMESPACE"] == "shop"


def test_people_get_chatbotmonitorings_through_view_edit_admin() -> None:
    aggregated = {
        r["metadata"]["name"].rsplit("-", 1)[1]: r
        for r in of_kind(render(OPERATOR_CHART), "ClusterRole")
        if "rbac.authorization.k8s.io/aggregate-to-edit" in r["metadata"]["labels"]
    }
    assert set(aggregated) == {"view", "edit"}
    labels = lambda r: {k.rsplit("-", 1)[1] for k in r["metadata"]["labels"] if "/aggregate-to-" in k}  # noqa: E731
    assert labels(aggregated["view"]) == {"view", "edit", "admin"}
    assert labels(aggregated["edit"]) == {"edit", "admin"}, "view must not be able to write"
    group = "monitoring.chatbot-sav.io"
    assert triples(aggregated["view"]["rules"]) == {
        (group, resource, verb)
        for resource in ("chatbotmonitorings", "chatbotmonitorings/status")
        for verb in ("get", "list", "watch")
    }
    assert triples(aggregated["edit"]["rules"]) == {
        (group, "chatbotmonitorings", verb) for verb in ("create", "update", "patch", "delete", "deletecollection")
    }
    # Off on request, and with the rest of the RBAC.
    for values in ({"rbac": {"aggregateClusterRoles": False}}, {"rbac": {"create": False}}):
        names = [r["metadata"]["name"] for r in of_kind(render(OPERATOR_CHART, values), "ClusterRole")]
        assert not any(n.endswith(("-view", "-edit")) for n in names), names


def test_rbac_can_be_left_out() -> None:
    docs = render(OPERATOR_CHART, {"rbac": {"create": False}})
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}]


def test_deployment_meets_the_restricted_pod_security_standard() -> None:
    deployment = one(render(OPERATOR_CHART), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    # No fixed UID, GID or fsGroup, so that OpenShift's restricted-v2 SCC can assign its own range's.
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "volumes"):
        assert forbidden not in pod, forbidden
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # runAsNonRoot without runAsUser: the kubelet checks the image's USER, which must then be a non-zero number.
    user = re.search(r"^USER (\d+)(?::(\d+))?$", (ROOT / "operator" / "Dockerfile").read_text(), re.MULTILINE)
    assert user and int(user.group(1)) != 0, "operator/Dockerfile must declare a numeric non-root USER"


def test_security_contexts_are_values_merged_into_the_restricted_defaults() -> None:
    values = {
        "podSecurityContext": {"runAsUser": 1000, "fsGroup": 2000},
        "securityContext": {"readOnlyRootFilesystem": None, "runAsGroup": 3000},
    }
    pod = one(render(OPERATOR_CHART, values), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 1000,
        "fsGroup": 2000,
    }
    # null removes a default (Helm's rule for values).
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsGroup": 3000,
    }


def test_deployment_defaults() -> None:
    docs = render(OPERATOR_CHART)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["run"]
    env = env_of(deployment)
    assert env["WATCH_NAMESPACE"] == ""
    assert env["METRICS_ADDR"] == "0.0.0.0:8080"
    assert env["LOG_FORMAT"] == "json"
    assert env["RUST_LOG"] == "info"
    assert env["CHATBOT_IMAGE"] == "ghcr.io/chatbot-sav/chatbot:0.1.0"
    assert env["LEADER_ELECTION"] == "false"
    assert env["LEASE_NAME"] == "chatbot-operator-leader"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["VERIFY_PERIOD"] == "60s"
    assert "PROMETHEUS_URL" not in env
    assert "ALERTMANAGER_URL" not in env
    assert container["image"] == "ghcr.io/chatbot-sav/chatbot-operator:0.1.0"
    assert "topologySpreadConstraints" not in pod
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    # The selector is a subset of the pod labels, and the metrics Service selects the same pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    service = one(docs, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    assert labels["app.kubernetes.io/name"] == "chatbot-monitoring-operator"
    assert deployment["metadata"]["labels"]["helm.sh/chart"] == "chatbot-monitoring-operator-0.1.0"
    assert of_kind(docs, "PodDisruptionBudget") == []
    assert of_kind(docs, "ServiceMonitor") == []
    assert of_kind(docs, "PrometheusRule") == []


def test_platform_values() -> None:
    """What a platform team sets: extra environment and arguments, verification against a central Prometheus (Thanos,
    Mimir), an image pinned by digest, zone spreading."""
    values = {
        "extraEnv": [
            {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "extraArgs": ["--verify-period=5m"],
        "verify": {
            "period": "2m 30s",
            "prometheusUrl": "http://thanos-query.monitoring:9090",
            "alertmanagerUrl": "http://alertmanager.monitoring:9093",
        },
        "image": {"tag": "1.2.3", "digest": "sha256:" + "0a" * 32},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"team": "sav"}},
            },
        ],
    }
    deployment = one(render(OPERATOR_CHART, values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["run", "--verify-period=5m"]
    names = [e["name"] for e in container["env"]]
    assert names[-2:] == ["HTTPS_PROXY", "TOKEN"], "extraEnv comes after the chart's own variables"
    assert len(names) == len(set(names))
    env = env_of(deployment)
    assert env["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert (env["VERIFY_PERIOD"], env["PROMETHEUS_URL"]) == ("2m 30s", "http://thanos-query.monitoring:9090")
    assert env["ALERTMANAGER_URL"] == "http://alertmanager.monitoring:9093"
    assert container["image"] == "ghcr.io/chatbot-sav/chatbot-operator@sha256:" + "0a" * 32
    zone, host = pod["topologySpreadConstraints"]
    assert zone["labelSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert host["labelSelector"] == {"matchLabels": {"team": "sav"}}
    assert env_of(one(render(OPERATOR_CHART, {"verify": {"period": "0s"}}), "Deployment"))["VERIFY_PERIOD"] == "0s"
    # Kubernetes' own schemas, strictly (unknown fields refused), for everything rendered with every option on.
    everything = {**values, "replicaCount": 3, "podDisruptionBudget": {"maxUnavailable": "50%"}}
    for doc in render(OPERATOR_CHART, everything):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's kinds: see test_prometheus_rule_for_the_operator
        kubernetes_validate.validate(doc, KUBE_VERSION.lstrip("v"), strict=True)


def test_pod_placement_values_pass_through() -> None:
    values = {
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "podAnnotations": {"example.com/a": "b"},
        "podLabels": {"team": "sav"},
        "rustLog": "debug",
        "logFormat": "text",
        "image": {"tag": "1.2.3"},
    }
    deployment = one(render(OPERATOR_CHART, values), "Deployment")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert template["metadata"]["annotations"] == values["podAnnotations"]
    assert template["metadata"]["labels"]["team"] == "sav"
    assert pod["containers"][0]["image"] == "ghcr.io/chatbot-sav/chatbot-operator:1.2.3"
    env = env_of(deployment)
    assert (env["RUST_LOG"], env["LOG_FORMAT"]) == ("debug", "text")


@pytest.mark.parametrize(
    ("values", "leader"),
    [({}, "false"), ({"replicaCount": 2}, "true"), ({"leaderElection": {"enabled": True}}, "true")],
)
def test_leader_election(values: dict[str, Any], leader: str) -> None:
    docs = render(OPERATOR_CHART, values)
    deployment = one(docs, "Deployment")
    assert env_of(deployment)["LEADER_ELECTION"] == leader
    # Without a Lease, a rolling update would run two reconcilers for a while. Each strategy is written whole: a
    # rollingUpdate the API server defaulted is owned by no field manager under server-side apply, so the switch
    # back to Recreate was refused ("may not be specified when strategy `type` is 'Recreate'").
    if leader == "true":
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        }
    else:
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_several_replicas_get_a_pod_disruption_budget() -> None:
    docs = render(OPERATOR_CHART, {"replicaCount": 2})
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize(
    ("values", "spec"),
    [
        ({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": 2}}, {"minAvailable": 2}),
        ({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": "50%"}}, {"minAvailable": "50%"}),
        ({"replicaCount": 3, "podDisruptionBudget": {"maxUnavailable": 1}}, {"maxUnavailable": 1}),
        ({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": None, "maxUnavailable": "50%"}}, {"maxUnavailable": "50%"}),
        ({"replicaCount": 3, "podDisruptionBudget": {"enabled": False}}, None),
        # One replica: minAvailable 1 would block every node drain.
        ({"replicaCount": 1, "podDisruptionBudget": {"enabled": True}}, None),
    ],
)
def test_pod_disruption_budget_values(values: dict[str, Any], spec: dict[str, Any] | None) -> None:
    pdbs = of_kind(render(OPERATOR_CHART, values), "PodDisruptionBudget")
    if spec is None:
        assert pdbs == []
    else:
        (pdb,) = pdbs
        assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == spec


def crd_validator(file: str) -> tuple[jsonschema.Draft7Validator, dict[str, Any]]:
    """A validator for the openAPIV3Schema of one of prometheus-operator's CRDs, and that schema."""
    path = PROMETHEUS_OPERATOR_CRDS / file
    if not path.exists():
        pytest.fail(f"{path} is missing (../shared/crds beside the repository holds prometheus-operator's CRDs)")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage", True))
    openapi = version["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(openapi), openapi


def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Fields a structural schema does not declare: the API server would drop them (or refuse them, strictly)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict):
        if "properties" in schema:
            for key, sub in value.items():
                if not path and key in {"apiVersion", "kind", "metadata"}:
                    continue
                if key not in schema["properties"]:
                    out.append(f"{path}/{key}")
                else:
                    out += unknown_fields(schema["properties"][key], sub, f"{path}/{key}")
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, sub in value.items():
                out += unknown_fields(schema["additionalProperties"], sub, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += unknown_fields(schema.get("items", {}), item, f"{path}/{i}")
    return out


def assert_matches_crd(doc: dict[str, Any], file: str) -> None:
    validator, schema = crd_validator(file)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == [], errors
    assert unknown_fields(schema, doc) == []


def test_service_monitor_for_the_operator() -> None:
    docs = render(OPERATOR_CHART, {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}})
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["selector"]["matchLabels"] == one(docs, "Service")["spec"]["selector"]
    assert_matches_crd(sm, "monitoring.coreos.com_servicemonitors.yaml")


OPERATOR_JOB = f"{RELEASE}-chatbot-monitoring-operator-metrics"


def default_operator_rules() -> list[dict[str, Any]]:
    docs = render(OPERATOR_CHART, {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}})
    (group,) = one(docs, "PrometheusRule")["spec"]["groups"]
    return group["rules"]


def test_prometheus_rule_for_the_operator() -> None:
    docs = render(
        OPERATOR_CHART,
        {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}, "serviceMonitor": {"enabled": True}},
    )
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert_matches_crd(rule, "monitoring.coreos.com_prometheusrules.yaml")
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {"ChatbotOperatorReconcileErrors", "ChatbotOperatorNoLeader"}
    assert alerts["ChatbotOperatorReconcileErrors"]["labels"] == {"severity": "warning"}
    assert alerts["ChatbotOperatorNoLeader"]["labels"] == {"severity": "critical"}
    for alert in alerts.values():
        assert set(alert["annotations"]) == {"summary", "description"}
        # The series as the ServiceMonitor's scrape labels them: job is the metrics Service's name.
        assert f'job="{OPERATOR_JOB}", namespace="{NAMESPACE}"' in alert["expr"]
    assert one(docs, "Service")["metadata"]["name"] == OPERATOR_JOB
    assert "jobLabel" not in one(docs, "ServiceMonitor")["spec"]
    labelled = notes(OPERATOR_CHART, {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}})
    unlabelled = notes(OPERATOR_CHART, {"prometheusRule": {"enabled": True}})
    assert "will not load it" in unlabelled and "will not load it" not in labelled
    assert "ChatbotOperatorNoLeader fires" in unlabelled
    assert "ChatbotOperatorNoLeader fires" not in notes(
        OPERATOR_CHART, {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    )


def test_prometheus_rule_rules_can_be_replaced() -> None:
    rules = [{"alert": "Mine", "expr": "up == 0", "for": "1m", "labels": {"severity": "page"}}]
    rule = one(render(OPERATOR_CHART, {"prometheusRule": {"enabled": True, "rules": rules}}), "PrometheusRule")
    assert rule["spec"]["groups"][0]["rules"] == rules
    assert_matches_crd(rule, "monitoring.coreos.com_prometheusrules.yaml")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian's prometheus package; scripts/install-deps.sh installs it)")
    return path


def test_operator_alerts_pass_promtool_check_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "operator", "rules": default_operator_rules()}]}))
    out = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 2 rules found" in out.stdout


def test_operator_alerts_fire_when_they_should(tmp_path: Path) -> None:
    """`promtool test rules` on the default alerts, with the operator's series as its /metrics has them
    (operator/src/metrics.rs): chatbot_operator_leader 1 on the leading replica and 0 on standbys,
    chatbot_operator_reconcile_errors_total by reason."""
    # Annotations need no test here (their templates are checked by promtool check rules) and would have to be
    # expanded in full for promtool to compare alerts.
    rules = [{k: v for k, v in r.items() if k != "annotations"} for r in default_operator_rules()]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "operator", "rules": rules}]}))
    sel = f'job="{OPERATOR_JOB}",namespace="{NAMESPACE}"'
    leader = {"job": OPERATOR_JOB, "namespace": NAMESPACE, "severity": "critical"}

    def case(series: dict[str, str], alertname: str, eval_time: str, expected: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [
                {"eval_time": eval_time, "alertname": alertname, "exp_alerts": [{"exp_labels": e} for e in expected]}
            ],
        }

    errors = {"job": OPERATOR_JOB, "namespace": NAMESPACE, "reason": "DeploymentFailed", "severity": "warning"}
    error_series = f'chatbot_operator_reconcile_errors_total{{{sel},pod="a",reason="DeploymentFailed"}}'
    tests = [
        # One leader among two replicas: quiet.
        case({f'chatbot_operator_leader{{{sel},pod="a"}}': "1x20", f'chatbot_operator_leader{{{sel},pod="b"}}': "0x20"},
             "ChatbotOperatorNoLeader", "15m", []),
        # Both standing by: fires after 5 minutes, not before.
        case({f'chatbot_operator_leader{{{sel},pod="a"}}': "0x20", f'chatbot_operator_leader{{{sel},pod="b"}}': "0x20"},
             "ChatbotOperatorNoLeader", "4m", []),
        case({f'chatbot_operator_leader{{{sel},pod="a"}}': "0x20", f'chatbot_operator_leader{{{sel},pod="b"}}': "0x20"},
             "ChatbotOperatorNoLeader", "10m", [leader]),
        # Not scraped at all (only another job's series): fires too.
        case({'chatbot_operator_leader{job="other",namespace="x",pod="c"}': "1x20"}, "ChatbotOperatorNoLeader", "10m",
             [leader]),
        # Another release's operator does not count.
        case({f'chatbot_operator_leader{{job="other",namespace="{NAMESPACE}",pod="c"}}': "1x20"},
             "ChatbotOperatorNoLeader", "10m", [leader]),
        # Errors all along: fires once they have lasted 15 minutes.
        case({error_series: "0+1x40"}, "ChatbotOperatorReconcileErrors", "12m", []),
        case({error_series: "0+1x40"}, "ChatbotOperatorReconcileErrors", "25m", [errors]),
        # A few errors that stop: quiet. No error since the start: quiet.
        case({error_series: "0 1 2 3 3x40"}, "ChatbotOperatorReconcileErrors", "25m", []),
        case({error_series: "7x40"}, "ChatbotOperatorReconcileErrors", "25m", []),
    ]
    spec = tmp_path / "rules.test.yml"
    spec.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}))
    out = subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_operator_notes_tell_the_next_step() -> None:
    text = notes(OPERATOR_CHART)
    assert "kubectl apply -f" in text
    assert "kubectl get cbm" in text
    assert 'condition' in text.lower() and "Ready" in text
    assert "release:" in text


# ---------------------------------------------------------------------------------------------------------------------
# values.schema.json


@pytest.mark.parametrize("chart_dir", [OPERATOR_CHART, STACK_CHART], ids=lambda p: p.name)
def test_schema_is_draft7_and_accepts_the_defaults(chart_dir: Path) -> None:
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    defaults = load_yaml(chart_dir / "values.yaml")
    jsonschema.Draft7Validator(schema).validate(defaults)
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema({})


@pytest.mark.parametrize("chart_dir", [OPERATOR_CHART, STACK_CHART], ids=lambda p: p.name)
def test_every_value_in_the_schema_has_a_description(chart_dir: Path) -> None:
    """Editors and `helm show values` users read these: no property is left unexplained."""
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    undescribed: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, prop in node.get("properties", {}).items():
            key = f"{path}.{name}".lstrip(".")
            if not str(prop.get("description", "")).strip():
                undescribed.append(key)
            walk(prop, key)

    walk(schema, "")
    assert undescribed == []


def test_every_default_value_is_in_the_operator_schema() -> None:
    """additionalProperties is false in every object the chart defines: each values.yaml key must be declared."""
    schema = json.loads((OPERATOR_CHART / "values.schema.json").read_text())
    defaults = load_yaml(OPERATOR_CHART / "values.yaml")
    assert set(defaults) <= set(schema["properties"])
    for key, value in defaults.items():
        sub = schema["properties"][key]
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            assert set(value) <= set(sub["properties"]), key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"replicaCount": 1.5}, "replicaCount"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"unknownKey": True}, "unknownKey"),
        ({"image": {"repository": "x", "tga": "1"}}, "tga"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"leaderElection": {"enabled": "yes"}}, "enabled"),
        ({"serviceMonitor": {"interval": "30 seconds"}}, "interval"),
        ({"serviceMonitor": {"labels": {"release": 1}}}, "release"),
        ({"watchNamespace": "Not_A_Namespace"}, "watchNamespace"),
        ({"resources": {"request": {"cpu": "1"}}}, "request"),
        ({"crds": {"keep": "yes"}}, "keep"),
        ({"crds": {"enable": True}}, "enable"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"verify": {"period": 60}}, "period"),
        ({"verify": {"period": "1 minute please"}}, "period"),
        ({"verify": {"prometheusUrl": "thanos:9090"}}, "prometheusUrl"),
        ({"extraEnv": [{"value": "x"}]}, "name"),
        ({"extraEnv": [{"name": "RUST_LOG", "value": "debug"}]}, "/extraEnv/0/name"),
        ({"extraEnv": [{"name": "A", "valueForm": {}}]}, "valueForm"),
        ({"extraArgs": "--x"}, "extraArgs"),
        ({"extraArgs": [1]}, "/extraArgs/0"),
        ({"podSecurityContext": "restricted"}, "podSecurityContext"),
        ({"podDisruptionBudget": {"minAvailable": "half"}}, "minAvailable"),
        ({"podDisruptionBudget": {"maxUnavailable": -1}}, "maxUnavailable"),
        ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "topologySpreadConstraints"),
        ({"prometheusRule": {"enabled": True, "rules": [{"alert": "A"}]}}, "expr"),
        ({"prometheusRule": {"rules": [{"alert": "A", "expr": "up", "for": "5 min"}]}}, "for"),
        ({"prometheusRule": {"rules": [{"alert": "A", "record": "b", "expr": "up"}]}}, "/prometheusRule/rules/0"),
        ({"prometheusRule": {"label": {}}}, "label"),
    ],
)
def test_operator_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(OPERATOR_CHART) as chart:
        with pytest.raises(helm.HelmValuesError, match=message):
            chart.validate_schema(values)
        # An install or a template stops on it too.
        with pytest.raises(helm.HelmValuesError):
            chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"unknownKey": 1}, "unknownKey"),
        ({"chatbot": {"name": "Chat_Bot"}}, "name"),
        ({"chatbot": {"name": "chatbot", "sepc": {}}}, "sepc"),
        ({"chatbot": {"name": "chatbot", "spec": "replicas: 2"}}, "spec"),
        ({"local": {"chatbotNodePort": 8001}}, "chatbotNodePort"),
        ({"kube-prometheus-stack": {"enabled": "yes"}}, "enabled"),
    ],
)
def test_stack_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(STACK_CHART) as chart:
        with pytest.raises(helm.HelmValuesError, match=message):
            chart.validate_schema(values)


def test_stack_values_reach_the_operator_schema(stack_chart: Path) -> None:
    """The operator's schema still guards its values when it is installed as the stack's subchart."""
    with helm.Chart.load(stack_chart) as chart:
        with pytest.raises(helm.HelmValuesError, match="logFormat"):
            chart.render({"chatbot-monitoring-operator": {"logFormat": "xml"}}, name=RELEASE, namespace=NAMESPACE)


# ---------------------------------------------------------------------------------------------------------------------
# the stack chart


def cbm_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cbm = one(docs, "ChatbotMonitoring")
    assert cbm["apiVersion"] == "monitoring.chatbot-sav.io/v1alpha1"
    return cbm


def test_stack_renders_the_operator_and_a_chatbot_monitoring_selected_by_its_prometheus(stack_chart: Path) -> None:
    docs = render(stack_chart)
    cbm = cbm_of(docs)
    assert cbm["metadata"]["name"] == "chatbot"
    assert cbm["metadata"]["namespace"] == NAMESPACE
    # kube-prometheus-stack's Prometheus selects ServiceMonitors and PrometheusRules labelled release: <release>.
    assert cbm["spec"]["monitoring"]["labels"]["release"] == RELEASE
    # The operator subchart is part of the release; scripts/kind-up.sh and the CI workflow use this Deployment name.
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["name"] == f"{RELEASE}-chatbot-monitoring-operator"
    assert triples(cluster_roles(docs)["watched"]["rules"]) == triples(EXPECTED_RULES)
    assert of_kind(docs, "Service") == [d for d in docs if d["kind"] == "Service" and d["spec"]["type"] == "ClusterIP"]


def test_stack_keeps_the_spec_and_other_monitoring_labels(stack_chart: Path) -> None:
    spec = {
        "chatbot": {"replicas": 1, "port": 9000},
        "monitoring": {"interval": "30s", "scrapeTimeout": "10s", "labels": {"team": "sav", "release": "other"}},
        "alerts": {"errorRate": {"for": "5m", "severity": "critical", "threshold": 0.2}},
    }
    cbm = cbm_of(render(stack_chart, {"chatbot": {"name": "shop-bot", "namespace": "shop", "spec": spec}}))
    assert (cbm["metadata"]["name"], cbm["metadata"]["namespace"]) == ("shop-bot", "shop")
    assert cbm["spec"]["monitoring"]["labels"] == {"team": "sav", "release": RELEASE}
    assert cbm["spec"]["monitoring"]["interval"] == "30s"
    assert cbm["spec"]["chatbot"] == spec["chatbot"]
    assert cbm["spec"]["alerts"] == spec["alerts"]


def test_stack_installs_the_crd_before_its_chatbot_monitoring(stack_chart: Path) -> None:
    """Helm maps every kind of a release's manifest before it creates anything: a ChatbotMonitoring can only be in the
    same first install as its CRD when that CRD comes from crds/, which Helm applies beforehand. So the stack ships
    the CRD in its crds/ and turns the operator chart's templated one off."""
    docs = render(stack_chart)
    assert of_kind(docs, "CustomResourceDefinition") == []
    cbm_of(docs)
    with helm.Chart.load(stack_chart) as chart:
        crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    assert [c["metadata"]["name"] for c in crds] == ["chatbotmonitorings.monitoring.chatbot-sav.io"]
    assert crds[0] == load_yaml(ROOT / "crds" / CRD_NAME)
    assert load_yaml(STACK_CHART / "values.yaml")["chatbot-monitoring-operator"]["crds"] == {"enabled": False}


def test_stack_spec_schema_is_the_crds() -> None:
    """chatbot.spec is checked against the CRD's own spec schema, derived from crds/ by tests/charts/sync_schemas.py."""
    schema = json.loads((STACK_CHART / "values.schema.json").read_text())
    crd = load_yaml(ROOT / "crds" / CRD_NAME)
    assert schema["properties"]["chatbot"]["properties"]["spec"] == sync_schemas.stack_spec_schema(crd), (
        "charts/chatbot-stack/values.schema.json's chatbot.spec is not crds/'s spec schema: "
        "run python3 tests/charts/sync_schemas.py"
    )
    spec = schema["properties"]["chatbot"]["properties"]["spec"]
    assert set(spec["properties"]) == set(sync_schemas.crd_spec_schema(crd)["properties"])
    assert spec["additionalProperties"] is False
    assert "required" not in spec, "a partial spec, {} included, is valid: the API server applies the CRD's defaults"
    # The examples validate, as the API server would accept them.
    validator = jsonschema.Draft7Validator(spec)
    for example in ("minimal.yaml", "full.yaml"):
        errors = [e.message for e in validator.iter_errors(load_yaml(ROOT / "examples" / example)["spec"])]
        assert errors == [], (example, errors)


def test_draft7_conversion_says_what_the_api_server_does() -> None:
    node = {
        "type": "object",
        "properties": {
            "image": {"type": "string", "nullable": True},
            "policy": {"type": "string", "enum": ["A", "B"], "nullable": True},
            "size": {"x-kubernetes-int-or-string": True, "format": "int-or-string"},
            "n": {"type": "integer", "format": "int32", "description": "N."},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
        },
        "x-kubernetes-validations": [{"rule": "true", "message": "always fine"}],
    }
    out = sync_schemas.to_draft7(node, "spec.x")
    assert out["additionalProperties"] is False
    assert out["description"] == "x of spec. Checked when applied: always fine."
    props = out["properties"]
    assert props["image"]["type"] == ["string", "null"]
    assert props["policy"]["enum"] == ["A", "B", None]
    assert props["size"]["type"] == ["integer", "string"] and "format" not in props["size"]
    assert props["n"] == {"description": "N.", "type": "integer"}
    assert "additionalProperties" not in props["free"]
    assert "x-kubernetes-" not in json.dumps(out)


def test_stack_takes_one_field_of_an_alert_alone(stack_chart: Path) -> None:
    """Each field of an alert has its own default: the values schema must not ask for the others."""
    spec = {"alerts": {"latency": {"threshold": 3}, "slo": {"latency": {"target": 99, "threshold": 2}}}}
    values = {"chatbot": {"name": "chatbot", "spec": spec}}
    report = helm.lint(stack_chart, values, with_subcharts=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert not lint_errors(report), lint_errors(report)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"chatbot": {"replicaz": 2}}, "replicaz"),
        ({"chatbot": {"replicas": "two"}}, "/chatbot/spec/chatbot/replicas"),
        ({"chatbot": {"replicas": 51}}, "/chatbot/spec/chatbot/replicas"),
        ({"chatbot": {"port": 80}}, "/chatbot/spec/chatbot/port"),
        ({"monitoring": {"interval": "10 seconds"}}, "/chatbot/spec/monitoring/interval"),
        ({"monitoring": {"labels": {"release": 1}}}, "/chatbot/spec/monitoring/labels/release"),
        ({"monitoring": {"prometheus": {"mode": "magic"}}}, "/chatbot/spec/monitoring/prometheus/mode"),
        ({"alerts": {"errorRate": {"threshold": -1}}}, "/chatbot/spec/alerts/errorRate/threshold"),
        ({"alerts": {"availability": {"minUpPercent": 101}}}, "/chatbot/spec/alerts/availability/minUpPercent"),
        ({"alerts": {"errorRate": {"for": "2m", "severity": "page", "threshold": 0.2}}}, "severity"),
        ({"dashboard": {}}, "dashboard"),
        ({"notifications": {"receivers": [{"name": "paging", "opsgenie": {}}]}}, "opsgenie"),
        ({"notifications": {"groupWait": "30 seconds"}}, "/chatbot/spec/notifications/groupWait"),
    ],
)
def test_stack_refuses_a_bad_spec_by_its_field(stack_chart: Path, spec: dict[str, Any], message: str) -> None:
    values = {"chatbot": {"name": "chatbot", "spec": spec}}
    report = helm.lint(stack_chart, values, with_subcharts=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert any(message in e for e in lint_errors(report)), lint_errors(report)
    with helm.Chart.load(stack_chart) as chart:
        with pytest.raises(helm.HelmValuesError, match=re.escape(message)):
            chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize(
    "spec",
    [
        {},
        # Partial: the template adds monitoring.labels.release, the API server the CRD's defaults.
        {"monitoring": {"labels": {"team": "sav"}}},
        {"chatbot": {"image": None, "resources": {"limits": {"cpu": 1, "memory": "256Mi"}}}},
        load_yaml(ROOT / "examples" / "full.yaml")["spec"],
        load_yaml(ROOT / "examples" / "notifications.yaml")["spec"],
    ],
    ids=["empty", "partial", "nullable-int-or-string", "examples-full", "examples-notifications"],
)
def test_stack_accepts_a_valid_spec(stack_chart: Path, spec: dict[str, Any]) -> None:
    values = {"chatbot": {"name": "chatbot", "spec": spec}}
    report = helm.lint(stack_chart, values, strict=True, with_subcharts=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert lint_errors(report) == []
    cbm_of(render(stack_chart, values))


def test_stack_without_kube_prometheus_stack_leaves_the_labels_alone(stack_chart: Path) -> None:
    docs = render(stack_chart, {"kube-prometheus-stack": {"enabled": False}})
    assert cbm_of(docs)["spec"] == {}
    docs = render(
        stack_chart,
        {
            "kube-prometheus-stack": {"enabled": False},
            "chatbot": {"name": "chatbot", "spec": {"monitoring": {"labels": {"prometheus": "main"}}}},
        },
    )
    assert cbm_of(docs)["spec"]["monitoring"]["labels"] == {"prometheus": "main"}
    assert "disabled" in notes(stack_chart, {"kube-prometheus-stack": {"enabled": False}})


def test_stack_chatbot_can_be_left_out(stack_chart: Path) -> None:
    docs = render(stack_chart, {"chatbot": {"enabled": False, "name": "chatbot"}, "local": {"chatbotNodePort": 30001}})
    assert of_kind(docs, "ChatbotMonitoring") == []
    assert [d for d in of_kind(docs, "Service") if d["spec"]["type"] == "NodePort"] == []


def test_stack_default_values() -> None:
    values = load_yaml(STACK_CHART / "values.yaml")
    kps = values["kube-prometheus-stack"]
    assert kps["enabled"] is True
    dashboards = kps["grafana"]["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert dashboards["label"] == "grafana_dashboard"
    assert dashboards["labelValue"] == "1"
    assert dashboards["searchNamespace"] == "ALL"
    assert dashboards["folderAnnotation"] == "grafana_folder"
    assert dashboards["provider"]["foldersFromFilesStructure"] is True
    # Never a known Grafana password outside the local profile.
    assert "adminPassword" not in kps["grafana"]
    assert values["local"]["chatbotNodePort"] is None
    # The sidecar settings match what the operator puts on its dashboard ConfigMaps (the CRD's defaults).
    crd = load_yaml(ROOT / "crds" / CRD_NAME)
    spec_props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    crd_dashboards = spec_props["dashboards"]["default"]
    assert crd_dashboards["labels"] == {dashboards["label"]: dashboards["labelValue"]}
    assert crd_dashboards["folderAnnotation"] == dashboards["folderAnnotation"]


def test_local_profile(stack_chart: Path) -> None:
    local = load_yaml(STACK_CHART / "values-local.yaml")
    kps = local["kube-prometheus-stack"]
    assert (kps["grafana"]["adminUser"], kps["grafana"]["adminPassword"]) == ("admin", "admin")
    assert kps["grafana"]["service"] == {"type": "NodePort", "nodePort": 30000}
    assert kps["prometheus"]["service"] == {"type": "NodePort", "nodePort": 30090}
    assert local["local"]["chatbotNodePort"] == 30001
    # The operator's own ServiceMonitor carries the release label of the release kind-up.sh installs.
    assert local["chatbot-monitoring-operator"]["serviceMonitor"]["labels"] == {"release": RELEASE}
    kind_up = (ROOT / "scripts" / "kind-up.sh").read_text()
    assert f"RELEASE={RELEASE}\n" in kind_up
    assert 'helm upgrade --install "$RELEASE" charts/chatbot-stack' in kind_up
    assert "-f charts/chatbot-stack/values-local.yaml" in kind_up

    docs = render(stack_chart, helm.values_from_yaml((STACK_CHART / "values-local.yaml").read_text()))
    (nodeport,) = [d for d in of_kind(docs, "Service") if d["spec"]["type"] == "NodePort"]
    assert nodeport["metadata"]["namespace"] == NAMESPACE
    assert nodeport["spec"]["selector"] == {"app.kubernetes.io/name": "chatbot", "app.kubernetes.io/instance": "chatbot"}
    assert nodeport["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": 8000, "nodePort": 30001, "protocol": "TCP"}
    ]
    assert one(docs, "ServiceMonitor")["metadata"]["labels"]["release"] == RELEASE
    assert cbm_of(docs)["spec"]["monitoring"]["labels"]["release"] == RELEASE
    text = notes(stack_chart, helm.values_from_yaml((STACK_CHART / "values-local.yaml").read_text()))
    for url in ("http://localhost:8001", "http://localhost:9090", "http://localhost:3000"):
        assert url in text


def test_nodeport_follows_the_chatbot_port(stack_chart: Path) -> None:
    docs = render(
        stack_chart,
        {"local": {"chatbotNodePort": 30001}, "chatbot": {"name": "bot", "spec": {"chatbot": {"port": 9000}}}},
    )
    (nodeport,) = [d for d in of_kind(docs, "Service") if d["spec"]["type"] == "NodePort"]
    assert nodeport["spec"]["selector"]["app.kubernetes.io/instance"] == "bot"
    assert nodeport["spec"]["ports"][0]["targetPort"] == 9000


# ---------------------------------------------------------------------------------------------------------------------
# kind


def test_kind_config_maps_the_three_local_urls() -> None:
    config = load_yaml(ROOT / "kind-config.yaml")
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    mappings = {m["hostPort"]: m for m in node["extraPortMappings"]}
    assert {port: m["containerPort"] for port, m in mappings.items()} == {8001: 30001, 9090: 30090, 3000: 30000}
    assert {m["listenAddress"] for m in mappings.values()} == {"127.0.0.1"}
    # Each container port is the NodePort the local profile gives that service.
    local = load_yaml(STACK_CHART / "values-local.yaml")
    kps = local["kube-prometheus-stack"]
    assert mappings[8001]["containerPort"] == local["local"]["chatbotNodePort"]
    assert mappings[9090]["containerPort"] == kps["prometheus"]["service"]["nodePort"]
    assert mappings[3000]["containerPort"] == kps["grafana"]["service"]["nodePort"]


def test_dockerfiles_are_non_root_distroless() -> None:
    for crate, binary in (("chatbot", "chatbot"), ("operator", "chatbot-operator")):
        text = (ROOT / crate / "Dockerfile").read_text()
        assert "FROM gcr.io/distroless/cc-debian12:nonroot" in text
        assert "USER 65532:65532" in text
        assert f'ENTRYPOINT ["/{binary}"]' in text
        assert f"cargo build --release --locked -p {binary}" in text
        for label in ("title", "description", "source", "licenses", "version"):
            assert f"org.opencontainers.image.{label}=" in text


# ---------------------------------------------------------------------------------------------------------------------
# documentation


def leaf_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths += leaf_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("chart_dir", [OPERATOR_CHART, STACK_CHART], ids=lambda p: p.name)
def test_every_value_is_in_the_readme_table(chart_dir: Path) -> None:
    readme = (chart_dir / "README.md").read_text()
    documented = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    for path in leaf_paths(load_yaml(chart_dir / "values.yaml")):
        parts = path.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert prefixes & documented, f"{path} is not in {chart_dir.name}/README.md's values table"

"""Checks of the release workflow (.github/workflows/release.yml) against the charts it publishes, without GitHub.

What can go wrong silently in a release: images pushed under names the charts do not pull, one architecture missing,
a chart published before its images exist, write permissions on every job, a tag that disagrees with the charts.
These tests read the workflow as data and compare it with charts/*/Chart.yaml, values.yaml and the Dockerfiles; the
version check step is run for real on this work tree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"
OPERATOR_CHART = ROOT / "charts" / "chatbot-monitoring-operator"
STACK_CHART = ROOT / "charts" / "chatbot-stack"
PLATFORMS = {"linux/amd64", "linux/arm64"}
CHARTS_OCI = "oci://ghcr.io/chatbot-sav/charts"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load_yaml(RELEASE)


def triggers(wf: dict[str, Any]) -> Any:
    # YAML 1.1 (PyYAML) reads the key `on` as True.
    return wf["on"] if "on" in wf else wf[True]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(s["run"] for s in steps(job) if "run" in s)


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def upstream(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job that must finish before `name` starts."""
    seen: set[str] = set()
    todo = list(needs(jobs[name]))
    while todo:
        job = todo.pop()
        if job not in seen:
            seen.add(job)
            todo += needs(jobs[job])
    return seen


def chart_images() -> dict[str, str]:
    """Image repositories the charts pull by default: the operator's and the chatbot's (without its tag)."""
    values = load_yaml(OPERATOR_CHART / "values.yaml")
    return {
        "chatbot-operator": values["image"]["repository"],
        "chatbot": values["chatbotImage"].rsplit(":", 1)[0],
    }


def image_matrix(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in job["strategy"]["matrix"]["image"]}


def test_workflow_is_valid_yaml_with_jobs(workflow: dict[str, Any]) -> None:
    assert workflow["name"] == "release"
    assert set(workflow["jobs"]) == {"verify", "images", "publish-images", "publish-charts", "release"}
    for name, job in workflow["jobs"].items():
        assert job["runs-on"], name
        assert job.get("timeout-minutes"), f"{name}: a release job without a timeout can hang for 6 hours"


def test_triggered_on_version_tags_only(workflow: dict[str, Any]) -> None:
    assert triggers(workflow) == {"push": {"tags": ["v*"]}}
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_least_privilege_permissions(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions", {})
        assert permissions != "write-all" and "actions" not in permissions, name
        pushes = bool(uses(job, "docker/login-action")) or "helm push" in scripts(job)
        assert (permissions.get("packages") == "write") == pushes, f"{name}: packages: write iff it pushes"
        signs = "cosign sign" in scripts(job)
        assert (permissions.get("id-token") == "write") == signs, f"{name}: id-token: write iff it signs"
        releases = "gh release create" in scripts(job)
        assert (permissions.get("contents") == "write") == releases, f"{name}: contents: write iff it releases"
    # The jobs that only test or release hold no registry rights at all.
    assert "permissions" not in workflow["jobs"]["verify"]
    assert "packages" not in workflow["jobs"]["release"]["permissions"]


def test_both_images_built_for_amd64_and_arm64_under_the_chart_names(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["images"]
    images = image_matrix(job)
    assert {name: entry["repository"] for name, entry in images.items()} == chart_images()
    assert images["chatbot"]["dockerfile"] == "chatbot/Dockerfile"
    assert images["chatbot-operator"]["dockerfile"] == "operator/Dockerfile"
    for entry in images.values():
        assert (ROOT / entry["dockerfile"]).is_file()
    platforms = job["strategy"]["matrix"]["platform"]
    assert {p["name"] for p in platforms} == PLATFORMS
    # Native runners, no emulation: the Dockerfiles compile Rust.
    runners = {p["name"]: p["runner"] for p in platforms}
    assert runners["linux/arm64"].endswith("-arm") and not runners["linux/amd64"].endswith("-arm")
    assert job["runs-on"] == "${{ matrix.platform.runner }}"
    for name, other in workflow["jobs"].items():
        assert not uses(other, "docker/setup-qemu-action"), name

    (build,) = uses(job, "docker/build-push-action")
    inputs = build["with"]
    assert inputs["context"] == "."
    assert inputs["file"] == "${{ matrix.image.dockerfile }}"
    assert inputs["platforms"] == "${{ matrix.platform.name }}"
    assert inputs["build-args"] == "VERSION=${{ needs.verify.outputs.version }}"
    assert "push-by-digest=true" in inputs["outputs"] and "name=${{ matrix.image.repository }}" in inputs["outputs"]
    assert inputs["provenance"] == "mode=max" and inputs["sbom"] is True
    assert inputs["cache-from"].startswith("type=gha") and inputs["cache-to"].startswith("type=gha")
    assert "${{ matrix.platform.arch }}" in inputs["cache-to"], "one cache scope per architecture"
    assert uses(job, "docker/setup-buildx-action") and uses(job, "docker/metadata-action")


def test_image_titles_and_descriptions_are_the_dockerfiles(workflow: dict[str, Any]) -> None:
    for job_name in ("images", "publish-images"):
        for name, entry in image_matrix(workflow["jobs"][job_name]).items():
            dockerfile = (ROOT / ("chatbot" if name == "chatbot" else "operator") / "Dockerfile").read_text()
            assert f'org.opencontainers.image.title="{name}"' in dockerfile
            assert f'org.opencontainers.image.description="{entry["description"]}"' in dockerfile, (job_name, name)


def test_images_tagged_with_the_version_without_v_as_one_multi_arch_index(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["publish-images"]
    assert image_matrix(job).keys() == image_matrix(workflow["jobs"]["images"]).keys()
    for name, entry in image_matrix(job).items():
        assert entry["repository"] == image_matrix(workflow["jobs"]["images"])[name]["repository"]
    (meta,) = uses(job, "docker/metadata-action")
    assert meta["with"]["tags"] == "type=semver,pattern={{version}}"
    assert meta["with"]["flavor"] == "latest=false"
    (download,) = uses(job, "actions/download-artifact")
    # digest-<arch>-<image>: the pattern of one image must not match the other's artefacts.
    assert download["with"]["pattern"] == "digest-*-${{ matrix.image.name }}"
    (upload,) = uses(workflow["jobs"]["images"], "actions/upload-artifact")
    assert upload["with"]["name"] == "digest-${{ matrix.platform.arch }}-${{ matrix.image.name }}"
    script = scripts(job)
    assert "docker buildx imagetools create" in script
    assert '"linux/amd64,linux/arm64"' in script, "the index is checked for both platforms"
    assert uses(job, "sigstore/cosign-installer")
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in script and "cosign verify" in script
    assert workflow["env"]["CHATBOT_IMAGE"] == chart_images()["chatbot"]
    assert workflow["env"]["OPERATOR_IMAGE"] == chart_images()["chatbot-operator"]


def test_both_charts_packaged_with_their_dependencies_and_pushed_to_oci(workflow: dict[str, Any]) -> None:
    assert workflow["env"]["CHARTS_OCI"] == CHARTS_OCI
    verify = scripts(workflow["jobs"]["verify"])
    deps = {d["name"]: d for d in load_yaml(STACK_CHART / "Chart.yaml")["dependencies"]}
    assert f"helm repo add prometheus-community {deps['kube-prometheus-stack']['repository']}" in verify
    assert deps["chatbot-monitoring-operator"]["repository"] == "file://../chatbot-monitoring-operator"
    assert verify.index("helm repo add") < verify.index("helm dependency build charts/chatbot-stack")
    assert "helm package charts/chatbot-monitoring-operator" in verify
    assert verify.index("helm dependency build") < verify.index("helm package charts/chatbot-stack")
    assert "chatbot-stack/charts/chatbot-monitoring-operator-$VERSION.tgz" in verify
    assert "scripts/test-charts.sh" in verify and "helm lint" in verify and "helm template" in verify

    publish = workflow["jobs"]["publish-charts"]
    script = scripts(publish)
    assert 'helm push "dist/$chart-$VERSION.tgz" "$CHARTS_OCI"' in script
    assert "for chart in chatbot-monitoring-operator chatbot-stack; do" in script
    assert "helm registry login ghcr.io" in script and "cosign sign --yes" in script
    assert {OPERATOR_CHART.name, STACK_CHART.name} == {
        load_yaml(OPERATOR_CHART / "Chart.yaml")["name"],
        load_yaml(STACK_CHART / "Chart.yaml")["name"],
    }


def test_nothing_is_published_before_the_checks_and_charts_wait_for_their_images(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    for name in ("images", "publish-images", "publish-charts", "release"):
        assert "verify" in upstream(jobs, name), name
    assert "publish-images" in upstream(jobs, "publish-charts")
    assert {"publish-images", "publish-charts"} <= upstream(jobs, "release")
    verify = steps(jobs["verify"])
    names = [s.get("name", s.get("uses", "")) for s in verify]
    check = names.index("Tag matches the workspace and chart versions")
    assert check < names.index("Chart tests (scripts/test-charts.sh)") < names.index("Package the charts")


def test_release_attaches_the_chart_packages(workflow: dict[str, Any]) -> None:
    script = scripts(workflow["jobs"]["release"])
    assert 'gh release create "$TAG" dist/*.tgz' in script and "--verify-tag" in script
    assert "--prerelease" in script


def test_run_scripts_take_no_expressions(workflow: dict[str, Any]) -> None:
    # ${{ }} in a script is pasted into the shell before it runs (template injection): values go through env.
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), (name, step.get("name"))


def test_actions_pinned_by_major_version_like_the_other_workflows(workflow: dict[str, Any]) -> None:
    majors: dict[str, str] = {}
    for path in WORKFLOWS.glob("*.yml"):
        if path != RELEASE:
            for job in load_yaml(path)["jobs"].values():
                for step in steps(job):
                    if "uses" in step:
                        action, ref = step["uses"].split("@")
                        majors[action] = ref
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            if "uses" not in step:
                continue
            action, ref = step["uses"].split("@")
            assert re.fullmatch(r"v\d+", ref) or (action, ref) == ("dtolnay/rust-toolchain", "stable"), step["uses"]
            if action in majors:
                assert ref == majors[action], f"{name}: {step['uses']} where the other workflows use @{majors[action]}"


def version_check(workflow: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in steps(workflow["jobs"]["verify"]) if s.get("id") == "version"]
    return step


def run_version_check(workflow: dict[str, Any], tag: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    step = version_check(workflow)
    assert step["shell"] == "python" and step["env"] == {"TAG": "${{ github.ref_name }}"}
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, **{k: workflow["env"][k] for k in ("CHATBOT_IMAGE", "OPERATOR_IMAGE")}}
    env.update(TAG=tag, GITHUB_OUTPUT=str(output))
    result = subprocess.run(
        [sys.executable, "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    return result, output.read_text()


def workspace_version() -> str:
    package = (ROOT / "Cargo.toml").read_text().split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version = "([^"]+)"', package, re.MULTILINE).group(1)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the check uses tomllib (Python 3.11+), as the workflow does")
def test_version_check_accepts_the_tag_of_the_current_versions(workflow: dict[str, Any], tmp_path: Path) -> None:
    version = workspace_version()
    result, output = run_version_check(workflow, f"v{version}", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert output.splitlines() == [f"version={version}", "prerelease=false"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the check uses tomllib (Python 3.11+), as the workflow does")
def test_version_check_names_every_file_a_new_tag_needs_bumped(workflow: dict[str, Any], tmp_path: Path) -> None:
    result, output = run_version_check(workflow, "v99.0.0-rc.1", tmp_path)
    assert result.returncode == 1 and output == ""
    for where in (
        "file=Cargo.toml::",
        "file=charts/chatbot-monitoring-operator/Chart.yaml::version",
        "file=charts/chatbot-monitoring-operator/Chart.yaml::appVersion",
        "file=charts/chatbot-stack/Chart.yaml::version",
        "file=charts/chatbot-stack/Chart.yaml::appVersion",
        "file=charts/chatbot-stack/Chart.yaml::the chatbot-monitoring-operator dependency's version",
        "file=charts/chatbot-monitoring-operator/values.yaml::chatbotImage",
    ):
        assert f"::error {where}" in result.stdout, where
    assert "bump them to 99.0.0-rc.1" in result.stdout


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the check uses tomllib (Python 3.11+), as the workflow does")
@pytest.mark.parametrize("tag", ["0.1.0", "v0.1", "v0.1.0+build.1", "v01.0.0", "version-1"])
def test_version_check_rejects_tags_that_are_not_v_semver(workflow: dict[str, Any], tmp_path: Path, tag: str) -> None:
    result, output = run_version_check(workflow, tag, tmp_path)
    assert result.returncode == 1 and output == ""
    assert "is not v<SemVer>" in result.stdout

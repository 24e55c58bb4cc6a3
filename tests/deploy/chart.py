"""Renders deploy/helm/textpulse with the real helm binary, which deploy/local/go_tools.sh builds from the Go
module proxy into var/go when it is missing (so these tests never skip for want of helm).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "textpulse"
EXAMPLES = REPO / "deploy" / "helm" / "examples"
GO_TOOLS = REPO / "deploy" / "local" / "go_tools.sh"
RELEASE = "tp"
# The oldest Kubernetes the chart accepts (Chart.yaml kubeVersion) and the newest helm knows.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# A first build takes minutes on a busy two-core machine.
BUILD_TIMEOUT_S = 1500


def build_helm() -> Path:
    """The path of helm at the pinned version, built now if it is missing; raises if the build fails."""
    done = subprocess.run(["bash", str(GO_TOOLS)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-3000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def example_values() -> list[Path]:
    return sorted(EXAMPLES.glob("values-*.yaml"))


def example_manifests() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("values-"))


@dataclass(frozen=True)
class Rendered:
    """What `helm template` made of the chart with some values: the objects, and the values it used."""

    objects: list[dict[str, Any]]
    values: dict[str, Any]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
        return found[0]


class Helm:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=120)

    def template(self, values: Sequence[Path] = (), sets: Sequence[str] = (),
                 kube_version: str = KUBE_VERSIONS[-1]) -> Rendered:
        done = self.run(*self._template_args(values, sets, kube_version))
        assert done.returncode == 0, done.stderr
        objects = [o for o in yaml.safe_load_all(done.stdout) if o]
        return Rendered(objects, merged_values(values, sets))

    def template_error(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """The error of a render that must fail."""
        done = self.run(*self._template_args(values, sets, KUBE_VERSIONS[-1]))
        assert done.returncode != 0, "the render was expected to fail"
        return done.stderr

    @staticmethod
    def _template_args(values: Sequence[Path], sets: Sequence[str], kube_version: str) -> list[str]:
        args = ["template", RELEASE, str(CHART), "--kube-version", kube_version]
        for path in values:
            args += ["-f", str(path)]
        for assignment in sets:
            args += ["--set", assignment]
        return args


def merged_values(values: Sequence[Path], sets: Sequence[str]) -> dict[str, Any]:
    """The chart's defaults with the files and simple --set assignments laid over them, as helm does."""
    merged: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in values:
        _overlay(merged, yaml.safe_load(path.read_text()) or {})
    for assignment in sets:
        dotted, raw = assignment.split("=", 1)
        *parents, leaf = dotted.split(".")
        node = merged
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return merged


def _overlay(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def consumer_groups() -> dict[str, str]:
    """Service -> its consumer group (after the topic prefix), for the services that consume a topic."""
    from libs.common.topics import ALL_TOPICS, SERVICES, group_id

    return {s: group_id(s) for s in SERVICES if any(s in spec.consumers for spec in ALL_TOPICS)}


def checked_topics() -> dict[str, list[str]]:
    """Service -> the topics the manifest says it produces, consumes or checks at start (with their DLQs)."""
    from libs.common.topics import ALL_TOPICS, SERVICES

    return {s: [spec.name for spec in ALL_TOPICS if s in spec.producers | spec.consumers | spec.checkers]
            for s in SERVICES}

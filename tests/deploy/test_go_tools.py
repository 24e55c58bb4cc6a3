"""deploy/local/go_tools.sh: builds helm once, then reuses it; without Go it says what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.chart import BUILD_TIMEOUT_S, GO_TOOLS, Helm

# The helm fixture builds helm when setup has not (528 s once on a machine at load 20).
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)


def run_go_tools(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(GO_TOOLS)], capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT_S)


def test_a_built_helm_is_reused_at_its_pinned_version(helm: Helm) -> None:
    again = run_go_tools(dict(os.environ))
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()) == helm.binary
    assert "building" not in again.stderr
    pinned = next(line for line in GO_TOOLS.read_text().splitlines() if line.startswith("HELM_VERSION="))
    version = pinned.split("=", 1)[1].split()[0]
    assert helm.run("version", "--template", "{{.Version}}").stdout == version


def test_without_go_it_stops_naming_what_is_missing(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("bash", "dirname", "grep", "mkdir", "date", "cut"):
        found = shutil.which(name)
        assert found is not None
        (tools / name).symlink_to(found)
    env = {"PATH": str(tools), "TEXTPULSE_GO_DIR": str(tmp_path / "go")}
    done = run_go_tools(env)
    assert done.returncode == 1
    assert "the Go toolchain is required to build helm" in done.stderr

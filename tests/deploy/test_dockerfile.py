"""deploy/Dockerfile cannot be built here (no Docker engine); these checks read it for the rules that can be
seen without building: multi-stage, compilers only in a build stage, a non-root user the chart agrees
with, every package copied, and a default command that runs a service.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from tests.deploy.chart import CHART, REPO

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libpq-dev)\b")


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per stage (each starting with its FROM)."""
    found: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(str(REPO / "deploy" / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if instruction["instruction"] != "COMMENT":
            found[-1].append(instruction)
    return found


FINAL = stages()[-1]


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_the_image_is_built_in_stages() -> None:
    assert len(stages()) >= 2
    assert all(" AS " in s[0]["value"].upper() for s in stages()[:-1]), "earlier stages are named for COPY --from"


def test_build_tools_stay_out_of_the_final_stage() -> None:
    for run in instructions(FINAL, "RUN"):
        assert not BUILD_TOOLS.search(run), run
        assert "apt-get install" not in run, run
    # What the final stage takes from the others: the virtualenv and the dashboard's assets, no system paths.
    for copy in instructions(FINAL, "COPY"):
        if copy.startswith("--from="):
            source = copy.split()[1]
            assert source in {"/opt/venv", "/assets/node_modules"}, copy


def test_it_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = instructions(FINAL, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes' runAsNonRoot check it"
    (user_at,) = [n for n, i in enumerate(FINAL) if i["instruction"] == "USER"]
    assert user_at > max(n for n, i in enumerate(FINAL) if i["instruction"] == "RUN"), "USER comes after every RUN"
    pod = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))


def test_every_package_is_copied_and_the_default_command_runs_a_service() -> None:
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = {c.split()[0] for c in instructions(FINAL, "COPY") if not c.startswith("--from=")}
    assert {p.rstrip("*") for p in packages["include"]} <= copied
    (cmd,) = instructions(FINAL, "CMD")
    command = json.loads(cmd)
    assert command[:2] == ["python", "-m"] and command[2].startswith("services.")
    assert (REPO / command[2].replace(".", "/") / "__main__.py").exists()


def test_the_environment_suits_a_read_only_container() -> None:
    env = " ".join(instructions(FINAL, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "TEXTPULSE_HTTP_HOST=0.0.0.0" in env
    assert any("compileall" in run for run in instructions(FINAL, "RUN")), "bytecode is compiled at build time"

"""CI gates on lint (ruff and mypy) before the tests, and the types say what topics carry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_ci_with_make(tmp_path: Path, failing_target: str | None = None) -> tuple[int, list[str]]:
    """Run ``.ci/run`` with a stand-in ``make`` on PATH that records its targets (and fails one, if asked)."""
    calls = tmp_path / "make-calls"
    fake = tmp_path / "bin" / "make"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != "{failing_target or "-"}" ]\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, timeout=60)
    return done.returncode, calls.read_text().split("\n")[:-1] if calls.exists() else []


def test_ci_runs_the_lint_command_then_the_test_command(tmp_path: Path) -> None:
    assert run_ci_with_make(tmp_path) == (0, ["lint", "test"])


def test_a_lint_failure_fails_ci_before_the_tests_run(tmp_path: Path) -> None:
    assert run_ci_with_make(tmp_path, failing_target="lint") == (1, ["lint"])


def test_the_lint_command_runs_ruff_and_mypy() -> None:
    planned = subprocess.run(["make", "-n", "lint"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    commands = [line.strip() for line in planned.stdout.splitlines()]
    assert ".venv/bin/ruff check ." in commands
    assert ".venv/bin/mypy" in commands


def mypy_errors(tmp_path: Path, code: str) -> list[str]:
    """mypy's errors for ``code``, checked from the repository with its configuration (strict). It shares
    the repository's incremental cache with ``make lint``, so only what changed since is checked again."""
    program = tmp_path / "program.py"
    program.write_text(code)
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", str(program)],
                          cwd=REPO, capture_output=True, text=True, timeout=540)
    assert not done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if ": error:" in line]


@pytest.mark.timeout(600)
def test_a_decoded_event_has_its_topics_event_type(tmp_path: Path) -> None:
    errors = mypy_errors(tmp_path,
        "from libs.common.events import CampaignDue, Recipient\n"
        "from libs.common.kafka import decode_event\n"
        "from libs.common.topics import RECIPIENTS\n"
        "recipient: Recipient = decode_event(RECIPIENTS, b'{}')\n"
        "due: CampaignDue = decode_event(RECIPIENTS, b'{}')\n"
    )
    assert len(errors) == 1, errors
    assert ":5: error: Incompatible types in assignment" in errors[0]

"""The setup scripts' apt_get (deploy/local/apt.sh) waits for another apt/dpkg process, as a real
``apt-get update`` runs it: on package lists of its own in a temporary folder (no sources, so nothing is
fetched and the system's apt state is never touched), whose lock the test holds the way apt does (fcntl)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack import REPO

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs Debian's apt-get")]

APT_SH = REPO / "deploy" / "local" / "apt.sh"
WAITING = "waiting for another apt/dpkg process to finish"


@pytest.fixture
def apt_dirs(tmp_path: Path) -> Path:
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "sources.list").touch()
    (tmp_path / "lists" / "lock").touch()
    return tmp_path


def update_in(apt_dirs: Path, timeout_s: int) -> subprocess.Popen[str]:
    """``apt_get update`` through the shared function, on the private lists; its stderr is piped."""
    options = (f"-o Dir::State::Lists={apt_dirs}/lists -o Dir::Cache={apt_dirs}/cache "
               f"-o Dir::Etc::SourceList={apt_dirs}/sources.list -o Dir::Etc::SourceParts={apt_dirs}/sources.list.d")
    env = dict(os.environ, APT_LOCK_FILES=f"{apt_dirs}/lists/lock", APT_LOCK_TIMEOUT_S=str(timeout_s))
    return subprocess.Popen(["bash", "-c", f'source "{APT_SH}" && apt_get {options} update -qq'], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def held_lock(apt_dirs: Path) -> Iterator[Path]:
    lock = apt_dirs / "lists" / "lock"
    with lock.open("w") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)  # as apt locks it: an fcntl (POSIX) lock, not flock
        yield lock
        fcntl.lockf(handle, fcntl.LOCK_UN)


def test_apt_get_waits_for_the_lock_with_a_message_then_runs(apt_dirs: Path, held_lock: Path) -> None:
    update = update_in(apt_dirs, timeout_s=60)
    assert update.stderr is not None
    first_line = update.stderr.readline()  # blocks until the function has seen the lock held
    assert WAITING in first_line and f"process {os.getpid()}" in first_line, first_line
    assert update.poll() is None  # still waiting, not failed at once as a bare apt-get does

    with held_lock.open("w") as handle:
        fcntl.lockf(handle, fcntl.LOCK_UN)  # the other apt process finishes
    _, rest = update.communicate(timeout=60)
    assert update.returncode == 0, rest


def test_apt_get_gives_up_after_its_timeout_naming_the_holder(apt_dirs: Path, held_lock: Path) -> None:
    update = update_in(apt_dirs, timeout_s=1)
    _, stderr = update.communicate(timeout=60)
    assert update.returncode != 0
    assert WAITING in stderr and f"gave up after 1s: process {os.getpid()} still holds apt's lock" in stderr


def test_a_bare_apt_get_update_fails_at_once_on_the_same_lock(apt_dirs: Path, held_lock: Path) -> None:
    """Why the wait is ours: apt-get's DPkg::Lock::Timeout does not cover the lists' lock."""
    result = subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=60", "-o", f"Dir::State::Lists={apt_dirs}/lists",
         "-o", f"Dir::Cache={apt_dirs}/cache", "-o", f"Dir::Etc::SourceList={apt_dirs}/sources.list",
         "-o", f"Dir::Etc::SourceParts={apt_dirs}/sources.list.d", "update", "-qq"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Could not get lock" in result.stderr


def test_every_apt_get_of_the_setup_scripts_goes_through_apt_get() -> None:
    for script in (REPO / "deploy" / "local").glob("*.sh"):
        if script != APT_SH:
            bare = [line for line in script.read_text().splitlines() if "apt-get " in line.split("#")[0]]
            assert bare == [], (script.name, bare)

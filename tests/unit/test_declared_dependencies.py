"""Every third-party module the code imports is declared in pyproject.toml, and requirements.lock pins
exactly what the declared requirements pull in (no stray pins, none missing).

Product code (libs, services, standins, deploy) may rely only on the runtime dependencies; tests, their
harness and benchmarks may also rely on the `dev` extra. A package that arrives only through another one's
requirements (requests through twilio, say) is not declared, so it breaks when that one drops it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
OWN_PACKAGES = {"libs", "services", "standins", "deploy", "bench", "harness", "tests"}
PRODUCT_DIRS, DEV_DIRS = ("libs", "services", "standins", "deploy"), ("bench", "harness", "tests")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


RUNTIME = [Requirement(spec) for spec in PYPROJECT["dependencies"]]
DEV = [Requirement(spec) for spec in PYPROJECT["optional-dependencies"]["dev"]]


def imported_modules(path: Path) -> Iterator[str]:
    """Top-level names of the absolute imports in one file, wherever they sit (function bodies too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def third_party_imports(dirs: Iterable[str]) -> dict[str, set[str]]:
    """Module name -> the files (relative to the repo) that import it."""
    found: dict[str, set[str]] = {}
    for top in dirs:
        for path in (REPO / top).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            for module in imported_modules(path):
                if module not in sys.stdlib_module_names and module not in OWN_PACKAGES:
                    found.setdefault(module, set()).add(str(path.relative_to(REPO)))
    return found


def undeclared(dirs: Iterable[str], allowed: list[Requirement]) -> list[str]:
    declared = {normalise(r.name) for r in allowed}
    providers = importlib.metadata.packages_distributions()
    problems = []
    for module, files in sorted(third_party_imports(dirs).items()):
        distributions = {normalise(d) for d in providers.get(module, [])}
        if not distributions & declared:
            where = ", ".join(sorted(files)[:3])
            problems.append(f"{module} (from {sorted(distributions) or 'no installed distribution'}) in {where}")
    return problems


def test_product_code_imports_only_runtime_dependencies() -> None:
    assert undeclared(PRODUCT_DIRS, RUNTIME) == []


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    assert undeclared(DEV_DIRS, RUNTIME + DEV) == []


def test_the_scan_sees_a_module_that_is_not_declared() -> None:
    # `packaging` is imported above, so the scan over tests/ finds it; runtime alone does not declare it.
    assert any(line.startswith("packaging ") for line in undeclared(["tests/unit"], RUNTIME))


def required_closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the roots pull in on this interpreter, from the installed metadata."""
    seen: set[str] = set()
    pending = [(r, set(r.extras)) for r in roots]
    while pending:
        requirement, extras = pending.pop()
        name = normalise(requirement.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for spec in importlib.metadata.requires(requirement.name) or []:
            child = Requirement(spec)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in (extras or {""})):
                pending.append((child, set(child.extras)))
    return {key.split("[")[0] for key in seen}


def locked() -> set[str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return {normalise(line.split("==")[0]) for line in lines if line and not line.startswith(("#", " "))}


def test_the_lock_pins_exactly_what_the_declared_requirements_pull_in() -> None:
    needed = required_closure(RUNTIME + DEV)
    assert sorted(locked() - needed) == [], "pinned, but nothing declared needs it"
    assert sorted(needed - locked()) == [], "needed, but not pinned"

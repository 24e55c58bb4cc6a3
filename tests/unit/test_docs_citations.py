"""Every ``docs/<file>.md#<section>`` the code cites exists, and the code cites nothing outside the repository.

A section is a Markdown heading; its anchor is the heading as GitHub spells it (lower case, punctuation
dropped, spaces as hyphens), so a link in a comment opens the right place in the browser.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CODE_SUFFIXES = {".py", ".sql", ".js", ".html"}
SKIPPED_DIRS = {".venv", "node_modules", "var", ".git", "__pycache__"}
# Applied migrations are checksummed (libs/common/db.py), so their comments cannot change: they keep the
# citations they were written with.
FROZEN = ROOT / "libs" / "common" / "migrations"

CITATION = re.compile(r"docs/([a-z_-]+)\.md(?:#([a-z0-9-]+))?")
# A reference page named without ``docs/``: one that lived outside the repository.
OUTSIDE_REFERENCE = re.compile(r"(?<![\w/])(?:twilio|imis|segments|kafka|compliance)\.md|shared" "/reference")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
DOC_LINK = re.compile(r"\]\(([a-z_-]+\.md)?#([a-z0-9-]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: ``"Accounts, numbers and services"`` -> ``accounts-numbers-and-services``."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(doc: str) -> frozenset[str]:
    path = DOCS / f"{doc}.md"
    if not path.is_file():
        return frozenset()
    return frozenset(github_anchor(h) for h in HEADING.findall(path.read_text(encoding="utf-8")))


def code_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if path.suffix in CODE_SUFFIXES and path.is_file():
            if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
                found.append(path)
    return sorted(found)


def citations() -> list[tuple[str, str, str | None]]:
    cited = []
    for path in code_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in CITATION.finditer(line):
                cited.append((f"{path.relative_to(ROOT)}:{number}", match.group(1), match.group(2)))
    return cited


def test_the_anchor_rule_matches_githubs() -> None:
    assert github_anchor("Accounts, numbers and services") == "accounts-numbers-and-services"
    assert github_anchor("GSM-7 alphabet") == "gsm-7-alphabet"
    assert github_anchor("`campaign-due`") == "campaign-due"


def test_the_code_cites_the_docs() -> None:
    # Guards the scan itself: a pattern that matched nothing would pass every check below.
    assert len(citations()) >= 60


@pytest.mark.parametrize(("where", "doc", "anchor"), citations())
def test_every_cited_section_exists(where: str, doc: str, anchor: str | None) -> None:
    assert (DOCS / f"{doc}.md").is_file(), f"{where} cites docs/{doc}.md, which does not exist"
    if anchor is not None:
        assert anchor in anchors(doc), (
            f"{where} cites docs/{doc}.md#{anchor}; its sections are {sorted(anchors(doc))}"
        )


def test_no_code_cites_a_reference_outside_the_repository() -> None:
    outside = []
    for path in code_files():
        if FROZEN in path.parents:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                outside.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert outside == []


@pytest.mark.parametrize("doc", sorted(p.stem for p in DOCS.glob("*.md")))
def test_links_between_docs_land_on_a_section(doc: str) -> None:
    text = (DOCS / f"{doc}.md").read_text(encoding="utf-8")
    for target, anchor in DOC_LINK.findall(text):
        target_doc = target.removesuffix(".md") if target else doc
        assert anchor in anchors(target_doc), f"docs/{doc}.md links to {target or ''}#{anchor}, which is no section"


def test_the_readme_links_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in DOCS.glob("*.md"):
        assert f"docs/{path.name}" in readme, f"README.md does not link docs/{path.name}"

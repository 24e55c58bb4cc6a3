"""Members pasted into a list, one a line, turned into entries; each bad line reported with its number. Pure.

A line is a mobile number, or ``member id, mobile[, first name[, last name]]`` (cells split on commas,
semicolons or tabs, so rows copied from a spreadsheet work). Numbers are normalised with the
organisation's default country prefix. A number pasted without a member id is listed under its E.164 form.

    >>> entries, problems = parse_pasted("(907) 555-0101\\n12\\n1001, 907-555-0102, Ada", "+1")
    >>> [(e.member_id, e.mobile, e.merge_values) for e in entries]
    [('+19075550101', '+19075550101', {}), ('1001', '+19075550102', {'first_name': 'Ada'})]
    >>> [(p.line, p.code) for p in problems]
    [(2, 'phone_too_short')]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from libs.common.phone import Normalised, normalise
from services.api.lists_db import Entry

MAX_LINES = 10_000
MAX_MEMBER_ID = 64
_CELLS = re.compile(r"[,;\t]")
_NAME_FIELDS = ("first_name", "last_name")


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line that was not added: ``line`` counts from 1, ``message`` says why in plain words."""

    line: int
    text: str
    code: str
    message: str


def parse_pasted(text: str, default_country_prefix: str) -> tuple[list[Entry], list[LineProblem]]:
    """Entries for the usable lines and a problem for every other non-blank line, both in line order."""
    entries: list[Entry] = []
    problems: list[LineProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in _CELLS.split(line)]
        member_id, mobile, names = ("", cells[0], []) if len(cells) == 1 else (cells[0], cells[1], cells[2:4])
        if len(member_id) > MAX_MEMBER_ID:
            problems.append(LineProblem(number, line.strip(), "member_id_too_long",
                                        f"the member id is over {MAX_MEMBER_ID} characters"))
            continue
        if len(cells) > 1 and not member_id:
            problems.append(LineProblem(number, line.strip(), "member_id_missing",
                                        "the first cell (the member id) is empty"))
            continue
        found = normalise(mobile, default_country_prefix)
        if not isinstance(found, Normalised):
            problems.append(LineProblem(number, line.strip(), found.reason, found.message))
            continue
        values = {name: value for name, value in zip(_NAME_FIELDS, names, strict=False) if value}
        entries.append(Entry(member_id or found.e164, found.e164, values))
    return entries, problems


def entries_from_rows(rows: Iterable[dict[str, Any]], default_country_prefix: str,
                      mobile_key: str = "mobile") -> tuple[list[Entry], int]:
    """Entries from stored rows (an upload's accepted rows, a run's recipients) and how many rows had no
    usable number. A row without a member id is listed under its number."""
    entries: list[Entry] = []
    unusable = 0
    for row in rows:
        found = normalise(row.get(mobile_key), default_country_prefix)
        if not isinstance(found, Normalised):
            unusable += 1
            continue
        values = {str(k): v for k, v in (row.get("merge_values") or {}).items() if k != "member_id"}
        entries.append(Entry((row.get("member_id") or found.e164)[:MAX_MEMBER_ID], found.e164, values))
    return entries, unusable

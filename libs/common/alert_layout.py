"""How an alert's ``Draft`` becomes an e-mail's two parts, and how its figures are written. Pure.

A template (``alert_templates``) says what an alert says: its subject, paragraphs, figures, lists, the
steps to take and the page to open. This module lays that out once as plain text and once as escaped
HTML, so the two parts always say the same thing, and reads the context the templates draw on.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.common.errors import PermanentError

__all__ = ["AlertContext", "Draft", "Rendered", "lay_out", "money", "moment"]


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Draft:
    """What an alert says, before layout: ``paragraphs`` first, then ``figures``, then ``steps`` to take."""

    subject: str
    paragraphs: Sequence[str]
    figures: Sequence[tuple[str, str]]
    steps: Sequence[str]
    link_label: str
    link_path: str
    lists: Sequence[tuple[str, Sequence[str]]] = field(default_factory=tuple)  # (title, items) after figures


class AlertContext:
    """An alert's context as templates read it: a missing figure raises ``alert_context_invalid``."""

    def __init__(self, kind: str, values: Mapping[str, Any]) -> None:
        self._kind = kind
        self._values = values

    def __getitem__(self, key: str) -> Any:
        value = self._values.get(key)
        if value is None or value == "":
            raise PermanentError("alert_context_invalid", f"a {self._kind} alert needs {key!r} in its context")
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._values.get(key)
        return default if value is None or value == "" else value

    def number(self, key: str, default: int | None = None) -> str:
        value = self.get(key, default)
        if value is None:
            raise PermanentError("alert_context_invalid", f"a {self._kind} alert needs {key!r} in its context")
        return f"{int(value):,}"

    def money(self, key: str, places: int | None = None) -> str:
        return money(Decimal(str(self.get(key, 0))), places)

    def when(self, key: str) -> str:
        return moment(self[key], self.get("time_zone"))

    @property
    def campaign(self) -> str:
        return str(self["campaign_name"])

    @property
    def run_path(self) -> str:
        return f"/campaigns/{self['campaign_id']}?run={self['run_id']}"


def money(amount: Decimal, places: int | None = None) -> str:
    """$1,234.50 from a dollar up; below it four places, so a fee of $0.0010 does not read as $0.00.
    With ``places``, always that many (a run's cost has four, as its campaign page shows it)."""
    if places is None:
        places = 2 if abs(amount) >= 1 else 4
    return f"${amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,}"


def moment(value: datetime | str, time_zone: str | None) -> str:
    """``Tue 10 Mar 2026, 10:00 EDT``: an aware time in ``time_zone`` (the organisation's) when it is known."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if at.tzinfo is not None and time_zone:
        try:
            at = at.astimezone(ZoneInfo(time_zone))
        except (ZoneInfoNotFoundError, ValueError):
            pass  # an unknown zone name: the time is still right, in the offset it came with
    suffix = f" {at.tzname()}" if at.tzinfo is not None else ""
    return at.strftime("%a %d %b %Y, %H:%M") + suffix


def lay_out(draft: Draft, link: str, *, test: bool) -> tuple[str, str]:
    """The plain-text and the HTML part of ``draft``, linking to ``link``."""
    return _text(draft, link, test), _html(draft, link, test)


_TEST_NOTE = "This alert comes from an organisation in test mode: no real texts were sent."
_FOOTER = "You get this e-mail as an alert address of your organisation or the campaign's contact in Textpulse."


def _text(d: Draft, link: str, test: bool) -> str:
    lines = [_TEST_NOTE, ""] if test else []
    for paragraph in d.paragraphs:
        lines += [paragraph, ""]
    width = max((len(label) for label, _ in d.figures), default=0)
    lines += [f"  {label + ':':<{width + 1}} {value}" for label, value in d.figures]
    for title, items in d.lists:
        lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
    lines += ["", "What to do:"] + [f"  {n}. {step}" for n, step in enumerate(d.steps, 1)]
    lines += ["", f"{d.link_label}: {link}", "", "-- ", _FOOTER]
    return "\n".join(lines) + "\n"


def _html(d: Draft, link: str, test: bool) -> str:
    e = html.escape
    parts = ['<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#1f2933;max-width:40rem">']
    if test:
        parts.append(f'<p style="background:#fff3c4;padding:.5rem">{e(_TEST_NOTE)}</p>')
    parts.append(f'<h2 style="color:#0b6e4f">{e(d.subject)}</h2>')
    parts += [f"<p>{e(p)}</p>" for p in d.paragraphs]
    rows = "".join(f'<tr><th align="left" style="padding-right:1rem">{e(label)}</th><td>{e(value)}</td></tr>'
                   for label, value in d.figures)
    parts.append(f"<table>{rows}</table>")
    for title, items in d.lists:
        parts.append(f"<h3>{e(title)}</h3><ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    parts.append("<h3>What to do</h3><ol>" + "".join(f"<li>{e(s)}</li>" for s in d.steps) + "</ol>")
    parts.append(f'<p><a href="{e(link, quote=True)}">{e(d.link_label)}</a></p>')
    parts.append(f'<p style="color:#616e7c;font-size:small">{e(_FOOTER)}</p></body></html>')
    return "\n".join(parts) + "\n"

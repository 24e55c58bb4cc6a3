"""Text for a CSV that people open in a spreadsheet."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str | None) -> str:
    """Free text for a spreadsheet: a leading = + - @ would be run as a formula, so it is quoted."""
    text = text or ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text

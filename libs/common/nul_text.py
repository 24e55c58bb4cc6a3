"""PostgreSQL text (and jsonb) cannot hold the NUL character (U+0000): the one rule for it.

Where a person typed the value (an API request), it is refused with a message naming the field
(``services/api/nul_text.py``). Where another system sent it (a member's name or number from an iMIS
query), nobody can be asked to fix it, and a NUL never means anything in such text: it is removed
(:func:`without_nul`), so the row is kept instead of failing the copy of the whole audience.
"""

from __future__ import annotations

__all__ = ["MESSAGE", "NUL", "without_nul"]

NUL = "\x00"
MESSAGE = "must not contain the NUL character (\\u0000)"


def without_nul(text: str) -> str:
    """``text`` with every NUL removed."""
    return text.replace(NUL, "") if NUL in text else text

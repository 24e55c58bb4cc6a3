"""PostgreSQL text cannot hold the NUL character (U+0000, ``libs/common/nul_text.py``): a query parameter or
JSON field that carries one is refused up front with a 422 naming it, instead of failing in the database
as a 500."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from libs.common.audience import error_field
from libs.common.nul_text import MESSAGE, NUL
from services.api.errors import InvalidInput


async def refuse_nul_characters(request: Request) -> None:
    """A route dependency; raises :class:`InvalidInput` (``nul_character``) on the first NUL it finds."""
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            raise InvalidInput(name.replace(NUL, ""), "nul_character", MESSAGE)
    if not request.headers.get("content-type", "").startswith("application/json"):
        return
    raw = await request.body()
    if b"\\u0000" not in raw and b"\x00" not in raw:
        return
    try:
        body = json.loads(raw)
    except ValueError:
        return  # FastAPI answers a body that is not JSON itself
    location = _nul_location(body, ())
    if location is not None:
        raise InvalidInput(error_field(location) or "body", "nul_character", MESSAGE)


def _nul_location(value: Any, at: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    if isinstance(value, str):
        return at if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = at + (key.replace(NUL, ""),) if NUL in key else _nul_location(item, at + (key,))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_location(item, at + (index,))
            if found is not None:
                return found
    return None

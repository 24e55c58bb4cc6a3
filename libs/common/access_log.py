"""One log line per HTTP request (``http.request``: method, path, status, milliseconds, client address),
with phone numbers in the path and query masked, as everywhere in the logs."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote, unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.logging import get_logger, mask_phone

log = get_logger("http")

# Seven or more digits, with an optional +, spaces, dots, dashes or brackets between them; not part of a
# longer word (a UUID's groups are joined by dashes to letters and digits).
_PHONE_LIKE = re.compile(r"(?<![\w-])\+?\d[\d\s().-]{5,}\d(?![\w-])")


def masked(path: str, query: str = "") -> str:
    """``/suppressions/history``, ``phone=%2B14155550134`` -> ``/suppressions/history?phone=+1415*****34``."""
    text = unquote(path) + (f"?{unquote_plus(query)}" if query else "")
    return _PHONE_LIKE.sub(lambda m: mask_phone(re.sub(r"[\s().-]", "", m.group())), text)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, recording_send)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            client = scope.get("client")
            log.info("http.request", extra={
                "method": scope["method"], "path": masked(scope["path"], query),
                "status": status, "ms": round((time.perf_counter() - started) * 1000, 1),
                "client": client[0] if client else None,
            })

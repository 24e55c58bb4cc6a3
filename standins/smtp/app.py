"""The catcher as one process: the SMTP server and a small HTTP API on the same event loop.

- SMTP on ``smtp_host:smtp_port``: accepts any sender and recipient, no AUTH or TLS (a local demo
  server), and stores each message in the :class:`~standins.smtp.outbox.Outbox`;
- ``GET /healthz``; ``GET /messages``: what was caught, newest first (JSON, with the plain-text body);
  ``GET /messages/{id}.eml``: one message as it was sent (``message/rfc822``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException, Response

from libs.common.logging import get_logger
from standins.smtp.outbox import Outbox

log = get_logger(__name__)


class CatchingHandler:
    """aiosmtpd's handler: every message is kept, and the client is told it was delivered."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._saving = asyncio.Lock()  # one writer of index.jsonl at a time

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        async with self._saving:
            caught = await asyncio.to_thread(self.outbox.save, envelope.mail_from or "", list(envelope.rcpt_tos),
                                             raw, received_at=datetime.now(UTC))
        log.info("smtp_catcher.caught", extra={"id": caught.id, "recipients": len(caught.rcpt_tos)})
        return f"250 Message caught as {caught.id}"


def create_app(outbox: Outbox, *, smtp_host: str, smtp_port: int) -> FastAPI:
    handler = CatchingHandler(outbox)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, hostname="textpulse-smtp-catcher", loop=loop),
                                          smtp_host, smtp_port)
        log.info("smtp_catcher.listening", extra={"host": smtp_host, "port": smtp_port})
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    app = FastAPI(title="SMTP catcher (demo)", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "smtp": f"{smtp_host}:{smtp_port}", "outbox": str(outbox.directory)}

    @app.get("/messages")
    async def messages() -> list[dict[str, Any]]:
        return [asdict(m) for m in await asyncio.to_thread(outbox.messages)]

    @app.get("/messages/{message_id}.eml")
    async def raw_message(message_id: str) -> Response:
        raw = await asyncio.to_thread(outbox.raw, message_id)
        if raw is None:
            raise HTTPException(404, f"no message {message_id}")
        return Response(raw, media_type="message/rfc822")

    return app

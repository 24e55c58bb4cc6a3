"""``create_app(config)``: the Twilio stand-in as an ASGI app (REST API, control API, ``/healthz``).

Start-up loads the ``state_file`` if there is one and starts the drain loop and the callback workers;
shutdown stops them and writes the ``state_file``. Unknown REST paths answer Twilio's 20404 JSON.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common.logging import get_logger
from standins.twilio import api, control, shared_keys, snapshot
from standins.twilio.config import TwilioConfig
from standins.twilio.context import TwilioApp
from standins.twilio.edge import FaultEdge
from standins.twilio.errors import TwilioApiError, not_found
from standins.twilio.fastpath import CreateFastPath

log = get_logger(__name__)


def create_app(config: TwilioConfig | None = None) -> FastAPI:
    twilio = TwilioApp.build(config or TwilioConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state_file = twilio.config.state_file
        if state_file is not None and Path(state_file).exists():
            restored = snapshot.load(twilio.state, state_file, time.time())
            log.info("snapshot.loaded", extra={"path": state_file, "messages": restored})
        await twilio.dispatcher.start()
        twilio.lifecycle.start()
        try:
            yield
        finally:
            twilio.release_hung()
            await twilio.lifecycle.stop()
            await twilio.dispatcher.stop()
            if state_file is not None:
                saved = snapshot.save(twilio.state, state_file)
                log.info("snapshot.saved", extra={"path": state_file, "messages": saved})

    app = FastAPI(
        title="Twilio stand-in",
        lifespan=lifespan,
        docs_url="/_control/docs",
        openapi_url="/_control/openapi.json",
    )
    app.state.twilio = twilio

    @app.exception_handler(TwilioApiError)
    async def twilio_error(request: Request, exc: TwilioApiError) -> Response:
        return exc.render()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/_control"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if exc.status_code == 405:
            return TwilioApiError(405, 20004, "Method not allowed").render()
        return not_found(request.url.path).render()

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        if not twilio.lifecycle.alive:
            return JSONResponse({"status": "drain loop stopped"}, status_code=503)
        return JSONResponse({"status": "ok", "messages": len(twilio.state.store.ordered)})

    app.include_router(control.router)
    app.include_router(api.router)
    app.include_router(shared_keys.router)
    # Added last = outermost: fault plans see every request, then creates skip FastAPI's routing.
    app.add_middleware(CreateFastPath, twilio=twilio)
    app.add_middleware(FaultEdge, twilio=twilio)
    return app

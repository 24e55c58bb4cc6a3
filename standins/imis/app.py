"""``create_app(config)``: the iMIS stand-in as an ASGI app (REST API, control API, ``/healthz``).

Unknown paths answer 404 with iMIS's HttpError body, like any other iMIS 404.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from standins.imis import api, control
from standins.imis.config import ImisConfig
from standins.imis.envelopes import http_error
from standins.imis.state import ImisState
from standins.members.dataset import Member


def create_app(config: ImisConfig | None = None, members: list[Member] | None = None) -> FastAPI:
    """Build the app; ``members`` overrides the configured data set (tests pass small subsets)."""
    app = FastAPI(title="iMIS stand-in", docs_url="/_control/docs", openapi_url="/_control/openapi.json")
    app.state.imis = ImisState(config or ImisConfig(), members=list(members or []))

    @app.exception_handler(api.ImisHttpError)
    async def imis_error(request: Request, exc: api.ImisHttpError) -> Response:
        return exc.render()

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/_control"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        message = f"No HTTP resource was found that matches the request URI '{request.url}'."
        return JSONResponse(http_error(message), status_code=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "members": len(app.state.imis.members)}

    app.include_router(control.router)
    app.include_router(api.router)
    return app

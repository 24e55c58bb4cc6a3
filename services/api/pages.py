"""The dashboard's web layer: Jinja2 templates, static files, and the headers every response carries.

Pages are rendered on the server (``templates/``) and enhanced by small ES modules (``static/``):
there is no build step and nothing is loaded from another site. Third-party browser code (Chart.js) is
installed from npm by ``npm ci`` in ``frontend/`` (``deploy/local/bootstrap.sh`` runs it; the lock pins the
version and its hash) and served from ``/static/vendor/<package>/``. The Content-Security-Policy allows
scripts, styles and connections to this origin only, and no inline script or style at all, so an
injected ``<script>`` would not run even if escaping failed somewhere.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common import cost_labels
from libs.common.alert_layout import money
from services.api import schedule_text

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
# /static/vendor/<name>/ -> a package's browser builds under frontend/node_modules (not in git).
VENDOR_DIRS = {"chart.js": Path(__file__).with_name("frontend") / "node_modules" / "chart.js" / "dist"}

# Paths that are never pages, whatever the client accepts.
_NOT_PAGES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics", "/openapi.json")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

STATE_LABELS = {
    "draft": "Draft", "in_review": "In review", "approved": "Approved", "scheduled": "Scheduled",
    "sending": "Sending", "paused": "Paused",
    "completed": "Completed", "cancelled": "Cancelled", "failed": "Not sent", "archived": "Archived",
}


def _num(value: int | float | Decimal | None) -> str:
    return "–" if value is None else f"{value:,}"


def _money(value: Decimal | int | float | str | None, places: int = 2) -> str:
    if value is None:
        return "–"
    return money(Decimal(str(value)), places)  # as the alert e-mails write it


# Every date and time a page shows reads "2 Dec 2026, 14:05" in the organisation's time zone, and every
# date "2 Dec 2026"; static/app.js formatWhen writes the same for what a script adds.
DATE_TIME = "%-d %b %Y, %H:%M"


def _local(value: datetime | None, tz: str) -> str:
    if value is None:
        return "–"
    return value.astimezone(ZoneInfo(tz)).strftime(DATE_TIME)


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _build_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, money=_money, local=_local, day=_day, state_label=lambda s: STATE_LABELS.get(s, s),
                       schedule_text=schedule_text.describe)
    env.globals["static"] = _static_url
    env.globals["cost_labels"] = cost_labels
    return env


def _static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: a changed file gets a new URL, so no stale copy is used."""
    return f"/static/{name}?v={_VERSIONS.get(name, '0')}"


def _versions() -> dict[str, str]:
    files = {str(path.relative_to(STATIC_DIR)): path for path in STATIC_DIR.rglob("*") if path.is_file()}
    for name, directory in VENDOR_DIRS.items():  # a package's top-level builds; a missing one is a 404
        files.update({f"vendor/{name}/{path.name}": path for path in directory.glob("*.js")})
    return {name: hashlib.sha256(path.read_bytes()).hexdigest()[:10] for name, path in files.items()}


_VERSIONS = _versions()
ENV = _build_env()


def wants_html(request: Request) -> bool:
    """True for a browser asking for a dashboard page (errors then render as pages, not problem+json)."""
    path = request.url.path
    if path.startswith(_NOT_PAGES):
        return False
    return "text/html" in request.headers.get("accept", "")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` plus the request; ``principal`` is None on public pages."""
    context.setdefault("principal", None)
    context.setdefault("nav", "")
    html = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    messages = {
        403: "Your account does not have access to this page. Ask an administrator of your organisation.",
        404: "There is nothing here, or it belongs to another organisation.",
    }
    return render(request, "error.html", status_code=status, status=status, title=title,
                  message=messages.get(status, detail if status < 500 else "Something went wrong on our side."))


# Only over https: a browser told so keeps to https for this host for a year.
HSTS: tuple[bytes, bytes] = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` (and HSTS when served over https) to every response."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, HSTS] if https else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        # A URL with the content hash (see _static_url) never changes; one without (a module imported by
        # another) is revalidated each time.
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if versioned else "no-cache"
        return response


def install_web(app: FastAPI, *, https: bool = False) -> None:
    # Before /static, which would otherwise answer 404 for everything under /static/vendor.
    for name, directory in VENDOR_DIRS.items():
        app.mount(f"/static/vendor/{name}", _Static(directory=directory, check_dir=False), name=f"vendor-{name}")
    app.mount("/static", _Static(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders, https=https)

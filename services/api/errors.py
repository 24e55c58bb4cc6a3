"""Every API error as ``application/problem+json`` (RFC 9457), from one exception handler.

Routes raise; they never build error bodies. What a client gets::

    {"type": "urn:textpulse:problem:invalid_transition", "title": "Conflict", "status": 409,
     "detail": "cannot go from completed to paused", "instance": "/api/v1/campaigns/…/pause",
     "code": "invalid_transition", "current_state": "completed", "requested": "paused"}

Field errors add ``errors: [{"field": "at", "code": ..., "message": ...}]`` and name the fields in
``detail`` too. Status by type: InvalidTransition 409 (with ``current_state``), NotFound 404,
Unauthenticated 401 (with ``WWW-Authenticate: Bearer``), Forbidden 403, Conflict 409, RetryableError
503, any other PermanentError 422; FastAPI's own request validation 422 (``request_invalid``), except a
required header that is missing: 400 ``<header>_missing`` (``idempotency_key_missing``), saying what to send; HTTP
errors keep their status; anything else is a 500 whose body says nothing about the cause (it is logged).

A browser asking for a dashboard page (not ``/api/...``) gets the same status as an HTML page instead,
and an unauthenticated one is sent to the sign-in page (303) with ``next`` set to where it was going.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from libs.common.audience import error_field
from libs.common.errors import InvalidTransition, PermanentError, RetryableError, TextpulseError
from libs.common.logging import get_logger
from libs.common.outages import POSTGRES_RETRYABLE, is_outage
from services.api import pages

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class NotFound(PermanentError):
    """The resource does not exist in the caller's organisation."""


class Unauthenticated(PermanentError):
    """The request does not say (validly) who it is for."""


class Forbidden(PermanentError):
    """The caller is known but may not do this (a staff user on an admin route, a missing CSRF token)."""


class Conflict(PermanentError):
    """The request clashes with what exists (an e-mail address already in use, the last admin)."""


class InvalidInput(PermanentError):
    """A request field that cannot be accepted; ``field`` names it as the client sent it."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(code, f"{field}: {message}")
        self.field = field


# What to send when a route's required header is missing (the 400's detail and its error's message).
MISSING_HEADER_HINTS = {
    "Idempotency-Key": "send this header with a value unique to this send (a UUID), and the same value when "
                       "retrying, so a retried request cannot send twice",
}


class IdempotencyKeyReused(PermanentError):
    """An Idempotency-Key seen before with a different request."""


def install_problem_handler(app: FastAPI) -> None:
    # The outages are named so that Starlette's ExceptionMiddleware answers them (a 503) instead of the
    # outermost handler, which answers and then re-raises into the server as a crash.
    outages = (*POSTGRES_RETRYABLE, KafkaError)
    for exc_type in (TextpulseError, RequestValidationError, HTTPException, *outages, Exception):
        app.add_exception_handler(exc_type, problem_response)


async def problem_response(request: Request, exc: Exception) -> Response:
    """The one handler: turn ``exc`` into a problem+json response (or, for a page, an HTML one)."""
    extra: dict[str, Any] = {}
    headers: dict[str, str] | None = None
    if isinstance(exc, TextpulseError):
        status, code, detail = _status_of(exc), exc.code, exc.message
        if isinstance(exc, InvalidTransition):
            extra = {"current_state": exc.current, "requested": exc.requested}
        field = getattr(exc, "field", None)
        if field is not None:
            message = detail.removeprefix(f"{field}: ")
            extra = {"errors": [{"field": field, "code": code, "message": message}]}
    elif isinstance(exc, RequestValidationError):
        status, code = 422, "request_invalid"
        errors = [_validation_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        extra = {"errors": errors}
        missing_headers = [e for raw, e in zip(exc.errors(), errors, strict=True) if _is_missing_header(raw)]
        if missing_headers:
            # The request itself is incomplete, whatever else is wrong with it: a 400 named for the header.
            status, code = 400, missing_headers[0]["code"]
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in missing_headers)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        code = getattr(exc, "code", None) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        detail = str(exc.detail)
        headers = getattr(exc, "headers", None)
        if status == 405 and pages.wants_html(request):
            status, code = 404, "not_found"
    elif is_outage(exc):
        log.warning("request.dependency_unavailable", extra={"path": request.url.path, "method": request.method,
                                                               "error": f"{type(exc).__name__}: {exc}"[:300]})
        status, code, detail = 503, "dependency_unavailable", "the service is briefly unavailable; try again shortly"
        headers = {"Retry-After": "5"}
    else:
        log.exception("request.crashed", extra={"path": request.url.path, "method": request.method})
        status, code, detail = 500, "internal_error", "the server failed to handle this request"
    body = {
        "type": f"urn:textpulse:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        **extra,
    }
    if pages.wants_html(request):
        if status == 422 and code == "request_invalid":
            status = 404  # a page address that does not parse (/campaigns/not-an-id) names nothing
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/sign-in?" + urlencode({"next": target}), status_code=303)
        return pages.render_error(request, status, HTTPStatus(status).phrase, detail)
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="textpulse"'}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_of(exc: TextpulseError) -> int:
    if isinstance(exc, InvalidTransition):
        return 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, RetryableError):
        return 503
    return 422


def _is_missing_header(error: Any) -> bool:
    return error["type"] == "missing" and tuple(error["loc"][:1]) == ("header",)


def _validation_error(error: Any) -> dict[str, str]:
    field = _field_of(error["loc"])
    if _is_missing_header(error):
        code = field.lower().replace("-", "_") + "_missing"
        return {"field": field, "code": code, "message": MISSING_HEADER_HINTS.get(field, "this header is required")}
    return {"field": field, "code": error["type"], "message": error["msg"]}


def _field_of(location: tuple[int | str, ...]) -> str:
    """("body", "schedule", "at") -> "schedule.at"; ("header", "idempotency-key") -> "Idempotency-Key"."""
    where, *path = location or ("request",)
    if where == "header" and path:
        return "-".join(part.capitalize() for part in str(path[0]).split("-"))
    return error_field(path) or str(where)

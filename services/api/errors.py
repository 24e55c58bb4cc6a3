"""Every API error as ``application/problem+json`` (RFC 9457), from one exception handler.

Routes raise; they never build error bodies. What a client gets::

    {"type": "urn:textpulse:problem:invalid_transition", "title": "Conflict", "status": 409,
     "detail": "cannot go from completed to paused", "instance": "/api/v1/campaigns/…/pause",
     "code": "invalid_transition", "current_state": "completed", "requested": "paused"}

Field errors add ``errors: [{"field": "at", "code": ..., "message": ...}]`` and name the fields in
``detail`` too. ``message`` is a sentence for people, shown beside the field ("Campaign name is
required."); ``field`` names the input as the client sent it (``audience.parameters``, ``to.0``). A
body that is not JSON names no field: its one error says so.

Status by type: InvalidTransition 409 (with ``current_state``), NotFound 404, Unauthenticated 401 (with
``WWW-Authenticate: Bearer``), Forbidden 403, Conflict 409, TooManyRequests 429 (with ``Retry-After``),
RetryableError 503, any other PermanentError
422; FastAPI's own request validation 422 (``request_invalid``), except a required header that is
missing: 400 ``<header>_missing`` (``idempotency_key_missing``), saying what to send; HTTP errors keep
their status; anything else is a 500 whose body says nothing about the cause (it is logged).

A browser asking for a dashboard page (not ``/api/...``) gets the same status as an HTML page instead,
and an unauthenticated one is sent to the sign-in page (303) with ``next`` set to where it was going.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, get_args
from urllib.parse import urlencode

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic_core.core_schema import ErrorType
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


class TooManyRequests(PermanentError):
    """A limit on how often something may be done is reached; ``retry_after_s`` says when it may be again."""

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(code, message)
        self.retry_after_s = max(1, retry_after_s)


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
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_s)}
        field = getattr(exc, "field", None)
        if field is not None:
            message = detail.removeprefix(f"{field}: ")
            extra = {"errors": [{"field": field, "code": code, "message": message}]}
    elif isinstance(exc, RequestValidationError):
        status, code = 422, "request_invalid"
        errors = validation_errors(exc.errors(), request.url.path)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
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
    if isinstance(exc, TooManyRequests):
        return 429
    if isinstance(exc, RetryableError):
        return 503
    return 422


def _is_missing_header(error: Any) -> bool:
    return error["type"] == "missing" and tuple(error["loc"][:1]) == ("header",)


def _field_of(location: tuple[int | str, ...]) -> str:
    """("body", "schedule", "at") -> "schedule.at"; ("header", "idempotency-key") -> "Idempotency-Key"."""
    where, *path = location or ("request",)
    if where == "header" and path:
        return "-".join(part.capitalize() for part in str(path[0]).split("-"))
    return error_field(path) or str(where)


# ---- Validation errors in plain words --------------------------------------------------------------
# pydantic's own messages ("String should match pattern '^\+?\d+$'") are for programmers; these are
# for the people filling in the form. The field is named by its label, the sentence says what to do.

# Patterns used by the API's request models, by what they ask for.
_PATTERN_WORDS = {
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an e-mail address, like name@example.org",
    r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$": "must be an e-mail address, like name@example.org",
    r"^AC[0-9a-f]{32}$": "must be a Twilio Account SID: AC followed by 32 characters 0-9 and a-f",
    r"^SK[0-9a-f]{32}$": "must be a Twilio API key SID: SK followed by 32 characters 0-9 and a-f",
    r"^[A-Za-z0-9_-]{1,100}$": "must be a Twilio SharedKey id, like webhooks_sharedkey_01hx... (letters, digits, _ "
                               "and -, as the Twilio Console shows it)",
    r"^\+[1-9][0-9]{0,2}$": "must be a country calling code, like +1 or +44",
    r"^\$/": "must be an IQA query path starting with $/",
    r"^[!-~]+$": "must be as Twilio shows it: letters, digits and punctuation, without spaces or accents",
    r"^https?://\S+$": "must be a web address starting with https://",
    r"^[A-Za-z0-9 +_&-]{0,11}$": "must be at most 11 letters, digits, spaces or + _ & -",
    r"^(|\+[1-9]\d{6,14}|MG[0-9a-f]{32})$":
        "must be empty (the whole organisation), a sender's number like +18885550100 or a Messaging Service SID",
}
# Fields whose name alone does not read as words.
_FIELD_LABELS = {"retention_webhook_days": "Days raw Twilio webhooks are kept",
                 "retention_reply_days": "Days members' replies are kept",
                 "retention_body_days": "Days rendered texts are kept",
                 "retention_csv_days": "Days uploaded CSV rows are kept",
                 "run_member_cap": "Most members in one run",
                 "imis_id": "iMIS ID"}
# A top-level "name" is the name of what the route makes.
_NAME_LABELS = {"campaigns": "Campaign name", "api-keys": "Key name", "lists": "List name"}


def validation_errors(errors: Sequence[Any], path: str) -> list[dict[str, str]]:
    """FastAPI's validation errors as ``{"field", "code", "message"}``, each message a sentence.

    A body that is not JSON is one error with an empty field: which character broke it (pydantic's
    ``loc`` is then a byte offset, "22") means nothing to the person who sent it.
    """
    out: list[dict[str, str]] = []
    for error in errors:
        kind = error["type"]
        if kind == "json_invalid":
            out.append({"field": "", "code": kind, "message": "The request body is not valid JSON."})
            continue
        field = _field_of(error["loc"])
        if _is_missing_header(error):
            code = field.lower().replace("-", "_") + "_missing"
            hint = MISSING_HEADER_HINTS.get(field, "this header is required")
            out.append({"field": field, "code": code, "message": hint})
            continue
        out.append({"field": field, "code": kind, "message": f"{_label_of(field, path)} {_problem_with(error)}."})
    return out


def _label_of(field: str, path: str) -> str:
    """"name" on /api/v1/campaigns -> "Campaign name"; "schedule.at" -> "Schedule at"; "to.0" -> "To (1st)"."""
    if field == "name":
        resource = path.removeprefix("/api/v1/").split("/")[0]
        return _NAME_LABELS.get(resource, "Name")
    if field in _FIELD_LABELS:
        return _FIELD_LABELS[field]
    words = []
    for part in field.split("."):
        if part.isascii() and part.isdigit():  # "¹" is a digit to str.isdigit, not to int()
            words.append(f"(number {int(part) + 1})")
        else:
            words.append(part.replace("_", " ").replace("-", " "))
    label = " ".join(words)
    return label[:1].upper() + label[1:]


def _problem_with(error: Any) -> str:  # noqa: PLR0911 - one answer per kind of error
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return "is required"
    if kind == "string_too_short":
        return f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']:,} characters"
    if kind == "string_pattern_mismatch":
        return _PATTERN_WORDS.get(str(ctx.get("pattern")), "is not in the expected format")
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        items = "item" if bound == 1 else "items"
        return f"must have at {'least' if kind == 'too_short' else 'most'} {bound} {items}"
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(next(iter(ctx.values()), ""))
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the listed values')}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"must say which kind it is: {ctx.get('expected_tags', '')}".rstrip(": ")
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind not in _PYDANTIC_KINDS:  # our own PydanticCustomError ("kind must be ..."): already plain words
        return str(error["msg"])
    return _KINDS.get(kind.removesuffix("_parsing").removesuffix("_type"), "is not valid")


_PYDANTIC_KINDS = frozenset(get_args(ErrorType))
_BOUNDS = {
    "greater_than": "must be more than {}",
    "greater_than_equal": "must be at least {}",
    "less_than": "must be less than {}",
    "less_than_equal": "must be at most {}",
}
_KINDS = {
    "string": "must be text",
    "int": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float": "must be a number",
    "decimal": "must be a number",
    "bool": "must be true or false",
    "uuid": "must be an id (a UUID)",
    "datetime": "must be a date and time, like 2026-12-02T14:05",
    "datetime_from_date": "must be a date and time, like 2026-12-02T14:05",
    "date": "must be a date, like 2026-12-02",
    "date_from_datetime": "must be a date, like 2026-12-02",
    "time": "must be a time, like 14:05",
    "timezone_aware": "must include a time zone offset",
    "list": "must be a list",
    "tuple": "must be a list",
    "dict": "must be an object",
    "model": "must be an object",
    "model_attributes": "must be an object",
    "extra_forbidden": "is not a field this request takes",
    "url": "must be a web address",
}

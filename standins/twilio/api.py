"""Twilio's REST API as the stand-in serves it: 2010-04-01 Messages, Account, IncomingPhoneNumbers, and the
v1 Messaging Services and toll-free verifications.

Routes read the app's ``TwilioApp`` from ``request.app.state.twilio`` and raise ``TwilioApiError``. The
message create, the hot path, is served in front of FastAPI by ``fastpath``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from standins.twilio import resources, verifications
from standins.twilio.auth import Principal
from standins.twilio.context import TwilioApp
from standins.twilio.errors import invalid, not_found, test_credentials_refused
from standins.twilio.messages import API_VERSION, Message
from standins.twilio.senders import Number
from standins.twilio.state import new_sid
from standins.twilio.store import page_of

router = APIRouter()

JSON = "application/json; charset=utf-8"
ACCOUNT = f"/{API_VERSION}/Accounts/{{account_sid}}"


def _app(request: Request) -> TwilioApp:
    app: TwilioApp = request.app.state.twilio
    return app


def _live(request: Request, account_sid: str | None) -> tuple[TwilioApp, Principal]:
    """The caller, who must hold live credentials (test credentials only create messages)."""
    app = _app(request)
    principal = app.auth.principal(request.headers.get("authorization"), account_sid)
    if principal.test:
        raise test_credentials_refused()
    return app, principal


def _page_params(request: Request, default: int = 50) -> tuple[int, int]:
    try:
        page_size = int(request.query_params.get("PageSize", default))
        page = int(request.query_params.get("Page", 0))
    except ValueError:
        raise invalid(20001, "Invalid paging parameters") from None
    return page, max(1, min(page_size, 1000))


@router.get(ACCOUNT + "/Messages/{sid}.json")
async def fetch_message(account_sid: str, sid: str, request: Request) -> Response:
    app, _ = _live(request, account_sid)
    message = app.state.store.get(sid)
    if message is None or message.account_sid != account_sid:
        raise not_found(request.url.path)
    return Response(message.resource_json(), media_type=JSON)


def _date_bound(value: str, *, end_of_day: bool) -> float:
    """A ``DateSent`` value as an epoch: a date means its start (or, for ``end_of_day``, the next day's)."""
    try:
        if len(value) <= 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (start + timedelta(days=1) if end_of_day else start).timestamp()
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        raise invalid(20001, f"Invalid DateSent value {value}") from None


def _date_sent_filter(query: dict[str, str]) -> Callable[[float], bool] | None:
    """``DateSent`` (that GMT day), ``DateSent<`` (on or before) and ``DateSent>`` (on or after)."""
    tests: list[Callable[[float], bool]] = []
    if "DateSent" in query:
        lo = _date_bound(query["DateSent"][:10], end_of_day=False)
        hi = _date_bound(query["DateSent"][:10], end_of_day=True)
        tests.append(lambda t: lo <= t < hi)
    if "DateSent<" in query:
        value = query["DateSent<"]
        bound = _date_bound(value, end_of_day=True)
        tests.append((lambda t: t < bound) if len(value) <= 10 else (lambda t: t <= bound))
    if "DateSent>" in query:
        floor = _date_bound(query["DateSent>"], end_of_day=False)
        tests.append(lambda t: t >= floor)
    if not tests:
        return None
    return lambda t: all(test(t) for test in tests)


@router.get(ACCOUNT + "/Messages.json")
async def list_messages(account_sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, account_sid)
    store = app.state.store
    query = dict(request.query_params)
    page, page_size = _page_params(request)
    to, from_ = query.get("To"), query.get("From")
    date_ok = _date_sent_filter(query)

    def keep(message: Message) -> bool:
        if message.account_sid != account_sid:
            return False
        if to is not None and message.to != to:
            return False
        if from_ is not None and (message.from_ or message.sender) != from_:
            return False
        if date_ok is not None:
            return message.date_sent is not None and date_ok(message.date_sent)
        return True

    token = query.get("PageToken")
    try:
        items, more = page_of(store.candidates(to, from_), keep, page_size, token, store.by_sid)
    except ValueError:
        raise invalid(20001, f"Invalid PageToken {token}") from None
    path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    filters = [(k, query[k]) for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if k in query]

    def uri(n: int, page_token: str | None) -> str:
        params: list[tuple[str, Any]] = [*filters, ("PageSize", page_size), ("Page", n)]
        if page_token is not None:
            params.append(("PageToken", page_token))
        return f"{path}?{urlencode(params)}"

    start = page * page_size
    body = {
        "end": start + len(items) - 1 if items else start,
        "first_page_uri": uri(0, None),
        "messages": [m.resource() for m in items],
        "next_page_uri": uri(page + 1, "PA" + items[-1].sid) if more and items else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": uri(page - 1, "PB" + items[0].sid) if page > 0 and items else None,
        "start": start,
        "uri": uri(page, token),
    }
    return JSONResponse(body)


@router.get(ACCOUNT + ".json")
async def fetch_account(account_sid: str, request: Request) -> JSONResponse:
    app, principal = _live(request, account_sid)
    return JSONResponse(resources.account(app.state, principal.account_sid))


@router.get(ACCOUNT + "/IncomingPhoneNumbers.json")
async def list_numbers(account_sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, account_sid)
    page, page_size = _page_params(request)
    wanted = request.query_params.get("PhoneNumber")
    numbers = [n for n in app.state.senders.numbers.values() if wanted is None or wanted in n.phone_number]
    start = page * page_size
    chosen = numbers[start : start + page_size]
    path = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json"
    filters = [("PhoneNumber", wanted)] if wanted is not None else []

    def uri(n: int) -> str:
        return f"{path}?{urlencode([*filters, ('PageSize', page_size), ('Page', n)])}"

    return JSONResponse(
        {
            "end": start + len(chosen) - 1 if chosen else start,
            "first_page_uri": uri(0),
            "incoming_phone_numbers": [resources.incoming_number(app.state, n) for n in chosen],
            "next_page_uri": uri(page + 1) if start + page_size < len(numbers) else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": uri(page),
        }
    )


@router.get(ACCOUNT + "/IncomingPhoneNumbers/{sid}.json")
async def fetch_number(account_sid: str, sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, account_sid)
    number = app.state.senders.by_sid(sid)
    if number is None:
        raise not_found(request.url.path)
    return JSONResponse(resources.incoming_number(app.state, number))


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _v1_list(request: Request, key: str, records: list[dict[str, Any]], filters: list[tuple[str, str]]) -> JSONResponse:
    page, page_size = _page_params(request)
    start = page * page_size
    chosen = records[start : start + page_size]
    url = _base_url(request) + request.url.path
    more = start + page_size < len(records)
    return JSONResponse(resources.v1_page(key, chosen, url, filters, page, page_size, more))


@router.get("/v1/Services")
async def list_services(request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    base = _base_url(request)
    records = [resources.service(app.state, s, base) for s in app.state.senders.services.values()]
    return _v1_list(request, "services", records, [])


@router.get("/v1/Services/{sid}")
async def fetch_service(sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    svc = app.state.senders.services.get(sid)
    if svc is None:
        raise not_found(request.url.path)
    return JSONResponse(resources.service(app.state, svc, _base_url(request)))


@router.get("/v1/Services/{sid}/PhoneNumbers")
async def list_service_numbers(sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    svc = app.state.senders.services.get(sid)
    if svc is None:
        raise not_found(request.url.path)
    base = _base_url(request)
    numbers = app.state.senders.numbers
    records = [resources.service_number(app.state, svc, numbers[p], base) for p in svc.numbers]
    return _v1_list(request, "phone_numbers", records, [])


def _verifications(app: TwilioApp, base: str) -> list[dict[str, Any]]:
    records = (resources.verification(app.state, n, base) for n in app.state.senders.numbers.values())
    return [r for r in records if r is not None]


@router.get("/v1/Tollfree/Verifications")
async def list_verifications(request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    records = _verifications(app, _base_url(request))
    filters: list[tuple[str, str]] = []
    for name, field in (("TollfreePhoneNumberSid", "tollfree_phone_number_sid"), ("Status", "status")):
        value = request.query_params.get(name)
        if value is not None:
            filters.append((name, value))
            records = [r for r in records if r[field] == value]
    return _v1_list(request, "verifications", records, filters)


@router.get("/v1/Tollfree/Verifications/{sid}")
async def fetch_verification(sid: str, request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    record = next((r for r in _verifications(app, _base_url(request)) if r["sid"] == sid), None)
    if record is None:
        raise not_found(request.url.path)
    return JSONResponse(record)


@router.post("/v1/Tollfree/Verifications")
async def create_verification(request: Request) -> JSONResponse:
    app, _ = _live(request, None)
    form = await request.form()
    fields, missing = verifications.form_fields(form, required=True)
    if missing:
        raise invalid(20001, f"Missing required parameter {missing[0]} in the post body")
    _check_fields(fields)
    number = app.state.senders.by_sid(str(form.get("TollfreePhoneNumberSid") or ""))
    if number is None or not number.toll_free:
        raise invalid(21211, "TollfreePhoneNumberSid is not a toll-free number of this account")
    existing = resources.verification(app.state, number, _base_url(request))
    if existing is not None:
        raise invalid(30030, f"A verification already exists for this phone number ({existing['sid']})", 409)
    now = time.time()
    submission = verifications.Submission(new_sid("HH"), number.phone_number, fields, now, now)
    app.state.verifications.by_phone[number.phone_number] = submission
    number.verification = verifications.NUMBER_STATE[submission.status]
    return JSONResponse(resources.verification(app.state, number, _base_url(request)), status_code=201)


@router.post("/v1/Tollfree/Verifications/{sid}")
async def update_verification(sid: str, request: Request) -> JSONResponse:
    """Edit a rejected submission within its edit window; it goes back to review."""
    app, _ = _live(request, None)
    number, submission = _submission(app, sid, request)
    now = time.time()
    if not submission.edit_allowed or (submission.edit_expiration or 0) < now:
        raise invalid(30031, "This verification cannot be edited: only a rejected one, within its edit window")
    fields, _ = verifications.form_fields(await request.form(), required=False)
    _check_fields(fields)
    submission.fields |= fields
    submission.review("PENDING_REVIEW", now)
    app.state.verifications.by_phone[number.phone_number] = submission
    number.verification = verifications.NUMBER_STATE[submission.status]
    return JSONResponse(resources.verification(app.state, number, _base_url(request)))


def _submission(app: TwilioApp, sid: str, request: Request) -> tuple[Number, verifications.Submission]:
    """The number and its submission (an implied one made real) for a verification SID."""
    for number in app.state.senders.numbers.values():
        if not number.toll_free:
            continue
        submission = app.state.verifications.by_phone.get(number.phone_number) or \
            resources.implied_submission(app.state, number)
        if submission is not None and submission.sid == sid:
            return number, submission
    raise not_found(request.url.path)


def _check_fields(fields: dict[str, Any]) -> None:
    opt_in = fields.get("opt_in_type")
    if opt_in is not None and opt_in not in verifications.OPT_IN_TYPES:
        raise invalid(20001, f"Invalid OptInType {opt_in}")
    for url in [fields.get("business_website"), *fields.get("opt_in_image_urls", [])]:
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise invalid(20001, f"Invalid URL {url}")

"""Signing in and out of the dashboard (HTML forms; integrations use API keys instead).

The sign-in form is protected against login CSRF by a double-submit token: a random value in a
short-lived SameSite=Strict cookie and in a hidden field, which must match. A good sign-in always
starts a new session (no fixation) and sets its cookie HttpOnly, SameSite=Lax, and Secure when the
public URL is https. A wrong address and a wrong password get the same answer, in the same time.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from libs.common.db import transaction
from libs.common.logging import get_logger
from services.api import audit, auth, auth_db, pages
from services.api.deps import PoolDep, WebConfig, WebDep
from services.api.errors import Forbidden
from services.api.password_work import PASSWORDS, PasswordWorkBusy

log = get_logger(__name__)

router = APIRouter(tags=["session"], include_in_schema=False)

_SIGN_IN_CSRF_MAX_AGE = 3600


def _sign_in_cookie(web: WebConfig) -> str:
    return "__Host-textpulse_signin" if web.secure_cookies else "textpulse_signin"


@router.get("/sign-in")
async def sign_in_page(
    request: Request, pool: PoolDep, web: WebDep, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    token = request.cookies.get(web.cookie_name)
    if token:
        async with pool.acquire() as conn:
            if await auth_db.session_principal(conn, token) is not None:
                return RedirectResponse(auth.safe_next(next), status_code=303)
    return _form(request, web, next=auth.safe_next(next))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    pool: PoolDep,
    web: WebDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=auth.MAX_PASSWORD_LENGTH)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    target = auth.safe_next(next)
    if not auth.same_token(request.cookies.get(_sign_in_cookie(web)), csrf_token):
        return _form(request, web, next=target, email=email, status=400,
                     error="The sign-in form had expired. Please try again.")
    email = email.strip()
    client_address = audit.client_address(request)
    address = client_address or "unknown"
    limits = auth.throttle_limits(email, address, web.sign_in_max_per_address)
    async with pool.acquire() as conn:
        attempts = await auth_db.count_sign_in_attempt(conn, list(limits))
        user = await auth_db.user_for_sign_in(conn, email) if email else None
    over = sorted(key.split(":", 1)[0] for key, limit in limits.items() if attempts[key] > limit)
    if over:
        log.warning("sign_in.refused", extra={"reason": "too_many_attempts", "per": over})
        await _record_failure(pool, user, client_address, "too_many_attempts")
        minutes = int(auth.SIGN_IN_WINDOW.total_seconds() // 60)
        response = _form(request, web, next=target, email=email, status=429,
                         error=f"Too many sign-in attempts. Try again in {minutes} minutes.")
        response.headers["Retry-After"] = str(int(auth.SIGN_IN_WINDOW.total_seconds()))
        return response
    try:
        checked = await PASSWORDS.check(user["password_hash"] if user else None, password)
    except PasswordWorkBusy:
        log.warning("sign_in.refused", extra={"reason": "busy"})
        response = _form(request, web, next=target, email=email, status=503,
                         error="Signing in is busy right now. Please try again in a moment.")
        response.headers["Retry-After"] = "5"
        return response
    if user is None or not checked.ok or not user["active"]:
        log.info("sign_in.failed", extra={"known_user": user is not None})
        await _record_failure(pool, user, client_address, "inactive" if checked.ok else "wrong_password")
        return _form(request, web, next=target, email=email, status=401,
                     error="That e-mail address and password do not match an active account.")

    async with transaction(pool) as conn:
        old = request.cookies.get(web.cookie_name)
        if old:
            await auth_db.end_session(conn, old)
        session = await auth_db.start_session(conn, user["id"], user["org_id"])
        await auth_db.record_sign_in(conn, user["id"], checked.rehash)
        await auth_db.clear_sign_in_attempts(conn, auth.account_throttle_key(email))
        await auth_db.refund_sign_in_attempt(conn, auth.address_throttle_key(address))
        await audit.record(conn, audit.Caller(user["org_id"], user["email"], "user", client_address),
                           "session.signed_in", "user", user["id"])
    log.info("sign_in.succeeded", extra={"user_id": str(user["id"]), "org_id": str(user["org_id"])})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(web.cookie_name, session.token, max_age=int(auth.SESSION_ABSOLUTE.total_seconds()),
                        path="/", secure=web.secure_cookies, httponly=True, samesite="lax")
    response.delete_cookie(_sign_in_cookie(web), path="/", secure=web.secure_cookies, httponly=True,
                           samesite="strict")
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, pool: PoolDep, web: WebDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    token = request.cookies.get(web.cookie_name)
    if token:
        async with transaction(pool) as conn:
            row = await auth_db.session_principal(conn, token)
            if row is not None and not auth.same_token(row["csrf_token"], csrf_token):
                raise Forbidden("csrf_failed", "the sign-out form did not carry the session's token")
            await auth_db.end_session(conn, token)
            if row is not None:
                await audit.record(conn, audit.Caller(row["org_id"], row["email"], "user",
                                                      audit.client_address(request)),
                                   "session.signed_out", "user", row["user_id"])
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(web.cookie_name, path="/", secure=web.secure_cookies, httponly=True, samesite="lax")
    return response


async def _record_failure(
    pool: asyncpg.Pool, user: auth_db.Row | None, client_address: str | None, reason: str
) -> None:
    """A refused sign-in to a known account goes in its organisation's log (an unknown address has none)."""
    if user is None:
        return
    async with transaction(pool) as conn:
        await audit.record(conn, audit.Caller(user["org_id"], user["email"], "user", client_address),
                           "session.sign_in_failed", "user", user["id"], detail={"reason": reason})


def _form(
    request: Request, web: WebConfig, *, next: str, email: str = "", status: int = 200, error: str | None = None
) -> Response:
    csrf = auth.new_token()
    response = pages.render(request, "sign_in.html", status_code=status, next=next, email=email, error=error,
                            csrf_token=csrf)
    response.set_cookie(_sign_in_cookie(web), csrf, max_age=_SIGN_IN_CSRF_MAX_AGE, path="/",
                        secure=web.secure_cookies, httponly=True, samesite="strict")
    return response

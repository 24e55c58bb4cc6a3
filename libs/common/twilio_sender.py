"""The one adapter to Twilio's Messages API: send one message, find one already sent, or fetch one (its price).
Uses the twilio SDK.

The dispatcher sends campaign texts through it, and the API its test sends (``services/api/test_send.py``).

Every call has an explicit timeout (the SDK has none). Failures come out as ``SendFailure`` with their
remedy (see ``twilio_errors``); nothing else escapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from libs.common.twilio_errors import SendFailure, remedy_for
from libs.common.twilio_facts import alpha_sender_reaches

# Twilio's clock and ours may differ by this much when matching a found message to a claim.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class Account:
    account_sid: str
    username: str  # API key SID, or the account SID
    password: str = field(repr=False)  # API key secret, or the auth token
    status_callback: str
    alpha_sender_id: str | None = None  # From for destinations that allow one (twilio_facts.alpha_sender_reaches)


@dataclass(frozen=True)
class Accepted:
    sid: str
    status: str
    segments: int
    price: Decimal | None


@dataclass(frozen=True)
class FetchedMessage:
    """A message as Twilio reports it now: ``price`` a positive cost in ``price_unit``, None until Twilio
    fills it in (after sending, sometimes hours later; docs/twilio.md#pricing)."""

    sid: str
    status: str
    error_code: int | None
    price: Decimal | None
    price_unit: str | None


class MessageSender(Protocol):
    """What sending code needs from Twilio (the port ``TwilioSender`` adapts); fakes in tests provide the same."""

    async def send(self, *, sender: str, to: str, body: str, validity_period_s: int | None = None) -> Accepted: ...

    async def find_sent(self, *, sender: str, to: str, body: str, since: datetime) -> str | None: ...


class _EncodedFormHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the twilio SDK is untyped
    """The SDK's HTTP client with the form body encoded here, as the bytes aiohttp would send: given a dict,
    aiohttp builds a FormData (and a multipart writer it then drops) per request, which profiling showed as a
    twentieth of the dispatcher's CPU. The SDK has already set ``Content-Type: application/x-www-form-urlencoded``."""

    async def request(self, method: str, url: str, params: Any = None, data: Any = None, headers: Any = None,
                      auth: Any = None, timeout: Any = None, allow_redirects: bool = False) -> Any:
        if isinstance(data, dict):
            data = urlencode(data, doseq=True).encode()
        return await super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                                     timeout=timeout, allow_redirects=allow_redirects)


class TwilioSender:
    """One per Twilio account; holds an HTTP connection pool. Close it with ``aclose``."""

    def __init__(self, account: Account, *, api_base_url: str, timeout_s: float = 15.0) -> None:
        self._account = account
        self._http = _EncodedFormHttpClient(timeout=timeout_s)
        self._client = Client(account.username, account.password, account.account_sid, http_client=self._http)
        self._client.api.base_url = api_base_url.rstrip("/")
        self._timeout = timeout_s

    async def aclose(self) -> None:
        await self._http.close()

    async def send(self, *, sender: str, to: str, body: str, validity_period_s: int | None = None) -> Accepted:
        """Create the message (Twilio's own validity period when ``validity_period_s`` is None)."""
        params: dict[str, object] = {"to": to, "body": body, "status_callback": self._account.status_callback}
        if validity_period_s is not None:
            params["validity_period"] = validity_period_s
        if sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = self._from(sender, to)
        message = await self._call(self._client.messages.create_async(**params))
        return Accepted(
            sid=message.sid,
            status=message.status,
            segments=int(message.num_segments or 0),
            price=Decimal(message.price) if message.price else None,
        )

    def _from(self, number: str, to: str) -> str:
        """The account's alphanumeric sender ID where ``to``'s country takes one, else the sender's number.
        (A Messaging Service picks its own: an alpha sender in its pool is used by Twilio.)"""
        alpha = self._account.alpha_sender_id
        return alpha if alpha and alpha_sender_reaches(to) else number

    async def find_sent(self, *, sender: str, to: str, body: str, since: datetime) -> str | None:
        """The SID of a message to ``to`` from ``sender`` with this body created since ``since``, if any.

        Filters on To and From only: a queued message has no date_sent yet, so DateSent cannot be used.
        """
        filters: dict[str, object] = {"to": to, "page_size": 50, "limit": 200}
        if not sender.startswith("MG"):
            filters["from_"] = self._from(sender, to)
        messages = await self._call(self._client.messages.list_async(**filters))
        earliest = since - CLOCK_SKEW
        for message in sorted(messages, key=lambda m: m.date_created or earliest):
            if message.body != body or (message.date_created and message.date_created < earliest):
                continue
            if sender.startswith("MG") and message.messaging_service_sid != sender:
                continue
            sid: str = message.sid
            return sid
        return None

    async def fetch(self, sid: str) -> FetchedMessage:
        """The message resource now; Twilio's price is a negative decimal string ("-0.00790")."""
        message = await self._call(self._client.messages(sid).fetch_async())
        return FetchedMessage(
            sid=message.sid,
            status=message.status,
            error_code=int(message.error_code) if message.error_code else None,
            price=abs(Decimal(message.price)) if message.price else None,
            price_unit=message.price_unit,
        )

    async def _call(self, call: Awaitable[Any]) -> Any:  # the twilio SDK is untyped: its results are Any
        try:
            async with asyncio.timeout(self._timeout):  # not wait_for: that wraps every call in a task of its own
                return await call
        except TwilioRestException as exc:
            raise SendFailure(remedy_for(exc.status, exc.code), exc.code, exc.msg) from None
        except TwilioException as exc:  # list pages and RFC 9457 bodies: no code
            raise SendFailure("reconcile", None, f"Twilio error: {exc}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SendFailure("reconcile", None, f"Twilio unreachable: {type(exc).__name__}: {exc}") from None

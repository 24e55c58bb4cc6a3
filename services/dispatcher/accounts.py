"""One Twilio client per organisation, built from its ``sms_accounts`` row and re-read every ``ttl_s``.

A token that is changed or revoked in Settings is used by the next send after ``ttl_s`` (at most 5 s,
``TEXTPULSE_CREDENTIALS_TTL_S``): the row is read again, and a client whose credentials changed is
replaced. One read per organisation at a time: every lane of the organisation waits on the same one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from libs.common.errors import PermanentError
from libs.common.secret_store import SecretStore
from libs.common.twilio_sender import Account, TwilioSender
from services.dispatcher.db import DispatchStore


@dataclass
class _Cached:
    account: Account
    sender: TwilioSender
    read_at: float


class TwilioAccounts:
    def __init__(self, store: DispatchStore, secrets: SecretStore, *, api_base_url: str, timeout_s: float = 15.0,
                 ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._secrets = secrets
        self._api_base_url = api_base_url
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: dict[uuid.UUID, _Cached] = {}
        self._reads: dict[uuid.UUID, asyncio.Future[TwilioSender]] = {}
        # A replaced client may still have a send in flight; it is closed with the others at the end.
        self._replaced: list[TwilioSender] = []

    async def for_org(self, org_id: uuid.UUID) -> TwilioSender:
        """The organisation's client; PermanentError ``twilio_account_missing`` if it has no account."""
        cached = self._cached.get(org_id)
        if cached is not None and self._clock() - cached.read_at < self._ttl_s:
            return cached.sender
        reading = self._reads.get(org_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(org_id))
            self._reads[org_id] = reading
            reading.add_done_callback(lambda _: self._reads.pop(org_id, None))
        return await asyncio.shield(reading)

    async def _read(self, org_id: uuid.UUID) -> TwilioSender:
        row = await self._store.account(org_id, self._secrets)
        cached = self._cached.get(org_id)
        if row is None:
            if cached is not None:
                self._replaced.append(self._cached.pop(org_id).sender)
            raise PermanentError("twilio_account_missing", f"organisation {org_id} has no Twilio account")
        account = Account(row.login.account_sid, row.login.username, row.login.password,
                          status_callback=row.webhook_base_url.rstrip("/") + "/twilio/status",
                          alpha_sender_id=row.alpha_sender_id)
        if cached is not None and cached.account == account:
            cached.read_at = self._clock()
            return cached.sender
        if cached is not None:
            self._replaced.append(cached.sender)
        sender = TwilioSender(account, api_base_url=self._api_base_url, timeout_s=self._timeout_s)
        self._cached[org_id] = _Cached(account, sender, self._clock())
        return sender

    async def aclose(self) -> None:
        for sender in [c.sender for c in self._cached.values()] + self._replaced:
            await sender.aclose()
        self._cached.clear()
        self._replaced.clear()

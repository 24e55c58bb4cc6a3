"""One Twilio client per organisation, built from its ``sms_accounts`` row on first use."""

from __future__ import annotations

import uuid

from libs.common.errors import PermanentError
from libs.common.twilio_sender import Account, TwilioSender
from services.dispatcher.db import DispatchStore


class TwilioAccounts:
    def __init__(self, store: DispatchStore, *, api_base_url: str, timeout_s: float = 15.0) -> None:
        self._store = store
        self._api_base_url = api_base_url
        self._timeout_s = timeout_s
        self._senders: dict[uuid.UUID, TwilioSender] = {}

    async def for_org(self, org_id: uuid.UUID) -> TwilioSender:
        sender = self._senders.get(org_id)
        if sender is None:
            row = await self._store.account(org_id)
            if row is None:
                raise PermanentError("twilio_account_missing", f"organisation {org_id} has no Twilio account")
            account = Account(row.account_sid, row.username, row.password,
                              status_callback=row.webhook_base_url.rstrip("/") + "/twilio/status")
            sender = TwilioSender(account, api_base_url=self._api_base_url, timeout_s=self._timeout_s)
            self._senders[org_id] = sender
        return sender

    async def aclose(self) -> None:
        for sender in self._senders.values():
            await sender.aclose()
        self._senders.clear()

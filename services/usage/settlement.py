"""The settler: Twilio's price for each accepted message, which replaces Textpulse's estimate in "actual".

Twilio fills a message's ``price`` in after sending, sometimes hours later, and status callbacks rarely
carry it (docs/twilio.md#pricing). Every ``poll_s`` the settler takes up to ``batch`` live messages without a
price (settle_after_s after they were sent, each asked about at most every ``recheck_s``, for up to
``give_up_s``), fetches each from Twilio with its organisation's credentials, and applies a price it finds
as a status of the message (handlers.record_status): the rules that settle a price from a callback settle
this one too, once. Logs ``settlement.checked`` with how many were asked about and settled.

A Twilio error for one message is logged (``settlement.fetch_failed``) and the message asked about again
later; a database outage only delays the pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError

from libs.common.events import MessageStatus
from libs.common.logging import get_logger
from libs.common.polling import poll_forever
from libs.common.secret_store import SecretStore, open_twilio_login
from libs.common.twilio_errors import SendFailure
from libs.common.twilio_sender import Account, TwilioSender
from services.usage import handlers
from services.usage.db import QUERIES

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SettlementTuning:
    poll_s: float = 60.0
    settle_after_s: float = 120.0
    recheck_s: float = 900.0
    give_up_s: float = 3 * 86_400.0
    batch: int = 200


class PriceSettler:
    def __init__(self, deps: handlers.UsageDeps, secrets: SecretStore, *, api_base_url: str,
                 tuning: SettlementTuning = SettlementTuning()) -> None:
        self._deps = deps
        self._secrets = secrets
        self._api_base_url = api_base_url
        self._tuning = tuning

    async def run(self) -> None:
        """Settle every ``poll_s`` until cancelled."""
        await poll_forever(self.settle, stalled="settlement.stalled", poll_s=self._tuning.poll_s)

    async def settle(self) -> int:
        """One pass; returns how many messages got Twilio's price."""
        t = self._tuning
        async with self._deps.pool.acquire() as conn:
            rows = await QUERIES.fetch(conn, "unsettled-messages", settle_after_s=t.settle_after_s,
                                       recheck_s=t.recheck_s, give_up_s=t.give_up_s, batch=t.batch)
        by_org: dict[UUID, list[str]] = defaultdict(list)
        for row in rows:
            by_org[row["org_id"]].append(row["message_sid"])
        settled = 0
        for org_id, sids in by_org.items():
            settled += await self._settle_org(org_id, sids)
            async with self._deps.pool.acquire() as conn:
                await QUERIES.execute(conn, "mark-price-checked", message_sids=sids)
        if rows:
            log.info("settlement.checked", extra={"messages": len(rows), "settled": settled})
        return settled

    async def _settle_org(self, org_id: UUID, sids: list[str]) -> int:
        sender = await self._sender(org_id)
        if sender is None:
            return 0
        settled = 0
        try:
            for sid in sids:
                try:
                    fetched = await sender.fetch(sid)
                except SendFailure as exc:
                    log.warning("settlement.fetch_failed", extra={"message_sid": sid, "code": exc.code})
                    continue
                if fetched.price is None or fetched.price_unit not in (None, "USD"):
                    continue  # not priced yet; a price in another currency is not ours to add to USD
                try:
                    status = MessageStatus.model_validate(
                        {"org_id": org_id, "message_sid": sid, "status": fetched.status,
                         "error_code": fetched.error_code, "price": fetched.price})
                except ValidationError:
                    continue  # a status this version does not know: asked about again later
                await handlers.record_status(status, deps=self._deps)
                settled += 1
        finally:
            await sender.aclose()
        return settled

    async def _sender(self, org_id: UUID) -> TwilioSender | None:
        async with self._deps.pool.acquire() as conn:
            row = await QUERIES.fetchrow(conn, "twilio-login", org_id=org_id)
            if row is None:
                return None
            login = await open_twilio_login(conn, self._secrets, org_id, row)
        account = Account(login.account_sid, login.username, login.password, status_callback="")
        return TwilioSender(account, api_base_url=self._api_base_url)

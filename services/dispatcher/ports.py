"""What the Deliverer needs from the ledger and the run's settings: ``DispatchStore`` on PostgreSQL provides it.

Twilio's side of delivery is ``libs.common.twilio_sender.MessageSender``.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from libs.common.db import Connection
from libs.common.events import Recipient, SendOutcome
from libs.common.run_reasons import RunReason
from libs.common.send_verdict import Verdict
from libs.common.sender_caps import CapPolicy
from services.dispatcher.db import LedgerEntry


class LedgerStore(Protocol):
    async def run_state(self, run_id: uuid.UUID) -> str | None: ...

    def entry(self, e: Recipient, token: uuid.UUID, process_id: str, *,
              own_connection: bool = False) -> AbstractAsyncContextManager[LedgerEntry]: ...

    async def reclaim(self, entry: LedgerEntry, token: uuid.UUID, process_id: str) -> None: ...

    async def record_sent(self, entry: LedgerEntry, sid: str, status: str, segments: int,
                          price: Decimal | None, sent_at: float) -> None: ...

    async def record_final(self, entry: LedgerEntry, state: SendOutcome, code: int | None,
                           reason: str | None = None) -> None: ...

    async def is_suppressed(self, e: Recipient) -> bool: ...

    async def suppress(self, e: Recipient) -> None: ...

    async def mark_bad_number(self, e: Recipient, code: int) -> None: ...

    async def recent_outcomes(self, run_id: uuid.UUID, window: int) -> tuple[int, int]: ...

    async def pause_run(self, run_id: uuid.UUID, reason: RunReason) -> None: ...

    async def refuse_run(self, run_id: uuid.UUID, reason: RunReason) -> None: ...

    async def cap_policy(self, org_id: uuid.UUID, verification: str) -> CapPolicy | None: ...

    async def reserve_volume(self, conn: Connection, sender: str, segments: int,
                             limits: dict[str, int], now: datetime) -> str | None: ...

    async def take_held(self, entry: LedgerEntry, token: uuid.UUID, process_id: str) -> None: ...

    async def hold(self, entry: LedgerEntry, until: datetime) -> None: ...


class Gate(Protocol):
    """Quiet hours and frequency caps (``send_rules.SendGate``)."""

    async def verdict(self, event: Recipient, claimed_at: datetime, now: float) -> Verdict: ...

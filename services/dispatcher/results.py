"""The send-result event of a recipient, from its ledger state: one rule for the lanes and the batch check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.common.events import Recipient, SendResult

if TYPE_CHECKING:
    from services.dispatcher.db import LedgerState


def send_result(event: Recipient, state: LedgerState, *, sid: str | None = None, segments: int = 0,
                code: int | None = None) -> SendResult | None:
    """The send-result of ``event`` in ``state`` (None while it is only claimed or held)."""
    if state == "claimed" or state == "held":  # noqa: PLR1714 - mypy narrows this form only
        return None
    return SendResult(org_id=event.org_id, run_id=event.run_id, recipient_id=event.recipient_id,
                      sender=event.sender, to=event.to, outcome=state, message_sid=sid, error_code=code,
                      segments=segments)


def earlier_result(event: Recipient, state: LedgerState, sid: str | None, segments: int,
                   code: int | None) -> SendResult | None:
    """The send-result of an entry an earlier attempt ended (None if it is only claimed): published again."""
    return send_result(event, state, sid=sid, segments=segments if sid else 0, code=code)

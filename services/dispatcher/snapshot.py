"""Recipient events are pointers: the run's frozen snapshot in PostgreSQL says what may be sent.

Anyone who can write to the ``recipients`` topic can write any event, so the dispatcher believes an event
only as far as the database agrees with it. Before any claim, Twilio account or send, each event is
compared with its snapshot row (``run_recipients``, written by the audience service), its run and the
sender of that row as the organisation's ``senders`` know it. An event that does not match is refused
with one of the codes below and dead-lettered: nothing is claimed or sent for it, and no run is touched.

    run_unknown         no run has the event's run_id
    org_mismatch        the run belongs to another organisation than the event names
    run_mismatch        the run belongs to another campaign than the event names
    not_in_snapshot     the run's snapshot has no such recipient
    recipient_excluded  the snapshot excluded the recipient (opted out, duplicate number, ...)
    recipient_erased    the member was erased (migration 0031): the row has no number any more, and the
                        erasure ended the recipient in the ledger itself, so this one is not dead-lettered:
                        the consumer only refreshes the run's counts
    content_mismatch    the number, body or segment count differ from the snapshot's
    sender_mismatch     the snapshot sends this recipient from another sender
    sender_unknown      the sender is not one of the run's organisation's senders

So what is sent is what the snapshot stores: the event's number, body and segments are the row's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from libs.common.errors import PermanentError
from libs.common.events import Recipient

ERASED: Final = "recipient_erased"


class SnapshotMismatch(PermanentError):
    """The event does not match the run's snapshot; ``code`` says how (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """What the database holds for one event's (run_id, recipient_id); None where it holds nothing."""

    run_org_id: uuid.UUID | None
    run_campaign_id: uuid.UUID | None
    status: str | None
    e164: str | None
    body: str | None
    segments: int | None
    sender: str | None
    sender_known: bool
    address_state: str | None = None  # not checked: where the quiet hours place the member (send_rules.py)
    address_time_zone: str | None = None


def check_against_snapshot(event: Recipient, row: SnapshotRow) -> SnapshotMismatch | None:
    """The first way ``event`` differs from what the database holds for it, or None when it matches."""
    if row.run_org_id is None:
        return SnapshotMismatch("run_unknown", f"no campaign run {event.run_id}")
    if row.run_org_id != event.org_id:
        return SnapshotMismatch("org_mismatch", f"run {event.run_id} is not organisation {event.org_id}'s")
    if row.run_campaign_id != event.campaign_id:
        return SnapshotMismatch("run_mismatch", f"run {event.run_id} is not a run of campaign {event.campaign_id}")
    if row.status is None:
        return SnapshotMismatch("not_in_snapshot", f"run {event.run_id} has no recipient {event.recipient_id}")
    if row.status != "queued":
        return SnapshotMismatch("recipient_excluded", f"recipient {event.recipient_id} was excluded from the run")
    if row.e164 is None:
        return SnapshotMismatch(ERASED, f"recipient {event.recipient_id} was erased")
    if (row.e164, row.body, row.segments) != (event.to, event.body, event.segments):
        differs = [name for name, stored, sent in (("to", row.e164, event.to), ("body", row.body, event.body),
                                                   ("segments", row.segments, event.segments)) if stored != sent]
        return SnapshotMismatch("content_mismatch", f"recipient {event.recipient_id}: {', '.join(differs)} "
                                                    "differ from the run's snapshot")
    if row.sender != event.sender:
        return SnapshotMismatch("sender_mismatch", f"recipient {event.recipient_id} is not sent from {event.sender}")
    if not row.sender_known:
        return SnapshotMismatch("sender_unknown", f"{event.sender} is not a sender of organisation {event.org_id}")
    return None

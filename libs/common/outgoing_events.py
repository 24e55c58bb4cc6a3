"""The events an organisation's webhook endpoints receive: their types, ids and JSON bodies. Pure.

Every event has an id derived from what it came from (the Kafka record's event id, or the run), so the same
record consumed twice is the same event, stored once. The body is what is POSTed and signed:

    {"id": "...", "type": "delivered", "occurred_at": "2026-12-03T09:00:00+00:00", "org_id": "...",
     "data": {"phone": "+14155550134", "run_id": "...", "recipient_id": "...", "message_sid": "SM..."}}

``member_key`` orders delivery: a member's events reach an endpoint in the order they were stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

EventType = Literal["sent", "delivered", "failed", "clicked", "replied", "opted_out", "opted_in", "run_completed"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
# Fixed forever: changing it would give every redelivered record a new event id.
_ID_NAMESPACE: Final = uuid.UUID("6f1c3b0e-4d0a-5b7e-9a51-1f0c2e7d8b26")


@dataclass(frozen=True)
class OutgoingEvent:
    id: uuid.UUID
    org_id: uuid.UUID
    type: EventType
    member_key: str
    occurred_at: datetime
    data: dict[str, Any]

    def body(self) -> str:
        """The JSON POSTed to endpoints (compact, keys sorted: the same event is the same bytes)."""
        return json.dumps({"id": str(self.id), "type": self.type, "occurred_at": self.occurred_at.isoformat(),
                           "org_id": str(self.org_id), "data": self.data}, sort_keys=True, separators=(",", ":"))


def event_id(origin: str, event_type: EventType) -> uuid.UUID:
    """The stable id of the ``event_type`` event made from ``origin`` (a record's event id, a run id)."""
    return uuid.uuid5(_ID_NAMESPACE, f"{origin}:{event_type}")


def outgoing(origin: str, org_id: uuid.UUID, event_type: EventType, member_key: str, occurred_at: datetime,
             **data: Any) -> OutgoingEvent:
    values = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in data.items() if v is not None}
    return OutgoingEvent(event_id(origin, event_type), org_id, event_type, member_key, occurred_at, values)

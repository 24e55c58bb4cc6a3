"""The Message resource: what the stand-in keeps per message and the exact JSON it answers.

See docs/twilio.md#the-message-resource.

Statuses only move up the lifecycle: ``accepted < queued < sent < delivered | undelivered | failed``
(``received`` for inbound). ``accepted_at`` and ``left_queue_at`` are the arrival log's two columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from standins.twilio.formats import rfc2822

API_VERSION = "2010-04-01"
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "received", "canceled"})


@dataclass(slots=True)
class Message:
    seq: int  # creation order; lists are newest first by it
    sid: str
    account_sid: str
    to: str
    from_: str | None  # None while a Messaging Service has not picked a sender (status "accepted")
    body: str
    messaging_service_sid: str | None
    status: str
    direction: str
    num_segments: int
    encoding: str
    date_created: float
    date_updated: float
    sender: str | None  # the number whose queue it waits in
    status_callback: str | None = None
    validity_period: int = 36_000
    date_sent: float | None = None
    error_code: int | None = None
    price: str | None = None
    accepted_at: float = 0.0
    left_queue_at: float | None = None  # when its slot in the sender's queue came (scheduled departure)
    reorder_callbacks: bool = False

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The JSON object Twilio answers for this message, keys in Twilio's order."""
        accepted = self.status == "accepted"
        base = self.uri[: -len(".json")]
        subresources = {"media": f"{base}/Media.json"}
        if self.date_sent is not None:
            subresources["feedback"] = f"{base}/Feedback.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent) if self.date_sent is not None else None,
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,  # Twilio leaves it null even next to an error code
            "from": None if accepted else self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "0" if accepted else str(self.num_segments),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": subresources,
            "to": self.to,
            "uri": self.uri,
        }

    def resource_json(self) -> bytes:
        return json.dumps(self.resource(), ensure_ascii=False).encode()

    def inspection(self) -> dict[str, Any]:
        """The resource plus what only the control API shows: queue times, sender, encoding."""
        return {
            **self.resource(),
            "sender": self.sender,
            "encoding": self.encoding,
            "accepted_at": self.accepted_at,
            "left_queue_at": self.left_queue_at,
            "status_callback": self.status_callback,
        }

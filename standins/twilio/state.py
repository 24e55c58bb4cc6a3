"""Everything the Twilio stand-in holds in memory, and the synchronous part of a message create.

``accept`` is the hot path of ``POST .../Messages.json`` once the form has passed ``validation``: it
checks suppression (21610), counts segments, gives the message a queue slot (21611 when the wait would
exceed its validity period) and stores it. Nothing here touches the disk or awaits.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from libs.common.segments import InvalidBody, count_segments
from standins.twilio.config import TwilioConfig
from standins.twilio.errors import invalid
from standins.twilio.faults import FaultBook
from standins.twilio.messages import Message
from standins.twilio.outcomes import VolumeCounter
from standins.twilio.sender_queue import QueueTooLong, SenderQueues
from standins.twilio.senders import Senders
from standins.twilio.shared_keys import SharedKeys
from standins.twilio.store import MessageStore
from standins.twilio.validation import CreateRequest
from standins.twilio.verifications import Verifications

MAX_VALIDITY = 36_000


@lru_cache(maxsize=16_384)
def segments_of(body: str, smart_encoding: bool) -> tuple[int, str]:
    """(segments, encoding) as Twilio counts them; cached, because campaign bodies repeat."""
    try:
        counted = count_segments(body, smart_encoding=smart_encoding)
    except InvalidBody:
        # Bodies Textpulse refuses to send but Twilio takes (control characters, 1,600 code points that are
        # more UTF-16 units): count them as UCS-2 without the splitting rules.
        units = len(body.encode("utf-16-le")) // 2
        return (1 if units <= 70 else -(-units // 67)), "UCS-2"
    return counted.segments, counted.encoding


def new_sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


@dataclass(slots=True)
class TwilioState:
    config: TwilioConfig
    senders: Senders = field(init=False)
    store: MessageStore = field(default_factory=MessageStore)
    queues: SenderQueues = field(default_factory=SenderQueues)
    faults: FaultBook = field(default_factory=FaultBook)
    volume: VolumeCounter = field(default_factory=VolumeCounter)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)  # (sender or service SID, member number)
    just_accepted: list[Message] = field(default_factory=list)  # service sends awaiting their "queued" step
    failing_on_queue: dict[str, int] = field(default_factory=dict)  # sid -> error code (30001)
    shared_keys: SharedKeys = field(default_factory=SharedKeys)  # webhook signing keys (shared_keys.py)
    verifications: Verifications = field(default_factory=Verifications)  # toll-free submissions
    account_type: str = "Full"
    account_status: str = "active"
    friendly_name: str = ""
    started_at: float = field(default_factory=time.time)
    per_segment: Decimal = Decimal("0")
    failed_fee: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        self.senders = Senders(self.config)
        self.per_segment = Decimal(self.config.price_per_segment)
        self.failed_fee = Decimal(self.config.failed_message_fee)
        self.reset()

    def reset(self) -> None:
        """Back to the configuration: no messages, opt-outs or faults; numbers as configured."""
        now = time.time()
        self.senders.reset(now)
        self.store.clear()
        self.queues.clear()
        self.faults.clear()
        self.volume = VolumeCounter()
        self.opt_outs.clear()
        self.just_accepted.clear()
        self.failing_on_queue.clear()
        self.shared_keys.clear()
        self.verifications.clear()
        self.account_type = self.config.account_type
        self.account_status = self.config.account_status
        self.friendly_name = self.config.friendly_name

    def opt_out_scope(self, sender: str, service_sid: str | None) -> str:
        return service_sid if service_sid is not None else self.senders.opt_out_scope(sender)

    def accept(self, request: CreateRequest, account_sid: str, now: float) -> Message:
        """Create, queue and store a message; raises TwilioApiError for 21610, 21611 and 21703."""
        service = self.senders.services.get(request.messaging_service_sid or "")
        sender = request.from_ or (service.pick_sender(request.to) if service is not None else None)
        if sender is None:
            raise invalid(21703, "The Messaging Service does not have a phone number available to send a message.")
        # An alphanumeric sender ID (validation.py let it through) is no number: the account's default pace.
        number = self.senders.numbers.get(sender)
        scope = self.opt_out_scope(sender, service.sid if service is not None else
                                   number.service_sid if number is not None else None)
        if (scope, request.to) in self.opt_outs:
            raise invalid(21610, "Attempt to send to unsubscribed recipient")
        smart = request.smart_encoded or (service is not None and service.smart_encoding)
        segments, encoding = segments_of(request.body, smart)
        validity = request.validity_period or (service.validity_period if service is not None else MAX_VALIDITY)
        via_pool = request.from_ is None
        message = Message(
            seq=self.store.next_seq(),
            sid=new_sid(),
            account_sid=account_sid,
            to=request.to,
            from_=None if via_pool else sender,
            body=request.body,
            messaging_service_sid=service.sid if service is not None else None,
            status="accepted" if via_pool else "queued",
            direction="outbound-api",
            num_segments=segments,
            encoding=encoding,
            date_created=now,
            date_updated=now,
            sender=sender,
            status_callback=request.status_callback or (service.status_callback if service is not None else None),
            validity_period=validity,
            accepted_at=now,
        )
        if message.status_callback and self.faults.reorder is not None:
            message.reorder_callbacks = self.faults.reorder.fire()
        try:
            rate = number.rate if number is not None else self.config.default_rate
            self.queues.enqueue(message, sender, rate, now, max_wait=validity)
        except QueueTooLong:
            if not via_pool:
                raise invalid(
                    21611, "This 'From' number has exceeded the maximum number of queued messages", 429
                ) from None
            # Through a service the message is created, then fails (docs/twilio.md#toll-free-senders).
            self.failing_on_queue[message.sid] = 30001
        self.store.add(message)
        if via_pool:
            self.just_accepted.append(message)
        return message

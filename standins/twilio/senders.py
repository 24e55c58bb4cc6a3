"""The account's phone numbers and Messaging Services as they are now (control calls change them).

Built from ``TwilioConfig``; ``Senders.reset()`` returns to it. A number in a service shares the
service's opt-out list (docs/twilio.md#opt-out-keywords: "the member is opted out of the whole service").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from standins.twilio.config import TwilioConfig, Verification, derived_sid, is_toll_free


@dataclass(slots=True)
class Number:
    sid: str
    phone_number: str
    friendly_name: str
    verification: Verification
    rate: float
    sms_url: str | None
    service_sid: str | None
    toll_free: bool
    date_created: float


@dataclass(slots=True)
class Service:
    sid: str
    friendly_name: str
    inbound_request_url: str | None
    status_callback: str | None
    sticky_sender: bool
    smart_encoding: bool
    validity_period: int
    use_inbound_webhook_on_number: bool
    advanced_opt_out: bool
    date_created: float
    numbers: list[str] = field(default_factory=list)
    _next: int = 0

    def pick_sender(self, to: str) -> str | None:
        """The pool number for ``to``: the same one every time with sticky sender, else round robin."""
        if not self.numbers:
            return None
        if self.sticky_sender:
            return self.numbers[zlib.crc32(to.encode()) % len(self.numbers)]
        self._next = (self._next + 1) % len(self.numbers)
        return self.numbers[self._next]


def friendly(phone_number: str) -> str:
    """``+18885550100`` -> ``(888) 555-0100``, as the Console names NANP numbers."""
    if phone_number.startswith("+1") and len(phone_number) == 12:
        digits = phone_number[2:]
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return phone_number


@dataclass(slots=True)
class Senders:
    config: TwilioConfig
    numbers: dict[str, Number] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    def reset(self, now: float) -> None:
        """Rebuild numbers and services from the configuration; raises ValueError for an unknown service."""
        c = self.config
        self.services = {}
        names: dict[str, str] = {}
        for s in c.services:
            sid = derived_sid("MG", c.account_sid, s.friendly_name)
            names[s.friendly_name] = sid
            self.services[sid] = Service(
                sid, s.friendly_name, s.inbound_request_url, s.status_callback, s.sticky_sender, s.smart_encoding,
                s.validity_period, s.use_inbound_webhook_on_number, s.advanced_opt_out, now,
            )
        self.numbers = {}
        for n in c.numbers:
            self.add_number(
                n.phone_number,
                verification=n.verification,
                rate=n.rate,
                sms_url=n.sms_url,
                service=names.get(n.service, n.service) if n.service else None,
                friendly_name=n.friendly_name,
                now=now,
            )

    def add_number(
        self,
        phone_number: str,
        *,
        verification: Verification = "verified",
        rate: float | None = None,
        sms_url: str | None = None,
        service: str | None = None,
        friendly_name: str | None = None,
        now: float,
    ) -> Number:
        """Add (or replace) a number; raises ValueError for an unknown service."""
        if service is not None and service not in self.services:
            raise ValueError(f"unknown Messaging Service {service!r}")
        old = self.numbers.pop(phone_number, None)
        moved = old is None or old.service_sid != service
        if old is not None and moved and old.service_sid is not None:
            self.services[old.service_sid].numbers.remove(phone_number)
        number = Number(
            sid=derived_sid("PN", self.config.account_sid, phone_number),
            phone_number=phone_number,
            friendly_name=friendly_name or friendly(phone_number),
            verification=verification,
            rate=rate if rate is not None else self.config.default_rate,
            sms_url=sms_url,
            service_sid=service,
            toll_free=is_toll_free(phone_number),
            date_created=now,
        )
        self.numbers[phone_number] = number
        # A number that stays in its service keeps its place in the pool, so sticky senders do not move.
        if service is not None and moved:
            self.services[service].numbers.append(phone_number)
        return number

    def by_sid(self, sid: str) -> Number | None:
        return next((n for n in self.numbers.values() if n.sid == sid), None)

    def opt_out_scope(self, phone_number: str) -> str:
        """Whose opt-out list a member's keyword to this number changes: its service's, else its own."""
        number = self.numbers.get(phone_number)
        return number.service_sid if number is not None and number.service_sid else phone_number

    def inbound_url(self, number: Number) -> str | None:
        """Where Twilio posts a member's text to ``number`` (docs/twilio.md#incoming-messages)."""
        service = self.services.get(number.service_sid) if number.service_sid else None
        if service is not None and not service.use_inbound_webhook_on_number and service.inbound_request_url:
            return service.inbound_request_url
        return number.sms_url or self.config.inbound_url

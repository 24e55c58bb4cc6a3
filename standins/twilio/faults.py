"""Fault plans for the Twilio stand-in, set with ``POST /_control/faults`` (one JSON object per plan).

Request faults (checked before authentication, like Twilio's edge):

- ``{"kind": "rate_limited"}``: 429 with code 20429; the request is not processed.
- ``{"kind": "server_error", "processed": false}``: 500 with code 20500; with ``processed: true`` the
  message is created first, so a client that retries blindly sends it twice.
- ``{"kind": "unavailable", "body": "html"}``: 503, as an HTML page (the SDK then reports code 503) or
  Twilio's JSON with 20503.
- ``{"kind": "timeout", "hang_seconds": 60}``: the message is created but no answer comes until
  ``hang_seconds`` pass (then a 504 page) or ``POST /_control/faults/release``.

Each takes ``scope`` (``"create"``: message creates only, the default; ``"any"``: every REST request),
and ``skip``/``count``/``share`` (see ``standins.trigger``; a plan with neither count nor share fires once).

Message outcomes (decided when a message leaves its queue):

- ``{"kind": "carrier_error", "code": 30003, "number": "+14155550134", "rate": 0.5}``: that share of
  messages to ``number`` (``"*"``: any; ``"sender"`` narrows by ``From``) end with ``code``:
  ``undelivered`` after ``sent`` for carrier codes (30003, 30005, 30006, 30007, 30008, 30019, 30034...),
  ``failed`` without ``sent`` for 30001, 30002, 30032, 30036 and 30450.
- ``{"kind": "pumping_block", "countries": ["GB", "44"]}``: messages to those countries (ISO code or
  calling code) fail with 30450.

Status callbacks:

- ``{"kind": "callback_chaos", "duplicate_share": 0.2, "reorder_share": 0.1}``: send that share of
  callbacks twice; for that share of messages, send the intermediate callbacks after the final one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import phonenumbers
from pydantic import BaseModel, Field

from standins.trigger import Trigger

FAILED_CODES = frozenset({30001, 30002, 30032, 30036, 30450})


class RequestFaultIn(BaseModel):
    kind: Literal["rate_limited", "server_error", "unavailable", "timeout"]
    scope: Literal["create", "any"] = "create"
    skip: int = Field(default=0, ge=0)
    count: int | None = Field(default=None, ge=1)
    share: float | None = Field(default=None, gt=0, le=1)
    body: Literal["json", "html"] = "html"
    processed: bool = False
    hang_seconds: float = Field(default=60.0, gt=0, le=3600)


class CarrierErrorIn(BaseModel):
    kind: Literal["carrier_error"]
    code: int = Field(ge=30000, le=30999)
    number: str = "*"
    sender: str | None = None
    rate: float = Field(default=1.0, gt=0, le=1)
    count: int | None = Field(default=None, ge=1)


class PumpingBlockIn(BaseModel):
    kind: Literal["pumping_block"]
    countries: list[str] = Field(min_length=1)


class CallbackChaosIn(BaseModel):
    kind: Literal["callback_chaos"]
    duplicate_share: float = Field(default=0.0, ge=0, le=1)
    reorder_share: float = Field(default=0.0, ge=0, le=1)


FaultIn = Annotated[
    RequestFaultIn | CarrierErrorIn | PumpingBlockIn | CallbackChaosIn, Field(discriminator="kind")
]


@dataclass(slots=True)
class Plan:
    id: int
    spec: RequestFaultIn | CarrierErrorIn | PumpingBlockIn | CallbackChaosIn
    trigger: Trigger | None = None
    calling_codes: frozenset[int] = frozenset()


def _calling_code(country: str) -> int:
    if country.lstrip("+").isdigit():
        return int(country.lstrip("+"))
    code = phonenumbers.country_code_for_region(country.upper())
    if code == 0:
        raise ValueError(f"unknown country {country!r}")
    return code


def calling_code_of(e164: str) -> int | None:
    try:
        return phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException:
        return None


@dataclass(slots=True)
class FaultBook:
    """The active plans. Empty lists keep the hot path to one truth test per request."""

    request: list[Plan] = field(default_factory=list)
    carrier: list[Plan] = field(default_factory=list)
    pumping: list[Plan] = field(default_factory=list)
    duplicate: Trigger | None = None
    reorder: Trigger | None = None
    _next_id: int = 1

    def add(self, spec: RequestFaultIn | CarrierErrorIn | PumpingBlockIn | CallbackChaosIn) -> Plan:
        """Raises ValueError for an unknown country."""
        plan = Plan(self._next_id, spec)
        if isinstance(spec, RequestFaultIn):
            count = spec.count if spec.count is not None or spec.share is not None else 1
            plan.trigger = Trigger(skip=spec.skip, count=count, share=spec.share)
            self.request.append(plan)
        elif isinstance(spec, CarrierErrorIn):
            plan.trigger = Trigger(count=spec.count, share=spec.rate)
            self.carrier.append(plan)
        elif isinstance(spec, PumpingBlockIn):
            plan.calling_codes = frozenset(_calling_code(c) for c in spec.countries)
            self.pumping.append(plan)
        else:
            self.duplicate = Trigger(share=spec.duplicate_share) if spec.duplicate_share else None
            self.reorder = Trigger(share=spec.reorder_share) if spec.reorder_share else None
        self._next_id += 1
        return plan

    def take_request(self, is_create: bool) -> RequestFaultIn | None:
        for plan in self.request:
            spec = plan.spec
            assert isinstance(spec, RequestFaultIn) and plan.trigger is not None
            if (is_create or spec.scope == "any") and plan.trigger.fire():
                return spec
        return None

    def carrier_error(self, to: str, sender: str | None) -> int | None:
        for plan in self.carrier:
            spec = plan.spec
            assert isinstance(spec, CarrierErrorIn) and plan.trigger is not None
            if spec.number not in ("*", to) or (spec.sender is not None and spec.sender != sender):
                continue
            if plan.trigger.fire():
                return spec.code
        return None

    def pumping_blocked(self, to: str) -> bool:
        if not self.pumping:
            return False
        code = calling_code_of(to)
        return any(code in plan.calling_codes for plan in self.pumping)

    def clear(self) -> None:
        self.request.clear()
        self.carrier.clear()
        self.pumping.clear()
        self.duplicate = self.reorder = None

    def describe(self) -> list[dict[str, object]]:
        described = []
        for plan in (*self.request, *self.carrier, *self.pumping):
            entry: dict[str, object] = {"id": plan.id, **plan.spec.model_dump()}
            if plan.trigger is not None:
                entry["fired"] = plan.trigger.fired
            described.append(entry)
        for name, trigger in (("duplicate", self.duplicate), ("reorder", self.reorder)):
            if trigger is not None:
                entry = {"kind": "callback_chaos", "part": name, "share": trigger.share, "fired": trigger.fired}
                described.append(entry)
        return described

"""Fault plans for the iMIS stand-in, set through ``POST /_control/faults``.

Kinds:

- ``unauthorized``: answer 401 (the HttpError body) and revoke the caller's token, so the client must
  sign in again. ``{"kind": "unauthorized", "path": "/api/IQA", "skip": 2, "count": 1}`` is "401 on the
  third page".
- ``server_error``: answer 500, with an HTML page (``"body": "html"``) or an HttpError JSON body.
- ``slow``: wait ``delay_seconds`` before answering normally.
- ``rate_limited``: answer 429 with ``Retry-After`` (iMIS publishes no 429 format; a test hook).

A plan matches requests whose path starts with ``path`` (case-insensitive, default ``/api/``); see
``standins.trigger`` for ``skip``/``count``/``share``. Plans are checked in the order they were added,
and the first one that fires decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from standins.trigger import Trigger

FaultKind = Literal["unauthorized", "server_error", "slow", "rate_limited"]


class FaultPlanIn(BaseModel):
    """The body of ``POST /_control/faults``."""

    kind: FaultKind
    path: str = "/api/"
    skip: int = Field(default=0, ge=0)
    count: int | None = Field(default=None, ge=1)
    share: float | None = Field(default=None, gt=0, le=1)
    delay_seconds: float = Field(default=2.0, ge=0, le=600)
    body: Literal["json", "html"] = "json"
    retry_after: int = Field(default=5, ge=0)


@dataclass(slots=True)
class FaultPlan:
    id: int
    spec: FaultPlanIn
    trigger: Trigger


@dataclass(slots=True)
class FaultBook:
    """The active plans; ``take(path)`` says which one (if any) applies to this request."""

    plans: list[FaultPlan] = field(default_factory=list)
    _next_id: int = 1

    def add(self, spec: FaultPlanIn) -> FaultPlan:
        """Raises ValueError for a plan with neither count nor share."""
        count = spec.count if spec.count is not None or spec.share is not None else 1
        plan = FaultPlan(self._next_id, spec, Trigger(skip=spec.skip, count=count, share=spec.share))
        self._next_id += 1
        self.plans.append(plan)
        return plan

    def take(self, path: str) -> FaultPlan | None:
        lowered = path.lower()
        for plan in self.plans:
            if lowered.startswith(plan.spec.path.lower()) and plan.trigger.fire():
                return plan
        return None

    def clear(self) -> None:
        self.plans.clear()

    def describe(self) -> list[dict[str, object]]:
        return [
            {"id": p.id, **p.spec.model_dump(), "fired": p.trigger.fired, "exhausted": p.trigger.exhausted}
            for p in self.plans
        ]

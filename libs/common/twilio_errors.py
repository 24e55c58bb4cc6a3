"""What each Twilio error means for a send: Twilio's facts, translated once (the dispatcher's campaign
sends and the API's test sends both get them from ``twilio_sender``).

A ``SendFailure`` knows how it must be treated (courier's idea of errors that carry their remedy):

- ``retry``: nothing was created (429/20429 "never processed", 21611 sender queue full): wait, send again.
- ``reconcile``: a message may have been created (5xx, a timeout, a broken connection): look for it in
  Twilio's list before sending again.
- ``suppress``: the member replied STOP to this sender (21610): never send, suppress the number.
- ``bad_number``: the number cannot receive texts (21211, 21612, 21614): fail it and remember.
- ``fail``: this message can never go as it is (body problems): fail the recipient.
- ``pause_run``: every message of the run would fail the same way (credentials, sender not owned,
  no geo permission, sender not verified): pause the run and alert; the recipient is not failed.

The codes that mean "unsubscribed" and "bad number" are Twilio facts shared with the other services
(``libs/common/twilio_facts.py``). ``is_transient`` says whether trying again later may help.
"""

from __future__ import annotations

from typing import Literal

from libs.common.errors import TextpulseError
from libs.common.twilio_facts import BAD_NUMBER_ERRORS, UNSUBSCRIBED_ERROR

Remedy = Literal["retry", "reconcile", "suppress", "bad_number", "fail", "pause_run"]

REMEDIES: dict[int, Remedy] = {
    20429: "retry",
    21611: "retry",
    20500: "reconcile",
    20503: "reconcile",
    UNSUBSCRIBED_ERROR: "suppress",
    **dict.fromkeys(BAD_NUMBER_ERRORS, "bad_number"),
    21602: "fail",
    21604: "fail",
    21617: "fail",
    20003: "pause_run",
    20008: "pause_run",
    20404: "pause_run",
    21212: "pause_run",
    21603: "pause_run",
    21606: "pause_run",
    21408: "pause_run",
    30032: "pause_run",
}


class SendFailure(TextpulseError):
    def __init__(self, remedy: Remedy, twilio_code: int | None, message: str) -> None:
        super().__init__(f"twilio_{twilio_code}" if twilio_code else f"twilio_{remedy}", message)
        self.remedy = remedy
        self.twilio_code = twilio_code


def remedy_for(http_status: int, twilio_code: int | None) -> Remedy:
    if twilio_code in REMEDIES:
        return REMEDIES[twilio_code]
    if http_status == 429:
        return "retry"
    if http_status >= 500 or http_status == 0:
        return "reconcile"
    if http_status in (401, 403):
        return "pause_run"
    return "fail"


def is_transient(remedy: Remedy) -> bool:
    """Twilio could not be reached or was busy: the same request may succeed later."""
    return remedy in ("retry", "reconcile")

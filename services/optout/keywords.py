"""Classify an incoming text as Twilio does: opt-out, opt-in, help, or an ordinary reply. Pure.

Rules (docs/twilio.md#opt-out-keywords):

- The whole message must be the keyword, compared case-insensitively after trimming whitespace:
  ``" sToP "`` is an opt-out, ``"Stop please"`` and ``"OPT OUT"`` are ordinary replies.
- Opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, and REVOKE and OPTOUT (FCC, May 2025).
- Opt-in: START and UNSTOP; YES only off toll-free, because on a US toll-free number the carrier layer
  does not lift a block for YES (so treating it as an opt-in would have us text a number Twilio refuses).
- Help: HELP, INFO.
- When Advanced Opt-Out sends ``OptOutType`` (STOP, START or HELP), it wins: the service may have
  custom keywords or languages ("ARRET"), and Twilio has already acted on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"


OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
TOLL_FREE_OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_OPT_OUT_TYPES = {"STOP": Kind.OPT_OUT, "START": Kind.OPT_IN, "HELP": Kind.HELP}
_LONGEST_KEYWORD = max(len(k) for k in OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS)


@dataclass(frozen=True, slots=True)
class Classification:
    kind: Kind
    keyword: str | None  # the keyword matched (upper case), or the OptOutType that decided

    @property
    def changes_consent(self) -> bool:
        return self.kind in (Kind.OPT_OUT, Kind.OPT_IN)


def classify(body: str, *, opt_out_type: str | None = None, toll_free: bool = True) -> Classification:
    """What a member's message means. ``toll_free`` is the kind of number it was sent to (default: the
    conservative answer, as Textpulse sends from toll-free numbers)."""
    declared = (opt_out_type or "").strip().upper()
    word = _keyword_of(body)
    decided = _OPT_OUT_TYPES.get(declared)
    if decided is not None:
        return Classification(decided, word or declared)
    if word is None:
        return Classification(Kind.OTHER, None)
    if word in OPT_OUT_KEYWORDS:
        return Classification(Kind.OPT_OUT, word)
    if word in HELP_KEYWORDS:
        return Classification(Kind.HELP, word)
    opt_in = TOLL_FREE_OPT_IN_KEYWORDS if toll_free else OPT_IN_KEYWORDS
    if word in opt_in:
        return Classification(Kind.OPT_IN, word)
    return Classification(Kind.OTHER, None)


def _keyword_of(body: str) -> str | None:
    """The trimmed, upper-cased message if it could be a default keyword at all, else None."""
    word = body.strip()
    if not word or len(word) > _LONGEST_KEYWORD:
        return None
    word = word.casefold().upper()
    known = word in OPT_OUT_KEYWORDS or word in OPT_IN_KEYWORDS or word in HELP_KEYWORDS
    return word if known else None

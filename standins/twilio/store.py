"""All messages the stand-in knows, indexed for fetch by SID and lists by ``To``/``From``, and their paging.

Lists are newest first (by creation order). A page token names the last message of the previous page
(``PASM`` + its 32 hex digits; ``PBSM`` for the first message, going back), so pages stay stable while
new messages arrive, as Twilio's do.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from standins.twilio.messages import Message


@dataclass(slots=True)
class MessageStore:
    by_sid: dict[str, Message] = field(default_factory=dict)
    ordered: list[Message] = field(default_factory=list)
    by_to: dict[str, list[Message]] = field(default_factory=dict)
    by_from: dict[str, list[Message]] = field(default_factory=dict)
    _seq: int = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def advance_seq(self, seq: int) -> None:
        """Continue numbering after ``seq`` (restored messages keep theirs)."""
        self._seq = max(self._seq, seq)

    def add(self, message: Message) -> None:
        """Store a new message; its ``seq`` must be higher than every stored one (``next_seq``)."""
        self.by_sid[message.sid] = message
        self.ordered.append(message)
        self.by_to.setdefault(message.to, []).append(message)
        sender = message.from_ or message.sender
        if sender is not None:
            self.by_from.setdefault(sender, []).append(message)

    def get(self, sid: str) -> Message | None:
        return self.by_sid.get(sid)

    def clear(self) -> None:
        self.by_sid.clear()
        self.ordered.clear()
        self.by_to.clear()
        self.by_from.clear()

    def candidates(self, to: str | None, from_: str | None) -> list[Message]:
        """The smallest index that covers the filters, oldest first."""
        if to is not None:
            return self.by_to.get(to, [])
        if from_ is not None:
            return self.by_from.get(from_, [])
        return self.ordered


def page_of(
    candidates: list[Message],
    keep: Callable[[Message], bool],
    page_size: int,
    token: str | None,
    by_sid: dict[str, Message],
) -> tuple[list[Message], bool]:
    """One page, newest first, after (``PA``) or before (``PB``) the message a token names.

    Returns the page and whether more matching messages follow it (in the newest-first order).
    Raises ValueError for a malformed token or one that names no known message.
    """
    if token is None:
        newer_than: int | None = None
        older_than = len(candidates)
    else:
        direction, sid = token[:2], token[2:]
        if direction not in {"PA", "PB"} or not sid.startswith("SM") and not sid.startswith("MM"):
            raise ValueError("bad page token")
        named = by_sid.get(sid)
        if named is None:
            raise ValueError("page token names no message")
        seq = named.seq
        if direction == "PA":
            newer_than, older_than = None, bisect_left(candidates, seq, key=lambda m: m.seq)
        else:
            newer_than, older_than = bisect_right(candidates, seq, key=lambda m: m.seq), len(candidates)
    if newer_than is None:
        found = _take(_newest_first(candidates, older_than), keep, page_size + 1)
        return found[:page_size], len(found) > page_size
    # Going back: the page_size oldest matching messages newer than the token, shown newest first.
    found = _take(iter(candidates[newer_than:older_than]), keep, page_size)
    return found[::-1], True


def _newest_first(candidates: list[Message], end: int) -> Iterator[Message]:
    for index in range(end - 1, -1, -1):
        yield candidates[index]


def _take(messages: Iterator[Message], keep: Callable[[Message], bool], limit: int) -> list[Message]:
    taken: list[Message] = []
    for message in messages:
        if keep(message):
            taken.append(message)
            if len(taken) == limit:
                break
    return taken

"""Queue one text to one number outside any campaign run; the dispatcher sends it (services/dispatcher/one_off.py).

    await queue(conn, [OneOff(org_id, "staff_reply", sender, phone, body, idempotency_key=key, ...)])

Kinds and their keys are in migration 0049: a staff reply is queued once per idempotency key, a keyword
answer once per member message; a revocation confirmation is adopted from revocation_confirmations by the
dispatcher itself. The help text's required wording (the organisation's name, how to opt out, a contact)
is ``help_text``'s, so no organisation can leave a part out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from uuid import UUID

from libs.common.db import Connection, Queries
from libs.common.segments import count_segments

QUERIES: Final = Queries.load(Path(__file__).with_name("one_off_texts.sql"))

Kind = Literal["staff_reply", "keyword_reply"]
MAX_SEGMENTS: Final = 10


@dataclass(frozen=True, slots=True)
class OneOff:
    org_id: UUID
    kind: Kind
    sender: str
    phone: str
    body: str
    conversation_id: int | None = None
    idempotency_key: str | None = None
    reply_to_sid: str | None = None
    author: str | None = None


def help_text(org_name: str, contact: str) -> str:
    """The answer to HELP / INFO: who is texting, how to stop, and where to ask."""
    where = f" Questions: {contact.strip()}." if contact.strip() else ""
    return f"{org_name.strip()}: member texts.{where} Reply STOP to opt out. Msg&data rates may apply."


async def queue(conn: Connection, texts: Sequence[OneOff]) -> dict[tuple[UUID, str], int]:
    """Queue texts not queued before (same key) -> {(org_id, key): one_off id} of every text, old or new."""
    if not texts:
        return {}
    rows = await QUERIES.fetch(
        conn, "queue-one-offs",
        org_ids=[t.org_id for t in texts], kinds=[t.kind for t in texts], senders=[t.sender for t in texts],
        phones=[t.phone for t in texts], bodies=[t.body for t in texts],
        segments=[count_segments(t.body).segments for t in texts],
        conversation_ids=[t.conversation_id for t in texts], idempotency_keys=[t.idempotency_key for t in texts],
        reply_to_sids=[t.reply_to_sid for t in texts], authors=[t.author for t in texts])
    return {(r["org_id"], r["key"]): r["id"] for r in rows}

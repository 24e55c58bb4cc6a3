"""Member replies into the inbox, and the answers to keywords (issue 27).

``file_replies(conn, replies)`` runs in the processor's transaction, after the replies are stored in
``inbound_messages``, for each new reply that changes no consent and is not held for review:

- an organisation's own keyword (RENEW...; the whole message, any case) gets its reply, and no conversation;
- HELP / INFO gets the organisation's help text only when Settings says Textpulse answers them and Twilio's
  Advanced Opt-Out did not declare it (``OptOutType``: Twilio answered already), so a member never gets two;
- any other reply opens (or reopens) the member's conversation with the sender, one unread more.

Idempotent: an answer is keyed on the member message it answers, and a replayed webhook is a ``duplicate``
before it gets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from libs.common import one_off_texts
from libs.common.db import Connection, Queries
from libs.common.one_off_texts import OneOff

QUERIES: Final = Queries.load(Path(__file__).with_name("inbox.sql"))


@dataclass(frozen=True, slots=True)
class Reply:
    org_id: UUID
    phone: str
    sender: str  # the number the member wrote to
    message_sid: str
    body: str
    help: bool  # HELP / INFO
    answered_by_twilio: bool  # Advanced Opt-Out declared it (OptOutType)
    run_id: UUID | None
    recipient_id: UUID | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OrgAnswers:
    name: str
    help_answered_by: str
    help_contact: str
    keywords: dict[str, str]


def answer_for(reply: Reply, org: OrgAnswers) -> str | None:
    """The automatic answer a reply gets, or None (a help keyword Twilio answers, or a reply for the inbox)."""
    if reply.help:
        if reply.answered_by_twilio or org.help_answered_by != "textpulse":
            return None
        return one_off_texts.help_text(org.name, org.help_contact)
    return org.keywords.get(reply.body.strip().upper())


async def file_replies(conn: Connection, replies: Sequence[Reply]) -> None:
    if not replies:
        return
    rows = await QUERIES.fetch(conn, "org-answers", org_ids=sorted({r.org_id for r in replies}))
    orgs = {r["id"]: OrgAnswers(r["name"], r["help_answered_by"], r["help_contact"],
                                dict(zip(r["keywords"], r["replies"], strict=True))) for r in rows}
    answers: list[OneOff] = []
    filed: list[Reply] = []
    for reply in replies:
        answer = answer_for(reply, orgs[reply.org_id])
        if answer is not None:
            answers.append(OneOff(reply.org_id, "keyword_reply", reply.sender, reply.phone, answer,
                                  reply_to_sid=reply.message_sid, author="auto"))
        elif not reply.help:
            filed.append(reply)
    await one_off_texts.queue(conn, answers)
    if filed:
        await QUERIES.execute(
            conn, "file-replies", org_ids=[r.org_id for r in filed], phones=[r.phone for r in filed],
            senders=[r.sender for r in filed], run_ids=[r.run_id for r in filed],
            recipient_ids=[r.recipient_id for r in filed], received_ats=[r.received_at for r in filed])

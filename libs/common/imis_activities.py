"""Opt-outs as iMIS Text Messenger records them: ``TEXTUNSUB`` Activities (docs/imis.md#text-messenger-activities).

An opt-out creates a ``TEXTUNSUB`` Activity for the member (``TRANSACTION_DATE`` the time in UTC, ``UF_1``
the number as sent); an opt-in moves the member's ``TEXTUNSUB`` activities for that number to
``TEXTUNSUB_A``, the archive type. Staff's IQAs exclude members with a ``TEXTUNSUB`` activity.

A POST is not idempotent, so ``record_unsubscribe`` first asks for the member's ``TEXTUNSUB`` activities
and creates none when one for that number is there already: a retry after a 500 that saved anyway (or a
second STOP) writes no duplicate. Archiving is a PUT per activity, harmless to repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.common.errors import PermanentError
from libs.common.imis import ImisSession, authorized, error_text, json_object
from libs.common.imis_values import PanelValue, decode_row, generic_entity, identity_of

__all__ = ["ARCHIVE_TYPE", "UNSUBSCRIBE_TYPE", "archive_unsubscribes", "record_unsubscribe", "unsubscribes"]

UNSUBSCRIBE_TYPE = "TEXTUNSUB"
ARCHIVE_TYPE = "TEXTUNSUB_A"
_PAGE = 500  # the largest page iMIS serves (docs/imis.md#running-an-iqa)


def activity_values(member_id: str, activity_type: str, occurred_at: datetime, phone: str,
                    note: str) -> list[tuple[str, PanelValue]]:
    """The Activity's properties; ``TRANSACTION_DATE`` is the time in UTC, zone-less as iMIS writes dates."""
    when = occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return [("PartyId", member_id), ("ACTIVITY_TYPE", activity_type), ("TRANSACTION_DATE", when),
            ("UF_1", phone), ("DESCRIPTION", note)]


async def unsubscribes(session: ImisSession, member_id: str, activity_type: str = UNSUBSCRIBE_TYPE
                       ) -> list[tuple[str, dict[str, Any]]]:
    """The member's activities of ``activity_type`` as (SEQN, plain values), paging until the last."""
    found: list[tuple[str, dict[str, Any]]] = []
    offset = 0
    while True:
        params = [("PartyId", f"eq:{member_id}"), ("ACTIVITY_TYPE", f"eq:{activity_type}"),
                  ("offset", str(offset)), ("limit", str(_PAGE))]
        response = await authorized(session, "GET", "/api/Activity", params=params)
        session.raise_for(response, "GET /api/Activity")
        page = json_object(response, "GET /api/Activity")
        items = (page.get("Items") or {}).get("$values") or []
        for item in items:
            seqn = identity_of(item)
            if seqn is not None:
                found.append((seqn, decode_row(item)))
        next_offset = page.get("NextOffset")
        if not page.get("HasNext") or not items or not isinstance(next_offset, int) or next_offset <= offset:
            return found
        offset = next_offset


async def record_unsubscribe(session: ImisSession, member_id: str, phone: str, occurred_at: datetime,
                             note: str) -> str:
    """A ``TEXTUNSUB`` activity for the member and number: ``created``, or ``already_recorded``."""
    if any(values.get("UF_1") == phone for _, values in await unsubscribes(session, member_id)):
        return "already_recorded"
    body = generic_entity("Activity", [], member_id,
                          activity_values(member_id, UNSUBSCRIBE_TYPE, occurred_at, phone, note))
    response = await authorized(session, "POST", "/api/Activity", json=body)
    if response.status_code == 404:
        raise PermanentError("imis_member_missing", f"iMIS has no contact {member_id}: {error_text(response)}")
    session.raise_for(response, "POST /api/Activity")
    return "created"


async def archive_unsubscribes(session: ImisSession, member_id: str, phone: str) -> str:
    """Move the member's ``TEXTUNSUB`` activities for ``phone`` to ``TEXTUNSUB_A``: ``archived N``."""
    archived = 0
    for seqn, values in await unsubscribes(session, member_id):
        if values.get("UF_1") != phone:
            continue
        kept = [(name, _kept(values.get(name))) for name in values if not name.startswith("$") and name != "SEQN"]
        moved = [(name, ARCHIVE_TYPE if name == "ACTIVITY_TYPE" else value) for name, value in kept]
        body = generic_entity("Activity", [seqn], member_id, moved)
        response = await authorized(session, "PUT", f"/api/Activity/{seqn}", json=body)
        if response.status_code != 404:  # 404: archived or deleted meanwhile
            session.raise_for(response, f"PUT /api/Activity/{seqn}")
            archived += 1
    return f"archived {archived}"


def _kept(value: Any) -> PanelValue:
    return value if isinstance(value, str | bool | int) or value is None else str(value)


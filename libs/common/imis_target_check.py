"""The Settings "check" of a write-back target: read its definition from iMIS and say what is missing.

- ``activity``: the activity types ``TEXTUNSUB`` and ``TEXTUNSUB_A`` (``GET /api/ActivityType/{code}``,
  docs/imis.md#text-messenger-activities);
- ``preference``: the SMS communication type among ``GET /api/CommunicationType``;
- ``panel``: the panel's business object (``GET /api/{panel}?limit=1`` answers 404 when iMIS has none).

iMIS being unreachable, or refusing the credentials, raises as ``ImisSession`` does: the check could not
look, which is not the same as something missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from libs.common.imis import ImisSession, authorized, json_object
from libs.common.imis_activities import ARCHIVE_TYPE, UNSUBSCRIBE_TYPE

__all__ = ["TargetCheck", "WritebackTarget", "check_target"]

# Where an organisation's opt-outs are written (migration 0046 holds the same three).
WritebackTarget = Literal["activity", "preference", "panel"]


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing


async def check_target(session: ImisSession, target: str, *, sms_panel: str,
                       sms_communication_type_id: str | None) -> TargetCheck:
    if target == "activity":
        return await _activity_types(session)
    if target == "preference":
        return await _communication_type(session, sms_communication_type_id)
    return await _panel(session, sms_panel)


async def _activity_types(session: ImisSession) -> TargetCheck:
    check = TargetCheck("activity")
    for code in (UNSUBSCRIBE_TYPE, ARCHIVE_TYPE):
        response = await authorized(session, "GET", f"/api/ActivityType/{code}")
        if response.status_code == 404:
            check.missing.append(f"the activity type {code}: create it in iMIS, as for iMIS Text Messenger")
            continue
        session.raise_for(response, f"GET /api/ActivityType/{code}")
        check.found.append(f"the activity type {code}")
    return check


async def _communication_type(session: ImisSession, type_id: str | None) -> TargetCheck:
    check = TargetCheck("preference")
    if type_id is None:
        check.missing.append("the SMS communication type: choose one in Settings")
        return check
    offered: dict[str, str] = {}
    offset = 0
    while True:
        response = await authorized(session, "GET", "/api/CommunicationType",
                                    params={"offset": str(offset), "limit": "500"})
        session.raise_for(response, "GET /api/CommunicationType")
        page = json_object(response, "GET /api/CommunicationType")
        items = (page.get("Items") or {}).get("$values") or []
        for item in items:
            if isinstance(item, dict) and item.get("CommunicationTypeId"):
                offered[str(item["CommunicationTypeId"]).lower()] = str(item.get("CommunicationTypeDisplay") or "")
        next_offset = page.get("NextOffset")
        if not page.get("HasNext") or not items or not isinstance(next_offset, int) or next_offset <= offset:
            break
        offset = next_offset
    name = offered.get(type_id.lower())
    if name is None:
        others = ", ".join(f"{display} ({i})" for i, display in sorted(offered.items())) or "none"
        check.missing.append(f"the communication type {type_id}: iMIS offers {others}")
    else:
        check.found.append(f"the communication type {name} ({type_id})")
    return check


async def _panel(session: ImisSession, panel: str) -> TargetCheck:
    check = TargetCheck("panel")
    response = await authorized(session, "GET", f"/api/{panel}", params={"limit": "1"})
    if response.status_code == 404:
        check.missing.append(f"the panel {panel}: define it in iMIS with the fields ID, SmsOptOut, "
                             "SmsOptOutDate, SmsOptOutSource and SmsOptInDate")
        return check
    session.raise_for(response, f"GET /api/{panel}")
    check.found.append(f"the panel {panel}")
    return check

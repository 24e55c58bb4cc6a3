"""An opt-out as the party's communication type preference (docs/imis.md#contacts).

``GET /api/Party/{id}``, set ``OptInFlag`` on the entry of the organisation's SMS communication type in
``CommunicationTypePreferences`` (appending one when the party has none), and ``PUT`` the whole party
back, as public integrations subscribe a contact. Writing the same flag twice is harmless.
"""

from __future__ import annotations

import copy
from typing import Any

from libs.common.errors import PermanentError
from libs.common.imis import ImisSession, authorized, error_text, json_object

__all__ = ["write_sms_preference"]

_PREFERENCE = "Asi.Soa.Membership.DataContracts.PartyCommunicationTypePreferenceData, Asi.Contracts"


async def write_sms_preference(session: ImisSession, member_id: str, type_id: str, opted_in: bool) -> str:
    """Set the party's ``OptInFlag`` for ``type_id``; returns ``updated`` or ``added``."""
    path = f"/api/Party/{member_id}"
    response = await authorized(session, "GET", path)
    if response.status_code == 404:
        raise PermanentError("imis_member_missing", f"iMIS has no contact {member_id}: {error_text(response)}")
    session.raise_for(response, f"GET {path}")
    party, how = with_preference(json_object(response, f"GET {path}"), type_id, opted_in)
    response = await authorized(session, "PUT", path, json=party)
    session.raise_for(response, f"PUT {path}")
    return how


def with_preference(party: dict[str, Any], type_id: str, opted_in: bool) -> tuple[dict[str, Any], str]:
    """A copy of ``party`` with the preference set; ``updated`` when it had one for ``type_id``."""
    party = copy.deepcopy(party)
    collection = party.get("CommunicationTypePreferences")
    if not isinstance(collection, dict):
        collection = {"$values": []}
        party["CommunicationTypePreferences"] = collection
    values = collection.get("$values")
    if not isinstance(values, list):
        values = collection["$values"] = []
    for entry in values:
        if isinstance(entry, dict) and str(entry.get("CommunicationTypeId", "")).lower() == type_id.lower():
            entry["OptInFlag"] = opted_in
            return party, "updated"
    values.append({"$type": _PREFERENCE, "CommunicationTypeId": type_id, "OptInFlag": opted_in})
    return party, "added"

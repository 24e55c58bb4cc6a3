"""Activity records (iMIS's ``Activity`` business object), as ``/api/Activity`` serves them.

Each activity is a GenericEntityData numbered by iMIS: its SEQN is ``Identity.IdentityElements.$values[0]``,
its contact ``PrimaryParentIdentity`` and the ``PartyId`` property. Properties are the Activity columns a
client sends (``ACTIVITY_TYPE``, ``TRANSACTION_DATE``, ``UF_1``, ``DESCRIPTION``...), stored untyped. POST
creates and numbers, PUT replaces (404 for an unknown SEQN), GET reads one or filters by property
(``?PartyId=eq:23145&ACTIVITY_TYPE=eq:TEXTUNSUB``, names case-insensitive) into a PagedResult.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from standins.imis.envelopes import generic_entity, prop, properties_of
from standins.imis.panels import PanelError

ACTIVITY = "Activity"
_PAGING = {"offset", "limit"}


@dataclass(slots=True)
class ActivityStore:
    """``rows[seqn]`` -> property name -> value; SEQNs count up from ``next_seqn``."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_seqn: int = 1000

    def create(self, body: Any, parties: Container[str]) -> str:
        """Store a new activity; returns its SEQN. PanelError 400 without a contact, 404 for an unknown one."""
        values = _values(body)
        party_id = values.get("PartyId")
        if party_id is None:
            raise PanelError(400, "BadRequest: ValidationError: PartyId is required")
        if str(party_id) not in parties:
            raise PanelError(404, f"Party {party_id} was not found.")
        self.next_seqn += 1
        seqn = str(self.next_seqn)
        self.rows[seqn] = {"SEQN": seqn, **values, "PartyId": str(party_id)}
        return seqn

    def replace(self, seqn: str, body: Any) -> None:
        """Replace activity ``seqn``; PanelError 404 when there is none, 400 when the body names another."""
        if seqn not in self.rows:
            raise PanelError(404, f"No Activity exists with SEQN {seqn}.")
        values = _values(body)
        named = _identity(body)
        if named is not None and named != seqn:
            raise PanelError(400, "ArgumentFault: Incorrect number of identity element")
        party_id = str(values.get("PartyId") or self.rows[seqn]["PartyId"])
        self.rows[seqn] = {"SEQN": seqn, **{k: v for k, v in values.items() if k != "SEQN"}, "PartyId": party_id}

    def matching(self, filters: Mapping[str, str]) -> list[str]:
        """SEQNs whose properties equal every filter (``eq:`` prefix optional), oldest first."""
        wanted = {k.lower(): v.removeprefix("eq:") for k, v in filters.items() if k.lower() not in _PAGING}
        return [seqn for seqn, values in self.rows.items()
                if all(str(_get(values, name)) == value for name, value in wanted.items())]

    def members_with(self, activity_type: str) -> set[str]:
        """Contacts with at least one activity of ``activity_type``."""
        return {str(v["PartyId"]) for v in self.rows.values() if v.get("ACTIVITY_TYPE") == activity_type}

    def render(self, seqn: str) -> dict[str, Any]:
        values = self.rows[seqn]
        return generic_entity(ACTIVITY, [prop(name, value) for name, value in values.items()],
                              party_id=str(values["PartyId"]), identity_elements=(seqn,))


ACTIVITY_TYPE_DESCRIPTIONS = {"TEXTUNSUB": "Tracking opt-outs in iMIS Text Messenger",
                              "TEXTUNSUB_A": "Text Unsubscribe Archive"}


def activity_type(code: str) -> dict[str, Any]:
    """An activity type definition as ``/api/ActivityType/{code}`` serves it (the shape is our convention)."""
    return generic_entity("ActivityType", [prop("ActivityType", code),
                                           prop("Description", ACTIVITY_TYPE_DESCRIPTIONS.get(code, code)),
                                           prop("UF_1", "ToFormatted" if code.startswith("TEXTUNSUB") else None)],
                          identity_elements=(code,))


def _get(values: Mapping[str, Any], name: str) -> Any:
    return next((v for k, v in values.items() if k.lower() == name), None)


def _values(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("Properties"), dict):
        raise PanelError(400, "BadRequest: ValidationError")
    values = properties_of(body)
    if values.get("PartyId") is None:
        parent = (body.get("PrimaryParentIdentity") or {}).get("IdentityElements", {}).get("$values") or []
        if parent:
            values["PartyId"] = str(parent[0])
    return {k: v for k, v in values.items() if v is not None}


def _identity(body: dict[str, Any]) -> str | None:
    elements = (body.get("Identity") or {}).get("IdentityElements", {}).get("$values") or []
    return str(elements[0]) if elements else None

"""iMIS's typed JSON, both ways: rows read from an IQA, and the panel row written back. Pure.

See docs/imis.md#typed-values and docs/imis.md#the-sms-preferences-panel.

iMIS serialises .NET objects with their type: a value is ``{"$type": "System.Int32", "$value": 5}``, a
collection ``{"$type": ..., "$values": [...]}``, and a missing value (NULL) is a property without ``Value``.

    >>> plain_value({"$type": "System.Boolean", "$value": True})
    True
    >>> panel_entity("TP_SmsPreferences", "23145", [("SmsOptOut", True)])["Properties"]["$values"][0]["Value"]
    {'$type': 'System.Boolean', '$value': True}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PanelValue", "decode_row", "generic_entity", "identity_of", "panel_entity", "plain_value"]

_GENERIC_ENTITY = "Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts"
_IDENTITY = "Asi.Soa.Core.DataContracts.IdentityData, Asi.Contracts"
_ELEMENTS = "System.Collections.ObjectModel.Collection`1[[System.String, mscorlib]], mscorlib"
_PROPERTIES = "Asi.Soa.Core.DataContracts.GenericPropertyDataCollection, Asi.Contracts"
_PROPERTY = "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts"

PanelValue = str | bool | int | None


def decode_row(item: dict[str, Any]) -> dict[str, Any]:
    """A row as ``{alias: value}``: GenericEntityData (``/api/IQA``) or a flat ExpandoObject (``/api/Query``).

    Typed values (``{"$type": "System.Int32", "$value": 5}``) become their ``$value``; a property
    without ``Value`` is None (iMIS's NULL). The contact id from ``PrimaryParentIdentity`` is under
    ``"$PartyId"`` when the row names one.
    """
    properties = item.get("Properties")
    if isinstance(properties, dict):
        row: dict[str, Any] = {}
        for entry in properties.get("$values") or ():
            name = entry.get("Name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                value = entry.get("Value")
                row[name] = plain_value(value) if isinstance(value, dict) else value
        party = _party_id(item.get("PrimaryParentIdentity"))
        if party is not None:
            row["$PartyId"] = party
        return row
    return {key: plain_value(value) for key, value in item.items() if key != "$type"}


def plain_value(value: Any) -> Any:
    """``{"$type": ..., "$value": v}`` -> v; a ``$values`` collection -> its list; anything else as is."""
    if isinstance(value, dict):
        if "$value" in value:
            return value["$value"]
        if "$values" in value:
            return [plain_value(v) for v in value["$values"] or ()]
        return None  # an object where a value was expected: unusable, treated as NULL
    return value


def identity_of(item: Any) -> str | None:
    """The first IdentityElements value of a GenericEntityData (an Activity's SEQN), or None."""
    return _party_id(item.get("Identity")) if isinstance(item, dict) else None


def _party_id(identity: Any) -> str | None:
    if not isinstance(identity, dict):
        return None
    elements = identity.get("IdentityElements")
    values = elements.get("$values") if isinstance(elements, dict) else None
    if isinstance(values, list) and values and isinstance(values[0], str | int) and not isinstance(values[0], bool):
        return str(values[0])
    return None


def panel_entity(panel: str, member_id: str, values: Sequence[tuple[str, PanelValue]]) -> dict[str, Any]:
    """The GenericEntityData body of a single-instance panel row (docs/imis.md#the-sms-preferences-panel)."""
    return generic_entity(panel, [member_id], member_id, values)


def generic_entity(entity: str, identity: Sequence[str], party_id: str,
                   values: Sequence[tuple[str, PanelValue]]) -> dict[str, Any]:
    """A GenericEntityData body: ``identity`` its IdentityElements (empty for a record iMIS numbers itself,
    such as a new Activity), ``party_id`` the contact it belongs to.

    A None value is left out, which is how iMIS writes NULL; booleans and integers carry their .NET type."""

    def identity_block(name: str, elements: Sequence[str]) -> dict[str, Any]:
        return {"$type": _IDENTITY, "EntityTypeName": name,
                "IdentityElements": {"$type": _ELEMENTS, "$values": list(elements)}}

    def prop(name: str, value: PanelValue) -> dict[str, Any]:
        entry: dict[str, Any] = {"$type": _PROPERTY, "Name": name}
        if isinstance(value, bool):
            entry["Value"] = {"$type": "System.Boolean", "$value": value}
        elif isinstance(value, int):
            entry["Value"] = {"$type": "System.Int32", "$value": value}
        elif value is not None:
            entry["Value"] = value
        return entry

    return {
        "$type": _GENERIC_ENTITY,
        "EntityTypeName": entity,
        "PrimaryParentEntityTypeName": "Party",
        "Identity": identity_block(entity, identity),
        "PrimaryParentIdentity": identity_block("Party", [party_id]),
        "Properties": {"$type": _PROPERTIES, "$values": [prop(n, v) for n, v in values]},
    }

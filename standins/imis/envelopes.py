"""iMIS's JSON shapes: Json.NET ``$type`` names, ``$values`` collections, typed values, PagedResult.

Exact strings come from docs/imis.md#running-an-iqa, docs/imis.md#typed-values, docs/imis.md#contacts and
docs/imis.md#the-sms-preferences-panel. Key order follows what iMIS writes, so a diff against a captured
response reads cleanly (clients must not depend on it).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson

PAGED_GENERIC = (
    "Asi.Soa.Core.DataContracts.PagedResult`1[[Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts]], "
    "Asi.Contracts"
)
LIST_GENERIC = (
    "System.Collections.Generic.List`1[[Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts]], mscorlib"
)
PAGED_QUERY = "Asi.Soa.Core.DataContracts.PagedResult, Asi.Contracts"
LIST_OBJECT = "System.Collections.Generic.List`1[[System.Object, mscorlib]], mscorlib"
EXPANDO = "System.Dynamic.ExpandoObject, System.Core"
GENERIC_ENTITY = "Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts"
PROPERTY_COLLECTION = "Asi.Soa.Core.DataContracts.GenericPropertyDataCollection, Asi.Contracts"
PROPERTY = "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts"
IDENTITY = "Asi.Soa.Core.DataContracts.IdentityData, Asi.Contracts"
STRING_COLLECTION = "System.Collections.ObjectModel.Collection`1[[System.String, mscorlib]], mscorlib"
HTTP_ERROR = "System.Web.Http.HttpError, System.Web.Http"
DENIED = "Authorization has been denied for this request."

Value = str | bool | int | float | date | datetime | None


def iso_local(value: date | datetime) -> str:
    """iMIS dates: ISO 8601 without a zone, always with a time part (to the second)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    return value.isoformat() + "T00:00:00"


def typed_value(value: Value) -> Any:
    """A GenericPropertyData ``Value``: strings and IQA dates plain, numbers and booleans wrapped."""
    if value.__class__ is str:  # most values: checked first, as a page of 500 rows has 6,000 of them
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return {"$type": "System.Boolean", "$value": value}
    if isinstance(value, int):
        return {"$type": "System.Int32", "$value": value}
    if isinstance(value, float):
        return {"$type": "System.Decimal", "$value": value}
    if isinstance(value, date | datetime):
        return iso_local(value)
    return value


def plain_value(value: Value) -> Any:
    """An ``/api/Query`` (ExpandoObject) value: native JSON numbers, booleans and nulls."""
    if isinstance(value, date | datetime):
        return iso_local(value)
    return value


def untyped(value: Any) -> Any:
    """The inverse of ``typed_value`` for values clients send back: ``{"$value": v}`` -> v."""
    if isinstance(value, dict) and "$value" in value:
        return value["$value"]
    return value


def prop(name: str, value: Value) -> dict[str, Any]:
    """One GenericPropertyData; the ``Value`` key is left out for NULL, as iMIS does."""
    if value is None:
        return {"$type": PROPERTY, "Name": name}
    return {"$type": PROPERTY, "Name": name, "Value": value if value.__class__ is str else typed_value(value)}


@lru_cache(maxsize=256)
def _prop_json_parts(name: str) -> tuple[bytes, bytes]:
    """(the NULL property, the start of one with a value) as JSON, for :func:`prop_json`."""
    null = orjson.dumps(prop(name, None))
    return null, null[:-1] + b',"Value":'


def prop_json(name: str, value: Value) -> orjson.Fragment:
    """``prop(name, value)`` already serialised: the same JSON, for orjson to splice into a page.

    An IQA page of 500 rows holds 6,000 properties; building a dict for each cost the stand-in more
    CPU than the audience service spent reading them."""
    null, head = _prop_json_parts(name)
    if value is None:
        return orjson.Fragment(null)
    return orjson.Fragment(head + orjson.dumps(value if value.__class__ is str else typed_value(value)) + b"}")


def identity(entity: str, *elements: str) -> dict[str, Any]:
    return {
        "$type": IDENTITY,
        "EntityTypeName": entity,
        "IdentityElements": {"$type": STRING_COLLECTION, "$values": list(elements)},
    }


def generic_entity(
    entity_type: str,
    properties: list[Any],  # prop() dicts, or prop_json() fragments
    *,
    party_id: str | None = None,
    identity_elements: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A GenericEntityData row; with ``party_id`` it names its contact as primary parent."""
    row: dict[str, Any] = {"$type": GENERIC_ENTITY, "EntityTypeName": entity_type}
    if party_id is not None:
        row["PrimaryParentEntityTypeName"] = "Party"
    if identity_elements is not None:
        row["Identity"] = identity(entity_type, *identity_elements)
    if party_id is not None:
        row["PrimaryParentIdentity"] = identity("Party", party_id)
    row["Properties"] = {"$type": PROPERTY_COLLECTION, "$values": properties}
    return row


def paged(
    items: list[Any],
    *,
    offset: int,
    limit: int,
    total: int,
    envelope: str = PAGED_GENERIC,
    items_type: str = LIST_GENERIC,
) -> dict[str, Any]:
    """A PagedResult around one page; ``NextOffset`` is 0 on the last page, as in iMIS."""
    count = len(items)
    has_next = offset + count < total
    return {
        "$type": envelope,
        "Items": {"$type": items_type, "$values": items},
        "Offset": offset,
        "Limit": limit,
        "Count": count,
        "TotalCount": total,
        "NextPageLink": None,
        "HasNext": has_next,
        "NextOffset": offset + count if has_next else 0,
    }


def http_error(message: str) -> dict[str, str]:
    """The ASP.NET Web API error body iMIS answers 401 (and, by our convention, 400/404) with."""
    return {"$type": HTTP_ERROR, "Message": message}


def properties_of(entity: dict[str, Any]) -> dict[str, Any]:
    """Name -> plain value of a GenericEntityData a client sent; a property without ``Value`` is None."""
    values = entity.get("Properties", {}).get("$values", [])
    return {p["Name"]: untyped(p.get("Value")) for p in values if isinstance(p, dict) and "Name" in p}

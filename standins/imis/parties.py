"""Contacts as ``/api/Party`` serves them (PersonData, docs/imis.md#contacts), communication types, and Party filters.

A contact is rendered from its generated member until a client PUTs it; from then on the saved document
is served as it was sent (with ``UpdateInformation.UpdatedOn`` refreshed), since iMIS saves the whole
object on PUT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from standins.imis.envelopes import iso_local
from standins.members.addresses import Address
from standins.members.dataset import Member

PERSON = "Asi.Soa.Membership.DataContracts.PersonData, Asi.Contracts"
PAGED_PARTY = (
    "Asi.Soa.Core.DataContracts.PagedResult`1[[Asi.Soa.Membership.DataContracts.PartyData, Asi.Contracts]], "
    "Asi.Contracts"
)
LIST_PARTY = "System.Collections.Generic.List`1[[Asi.Soa.Membership.DataContracts.PartyData, Asi.Contracts]], mscorlib"
PAGED_COMM_TYPE = (
    "Asi.Soa.Core.DataContracts.PagedResult`1[[Asi.Soa.Membership.DataContracts.CommunicationTypeData, "
    "Asi.Contracts]], Asi.Contracts"
)
LIST_COMM_TYPE = (
    "System.Collections.Generic.List`1[[Asi.Soa.Membership.DataContracts.CommunicationTypeData, Asi.Contracts]], "
    "mscorlib"
)
_PREFERENCE = "Asi.Soa.Membership.DataContracts.PartyCommunicationTypePreferenceData, Asi.Contracts"
# Not seen in any source (docs/imis.md#contacts); the name iMIS's naming pattern suggests.
_PREFERENCES = "Asi.Soa.Membership.DataContracts.PartyCommunicationTypePreferenceDataCollection, Asi.Contracts"

SMS_COMMUNICATION_TYPE_ID = "34df42a6-fc80-4032-92f1-262120c1ced0"
NEWSLETTER_COMMUNICATION_TYPE_ID = "b1e0c0de-5f0a-4c1e-9a57-3f2d0e6a9b11"

# (id, display, reason code, is system)
COMMUNICATION_TYPES: tuple[tuple[str, str, str, bool], ...] = (
    (SMS_COMMUNICATION_TYPE_ID, "Text messages (SMS)", "SMS", False),
    (NEWSLETTER_COMMUNICATION_TYPE_ID, "Monthly newsletter", "NEWS", False),
    ("6c9d2a41-8e3b-4f7d-b2a0-93e1c5d47f02", "Event announcements", "EVENTS", False),
    ("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "Membership transactions", "TRANSACT", True),
)

_STATUS_NAMES = {"A": "Active", "I": "Inactive"}
_CONTRACTS = "Asi.Soa.Membership.DataContracts"
_COUNTRY_NAMES = {"US": "United States", "CA": "Canada", "GB": "United Kingdom", "AU": "Australia",
                  "MX": "Mexico", "DE": "Germany", "JP": "Japan", "IE": "Ireland"}


def communication_type(entry: tuple[str, str, str, bool]) -> dict[str, Any]:
    type_id, display, reason, is_system = entry
    return {
        "$type": "Asi.Soa.Membership.DataContracts.CommunicationTypeData, Asi.Contracts",
        "CommunicationTypeId": type_id,
        "CommunicationTypeDisplay": display,
        "ReasonCode": reason,
        "IsSystem": is_system,
    }


def _preference(member: Member, type_id: str, opted_in: bool) -> dict[str, Any]:
    return {
        "$type": _PREFERENCE,
        "PartyCommunicationTypePreferenceId": f"{type_id[:8]}-{member.uniform_id[9:]}",
        "CommunicationTypeId": type_id,
        "OptInFlag": opted_in,
    }


def _full_address(member: Member, address: Address) -> dict[str, Any]:
    """One entry of a party's ``Addresses`` (FullAddressData around its AddressData), the member's only one,
    so it is their mail, bill and default address (``CommunicationPreferences``, not marketing consent)."""
    state_line = " ".join(part for part in (address.state, address.postal_code) if part)
    city_line = f"{address.city}, {state_line}" if state_line else address.city
    country = _COUNTRY_NAMES.get(address.country_code, address.country_code)
    full = "\r".join((*address.lines, city_line, *(() if address.country_code == "US" else (country,))))
    return {
        "$type": f"{_CONTRACTS}.FullAddressData, Asi.Contracts",
        "AdditionalLines": {"$type": f"{_CONTRACTS}.AddressLineDataCollection, Asi.Contracts", "$values": []},
        "Address": {
            "$type": f"{_CONTRACTS}.AddressData, Asi.Contracts",
            "AddressId": f"{member.uniform_id[:8]}-add0-{member.uniform_id[14:]}",
            "AddressLines": {"$type": f"{_CONTRACTS}.AddressLineDataCollection, Asi.Contracts",
                             "$values": list(address.lines)},
            "CityName": address.city,
            "CountryCode": address.country_code,
            "CountryName": country,
            "CountrySubEntityCode": address.state or None,
            "FullAddress": full,
            "PostalCode": address.postal_code,
        },
        "AddresseeText": f"{member.full_name}\r{full}",
        "AddressPurpose": "Address",
        "CommunicationPreferences": {
            "$type": f"{_CONTRACTS}.CommunicationPreferenceDataCollection, Asi.Contracts",
            "$values": [{"$type": f"{_CONTRACTS}.CommunicationPreferenceData, Asi.Contracts", "Reason": reason}
                        for reason in ("default", "mail", "bill")],
        },
        "FullAddressId": f"{member.uniform_id[:8]}-fa00-{member.uniform_id[14:]}",
    }


def render_person(member: Member) -> dict[str, Any]:
    """The PersonData iMIS would return for ``member`` before anyone edited it."""
    phones = [
        {"$type": "Asi.Soa.Membership.DataContracts.PhoneData, Asi.Contracts", "Number": number, "PhoneType": kind}
        for number, kind in ((member.mobile, "Mobile"), (member.home_phone, "Home"), (member.work_phone, "Work"))
        if number is not None
    ]
    emails = []
    if member.email:
        emails.append(
            {
                "$type": "Asi.Soa.Membership.DataContracts.EmailData, Asi.Contracts",
                "Address": member.email,
                "EmailType": "_Primary",
                "IsPrimary": True,
            }
        )
    preferences = [_preference(member, NEWSLETTER_COMMUNICATION_TYPE_ID, True)]
    if member.mobile_e164 is not None:
        preferences.append(_preference(member, SMS_COMMUNICATION_TYPE_ID, True))
    name = f"{member.first_name} {member.last_name}"
    return {
        "$type": PERSON,
        "PersonName": {
            "$type": "Asi.Soa.Membership.DataContracts.PersonNameData, Asi.Contracts",
            "NamePrefix": member.prefix or None,
            "FirstName": member.first_name,
            "LastName": member.last_name,
            "InformalName": member.informal_name,
            "FullName": member.full_name,
        },
        "Emails": {"$type": "Asi.Soa.Membership.DataContracts.EmailDataCollection, Asi.Contracts", "$values": emails},
        "Phones": {"$type": "Asi.Soa.Membership.DataContracts.PhoneDataCollection, Asi.Contracts", "$values": phones},
        "Addresses": {"$type": f"{_CONTRACTS}.FullAddressDataCollection, Asi.Contracts",
                      "$values": [_full_address(member, member.address)] if member.address else []},
        "CommunicationTypePreferences": {"$type": _PREFERENCES, "$values": preferences},
        "UpdateInformation": {
            "$type": "Asi.Soa.Core.DataContracts.EntityUpdateInformationData, Asi.Contracts",
            "CreatedOn": iso_local(member.join_date),
            "UpdatedOn": iso_local(member.updated_on),
        },
        "PartyId": member.id,
        "Id": member.id,
        "UniformId": member.uniform_id,
        "Status": {
            "$type": "Asi.Soa.Membership.DataContracts.PartyStatusData, Asi.Contracts",
            "PartyStatusId": member.status,
            "Name": _STATUS_NAMES[member.status],
            "Description": _STATUS_NAMES[member.status],
        },
        "Name": name,
    }


def sms_opted_in(document: dict[str, Any]) -> bool | None:
    """The SMS communication type's ``OptInFlag`` in a PersonData, or None when it has no such entry."""
    values = (document.get("CommunicationTypePreferences") or {}).get("$values") or []
    for entry in values:
        if isinstance(entry, dict) and entry.get("CommunicationTypeId") == SMS_COMMUNICATION_TYPE_ID:
            return bool(entry.get("OptInFlag"))
    return None


def stamp_saved(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The document as iMIS stores a PUT: unchanged except for a fresh ``UpdatedOn``."""
    info = dict(document.get("UpdateInformation") or {})
    info["UpdatedOn"] = iso_local(now)
    return {**document, "UpdateInformation": info}


# --- GET /api/Party?... filters -----------------------------------------------------------------


def _compare(operator: str, actual: str, expected: str) -> bool:
    if operator == "eq":
        return actual == expected
    if operator == "ne":
        return actual != expected
    if operator == "ge":
        return actual >= expected
    if operator == "gt":
        return actual > expected
    if operator == "le":
        return actual <= expected
    if operator == "lt":
        return actual < expected
    if operator == "startswith":
        return actual.startswith(expected)
    if operator == "contains":
        return expected in actual
    raise ValueError(f"unknown operator '{operator}'")


_DOCUMENT_FIELDS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "id": lambda d: [str(d.get("Id", ""))],
    "partyid": lambda d: [str(d.get("PartyId", ""))],
    "email": lambda d: [e.get("Address", "").lower() for e in d.get("Emails", {}).get("$values", [])],
    "status": lambda d: [str((d.get("Status") or {}).get("PartyStatusId", ""))],
    "firstname": lambda d: [str((d.get("PersonName") or {}).get("FirstName", "")).lower()],
    "lastname": lambda d: [str((d.get("PersonName") or {}).get("LastName", "")).lower()],
    "updatedon": lambda d: [str((d.get("UpdateInformation") or {}).get("UpdatedOn", ""))],
    "customertypecode": lambda d: ["IND"],
}
# The same fields read straight from an unedited member, so a search need not render 100,000 documents.
_MEMBER_FIELDS: dict[str, Callable[[Member], list[str]]] = {
    "id": lambda m: [m.id],
    "partyid": lambda m: [m.id],
    "email": lambda m: [m.email.lower()] if m.email else [],
    "status": lambda m: [m.status],
    "firstname": lambda m: [m.first_name.lower()],
    "lastname": lambda m: [m.last_name.lower()],
    "updatedon": lambda m: [iso_local(m.updated_on)],
    "customertypecode": lambda m: ["IND"],
}
_CASE_FOLDED = {"email", "firstname", "lastname"}
_OPERATORS = {"eq", "ne", "ge", "gt", "le", "lt", "startswith", "contains"}


class PartyFilter:
    """``GET /api/Party`` query parameters (``Email=ann@...``, ``UpdatedOn=ge:2025-01-01``) as predicates over
    saved documents and over unedited members; unknown parameters are ignored."""

    def __init__(self, params: dict[str, str]) -> None:
        self.tests: list[tuple[str, str, str]] = []
        for key, raw in params.items():
            name = key.lower()
            if name not in _DOCUMENT_FIELDS:
                continue
            operator, sep, value = raw.partition(":")
            if not sep or operator.lower() not in _OPERATORS:
                operator, value = "eq", raw
            self.tests.append((name, operator.lower(), value.lower() if name in _CASE_FOLDED else value))

    def document(self, document: dict[str, Any]) -> bool:
        return all(
            any(_compare(op, actual, value) for actual in _DOCUMENT_FIELDS[name](document))
            for name, op, value in self.tests
        )

    def member(self, member: Member) -> bool:
        return all(
            any(_compare(op, actual, value) for actual in _MEMBER_FIELDS[name](member))
            for name, op, value in self.tests
        )

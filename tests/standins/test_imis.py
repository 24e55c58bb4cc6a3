"""The iMIS stand-in: tokens, IQA and Query paging, Party, panels, communication types, fault plans."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.imis.envelopes import DENIED, HTTP_ERROR
from standins.imis.parties import SMS_COMMUNICATION_TYPE_ID
from standins.members import SMALL
from standins.members.dataset import generate
from standins.serving import ServerThread
from tests.standins.conftest import IMIS_MEMBERS, wait_for

CONFIG = ImisConfig()
AUDIENCE = "$/Textpulse/SMS Audience"
MEMBERS = generate(CONFIG.seed, IMIS_MEMBERS)


def _password_grant(url: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "password", "username": CONFIG.username, "password": CONFIG.password, **extra}
    return httpx.post(url + "/token", data=form)


def _values(row: dict[str, Any]) -> dict[str, Any]:
    """A GenericEntityData row's properties as plain values, as a client reads them."""
    out = {}
    for prop in row["Properties"]["$values"]:
        value = prop.get("Value")
        out[prop["Name"]] = value["$value"] if isinstance(value, dict) else value
    return out


def _all_rows(client: httpx.Client, query: str, limit: int | None = None, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = client.get("/api/IQA", params={"QueryName": query, "offset": offset, "limit": limit, **params}).json()
        rows.extend(_values(r) for r in page["Items"]["$values"])
        if not page["HasNext"]:
            assert page["NextOffset"] == 0
            return rows
        offset = page["NextOffset"]


def _expected_audience(opted_out: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return [
        m.id for m in MEMBERS
        if m.status == "A" and m.mobile and m.mobile.strip() and int(m.id) % 101 != 0 and m.id not in opted_out
    ]


def test_password_grant_issues_a_bearer_token(imis_url: str) -> None:
    body = _password_grant(imis_url).json()

    assert body["token_type"] == "bearer" and body["expires_in"] == 1199 and body["userName"] == CONFIG.username
    assert "refresh_token" not in body  # only client applications get one
    assert body[".expires"].endswith(" GMT")


def test_bad_password_and_unknown_grant_get_oauth_errors(imis_url: str) -> None:
    bad = httpx.post(imis_url + "/token", data={"grant_type": "password", "username": "x", "password": "y"})
    odd = httpx.post(imis_url + "/token", data={"grant_type": "client_credentials"})

    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant" and bad.json()["error_description"]
    assert odd.status_code == 400 and odd.json() == {"error": "unsupported_grant_type"}


def test_refresh_grant_for_client_applications(imis_url: str) -> None:
    first = _password_grant(imis_url, client_id="textpulse", client_secret="standin-client-secret").json()
    refreshed = httpx.post(imis_url + "/token", data={
        "grant_type": "refresh_token", "client_id": "textpulse", "client_secret": "standin-client-secret",
        "refresh_token": first["refresh_token"]})
    reused = httpx.post(imis_url + "/token", data={
        "grant_type": "refresh_token", "client_id": "textpulse", "client_secret": "standin-client-secret",
        "refresh_token": first["refresh_token"]})

    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != first["access_token"]
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_missing_or_revoked_token_gets_the_exact_401(imis_url: str, imis: httpx.Client) -> None:
    missing = httpx.get(imis_url + "/api/IQA", params={"QueryName": AUDIENCE})
    httpx.post(imis_url + "/_control/tokens/expire").raise_for_status()
    revoked = imis.get("/api/IQA", params={"QueryName": AUDIENCE})

    for response in (missing, revoked):
        assert response.status_code == 401
        assert response.json() == {"$type": HTTP_ERROR, "Message": DENIED}


def test_token_expires_after_expires_in() -> None:
    with ServerThread(create_app(ImisConfig(expires_in=1))) as server:
        token = _password_grant(server.url).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/CommunicationType", headers=headers).status_code == 200

        wait_for(
            lambda: httpx.get(server.url + "/api/CommunicationType", headers=headers).status_code == 401,
            timeout=3,
            what="token expiry",
        )


def test_iqa_page_has_the_exact_envelope_and_typed_values(imis: httpx.Client) -> None:
    page = imis.get("/api/IQA", params={"QueryName": AUDIENCE, "offset": 0, "limit": 2}).json()

    assert list(page) == ["$type", "Items", "Offset", "Limit", "Count", "TotalCount", "NextPageLink", "HasNext",
                          "NextOffset"]
    assert page["$type"].startswith("Asi.Soa.Core.DataContracts.PagedResult`1[[Asi.Soa.Core.DataContracts.Generic")
    assert (page["Offset"], page["Limit"], page["Count"], page["HasNext"], page["NextOffset"]) == (0, 2, 2, True, 2)
    row = page["Items"]["$values"][0]
    assert row["PrimaryParentEntityTypeName"] == "Party"
    props = row["Properties"]["$values"]
    assert props[0] == {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts",
                        "Name": "ResultRow", "Value": "1"}
    by_name = {p["Name"]: p for p in props}
    assert by_name["SmsOptOut"]["Value"] == {"$type": "System.Boolean", "$value": False}
    assert by_name["YearsAsMember"]["Value"]["$type"] == "System.Int32"
    assert row["PrimaryParentIdentity"]["IdentityElements"]["$values"] == [by_name["ID"]["Value"]]
    no_email = next(m for m in MEMBERS if m.email is None and m.id in _expected_audience())
    found = imis.get("/api/IQA", params={"QueryName": AUDIENCE, "PartyId": f"eq:{no_email.id}"}).json()
    email = next(p for p in found["Items"]["$values"][0]["Properties"]["$values"] if p["Name"] == "Email")
    assert "Value" not in email  # NULL: the key is left out


@pytest.mark.parametrize("limit", [None, 100, 500, 1000])
def test_iqa_paging_returns_every_row_exactly_once(imis: httpx.Client, limit: int | None) -> None:
    rows = _all_rows(imis, AUDIENCE, limit=limit)

    ids = [r["ID"] for r in rows]
    assert ids == _expected_audience()
    assert len(set(ids)) == len(ids)
    page = imis.get("/api/IQA", params={"QueryName": AUDIENCE, "limit": limit}).json()
    assert page["Limit"] == {None: 100, 100: 100, 500: 500, 1000: 500}[limit]
    assert page["TotalCount"] == len(ids)


def test_parameters_are_positional_with_eq_prefixes_and_names_case_insensitive(imis: httpx.Client) -> None:
    by_chapter = _all_rows(imis, "$/Textpulse/Members By Chapter", Parameter=["eq:NE", ""])
    students = imis.get("/api/iqa", params=[("queryname", "$/textpulse/members by chapter"),
                                            ("Parameter", "eq:NE"), ("Parameter", "eq:STU"), ("Limit", "500")]).json()

    assert [r["ID"] for r in by_chapter] == [m.id for m in MEMBERS if m.status == "A" and m.chapter == "NE"]
    ids = [_values(r)["ID"] for r in students["Items"]["$values"]]
    assert ids == [m.id for m in MEMBERS if m.status == "A" and m.chapter == "NE" and m.member_type == "STU"]
    lapsed = _all_rows(imis, "$/Textpulse/Lapsed Members")
    assert [r["ID"] for r in lapsed] == [m.id for m in MEMBERS if m.is_lapsed]
    assert all(isinstance(r["LastDuesAmount"], float) and r["PaidThrough"] < "2025-06-01" for r in lapsed)


def test_unknown_and_unexposed_queries_are_404(imis: httpx.Client) -> None:
    for name in ("$/Textpulse/No Such Query", "$/Textpulse/Staff Only"):
        response = imis.get("/api/IQA", params={"QueryName": name})
        assert response.status_code == 404 and response.json()["$type"] == HTTP_ERROR


def test_sites_that_require_eq_refuse_bare_parameters() -> None:
    with ServerThread(create_app(ImisConfig(require_eq_prefix=True), members=list(SMALL))) as server:
        token = _password_grant(server.url).json()["access_token"]
        response = httpx.get(
            server.url + "/api/IQA",
            params={"QueryName": "$/Textpulse/Members By Chapter", "Parameter": "NE"},
            headers={"Authorization": f"Bearer {token}"},
        )

    assert response.status_code == 400
    assert response.json()["Message"] == "In IQA query, parameters must be Parameter Equal"


def test_query_endpoint_serves_flat_expando_rows(imis: httpx.Client) -> None:
    page = imis.get("/api/Query", params={"QueryName": AUDIENCE, "limit": 500}).json()

    assert page["$type"] == "Asi.Soa.Core.DataContracts.PagedResult, Asi.Contracts"
    rows = {row["ID"]: row for row in page["Items"]["$values"]}
    assert all(row["$type"] == "System.Dynamic.ExpandoObject, System.Core" for row in rows.values())
    no_email = next(m for m in MEMBERS if m.email is None and int(m.id) in rows)
    row = rows[int(no_email.id)]
    assert row["SmsOptOut"] is False and row["Email"] is None and row["Mobile"] == no_email.mobile


def test_party_read_and_write_back(imis: httpx.Client, imis_url: str) -> None:
    member = next(m for m in MEMBERS if m.mobile_e164 and m.status == "A" and int(m.id) % 101)
    party = imis.get(f"/api/Party/{member.id}").json()
    assert party["$type"] == "Asi.Soa.Membership.DataContracts.PersonData, Asi.Contracts"
    mobile = [p["Number"] for p in party["Phones"]["$values"] if p["PhoneType"] == "Mobile"]
    assert mobile == [member.mobile]  # as typed, never normalised

    for preference in party["CommunicationTypePreferences"]["$values"]:
        if preference["CommunicationTypeId"] == SMS_COMMUNICATION_TYPE_ID:
            preference["OptInFlag"] = False
    saved = imis.put(f"/api/Party/{member.id}", json=party)

    assert saved.status_code == 200 and saved.json()["Id"] == member.id
    assert member.id not in [r["ID"] for r in _all_rows(imis, AUDIENCE, limit=500)]
    writes = httpx.get(imis_url + "/_control/writes", params={"path": "/api/Party"}).json()["writes"]
    assert [(w["method"], w["status"]) for w in writes] == [("PUT", 200)]
    assert imis.get("/api/Party/999").status_code == 404


def test_party_search_filters(imis: httpx.Client) -> None:
    member = next(m for m in MEMBERS if m.email)

    found = imis.get("/api/Party", params={"Email": member.email.upper()}).json()  # type: ignore[union-attr]

    assert member.id in [p["Id"] for p in found["Items"]["$values"]]
    recent = imis.get("/api/Party", params={"UpdatedOn": "ge:2025-01-01T00:00:00", "limit": 500}).json()
    assert recent["TotalCount"] == sum(1 for m in MEMBERS if m.updated_on.year >= 2025)


def test_sms_preferences_panel_round_trip(imis: httpx.Client, imis_url: str) -> None:
    member = next(m for m in MEMBERS if m.mobile_e164 and m.status == "A" and int(m.id) % 101)
    row = {
        "$type": "Asi.Soa.Core.DataContracts.GenericEntityData, Asi.Contracts",
        "EntityTypeName": "TP_SmsPreferences",
        "PrimaryParentEntityTypeName": "Party",
        "Identity": {"$type": "Asi.Soa.Core.DataContracts.IdentityData, Asi.Contracts",
                     "EntityTypeName": "TP_SmsPreferences",
                     "IdentityElements": {"$type": "System.Collections.ObjectModel.Collection`1[[System.String, "
                                                   "mscorlib]], mscorlib", "$values": [member.id]}},
        "Properties": {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyDataCollection, Asi.Contracts",
                       "$values": [
                           {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts", "Name": "ID",
                            "Value": member.id},
                           {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts",
                            "Name": "SmsOptOut", "Value": {"$type": "System.Boolean", "$value": True}},
                           {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts",
                            "Name": "SmsOptOutDate", "Value": "2025-06-03T14:05:09"},
                           {"$type": "Asi.Soa.Core.DataContracts.GenericPropertyData, Asi.Contracts",
                            "Name": "SmsOptOutSource", "Value": f"STOP from {member.mobile_e164}"}]},
    }

    missing = imis.put(f"/api/TP_SmsPreferences/{member.id}", json=row)
    created = imis.post("/api/TP_SmsPreferences", json=row)
    again = imis.post("/api/TP_SmsPreferences", json=row)

    assert missing.status_code == 404  # a client then POSTs instead
    assert created.status_code == 201 and again.status_code == 400
    fetched = _values(imis.get(f"/api/TP_SmsPreferences/{member.id}").json())
    assert fetched["SmsOptOut"] is True and fetched["SmsOptOutDate"] == "2025-06-03T14:05:09"
    assert member.id not in [r["ID"] for r in _all_rows(imis, AUDIENCE, limit=500)]
    row["Properties"]["$values"][1]["Value"]["$value"] = False
    assert imis.put(f"/api/TP_SmsPreferences/{member.id}", json=row).status_code == 200
    assert httpx.get(f"{imis_url}/_control/panels/TP_SmsPreferences/{member.id}").json()["SmsOptOut"] is False
    assert member.id in [r["ID"] for r in _all_rows(imis, AUDIENCE, limit=500)]
    listed = imis.get("/api/TP_SmsPreferences", params={"ID": member.id}).json()
    assert listed["TotalCount"] == 1
    assert imis.get("/api/NoSuchPanel/1").status_code == 404


def test_communication_types(imis: httpx.Client) -> None:
    page = imis.get("/api/CommunicationType", params={"IsSystem": "false"}).json()

    types = {t["ReasonCode"]: t for t in page["Items"]["$values"]}
    assert types["SMS"]["CommunicationTypeId"] == SMS_COMMUNICATION_TYPE_ID
    assert all(t["IsSystem"] is False for t in types.values())


def test_401_mid_paging_then_resume_after_signing_in_again(imis: httpx.Client, imis_url: str) -> None:
    httpx.post(imis_url + "/_control/faults",
               json={"kind": "unauthorized", "path": "/api/IQA", "skip": 2, "count": 1}).raise_for_status()
    seen: list[str] = []
    offset, refreshed = 0, 0
    while True:
        response = imis.get("/api/IQA", params={"QueryName": AUDIENCE, "offset": offset, "limit": 200})
        if response.status_code == 401:
            refreshed += 1
            imis.headers["Authorization"] = "Bearer " + _password_grant(imis_url).json()["access_token"]
            continue
        page = response.json()
        seen += [_values(r)["ID"] for r in page["Items"]["$values"]]
        if not page["HasNext"]:
            break
        offset = page["NextOffset"]

    assert refreshed == 1
    assert seen == _expected_audience()


@pytest.mark.parametrize("body", ["json", "html"])
def test_server_error_on_a_share_of_requests(imis: httpx.Client, imis_url: str, body: str) -> None:
    httpx.post(imis_url + "/_control/faults", json={"kind": "server_error", "share": 0.5, "body": body})

    responses = [imis.get("/api/CommunicationType") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 500, 200, 500]
    assert responses[1].headers["content-type"].startswith("application/json" if body == "json" else "text/html")


def test_a_slow_page_is_held_back_alone(imis: httpx.Client, imis_url: str) -> None:
    """The slow plan holds its one request back while the next is answered; then it too answers normally."""
    httpx.post(imis_url + "/_control/faults",
               json={"kind": "slow", "path": "/api/IQA", "delay_seconds": 5, "count": 1}).raise_for_status()
    params = {"QueryName": AUDIENCE, "limit": 1}

    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(httpx.get, imis_url + "/api/IQA", params=params, headers=imis.headers, timeout=60)
        wait_for(lambda: httpx.get(imis_url + "/_control/faults").json()["faults"][0]["exhausted"], timeout=30,
                 what="the slow plan to take the first request")
        fast = imis.get("/api/IQA", params=params)
        still_held = not slow.done()
        assert slow.result(timeout=60).status_code == 200

    assert fast.status_code == 200 and still_held


def test_a_party_carries_its_address_as_full_address_data(imis: httpx.Client) -> None:
    member = next(m for m in MEMBERS if m.address and m.address.country_code == "US" and m.address.state)
    assert member.address is not None
    entries = imis.get(f"/api/Party/{member.id}").json()["Addresses"]
    assert entries["$type"] == "Asi.Soa.Membership.DataContracts.FullAddressDataCollection, Asi.Contracts"
    (entry,) = entries["$values"]
    assert entry["$type"] == "Asi.Soa.Membership.DataContracts.FullAddressData, Asi.Contracts"
    assert entry["AddressPurpose"] == "Address"
    address = entry["Address"]
    assert address["$type"] == "Asi.Soa.Membership.DataContracts.AddressData, Asi.Contracts"
    assert (address["CityName"], address["CountrySubEntityCode"], address["PostalCode"], address["CountryCode"]) == (
        member.address.city, member.address.state, member.address.postal_code, "US")
    assert address["AddressLines"]["$values"] == list(member.address.lines)
    assert f"{member.address.city}, {member.address.state} {member.address.postal_code}" in address["FullAddress"]
    homeless = next(m for m in MEMBERS if m.address is None)
    assert imis.get(f"/api/Party/{homeless.id}").json()["Addresses"]["$values"] == []


def test_iqa_and_query_rows_carry_city_state_zip_and_country(imis: httpx.Client) -> None:
    rows = {r["ID"]: r for r in _all_rows(imis, AUDIENCE, limit=500)}
    flat = {str(r["ID"]): r for r in imis.get("/api/Query", params={"QueryName": AUDIENCE, "limit": 500}).json()[
        "Items"]["$values"]}
    by_id = {m.id: m for m in MEMBERS}
    with_address = [i for i in rows if by_id[i].address]
    assert with_address and any(by_id[i].address is None for i in rows)
    for member_id, row in rows.items():
        address = by_id[member_id].address
        expected = ((address.city, address.state or None, address.postal_code, address.country_code) if address
                    else (None, None, None, None))
        assert (row.get("City"), row.get("State"), row.get("Zip"), row.get("Country")) == expected
        if member_id in flat:
            assert (flat[member_id]["City"], flat[member_id]["State"], flat[member_id]["Zip"],
                    flat[member_id]["Country"]) == expected

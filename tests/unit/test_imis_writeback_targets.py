"""The bodies each iMIS write-back target sends, and the stand-in's Activity store, without a network."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from libs.common.errors import PermanentError
from libs.common.imis import ImisSession
from libs.common.imis_activities import activity_values
from libs.common.imis_preferences import with_preference
from libs.common.imis_values import decode_row, generic_entity, identity_of
from services.optout.db import ImisAccount, ImisJob
from services.optout.writeback_targets import write_back
from standins.imis.activities import ActivityStore
from standins.imis.panels import PanelError

SMS = "34df42a6-fc80-4032-92f1-262120c1ced0"
NEWS = "b1e0c0de-5f0a-4c1e-9a57-3f2d0e6a9b11"


def test_a_textunsub_activity_carries_the_utc_time_and_the_number() -> None:
    toronto = timezone(timedelta(hours=-5))
    values = activity_values("23145", "TEXTUNSUB", datetime(2026, 12, 2, 9, 30, 5, tzinfo=toronto), "+14155550134",
                             "STOP from +14155550134")
    assert dict(values) == {"PartyId": "23145", "ACTIVITY_TYPE": "TEXTUNSUB", "TRANSACTION_DATE": "2026-12-02T14:30:05",
                            "UF_1": "+14155550134", "DESCRIPTION": "STOP from +14155550134"}
    body = generic_entity("Activity", [], "23145", values)
    assert body["Identity"]["IdentityElements"]["$values"] == []  # iMIS numbers a new activity itself
    assert body["PrimaryParentIdentity"]["IdentityElements"]["$values"] == ["23145"]
    assert decode_row(body)["UF_1"] == "+14155550134"


def test_the_preference_flips_the_sms_entry_and_leaves_the_others() -> None:
    party = {"Id": "23145", "CommunicationTypePreferences": {"$values": [
        {"CommunicationTypeId": NEWS, "OptInFlag": True}, {"CommunicationTypeId": SMS.upper(), "OptInFlag": True}]}}
    changed, how = with_preference(party, SMS, opted_in=False)
    assert how == "updated"
    assert [e["OptInFlag"] for e in changed["CommunicationTypePreferences"]["$values"]] == [True, False]
    assert party["CommunicationTypePreferences"]["$values"][1]["OptInFlag"] is True  # the original is untouched


@pytest.mark.parametrize("party", [{"Id": "1"}, {"Id": "1", "CommunicationTypePreferences": {"$values": None}}])
def test_a_party_without_the_sms_entry_gets_one(party: dict[str, object]) -> None:
    changed, how = with_preference(party, SMS, opted_in=False)
    assert how == "added"
    [entry] = changed["CommunicationTypePreferences"]["$values"]  # type: ignore[index]
    assert (entry["CommunicationTypeId"], entry["OptInFlag"]) == (SMS, False)


def test_the_stand_in_numbers_activities_and_filters_them() -> None:
    store = ActivityStore()
    body = generic_entity("Activity", [], "23145", [("PartyId", "23145"), ("ACTIVITY_TYPE", "TEXTUNSUB"),
                                                     ("UF_1", "+14155550134")])
    first = store.create(body, parties={"23145", "23146"})
    other = store.create(generic_entity("Activity", [], "23146", [("ACTIVITY_TYPE", "EVENT")]), parties={"23146"})
    assert identity_of(store.render(first)) == first and first != other
    assert store.matching({"partyid": "eq:23145", "ACTIVITY_TYPE": "eq:TEXTUNSUB", "limit": "500"}) == [first]
    assert store.members_with("TEXTUNSUB") == {"23145"}
    archived = generic_entity("Activity", [first], "23145", [("PartyId", "23145"), ("ACTIVITY_TYPE", "TEXTUNSUB_A")])
    store.replace(first, archived)
    assert store.members_with("TEXTUNSUB") == set() and store.rows[first]["ACTIVITY_TYPE"] == "TEXTUNSUB_A"


@pytest.mark.parametrize(("body", "status"), [
    ({"Properties": {"$values": [{"Name": "ACTIVITY_TYPE", "Value": "TEXTUNSUB"}]}}, 400),  # no contact
    (generic_entity("Activity", [], "99999", [("ACTIVITY_TYPE", "TEXTUNSUB")]), 404),  # unknown contact
    ("not an entity", 400),
])
def test_the_stand_in_refuses_an_activity_it_cannot_file(body: object, status: int) -> None:
    with pytest.raises(PanelError) as refused:
        ActivityStore().create(body, parties={"23145"})
    assert refused.value.status == status


def test_the_stand_in_refuses_a_put_for_another_or_a_missing_activity() -> None:
    store = ActivityStore()
    seqn = store.create(generic_entity("Activity", [], "23145", [("ACTIVITY_TYPE", "TEXTUNSUB")]), parties={"23145"})
    with pytest.raises(PanelError) as missing:
        store.replace("1", generic_entity("Activity", ["1"], "23145", [("ACTIVITY_TYPE", "X")]))
    with pytest.raises(PanelError) as mismatch:
        store.replace(seqn, generic_entity("Activity", ["1"], "23145", [("ACTIVITY_TYPE", "X")]))
    assert (missing.value.status, mismatch.value.status) == (404, 400)
    assert store.rows[seqn]["ACTIVITY_TYPE"] == "TEXTUNSUB"


@pytest.mark.parametrize(("action", "target", "code"), [
    ("revoke", "activity", "imis_action_unknown"),  # an action nobody defined a write for is not an opt-in
    ("opt_out", "preference", "imis_preference_missing"),  # a preference needs its communication type
])
async def test_a_job_that_cannot_be_written_fails_before_calling_imis(action: str, target: str, code: str) -> None:
    job = ImisJob(id=1, org_id=uuid.uuid4(), member_id="23145", phone="+14155550134", action=action,
                  source_text="STOP from +14155550134", occurred_at=datetime.now(UTC), attempts=1,
                  time_zone="America/New_York")
    account = ImisAccount(base_url=None, username="u", password="p", sms_panel="TP_SmsPreferences",
                          writeback_enabled=True, writeback_target=target)
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_calls)) as http:
        with pytest.raises(PermanentError) as refused:
            await write_back(ImisSession(http, "https://imis.invalid", "u", "p"), account, job)
    assert refused.value.code == code


def _no_calls(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"iMIS was called: {request.method} {request.url}")

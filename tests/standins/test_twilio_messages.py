"""The Twilio stand-in through the official SDK and raw HTTP: create, fetch, list, validation, auth."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.standins.conftest import TWILIO_TEST_CONFIG, SdkFactory, wait_for

CONFIG = TWILIO_TEST_CONFIG
DIRECT = "+18885550100"
MESSAGE_KEYS = [
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated", "direction", "error_code",
    "error_message", "from", "messaging_service_sid", "num_media", "num_segments", "price", "price_unit", "sid",
    "status", "subresource_uris", "to", "uri",
]
RFC2822 = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000")


def test_create_answers_the_exact_message_json(rest: httpx.Client) -> None:
    response = rest.post(
        "/Messages.json", data={"To": "+14155550134", "From": DIRECT, "Body": "Hi José, renew by 1 July 🌻"}
    )

    assert response.status_code == 201
    body = response.json()
    assert list(body) == MESSAGE_KEYS
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued"
    assert body["num_segments"] == "1" and body["num_media"] == "0"  # strings, as Twilio writes them
    assert body["price"] is None and body["date_sent"] is None and body["error_code"] is None
    assert RFC2822.fullmatch(body["date_created"])
    assert body["uri"] == f"/2010-04-01/Accounts/{CONFIG.account_sid}/Messages/{body['sid']}.json"
    assert body["subresource_uris"] == {"media": body["uri"][:-5] + "/Media.json"}


def test_sdk_creates_fetches_and_sees_the_message_delivered(sdk: Client) -> None:
    long_body = "Ünïcode " + "x" * 70  # UCS-2: 78 units -> 2 segments

    created = sdk.messages.create(to="+14155550134", from_=DIRECT, body=long_body)

    assert created.status == "queued" and created.num_segments == "2"
    assert created.date_created is not None and created.date_created.tzinfo is not None
    fetched = wait_for(
        lambda: (m := sdk.messages(created.sid).fetch()).status == "delivered" and m, what="delivered status"
    )
    assert fetched.date_sent is not None
    assert fetched.price == "-0.01580"  # 2 segments at $0.0079
    assert fetched.from_ == DIRECT and fetched.body == long_body


def test_an_alphanumeric_sender_id_texts_a_country_that_takes_one(sdk: Client) -> None:
    created = sdk.messages.create(to="+447700900123", from_="PhysioAlum", body="Hello")

    assert created.status == "queued" and created.from_ == "PhysioAlum"
    fetched = wait_for(lambda: (m := sdk.messages(created.sid).fetch()).status == "delivered" and m,
                       what="delivered status")
    assert fetched.from_ == "PhysioAlum"


def test_service_send_is_accepted_then_gets_a_sender_from_the_pool(sdk: Client) -> None:
    service = sdk.messaging.v1.services.list()[0]

    created = sdk.messages.create(to="+14155550150", messaging_service_sid=service.sid, body="Hello")

    assert created.status == "accepted" and created.from_ is None and created.num_segments == "0"
    fetched = wait_for(lambda: (m := sdk.messages(created.sid).fetch()).date_sent and m, what="sent")
    assert fetched.from_ in {"+18885550101", "+18885550102"} and fetched.num_segments == "1"
    assert fetched.messaging_service_sid == service.sid


def test_list_pages_newest_first_with_relative_next_page_uri(sdk: Client, rest: httpx.Client) -> None:
    to = "+14155550160"
    sids = [sdk.messages.create(to=to, from_=DIRECT, body=f"n{i}").sid for i in range(7)]
    sdk.messages.create(to="+14155550161", from_=DIRECT, body="other recipient")

    listed = sdk.messages.list(to=to, page_size=3)

    assert [m.sid for m in listed] == sids[::-1]
    first = rest.get("/Messages.json", params={"To": to, "PageSize": 3}).json()
    assert set(first) == {"end", "first_page_uri", "messages", "next_page_uri", "page", "page_size",
                          "previous_page_uri", "start", "uri"}
    assert (first["start"], first["end"], first["page"]) == (0, 2, 0)
    assert first["next_page_uri"].startswith(f"/2010-04-01/Accounts/{CONFIG.account_sid}/Messages.json?To=%2B1")
    assert "PageToken=PASM" in first["next_page_uri"]
    with httpx.Client(base_url=str(rest.base_url).split("/2010-04-01")[0], auth=rest.auth) as root:
        second = root.get(first["next_page_uri"]).json()
        third = root.get(second["next_page_uri"]).json()
    assert [m["sid"] for m in first["messages"] + second["messages"] + third["messages"]] == sids[::-1]
    assert (second["start"], second["end"], second["page"]) == (3, 5, 1)
    assert (third["start"], third["end"], len(third["messages"])) == (6, 6, 1)
    assert third["next_page_uri"] is None
    empty = rest.get("/Messages.json", params={"To": "+14155550199"}).json()
    assert (empty["start"], empty["end"], empty["messages"]) == (0, 0, [])


def test_list_filters_by_from_and_date_sent(sdk: Client, control: httpx.Client) -> None:
    control.put("/numbers/+18885550110", json={"rate": 100}).raise_for_status()
    sid = sdk.messages.create(to="+14155550170", from_="+18885550110", body="dated").sid
    wait_for(lambda: sdk.messages(sid).fetch().date_sent, what="date_sent")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    by_from = sdk.messages.list(from_="+18885550110")
    on_day = sdk.messages.list(from_="+18885550110", date_sent=today)
    after = sdk.messages.list(from_="+18885550110", date_sent_after=today)
    before_yesterday = sdk.messages.list(from_="+18885550110", date_sent_before=today - timedelta(days=1))

    assert [m.sid for m in by_from] == [sid]
    assert [m.sid for m in on_day] == [sid] and [m.sid for m in after] == [sid]
    assert before_yesterday == []


BAD_CREATES = [
    # (form, HTTP status, code): To first, then the sender, then the body, then the options.
    ({"From": DIRECT, "Body": "x"}, 400, 21604),
    ({"To": "0412 345 678", "Body": "x"}, 400, 21211),
    ({"To": "+14155550134", "Body": "x"}, 400, 21603),
    ({"To": "+14155550134", "From": "+18005550199"}, 400, 21606),
    ({"To": "+14155550134", "From": "PhysioAlum", "Body": "x"}, 400, 21612),  # no alpha sender ID to the US
    ({"To": "+16135550134", "From": "PhysioAlum", "Body": "x"}, 400, 21612),  # ... or Canada
    ({"To": "+447700900123", "From": "12345", "Body": "x"}, 400, 21606),  # digits only: not an alpha ID
    ({"To": "+14155550134", "From": DIRECT}, 400, 21602),
    ({"To": "+14155550134", "From": DIRECT, "Body": "x" * 1601}, 400, 21617),
    ({"To": "+14155550134", "From": DIRECT, "Body": "x", "StatusCallback": "https://my_host/cb"}, 400, 21609),
    ({"To": "+14155550134", "From": DIRECT, "Body": "x", "ValidityPeriod": "36001"}, 400, 90007),
    ({"To": "+15005550001", "From": DIRECT, "Body": "x"}, 400, 21211),
    ({"To": "+15005550002", "From": DIRECT, "Body": "x"}, 400, 21612),
    ({"To": "+15005550003", "From": DIRECT, "Body": "x"}, 400, 21408),
    ({"To": "+15005550004", "From": DIRECT, "Body": "x"}, 400, 21610),
    ({"To": "+15005550009", "From": DIRECT, "Body": "x"}, 400, 21614),
]


@pytest.mark.parametrize(("form", "status", "code"), BAD_CREATES)
def test_create_refusals_follow_twilios_order_and_codes(
    rest: httpx.Client, form: dict[str, str], status: int, code: int
) -> None:
    response = rest.post("/Messages.json", data=form)

    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_sdk_raises_twilio_rest_exception_with_the_code(sdk: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sdk.messages.create(to="+15005550001", from_=DIRECT, body="x")

    assert caught.value.status == 400 and caught.value.code == 21211
    assert "Unable to create record" in caught.value.msg


def test_wrong_credentials_get_401_20003(twilio_url: str, make_sdk: SdkFactory) -> None:
    bad = make_sdk(CONFIG.account_sid, "not-the-token")

    with pytest.raises(TwilioRestException) as caught:
        bad.messages.create(to="+14155550134", from_=DIRECT, body="x")

    assert caught.value.status == 401 and caught.value.code == 20003
    other_account = httpx.get(
        f"{twilio_url}/2010-04-01/Accounts/AC{'0' * 32}/Messages.json", auth=(CONFIG.account_sid, CONFIG.auth_token)
    )
    assert other_account.status_code == 401


def test_api_key_credentials_work(make_sdk: SdkFactory) -> None:
    keyed = make_sdk(CONFIG.api_key_sid, CONFIG.api_key_secret, CONFIG.account_sid)

    created = keyed.messages.create(to="+14155550134", from_=DIRECT, body="via API key")

    assert keyed.messages(created.sid).fetch().sid == created.sid


def test_test_credentials_take_magic_numbers_and_store_nothing(make_sdk: SdkFactory, control: httpx.Client) -> None:
    test = make_sdk(CONFIG.test_account_sid, CONFIG.test_auth_token)

    created = test.messages.create(to="+14155550134", from_="+15005550006", body="test")
    with pytest.raises(TwilioRestException) as full:
        test.messages.create(to="+14155550134", from_="+15005550008", body="test")
    with pytest.raises(TwilioRestException) as not_owned:
        test.messages.create(to="+14155550134", from_=DIRECT, body="test")
    with pytest.raises(TwilioRestException) as fetch:
        test.messages(created.sid).fetch()

    assert created.status == "queued"
    assert (full.value.status, full.value.code) == (429, 21611)
    assert not_owned.value.code == 21606
    assert (fetch.value.status, fetch.value.code) == (403, 20008)
    assert control.get("/messages").json()["messages"] == []


def test_unknown_message_and_path_answer_20404(rest: httpx.Client) -> None:
    missing = rest.get(f"/Messages/SM{'0' * 32}.json")
    nowhere = rest.get("/Calls.json")

    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, 20404)


def test_account_numbers_services_and_verifications_for_settings(sdk: Client, rest: httpx.Client) -> None:
    account = sdk.api.accounts(CONFIG.account_sid).fetch()
    numbers = sdk.incoming_phone_numbers.list(phone_number="+18885550103")
    services = sdk.messaging.v1.services.list()
    verifications = sdk.messaging.v1.tollfree_verifications.list()

    assert (account.type, account.status) == ("Full", "active")
    assert [n.phone_number for n in numbers] == ["+18885550103"]
    assert numbers[0].capabilities["sms"] is True and numbers[0].friendly_name == "(888) 555-0103"
    assert [s.friendly_name for s in services] == ["Textpulse"]
    by_number = {v.tollfree_phone_number_sid: v.status for v in verifications}
    pns = {n.phone_number: n.sid for n in sdk.incoming_phone_numbers.list()}
    assert by_number[pns["+18885550100"]] == "TWILIO_APPROVED"
    assert by_number[pns["+18885550103"]] == "IN_REVIEW"
    assert by_number[pns["+18885550105"]] == "TWILIO_REJECTED"
    assert pns["+18885550104"] not in by_number  # restricted: never submitted
    page = httpx.get(
        str(rest.base_url).split("/2010-04-01")[0] + "/v1/Tollfree/Verifications",
        params={"PageSize": 2},
        auth=(CONFIG.account_sid, CONFIG.auth_token),
    ).json()
    assert set(page) == {"verifications", "meta"} and page["meta"]["key"] == "verifications"
    assert page["meta"]["next_page_url"].startswith("http://127.0.0.1:")

"""The Twilio stand-in over time: queue pacing, signed status callbacks, outcomes, member replies, snapshots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from standins.serving import ServerThread
from standins.twilio.app import create_app
from tests.standins.conftest import TWILIO_TEST_CONFIG, WebhookSink, wait_for

CONFIG = TWILIO_TEST_CONFIG
DIRECT = "+18885550100"
validator = RequestValidator(CONFIG.auth_token)


def _arrivals(control: httpx.Client, sender: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = control.get("/arrivals", params={"sender": sender}).json()["arrivals"]
    return rows


def _max_segments_in_window(events: list[tuple[float, int]], window: float) -> int:
    """Test-side sliding window over (time, segments), half-open [t, t + window)."""
    events = sorted(events)
    return max(sum(s for t2, s in events if t <= t2 < t + window) for t, _ in events)


def test_default_toll_free_sender_drains_three_segments_per_second(sdk: Client, control: httpx.Client) -> None:
    for i in range(4):
        sdk.messages.create(to=f"+1415555020{i}", from_=DIRECT, body=f"one segment {i}")

    rows = wait_for(
        lambda: (r := _arrivals(control, DIRECT)) and all(x["status"] == "delivered" for x in r) and r,
        what="four deliveries",
    )

    left = sorted(float(r["left_queue_at"]) for r in rows)  # type: ignore[arg-type]
    gaps = [b - a for a, b in zip(left, left[1:], strict=False)]
    assert gaps == pytest.approx([1 / 3] * 3, abs=1e-6)


def test_queue_drains_at_the_configured_rate_in_segments(sdk: Client, control: httpx.Client) -> None:
    sender, rate = "+18885550120", 25.0
    control.put(f"/numbers/{sender}", json={"rate": rate}).raise_for_status()
    bodies = ["short", "x" * 200, "y" * 400]  # 1, 2 and 3 GSM-7 segments
    sids = [sdk.messages.create(to=f"+1415555{i:04d}", from_=sender, body=bodies[i % 3]).sid for i in range(30)]

    rows = wait_for(
        lambda: (r := _arrivals(control, sender)) and all(x["status"] == "delivered" for x in r) and r,
        timeout=10,
        what="30 deliveries",
    )

    assert [r["sid"] for r in rows] == sids
    departures = [(float(r["left_queue_at"]), int(r["segments"])) for r in rows]  # type: ignore[arg-type]
    total = sum(s for _, s in departures)
    assert total == 60
    # Any one-second window holds at most `rate` segments plus the one message whose slot spills over.
    assert _max_segments_in_window(departures, 1.0) <= rate + 3
    span = departures[-1][0] + departures[-1][1] / rate - departures[0][0]
    assert total / span == pytest.approx(rate, rel=0.01)
    summary = control.get("/arrivals/summary").json()["senders"][sender]
    assert summary["segments"] == 60 and summary["peak_segments_left_per_window"] <= rate + 3


def test_queue_longer_than_validity_refuses_direct_sends_and_fails_service_sends(
    sdk: Client, control: httpx.Client, sink: WebhookSink
) -> None:
    control.put(f"/numbers/{DIRECT}", json={"rate": 1}).raise_for_status()
    sdk.messages.create(to="+14155550301", from_=DIRECT, body="a", validity_period=1)
    sdk.messages.create(to="+14155550302", from_=DIRECT, body="b", validity_period=1)

    with pytest.raises(TwilioRestException) as caught:
        sdk.messages.create(to="+14155550303", from_=DIRECT, body="c", validity_period=1)

    assert (caught.value.status, caught.value.code) == (429, 21611)
    service = sdk.messaging.v1.services.list()[0]
    for number in ("+18885550101", "+18885550102"):
        control.put(f"/numbers/{number}", json={"rate": 1}).raise_for_status()
    callback = sink.url + "/svc"
    sids = [
        sdk.messages.create(to="+14155550310", messaging_service_sid=service.sid, body="s", validity_period=1,
                            status_callback=callback).sid
        for _ in range(3)
    ]
    failed = wait_for(lambda: [h for h in sink.at("/svc") if h.params["MessageStatus"] == "failed"], what="30001")
    assert [(h.params["MessageSid"], h.params["ErrorCode"]) for h in failed] == [(sids[2], "30001")]
    assert [h.params["MessageSid"] for h in sink.at("/svc") if h.params["MessageStatus"] == "queued"] == sids[:2]


def test_status_callbacks_are_signed_form_posts_in_order(sdk: Client, sink: WebhookSink) -> None:
    callback = sink.url + "/status?campaign=42"

    sid = sdk.messages.create(to="+14155550401", from_=DIRECT, body="hi", status_callback=callback).sid

    hooks = wait_for(lambda: len(s := sink.at("/status")) >= 2 and s, what="two callbacks")
    assert [h.params["MessageStatus"] for h in hooks] == ["sent", "delivered"]  # no callback for "queued"
    for hook in hooks:
        assert hook.headers["content-type"] == "application/x-www-form-urlencoded"
        assert validator.validate(callback, hook.params, hook.headers["x-twilio-signature"])
        assert not validator.validate(callback, {**hook.params, "MessageStatus": "failed"},
                                      hook.headers["x-twilio-signature"])
    sent, delivered = (h.params for h in hooks)
    assert list(sent) == ["SmsSid", "SmsStatus", "MessageStatus", "To", "MessageSid", "AccountSid", "From",
                          "ApiVersion"]
    assert delivered["MessageSid"] == sid and "ErrorCode" not in delivered
    assert len(delivered["RawDlrDoneDate"]) == 10


def test_failed_callbacks_are_retried_with_the_same_idempotency_token(
    sdk: Client, sink: WebhookSink, control: httpx.Client
) -> None:
    sink.failures[("/flaky", "sent")] = 2

    sid = sdk.messages.create(to="+14155550402", from_=DIRECT, body="hi", status_callback=sink.url + "/flaky").sid

    def attempts() -> list[tuple[int, int]]:
        log = control.get("/callbacks", params={"message_sid": sid, "status": "sent"}).json()["callbacks"]
        return [(a["attempt"], a["http_status"]) for a in log]

    assert wait_for(lambda: len(a := attempts()) == 3 and a, what="three tries") == [(1, 500), (2, 500), (3, 200)]
    tokens = {h.headers["i-twilio-idempotency-token"] for h in sink.at("/flaky") if h.params["MessageStatus"] == "sent"}
    assert len(tokens) == 1


def test_callback_chaos_duplicates_and_reorders(sdk: Client, sink: WebhookSink, control: httpx.Client) -> None:
    control.post(
        "/faults", json={"kind": "callback_chaos", "duplicate_share": 1.0, "reorder_share": 1.0}
    ).raise_for_status()

    sdk.messages.create(to="+14155550403", from_=DIRECT, body="hi", status_callback=sink.url + "/chaos")

    hooks = wait_for(lambda: len(s := sink.at("/chaos")) >= 4 and s, what="four callbacks")
    statuses = [h.params["MessageStatus"] for h in hooks]
    assert sorted(statuses) == ["delivered", "delivered", "sent", "sent"]
    assert statuses.index("delivered") < statuses.index("sent")


@pytest.mark.parametrize(("code", "status"), [(30003, "undelivered"), (30005, "undelivered"),
                                              (30006, "undelivered"), (30007, "undelivered"), (30450, "failed")])
def test_carrier_error_plan_sets_the_outcome(
    sdk: Client, sink: WebhookSink, control: httpx.Client, code: int, status: str
) -> None:
    control.post("/faults", json={"kind": "carrier_error", "code": code, "number": "+14155550501"}).raise_for_status()

    sid = sdk.messages.create(to="+14155550501", from_=DIRECT, body="hi", status_callback=sink.url + "/carrier").sid
    other = sdk.messages.create(to="+14155550502", from_=DIRECT, body="hi").sid

    final = wait_for(lambda: [h for h in sink.at("/carrier") if h.params["MessageStatus"] == status], what=status)
    assert final[0].params["ErrorCode"] == str(code)
    fetched = sdk.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == (status, code)
    assert wait_for(lambda: sdk.messages(other).fetch().status == "delivered", what="unaffected message")


def test_carrier_error_rate_hits_that_share_of_messages(sdk: Client, control: httpx.Client) -> None:
    control.put(f"/numbers/{DIRECT}", json={"rate": 100}).raise_for_status()
    control.post("/faults", json={"kind": "carrier_error", "code": 30003, "rate": 0.5}).raise_for_status()

    sids = [sdk.messages.create(to=f"+1415555060{i}", from_=DIRECT, body="hi").sid for i in range(8)]

    rows = wait_for(
        lambda: (r := _arrivals(control, DIRECT)) and all(x["status"] in {"delivered", "undelivered"} for x in r) and r,
        what="outcomes",
    )
    assert [r["sid"] for r in rows] == sids
    assert sum(r["status"] == "undelivered" for r in rows) == 4


def test_unverified_toll_free_numbers_are_blocked_to_us_and_canada(sdk: Client, control: httpx.Client) -> None:
    pending, restricted = "+18885550103", "+18885550104"

    us = sdk.messages.create(to="+14155550701", from_=pending, body="hi").sid
    ca = sdk.messages.create(to="+16045550702", from_=restricted, body="hi").sid
    uk = sdk.messages.create(to="+447700900703", from_=pending, body="hi").sid

    assert wait_for(lambda: sdk.messages(uk).fetch().status == "delivered", what="UK delivery")
    for sid in (us, ca):
        fetched = wait_for(lambda s=sid: (m := sdk.messages(s).fetch()).status == "failed" and m, what="30032")
        assert fetched.error_code == 30032 and fetched.date_sent is None and fetched.price == "-0.00100"
    control.put(f"/numbers/{pending}", json={"verification": "verified"}).raise_for_status()
    now_ok = sdk.messages.create(to="+14155550704", from_=pending, body="hi").sid
    assert wait_for(lambda: sdk.messages(now_ok).fetch().status == "delivered", what="after approval")


def test_pumping_protection_blocks_chosen_countries(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "pumping_block", "countries": ["GB"]}).raise_for_status()

    blocked = sdk.messages.create(to="+447700900801", from_=DIRECT, body="hi").sid
    allowed = sdk.messages.create(to="+61491570802", from_=DIRECT, body="hi").sid

    fetched = wait_for(lambda: (m := sdk.messages(blocked).fetch()).status == "failed" and m, what="30450")
    assert fetched.error_code == 30450 and fetched.price == "0.00000"  # exempt from the failed-message fee
    assert wait_for(lambda: sdk.messages(allowed).fetch().status == "delivered", what="AU delivery")


def test_member_stop_blocks_the_service_and_start_lifts_it(
    sdk: Client, control: httpx.Client, sink: WebhookSink
) -> None:
    member, in_service = "+14155550901", "+18885550101"
    control.put(f"/numbers/{in_service}", json={"sms_url": sink.url + "/inbound?tenant=acme"}).raise_for_status()
    service = sdk.messaging.v1.services.list()[0]

    stop = control.post("/replies", json={"from": member, "to": in_service, "body": " sToP "}).json()

    assert stop["opt_out_type"] == "STOP" and stop["opted_out"] is True
    assert stop["auto_reply"].startswith('NETWORK MSG: You replied with the word "stop"')
    hook = sink.at("/inbound")[0]
    url = sink.url + "/inbound?tenant=acme"
    assert validator.validate(url, hook.params, hook.headers["x-twilio-signature"])
    assert hook.params["OptOutType"] == "STOP" and hook.params["Body"] == " sToP "
    assert hook.params["MessagingServiceSid"] == service.sid and hook.params["SmsStatus"] == "received"
    with pytest.raises(TwilioRestException) as via_other_number:
        sdk.messages.create(to=member, from_="+18885550102", body="still there?")
    assert via_other_number.value.code == 21610
    yes = control.post("/replies", json={"from": member, "to": in_service, "body": "YES"}).json()
    assert yes["opt_out_type"] is None and yes["opted_out"] is True  # toll-free: YES does not lift
    start = control.post("/replies", json={"from": member, "to": in_service, "body": "Start"}).json()
    assert start["opt_out_type"] == "START" and start["opted_out"] is False
    assert sdk.messages.create(to=member, messaging_service_sid=service.sid, body="welcome back").status == "accepted"


def test_reply_to_a_number_outside_a_service_has_no_opt_out_type(control: httpx.Client, sink: WebhookSink) -> None:
    control.put(f"/numbers/{DIRECT}", json={"sms_url": sink.url + "/direct"}).raise_for_status()

    help_reply = control.post("/replies", json={"from": "+14155550902", "to": DIRECT, "body": "HELP"}).json()
    plain = control.post("/replies", json={"from": "+14155550902", "to": DIRECT, "body": "Stop please"}).json()

    assert help_reply["auto_reply"] and plain["opt_out_type"] is None and plain["opted_out"] is False
    hooks = sink.at("/direct")
    assert [h.params["Body"] for h in hooks] == ["HELP", "Stop please"]
    assert all("OptOutType" not in h.params for h in hooks)
    inbound = control.get("/messages", params={"direction": "inbound"}).json()["messages"]
    assert [m["body"] for m in inbound] == ["HELP", "Stop please"]


def test_state_file_keeps_messages_and_opt_outs_across_restarts(tmp_path: Path) -> None:
    config = replace(CONFIG, state_file=str(tmp_path / "twilio.json"))
    auth = (config.account_sid, config.auth_token)
    with ServerThread(create_app(config)) as first:
        base = f"{first.url}/2010-04-01/Accounts/{config.account_sid}"
        sid = httpx.post(base + "/Messages.json", auth=auth, data={"To": "+14155551001", "From": DIRECT,
                                                                  "Body": "kept"}).json()["sid"]
        httpx.post(first.url + "/_control/replies", json={"from": "+14155551002", "to": DIRECT, "body": "STOP"})

    with ServerThread(create_app(config)) as second:
        base = f"{second.url}/2010-04-01/Accounts/{config.account_sid}"
        assert httpx.get(f"{base}/Messages/{sid}.json", auth=auth).json()["body"] == "kept"
        refused = httpx.post(base + "/Messages.json", auth=auth, data={"To": "+14155551002", "From": DIRECT,
                                                                      "Body": "x"})
        assert refused.json()["code"] == 21610

"""Request fault plans of the Twilio stand-in, as the SDK experiences them."""

from __future__ import annotations

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from tests.standins.conftest import TWILIO_TEST_CONFIG, SdkFactory, wait_for

CONFIG = TWILIO_TEST_CONFIG
DIRECT = "+18885550100"


def _create(sdk: Client, to: str) -> str | TwilioRestException:
    try:
        return str(sdk.messages.create(to=to, from_=DIRECT, body="hi").sid)
    except TwilioRestException as exc:
        return exc


def _stored(control: httpx.Client, to: str) -> int:
    return len(control.get("/messages", params={"to": to}).json()["messages"])


def test_rate_limited_for_the_next_n_creates(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "rate_limited", "count": 2}).raise_for_status()

    outcomes = [_create(sdk, "+14155551101") for _ in range(3)]

    assert [(e.status, e.code) for e in outcomes[:2] if isinstance(e, TwilioRestException)] == [(429, 20429)] * 2
    assert isinstance(outcomes[2], str)
    assert _stored(control, "+14155551101") == 1  # a 429 is never processed


def test_server_error_on_a_share_of_creates(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "server_error", "share": 0.5}).raise_for_status()

    outcomes = [_create(sdk, "+14155551102") for _ in range(6)]

    errors = [e for e in outcomes if isinstance(e, TwilioRestException)]
    assert len(errors) == 3 and {(e.status, e.code) for e in errors} == {(500, 20500)}
    assert _stored(control, "+14155551102") == 3


def test_server_error_after_processing_creates_the_message(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "server_error", "processed": True}).raise_for_status()

    outcome = _create(sdk, "+14155551103")

    assert isinstance(outcome, TwilioRestException) and outcome.status == 500
    assert _stored(control, "+14155551103") == 1


@pytest.mark.parametrize(("body", "code"), [("html", 503), ("json", 20503)])
def test_unavailable_as_html_or_json(sdk: Client, control: httpx.Client, body: str, code: int) -> None:
    control.post("/faults", json={"kind": "unavailable", "body": body}).raise_for_status()

    outcome = _create(sdk, "+14155551104")

    # A non-JSON body leaves the SDK only the HTTP status as the code (docs/twilio.md#rest-basics-and-errors).
    assert isinstance(outcome, TwilioRestException) and (outcome.status, outcome.code) == (503, code)


def test_timeout_accepts_the_message_but_never_answers(make_sdk: SdkFactory, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "timeout", "hang_seconds": 30}).raise_for_status()
    impatient = make_sdk(CONFIG.account_sid, CONFIG.auth_token, timeout=0.5)

    # The SDK does not wrap transport errors: a timeout surfaces as requests' ReadTimeout.
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.messages.create(to="+14155551105", from_=DIRECT, body="did it go?")

    assert _stored(control, "+14155551105") == 1
    assert wait_for(lambda: control.get("/faults").json()["hung_requests"] == 1, what="held request")
    assert control.post("/faults/release").json() == {"released": 1}
    # What the client should do next: look the message up instead of sending it again.
    assert [m.to for m in impatient.messages.list(to="+14155551105")] == ["+14155551105"]


def test_scope_any_faults_reads_too(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "rate_limited", "scope": "any", "count": 1}).raise_for_status()

    with pytest.raises(TwilioException):  # a failed list page is a plain TwilioException
        sdk.messages.list(limit=1)

    assert sdk.messages.list(limit=1) == []
    assert control.get("/faults").json()["faults"][0]["fired"] == 1


def test_faults_are_cleared_by_delete_and_by_reset(sdk: Client, control: httpx.Client) -> None:
    control.post("/faults", json={"kind": "rate_limited", "share": 1.0}).raise_for_status()
    control.delete("/faults").raise_for_status()
    assert isinstance(_create(sdk, "+14155551106"), str)
    control.post("/faults", json={"kind": "rate_limited", "share": 1.0}).raise_for_status()
    control.post("/reset").raise_for_status()
    assert isinstance(_create(sdk, "+14155551106"), str)

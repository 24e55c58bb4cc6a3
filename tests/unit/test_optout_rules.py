"""The opt-out service's pure rules: status ranks, costs, numbers and scopes, the iMIS panel row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlparse
from uuid import uuid4

import pytest
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator, add_port, remove_port

from libs.common.backoff import retry_delay
from libs.common.imis_values import panel_entity
from services.optout import status as rules
from services.optout.consent import changes_for, imis_local_time, normalize_phone, sender_scope, source_text
from services.optout.db import ImisJob
from services.optout.signatures import FormParams, proves, public_url
from services.optout.writeback_targets import panel_values

MG = "MG" + "1f2e3d4c5b6a79880716253443526170"


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        (None, "queued", True),
        ("accepted", "queued", True),
        ("queued", "sent", True),
        ("sent", "delivered", True),
        ("sending", "failed", True),
        ("delivered", "sent", False),  # never backwards
        ("delivered", "undelivered", False),  # the first terminal status stays
        ("sent", "sent", False),
        ("failed", "queued", False),
        ("scheduled", "canceled", True),
        ("queued", "accepted", False),
    ],
)
def test_a_status_moves_only_up(current: str | None, new: str, moves: bool) -> None:
    below = rules.statuses_below(new)
    assert (current is None or current in below) is moves


def test_an_unknown_status_moves_nothing() -> None:
    assert rules.statuses_below("receiving") == ()


@pytest.mark.parametrize(
    ("status", "error", "price", "cost"),
    [
        ("delivered", None, Decimal("0.00790"), Decimal("0.00790")),
        ("failed", 30007, None, Decimal("0.00100")),
        ("failed", None, None, Decimal("0.00100")),
        ("failed", 30008, None, None),  # exempt from the failed-message fee
        ("failed", 30450, None, None),
        ("undelivered", 30003, None, None),  # charged through price, never the fee
        ("sent", None, None, None),
    ],
)
def test_cost_of(status: str, error: int | None, price: Decimal | None, cost: Decimal | None) -> None:
    assert rules.cost_of(status, error, price) == cost


@pytest.mark.parametrize(
    ("raw", "price"),
    [("-0.00790", Decimal("0.00790")), ("-0.0395", Decimal("0.03950")), ("", None), (None, None),
     ("abc", None), ("NaN", None), ("Infinity", None), ("1e9", None)],
)
def test_parse_price(raw: str | None, price: Decimal | None) -> None:
    assert rules.parse_price(raw) == price


@pytest.mark.parametrize(("raw", "code"), [("30003", 30003), (" 21610 ", 21610), ("", None), (None, None),
                                          ("3e4", None), ("99999999999", None)])
def test_parse_error_code(raw: str | None, code: int | None) -> None:
    assert rules.parse_error_code(raw) == code


@pytest.mark.parametrize(
    ("raw", "prefix", "e164"),
    [
        ("+14155550134", "+1", "+14155550134"),
        ("+1 (415) 555-0134", "+1", "+14155550134"),
        ("4155550134", "+1", "+14155550134"),
        ("14155550134", "+1", "+14155550134"),
        ("415.555.0134", "+1", "+14155550134"),
        ("07946 095800", "+44", "+447946095800"),
        ("5550134", "+1", None),
        ("12345", "+1", None),  # a short code
        ("TEXTPULSE", "+1", None),
        ("", "+1", None),
        ("+0123456789", "+1", None),
    ],
)
def test_normalize_phone(raw: str, prefix: str, e164: str | None) -> None:
    assert normalize_phone(raw, prefix) == e164


def test_scopes_follow_twilio_and_the_platform_rule() -> None:
    assert sender_scope("+18885550100", None) == "+18885550100"
    assert sender_scope("+18885550100", MG) == MG  # a number in a Messaging Service: the whole service
    assert sender_scope("12345", None) is None
    changes = changes_for("+14155550134", "opt_out", "+18885550100")
    assert [(c.scope, c.event_sender) for c in changes] == [("", None), ("+18885550100", "+18885550100")]
    assert [c.scope for c in changes_for("+14155550134", "opt_in", None)] == [""]


def test_source_text_and_local_time() -> None:
    assert source_text("STOP", "keyword", "+14155550134") == "STOP from +14155550134"
    assert source_text(None, "twilio_21610", "+14155550134") == "Twilio 21610 for +14155550134"
    moment = datetime(2025, 6, 3, 18, 5, 9, tzinfo=UTC)
    assert imis_local_time(moment, "America/New_York") == "2025-06-03T14:05:09"


def test_public_url_keeps_the_configured_prefix_and_the_raw_query() -> None:
    assert public_url("https://sms.example.org/", "/twilio/inbound", "tenant=acme") == \
        "https://sms.example.org/twilio/inbound?tenant=acme"
    assert public_url("https://gw.example.org/tp", "/twilio/status", "") == "https://gw.example.org/tp/twilio/status"


@pytest.mark.parametrize("url", ["https://hooks.example.org/twilio/status?org=1",
                                 "https://hooks.example.org:443/twilio/status",
                                 "http://127.0.0.1:8001/twilio/inbound"])
@pytest.mark.parametrize("algorithm", [None, HMAC_SHA1, HMAC_SHA256])
def test_proves_answers_as_the_sdk_for_either_url_form_and_a_forgery(url: str, algorithm: str | None) -> None:
    validator = RequestValidator("auth-token")
    params = FormParams([("AccountSid", "AC1"), ("Body", "STOP"), ("To", "+1"), ("To", "+2")])
    parsed = urlparse(url)
    signatures = {form: validator.compute_signature(form, params, algorithm)
                  for form in (remove_port(parsed), add_port(parsed))}
    for signature in [*signatures.values(), "forged", RequestValidator("other").compute_signature(url, params)]:
        expected = validator.validate(url, params, signature, algorithm=algorithm)
        assert proves(validator, url, params, signature, algorithm) is expected
    assert all(proves(validator, url, params, s, algorithm) for s in signatures.values())


def test_panel_row_matches_imis_shape() -> None:
    job = ImisJob(1, uuid4(), "23145", "+14155550134", "opt_out", "STOP from +14155550134",
                  datetime(2025, 6, 3, 18, 5, 9, tzinfo=UTC), 1, "America/New_York")
    body = panel_entity("TP_SmsPreferences", "23145", panel_values(job))
    assert body["EntityTypeName"] == "TP_SmsPreferences"
    assert body["Identity"]["IdentityElements"]["$values"] == ["23145"]
    assert body["PrimaryParentIdentity"]["EntityTypeName"] == "Party"
    props = {p["Name"]: p.get("Value") for p in body["Properties"]["$values"]}
    assert props == {
        "ID": "23145",
        "SmsOptOut": {"$type": "System.Boolean", "$value": True},
        "SmsOptOutDate": "2025-06-03T14:05:09",
        "SmsOptOutSource": "STOP from +14155550134",
    }
    assert dict(panel_values(replace(job, action="opt_in"))) == {
        "ID": "23145", "SmsOptOut": False, "SmsOptInDate": "2025-06-03T14:05:09",
    }


def test_panel_row_leaves_nulls_out() -> None:
    props = panel_entity("P", "1", [("A", None), ("B", 3)])["Properties"]["$values"]
    assert "Value" not in props[0] and props[1]["Value"] == {"$type": "System.Int32", "$value": 3}


def test_retry_delay_doubles_and_is_capped() -> None:
    delays = [retry_delay(n, base_s=5, cap_s=3600, jitter=0.5) for n in (1, 2, 3, 20)]
    assert delays == [5.0, 10.0, 20.0, 3600.0]
    assert retry_delay(1, base_s=5, cap_s=3600, jitter=0.0) == 4.0

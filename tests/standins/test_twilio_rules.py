"""The Twilio stand-in's pure rules against the reference's worked examples.

See docs/twilio.md#webhook-signatures, docs/twilio.md#opt-out-keywords and docs/twilio.md#toll-free-senders.
"""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from standins.twilio.arrivals import max_in_window
from standins.twilio.keywords import classify, effect
from standins.twilio.messages import Message
from standins.twilio.outcomes import CAPS, VolumeCounter
from standins.twilio.sender_queue import QueueTooLong, SenderQueues
from standins.twilio.signature import sign

WORKED_URL = "https://sms.textpulse.example.org/twilio/inbound?tenant=acme"
WORKED_PARAMS = {
    "ToCountry": "US", "ToState": "", "SmsMessageSid": "SM0b7c2d9e4f1a3b5c6d7e8f90a1b2c3d4", "NumMedia": "0",
    "ToCity": "", "FromZip": "94107", "SmsSid": "SM0b7c2d9e4f1a3b5c6d7e8f90a1b2c3d4", "FromState": "CA",
    "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": "Stop", "FromCountry": "US", "To": "+18885550100",
    "MessagingServiceSid": "MG1f2e3d4c5b6a79880716253443526170", "ToZip": "", "NumSegments": "1",
    "MessageSid": "SM0b7c2d9e4f1a3b5c6d7e8f90a1b2c3d4", "AccountSid": "AC5ef8732a3c49700934481addd5ce1659",
    "From": "+14155550134", "ApiVersion": "2010-04-01", "OptOutType": "STOP",
}


def test_signature_matches_the_worked_example_and_twilios_test_vector() -> None:
    token = "0123456789abcdef0123456789abcdef"

    assert sign(token, WORKED_URL, WORKED_PARAMS.items()) == "6SXBx/ELbouhVd8XP1T9YBTRKWo="
    vector = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    vector_url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign("12345", vector_url, vector.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert RequestValidator(token).validate(WORKED_URL, WORKED_PARAMS, "6SXBx/ELbouhVd8XP1T9YBTRKWo=")


@pytest.mark.parametrize(
    ("body", "toll_free", "kind"),
    [
        ("STOP", True, "STOP"), ("  sToP ", True, "STOP"), ("optout", False, "STOP"), ("REVOKE", True, "STOP"),
        ("OPT OUT", True, None), ("Stop please", True, None), ("UNSTOP", True, "START"), ("START", True, "START"),
        ("YES", True, None), ("YES", False, "START"), ("info", True, "HELP"),
    ],
)
def test_keywords(body: str, toll_free: bool, kind: str | None) -> None:
    assert classify(body, toll_free=toll_free) == kind


def test_help_gets_no_reply_once_opted_out() -> None:
    assert effect("HELP", toll_free=True, opted_out_before=False).auto_reply
    assert effect("HELP", toll_free=True, opted_out_before=True).auto_reply is None
    assert effect("Start", toll_free=True, opted_out_before=True).auto_reply == (
        'NETWORK MSG: You have replied "Start" and will begin receiving messages again from this number.'
    )


def _message(seq: int, segments: int) -> Message:
    return Message(seq, f"SM{seq:032x}", "AC", "+1", "+18885550100", "b", None, "queued", "outbound-api", segments,
                   "GSM-7", 0.0, 0.0, "+18885550100")


def test_queue_slots_are_segments_over_rate_and_refuse_past_validity() -> None:
    queues = SenderQueues()

    departures = [queues.enqueue(_message(i, s), "+18885550100", 3.0, 100.0, 1.9) for i, s in enumerate((3, 1, 2))]
    with pytest.raises(QueueTooLong):
        queues.enqueue(_message(9, 1), "+18885550100", 3.0, 100.0, 1.9)

    assert departures == pytest.approx([100.0, 101.0, 101 + 1 / 3])
    assert [m.seq for m in queues.pop_due(101.0)] == [0, 1]
    queues.set_rate("+18885550100", 1.0, 101.0)  # waiting messages get slots at the new rate
    later = queues.enqueue(_message(10, 1), "+18885550100", 1.0, 101.0, None)
    assert later == pytest.approx(101 + 1 / 3 + 2)


def test_sliding_window_counts_half_open_windows() -> None:
    events = [(0.0, 3), (1.0, 3), (1.5, 1), (1.99, 2)]

    assert max_in_window(events, 1.0) == 6


def test_2023_caps_count_segments_per_day() -> None:
    counter = VolumeCounter()
    day_cap = CAPS["restricted"][0]

    assert counter.within_caps("+18885550104", day_cap, CAPS["restricted"], 1_750_000_000.0)
    assert not counter.within_caps("+18885550104", 1, CAPS["restricted"], 1_750_000_001.0)
    assert counter.within_caps("+18885550104", 1, CAPS["restricted"], 1_750_000_000.0 + 86_400)

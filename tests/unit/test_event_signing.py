"""Outgoing events' signatures: what a receiver computes from the README's recipe matches, and a forged,
altered or stale one does not."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libs.common import event_signing
from libs.common.outgoing_events import event_id, outgoing

SECRET = "whsec_0123456789abcdef"
BODY = b'{"data":{"phone":"+14155550134"},"id":"e1","type":"opted_out"}'
NOW = 1_764_752_400


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_as_the_readme_says() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.{BODY.decode()}".encode(), hashlib.sha256).hexdigest()
    assert event_signing.sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert event_signing.verify(SECRET, str(NOW), BODY, f"v1={expected}", now=NOW + 5)


def test_a_forged_altered_or_stale_signature_fails() -> None:
    good = event_signing.sign(SECRET, NOW, BODY)
    assert not event_signing.verify(SECRET, str(NOW), BODY, event_signing.sign("whsec_guess", NOW, BODY), now=NOW)
    assert not event_signing.verify(SECRET, str(NOW), BODY.replace(b"out", b"in"), good, now=NOW)
    assert not event_signing.verify(SECRET, str(NOW + 1), BODY, good, now=NOW)  # the timestamp is signed too
    assert not event_signing.verify(SECRET, str(NOW), BODY, good, now=NOW + event_signing.TOLERANCE_S + 1)
    assert not event_signing.verify(SECRET, "not-a-time", BODY, good, now=NOW)


def test_new_secrets_are_long_and_different() -> None:
    first, second = event_signing.new_secret(), event_signing.new_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 40


def test_an_event_made_twice_from_one_record_is_the_same_event_with_the_same_bytes() -> None:
    org, source = uuid.uuid4(), str(uuid.uuid4())
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    once = outgoing(source, org, "clicked", "+14155550134", at, phone="+14155550134", run_id=org, device=None)
    again = outgoing(source, org, "clicked", "+14155550134", at, phone="+14155550134", run_id=org, device=None)
    assert once.id == again.id == event_id(source, "clicked") and once.body() == again.body()
    assert event_id(source, "clicked") != event_id(source, "replied")
    assert "device" not in once.data and once.data["run_id"] == str(org)


def test_the_readme_verification_snippet_accepts_our_signature_and_refuses_a_forged_one() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Outgoing signed events"):]
    snippet = section[section.index("```python\n") + len("```python\n"):section.index("```\n\nAny 2xx")]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # the README's own code, run as a receiver would
    timestamp = int(time.time())
    headers = {event_signing.TIMESTAMP_HEADER: str(timestamp),
               event_signing.SIGNATURE_HEADER: event_signing.sign(SECRET, timestamp, BODY)}
    assert namespace["verify"](SECRET, headers, BODY)
    assert not namespace["verify"]("whsec_forger", headers, BODY)
    assert not namespace["verify"](SECRET, headers, BODY + b" ")

"""A run's recipient events written straight from its snapshot rows are the events the model writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from libs.common.events import Recipient
from services.audience.db import Unpublished
from services.audience.publishing import RunOfRecipients, encode_recipients

RUN = RunOfRecipients(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), validity_period_s=3_600)
NOW = datetime(2026, 12, 2, 15, 0, 5, 120_000, tzinfo=UTC)


def _row(position: int, body: str = "Hi Zoë, your Québec renewal is open ✓", segments: int = 1) -> Unpublished:
    return Unpublished(position, uuid.uuid4(), f"+1415555{position:04d}", body, segments, "+18885550100")


def test_each_row_becomes_the_json_of_its_recipient_event() -> None:
    rows = [_row(1), _row(2, body='Say "yes" \\ reply\nSTOP to end', segments=2)]

    encoded = encode_recipients(RUN, rows, now=NOW)

    assert [sender for sender, _ in encoded] == ["+18885550100", "+18885550100"]
    for row, (_, value) in zip(rows, encoded, strict=True):
        event = Recipient.model_validate_json(value)
        expected = Recipient(org_id=RUN.org_id, campaign_id=RUN.campaign_id, run_id=RUN.run_id,
                             recipient_id=row.recipient_id, sender=row.sender, to=row.e164, body=row.body,
                             segments=row.segments, validity_period_s=RUN.validity_period_s,
                             event_id=event.event_id, occurred_at=NOW)
        assert event == expected
        assert orjson.loads(value) == orjson.loads(expected.model_dump_json())  # same fields, same spelling
        assert list(orjson.loads(value)) == list(Recipient.model_fields)  # in the model's order


def test_every_event_has_its_own_id() -> None:
    encoded = encode_recipients(RUN, [_row(i) for i in range(50)], now=NOW)

    assert len({orjson.loads(value)["event_id"] for _, value in encoded}) == 50


def test_a_row_the_schema_refuses_fails_the_batch_before_anything_is_sent() -> None:
    with pytest.raises(ValidationError):
        encode_recipients(RUN, [_row(1, segments=0)], now=NOW)
    assert encode_recipients(RUN, []) == []

import json
import uuid

import pytest

from libs.common.errors import EventRejected
from libs.common.events import Recipient
from libs.common.kafka import decode_event
from libs.common.topics import ALL_TOPICS, RECIPIENTS


def _recipient_json(**changes: object) -> bytes:
    event = Recipient(
        org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
        sender="+18885550100", to="+14155550134", body="Hi Zoë", segments=1,
    )
    data = json.loads(event.model_dump_json())
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_a_valid_event_round_trips() -> None:
    event = decode_event(RECIPIENTS, _recipient_json())
    assert isinstance(event, Recipient) and event.body == "Hi Zoë"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"not json {", "event_not_json"),
        (b"\xff\xfe", "event_not_json"),
        (b"[1, 2]", "event_not_object"),
        (None, "event_empty"),
        (_recipient_json(schema_version=2), "schema_version_unsupported"),
        (_recipient_json(to=...), "schema_invalid"),
        (_recipient_json(to="4155550134"), "schema_invalid"),
        (_recipient_json(segments=0), "schema_invalid"),
        (_recipient_json(surprise="field"), "schema_invalid"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(raw: bytes | None, code: str) -> None:
    with pytest.raises(EventRejected) as caught:
        decode_event(RECIPIENTS, raw)
    assert caught.value.code == code


def test_topic_names_are_unique_and_recipients_allow_several_dispatchers() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert RECIPIENTS.partitions >= 12

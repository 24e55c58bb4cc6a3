"""The snapshot rule: which code an event that does not match its run's frozen snapshot is refused with."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from libs.common.events import Recipient
from services.dispatcher.snapshot import SnapshotRow, check_against_snapshot

EVENT = Recipient(org_id=uuid.uuid4(), campaign_id=uuid.uuid4(), run_id=uuid.uuid4(), recipient_id=uuid.uuid4(),
                  sender="+18885550101", to="+14155550100", body="Hi Ann, the AGM is on Friday.", segments=1)
STORED = SnapshotRow(run_org_id=EVENT.org_id, run_campaign_id=EVENT.campaign_id, status="queued", e164=EVENT.to,
                     body=EVENT.body, segments=1, sender=EVENT.sender, sender_known=True)
NOTHING = SnapshotRow(None, None, None, None, None, None, None, False)


def test_an_event_equal_to_its_snapshot_row_is_sent() -> None:
    assert check_against_snapshot(EVENT, STORED) is None


@pytest.mark.parametrize(("row", "code"), [
    (NOTHING, "run_unknown"),
    (replace(STORED, run_org_id=uuid.uuid4()), "org_mismatch"),
    (replace(STORED, run_campaign_id=uuid.uuid4()), "run_mismatch"),
    (replace(STORED, status=None, e164=None, body=None, segments=None, sender=None, sender_known=False),
     "not_in_snapshot"),
    (replace(STORED, status="excluded"), "recipient_excluded"),
    (replace(STORED, e164=None, body=""), "recipient_erased"),
    (replace(STORED, e164="+14155550199"), "content_mismatch"),
    (replace(STORED, body="Hi Bob, the AGM is on Friday."), "content_mismatch"),
    (replace(STORED, segments=2), "content_mismatch"),
    (replace(STORED, sender="+18885550102"), "sender_mismatch"),
    (replace(STORED, sender_known=False), "sender_unknown"),
])
def test_an_event_that_differs_from_the_database_is_refused_with_its_code(row: SnapshotRow, code: str) -> None:
    refused = check_against_snapshot(EVENT, row)
    assert refused is not None and refused.code == code


def test_the_refusal_names_what_differs_and_never_the_number() -> None:
    refused = check_against_snapshot(EVENT, replace(STORED, e164="+14155550199", body="Other"))
    assert refused is not None and "to, body differ" in str(refused) and EVENT.to not in str(refused)

"""What an approval pins, who may give it, and the check before a send (services/api/approval.py)."""

from __future__ import annotations

import doctest
import hashlib
import json
import uuid
from typing import Any

import pytest

from libs.common import approval as shared
from libs.common import run_reasons
from libs.common.alert_templates import AlertKind
from services.api import approval
from services.api.deps import Organisation, Principal
from services.api.errors import Conflict, Forbidden
from services.usage.conditions import classify_run

ORG = Organisation(uuid.uuid4(), "America/New_York", 20_000, None, require_approval=True)
CAMPAIGN: dict[str, Any] = {
    "name": "AGM", "body": "Hi, the AGM is on Thursday.", "sender_id": uuid.uuid4(), "segment_limit": 20_000,
    "audience": {"kind": "iqa", "query": "$/Members/AGM", "parameters": ["2026", "NY"]},
    "created_by": "sam@example.org", "content_authors": ["sam@example.org", "dana@example.org"],
}


def person(actor: str, role: str = "approver", via: str = "session") -> Principal:
    return Principal(ORG, role, actor, via)  # type: ignore[arg-type]


def test_the_fingerprint_pins_wording_audience_sender_link_tracking_and_transactional_only() -> None:
    pinned = approval.fingerprint(CAMPAIGN)
    reordered = CAMPAIGN | {"audience": {"parameters": ["2026", "NY"], "query": "$/Members/AGM", "kind": "iqa"}}
    assert approval.fingerprint(reordered) == pinned  # as jsonb gives it back, in any key order
    assert approval.fingerprint(CAMPAIGN | {"name": "AGM reminder", "segment_limit": 15_000}) == pinned
    for change in ({"body": "Hi, the AGM moved."}, {"sender_id": None}, {"audience": {"kind": "list"}},
                   {"audience": CAMPAIGN["audience"] | {"parameters": ["2026", "NJ"]}},
                   {"track_links": True},  # members get a short link instead of the URL approved
                   {"transactional": True}):  # the marketing cap no longer applies
        assert approval.fingerprint(CAMPAIGN | change) != pinned, change
        assert approval.changes_pinned(CAMPAIGN, CAMPAIGN | change)


def test_an_approval_from_before_tracking_and_transactional_were_pinned_holds_while_both_are_off() -> None:
    content = {name: CAMPAIGN.get(name) for name in shared.FIRST_PINNED_FIELDS} | {"track_links": False,
                                                                                     "transactional": False}
    before = {name: content[name] for name in shared.FIRST_PINNED_FIELDS}
    approved_then = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
    assert approved_then != shared.fingerprint(content)
    assert shared.problem(approved_then, [content]) is None
    for change in ({"track_links": True}, {"transactional": True}, {"body": "Hi, the AGM moved."}):
        assert shared.problem(approved_then, [content | change]) == "approval_outdated", change


def test_the_fingerprint_pins_the_sender_it_would_send_from() -> None:
    on_default = CAMPAIGN | {"sender_id": None, "effective_sender_id": uuid.uuid4()}
    moved = on_default | {"effective_sender_id": uuid.uuid4()}  # an admin chose another default sender
    assert approval.fingerprint(moved) != approval.fingerprint(on_default)
    assert not approval.changes_pinned(on_default, moved)  # not an edit of the campaign's own


@pytest.mark.parametrize(("principal", "code"), [
    (person("alex@example.org", role="staff"), "approver_only"),
    (person("api-key:sync", role="admin", via="api_key"), "approver_only"),
    (person("sam@example.org"), "author_cannot_approve"),  # its creator
    (person("dana@example.org", role="admin"), "author_cannot_approve"),  # changed its wording
])
def test_only_an_approver_or_admin_who_is_none_of_its_authors_may_approve(principal: Principal, code: str) -> None:
    with pytest.raises(Forbidden) as refused:
        approval.ensure_may_approve(principal, CAMPAIGN)
    assert refused.value.code == code
    assert not approval.may_review(principal, CAMPAIGN)


@pytest.mark.parametrize("role", ["approver", "admin"])
def test_an_approver_or_admin_who_did_not_write_it_may_approve(role: str) -> None:
    approval.ensure_may_approve(person("alex@example.org", role=role), CAMPAIGN)
    assert approval.may_review(person("alex@example.org", role=role), CAMPAIGN)


def test_a_send_needs_an_approval_of_exactly_the_stored_content() -> None:
    with pytest.raises(Conflict) as missing:
        approval.ensure_approved(CAMPAIGN | {"approval_fingerprint": None})
    assert missing.value.code == "approval_required"
    approved = CAMPAIGN | {"approval_fingerprint": approval.fingerprint(CAMPAIGN)}
    approval.ensure_approved(approved)
    with pytest.raises(Conflict) as outdated:
        approval.ensure_approved(approved | {"body": "Unapproved words"})
    assert outdated.value.code == "approval_outdated"


def test_the_scheduler_reads_a_run_and_its_campaign_with_the_fingerprint_the_api_pinned() -> None:
    default_sender = uuid.uuid4()
    campaign = CAMPAIGN | {"sender_id": None, "effective_sender_id": default_sender}
    pinned = approval.fingerprint(campaign)  # as the approve route pins it
    run = {"body": CAMPAIGN["body"], "audience": dict(reversed(CAMPAIGN["audience"].items())),
           "sender_id": default_sender}  # the run's copy: the sender it sends from
    assert shared.problem(pinned, [run, campaign]) is None
    assert shared.problem(pinned, [run | {"body": "Unapproved words"}, campaign]) == "approval_outdated"
    assert shared.problem(pinned, [run, campaign | {"effective_sender_id": uuid.uuid4()}]) == "approval_outdated"
    assert shared.problem(None, [run, campaign]) == "approval_required"


def test_the_shared_modules_examples_hold() -> None:
    assert doctest.testmod(shared).failed == 0


def test_a_run_the_scheduler_withholds_is_alerted_as_a_run_that_did_not_send() -> None:
    for problem in ("approval_required", "approval_outdated"):
        reason = run_reasons.not_approved(problem)  # type: ignore[arg-type]
        assert reason.text.startswith(f"{problem}: ")
        assert classify_run("refused", reason) is AlertKind.RUN_FAILED

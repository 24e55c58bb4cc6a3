"""What an approval pins, and whether content is still what was approved: one rule for the API and the
scheduler. Pure.

An approval pins :func:`fingerprint` of what decides what members get: a campaign's wording, audience
definition and sender, whether its links become tracked short links and whether it is transactional (which
lifts the marketing cap) (``campaigns.approval_fingerprint``). The API compares it before a schedule or send-now
(``services/api/approval.py``); the scheduler compares it again before it publishes any run, the one step
every send passes (send now, a schedule, each occurrence of a series), so content changed after approval
by any means is never sent.

Approvals given while only the wording, audience and sender were pinned (:data:`FIRST_PINNED_FIELDS`) stay
valid for a campaign with neither link tracking nor the transactional flag on, so an upgrade does not send
every approved campaign back to review; one with either on needs approving again.

    >>> content = {"body": "Hi", "audience": {"kind": "list", "list_id": 7}, "sender_id": None}
    >>> problem(fingerprint(content), [content]) is None
    True
    >>> problem(fingerprint(content), [content | {"body": "Hi!"}])
    'approval_outdated'
    >>> problem(None, [content])
    'approval_required'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

# What an approval fixes: changing any of them needs a new approval.
PINNED_FIELDS: Final = ("body", "audience", "sender_id", "track_links", "transactional")

# What approvals pinned before link tracking and the transactional flag were added.
FIRST_PINNED_FIELDS: Final = ("body", "audience", "sender_id")

ApprovalProblem = Literal["approval_required", "approval_outdated"]


def fingerprint(campaign: Mapping[str, Any]) -> str:
    """The SHA-256 of the campaign's :data:`PINNED_FIELDS` (the audience decoded), independent of key order.

    The sender is the one it would send from (``effective_sender_id``, as the API reads a campaign; a run's
    ``sender_id`` already is): a campaign on the organisation's default sender is no longer approved once
    that default changes.
    """
    return _digest(campaign, PINNED_FIELDS)


def _digest(campaign: Mapping[str, Any], names: tuple[str, ...]) -> str:
    pinned = {name: campaign.get(name) for name in names}
    if "effective_sender_id" in campaign:
        pinned["sender_id"] = campaign["effective_sender_id"]
    return hashlib.sha256(json.dumps(pinned, sort_keys=True, default=str).encode()).hexdigest()


def _approved(pinned: str, content: Mapping[str, Any]) -> bool:
    if fingerprint(content) == pinned:
        return True
    first_kind = not content.get("track_links") and not content.get("transactional")
    return first_kind and _digest(content, FIRST_PINNED_FIELDS) == pinned


def problem(pinned: str | None, contents: Iterable[Mapping[str, Any]]) -> ApprovalProblem | None:
    """Why ``contents`` may not be sent under the approval ``pinned``, or None when each is what was approved."""
    if pinned is None:
        return "approval_required"
    if not all(_approved(pinned, content) for content in contents):
        return "approval_outdated"
    return None

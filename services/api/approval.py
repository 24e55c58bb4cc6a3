"""Approval before sending (issue 27): what an approval pins, who may give it, and the check before a send.

An organisation with ``require_approval`` has each campaign approved by an admin or approver who is none of
its authors (``content_authors``: whoever wrote or changed its wording, audience or sender). The approval
pins :func:`fingerprint` of those three; schedule and send-now compare it with the content as stored, so a
change after approval (which also sends the campaign back to review) can never be sent unapproved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from services.api.deps import Principal
from services.api.errors import Conflict, Forbidden

# What an approval fixes: changing any of them needs a new approval.
PINNED_FIELDS: Final = ("body", "audience", "sender_id")


def fingerprint(campaign: Mapping[str, Any]) -> str:
    """The SHA-256 of the campaign's wording, audience definition and sender, independent of key order.

    The sender is the one it would send from (``effective_sender_id``, as the API reads a campaign): a
    campaign on the organisation's default sender is no longer approved once that default changes.
    """
    pinned = {name: campaign.get(name) for name in PINNED_FIELDS}
    if "effective_sender_id" in campaign:
        pinned["sender_id"] = campaign["effective_sender_id"]
    return hashlib.sha256(json.dumps(pinned, sort_keys=True, default=str).encode()).hexdigest()


def changes_pinned(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether an edit changes the wording, audience or the sender chosen (not the default it stands for)."""
    return any(before.get(name) != after.get(name) for name in PINNED_FIELDS)


def ensure_may_approve(principal: Principal, campaign: Mapping[str, Any]) -> None:
    """Raise Forbidden unless ``principal`` may approve or reject ``campaign``."""
    if not principal.may_approve:
        raise Forbidden("approver_only", "only an admin or an approver, signed in, may approve or reject a campaign")
    if principal.actor in (campaign.get("content_authors") or ()) or principal.actor == campaign.get("created_by"):
        raise Forbidden("author_cannot_approve",
                        "you wrote or changed this campaign; someone else must approve or reject it")


def may_review(principal: Principal, campaign: Mapping[str, Any]) -> bool:
    """Whether the page offers ``principal`` Approve and Reject (the routes check again)."""
    try:
        ensure_may_approve(principal, campaign)
    except Forbidden:
        return False
    return True


def ensure_approved(campaign: Mapping[str, Any]) -> None:
    """Raise Conflict unless the campaign's content is exactly what was approved (the check before a send)."""
    pinned = campaign.get("approval_fingerprint")
    if pinned is None:
        raise Conflict("approval_required", "this organisation requires approval: submit the campaign for review")
    if pinned != fingerprint(campaign):
        raise Conflict("approval_outdated",
                       "the wording, audience or sender changed after approval: submit it for review again")

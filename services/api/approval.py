"""Approval before sending (issue 27): what an approval pins, who may give it, and the check before a send.

An organisation with ``require_approval`` has each campaign approved by an admin or approver who is none of
its authors (``content_authors``: whoever wrote or changed what an approval pins,
``libs.common.approval.PINNED_FIELDS``). The approval pins their ``libs.common.approval.fingerprint``;
schedule and send-now compare it with the content as stored, and the scheduler compares it again before it
publishes a run, so a change after approval (which also sends the campaign back to review) can never be
sent unapproved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.common.approval import PINNED_FIELDS, fingerprint, problem
from services.api.deps import Principal
from services.api.errors import Conflict, Forbidden

__all__ = ["PINNED_FIELDS", "changes_pinned", "ensure_approved", "ensure_may_approve", "fingerprint", "may_review"]


def changes_pinned(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether an edit changes what an approval pins (the sender chosen, not the default it stands for)."""
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
    found = problem(campaign.get("approval_fingerprint"), [campaign])
    if found == "approval_required":
        raise Conflict(found, "this organisation requires approval: submit the campaign for review")
    if found == "approval_outdated":
        raise Conflict(found, "the wording, audience, sender, link tracking or transactional setting changed "
                              "after approval: submit it for review again")

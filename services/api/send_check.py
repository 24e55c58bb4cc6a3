"""Send now and schedule refuse up front what could not be sent to anyone (:mod:`libs.common.send_checks`).

:func:`check_sendable` runs before the send's transaction, so no campaign lock is held while iMIS answers:

- the body rendered with the composer's sample member (:func:`libs.common.preflight.preview`) over
  ``MAX_SEGMENTS`` segments -> ``segments_over_limit`` on ``body``;
- a bounded sample of the audience (:data:`services.api.audience_sample.SEND_CHECK`: one iMIS page, the
  first stored rows) -> ``audience_too_large`` when its size (iMIS's TotalCount, the stored rows) is over
  ``member_cap``; ``audience_empty`` when the audience has no members or the sample is the whole
  audience and everyone is left out; ``sender_unverified`` when an unverified sender would text a
  US/Canada number in it.

Each refusal is an ``InvalidInput`` (422 problem+json with the field and the sentence the composer shows).
iMIS not answering, refusing the query, or not set up does not block the send: the audience service decides when the
run starts, and the answer carries a warning saying the audience was not checked. Body and audience
errors that the campaign's own checks report (an unknown merge field, no audience) are left to them.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common.audience import AudienceInvalid, parse_audience
from libs.common.errors import PermanentError, RetryableError
from libs.common.merge import MergeError
from libs.common.phone import region_for_prefix
from libs.common.preflight import preview
from libs.common.secret_store import SecretStore
from libs.common.segments import InvalidBody
from libs.common.send_checks import Refusal, over_segments
from services.api import audience_sample
from services.api.deps import Organisation, WebConfig
from services.api.errors import InvalidInput, NotFound

__all__ = ["check_sendable"]


async def check_sendable(pool: asyncpg.Pool, secrets: SecretStore, org: Organisation, campaign: dict[str, Any],
                         web: WebConfig, member_cap: int) -> list[str]:
    """Raise InvalidInput when nobody could receive ``campaign``; return warnings about what was not checked."""
    body = campaign.get("body") or ""
    try:
        rendered = preview(body, None, region_for_prefix(org.default_country_prefix)) if body.strip() else None
    except (MergeError, InvalidBody, PermanentError):
        return []  # the campaign's own checks name this error
    if rendered is not None:
        _refuse(over_segments(rendered["segments"]))
    try:
        audience = parse_audience(campaign.get("audience"))
    except AudienceInvalid:
        return []  # none yet (the campaign's checks say so) or one the run will fail with audience_invalid
    try:
        sample = await audience_sample.sample_audience(
            pool, secrets, org.id, org.default_country_prefix, audience, body=body or None,
            sender_id=campaign.get("sender_id"), web=web, limits=audience_sample.SEND_CHECK)
    except NotFound as exc:
        raise InvalidInput("audience", exc.code, exc.message.split(": ", 1)[-1]) from None
    except InvalidInput as exc:
        if exc.field != "audience.query":
            return []  # the body's unknown merge field: the campaign's own checks name it
        return [_not_checked(exc.message.split(": ", 1)[-1])]
    except (RetryableError, PermanentError) as exc:  # iMIS down or refusing: the run decides when it starts
        return [_not_checked(exc.message)]
    _refuse(audience_sample.refusal(sample, member_cap))
    return []


def _not_checked(why: str) -> str:
    return f"the audience was not checked before sending ({why}); it is read when the run starts"


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise InvalidInput(refusal.field, refusal.code, refusal.message)

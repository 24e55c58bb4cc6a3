"""``POST /api/v1/messages/preview``: the composer's live segment counter and cost estimate.

A thin edge over :func:`libs.common.preflight.preview`, which does the counting; a body that cannot be
sent (an unknown merge field, a control character, 1,601 characters) comes back as problem+json with
the module's code, like every other error. With ``recipients`` the answer also totals the segments and
the cost for that many members and compares the total with the campaign's segment limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.errors import PermanentError
from libs.common.links import LinkError, short_link_length
from libs.common.merge import MergeError
from libs.common.phone import region_for_prefix
from libs.common.preflight import preview
from libs.common.pricing import FAILED_MESSAGE_FEE
from libs.common.segments import InvalidBody
from libs.common.send_checks import over_segments
from services.api.deps import OrgDep, WebDep
from services.api.errors import InvalidInput
from services.api.schemas import RefusalOut

router = APIRouter(prefix="/messages", tags=["messages"])


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"body": "Hi {{first_name}}, it’s renewal time!", "recipients": 1200}]},
    )

    body: Annotated[str, StringConstraints(max_length=10_000)]
    country: Annotated[str, StringConstraints(min_length=2, max_length=2)] | None = Field(
        default=None, description="ISO 3166 code of the destination; default: the organisation's default prefix's")
    sample_values: dict[str, Annotated[str, StringConstraints(max_length=500)]] | None = Field(
        default=None, max_length=50, description="merge values to render with; default: a sample member")
    smart_encoding: bool = Field(default=False, description="whether the sender has Twilio's Smart Encoding on")
    recipients: int | None = Field(default=None, ge=0, le=10_000_000, description="members, for the totals")
    segment_limit: int | None = Field(default=None, gt=0, description="the campaign's limit; default: the org's")
    track_links: bool = Field(default=False, description="show and count each link as the tracked short link "
                              "a member receives")


class Ucs2CharacterOut(BaseModel):
    character: str
    code_points: str
    name: str
    occurrences: int
    replacement: str | None = Field(description="the GSM-7 text that can replace it, or null if none")


class SmartEncoded(BaseModel):
    body: str
    encoding: str
    segments: int


class EstimateOut(BaseModel):
    recipients: int
    segments: int = Field(description="segments per recipient x recipients")
    send_cost: str | None = Field(description="USD; null when the destination has no price")
    failed_message_fee: str = Field(description="USD charged per message that ends failed (pass-along)")
    pumping_protection_may_apply: bool
    segment_limit: int = Field(description="the campaign's limit, capped by the account's maximum")
    over_limit: bool


class PreviewOut(BaseModel):
    body: str = Field(description="the body rendered with the sample values")
    fields: list[str]
    encoding: str
    segments: int
    characters: int
    units: int
    remaining_in_segment: int
    part_units: list[int]
    ucs2_characters: list[Ucs2CharacterOut]
    smart_encoded: SmartEncoded | None
    country: str
    cost_per_recipient: str | None
    warnings: list[str]
    estimate: EstimateOut | None = None
    refusal: RefusalOut | None = Field(default=None, description="set when the text is over the maximum "
                                       "segments: send-now refuses it with these words")
    short_link_length: int | None = Field(default=None, description="with track_links: the characters each "
                                          "tracked link takes in the text a member receives")


@router.post("/preview", summary="Count segments, explain UCS-2 and estimate cost for a message body")
async def preview_message(body: PreviewIn, org: OrgDep, web: WebDep) -> PreviewOut:
    country = body.country or region_for_prefix(org.default_country_prefix)
    try:
        result = preview(body.body, body.sample_values, country, smart_encoding=body.smart_encoding,
                         short_link_base=web.short_links(org) if body.track_links else None)
    except (MergeError, InvalidBody, LinkError) as exc:
        raise InvalidInput("body", exc.code, exc.message) from None
    except PermanentError as exc:
        if exc.code == "country_invalid":
            raise InvalidInput("country", exc.code, exc.message) from None
        raise
    out = PreviewOut.model_validate(result)
    if body.track_links:
        out.short_link_length = short_link_length(web.short_links(org))
    refused = over_segments(out.segments)
    if refused is not None:
        out.refusal = RefusalOut(field=refused.field, code=refused.code, message=refused.message)
    if body.recipients is not None:
        limit = body.segment_limit or org.campaign_segment_limit
        if org.account_max_segments is not None:
            limit = min(limit, org.account_max_segments)
        total = out.segments * body.recipients
        per = out.cost_per_recipient
        out.estimate = EstimateOut(
            recipients=body.recipients,
            segments=total,
            send_cost=None if per is None else str(Decimal(per) * body.recipients),
            failed_message_fee=str(FAILED_MESSAGE_FEE),
            pumping_protection_may_apply="pumping_protection_may_apply" in out.warnings,
            segment_limit=limit,
            over_limit=total > limit,
        )
    return out

"""An audience's first members, classified by the run's own rules: for the preview and the send checks.

:func:`sample_audience` reads a bounded sample (a few iMIS pages, the first rows of a CSV upload or a
list) with its size (iMIS's ``TotalCount``, the upload's or list's rows), renders the body for each
member with their merge values, classifies them with :func:`libs.common.audience_rules.classify` (the
suppressions and bad numbers of the campaign's sender, as a run does) and estimates the whole audience
(:mod:`libs.common.audience_estimate`). :func:`refusal` says, in :mod:`libs.common.send_checks`' words,
why it would not be sent: more members than a run may have, or nobody who would receive it.

Errors: ``InvalidInput`` naming the field (``audience.query`` without an iMIS site, ``body`` with an
unknown merge field), ``NotFound`` for another organisation's upload or list, and the IQA client's
errors as they are (``DependencyUnavailable`` ``imis_unavailable``, ``iqa_not_found``...).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import asyncpg
import httpx

from libs.common import audience_rules as rules
from libs.common.audience import AudienceSpec, CsvAudience, IqaAudience
from libs.common.audience_estimate import AudienceEstimate, estimate_audience
from libs.common.audience_members import IqaRows
from libs.common.imis_iqa import ImisQueryClient, RetryPolicy
from libs.common.merge import STANDARD_FIELDS, MergeError, Template, compile_template
from libs.common.pricing import PriceTable
from libs.common.secret_store import SecretStore
from libs.common.send_checks import Refusal, nobody_receives, over_member_cap, sender_cannot_reach
from services.api import uploads_db
from services.api.deps import WebConfig
from services.api.errors import InvalidInput, NotFound

__all__ = ["PREVIEW", "SEND_CHECK", "AudienceSample", "SampleLimits", "refusal", "sample_audience"]


@dataclass(frozen=True, slots=True)
class SampleLimits:
    """How much of an audience to read: iMIS pages of 500 (one at a time, as ASI asks), stored rows."""

    imis_pages: int
    rows: int
    imis_timeout: httpx.Timeout
    imis_retry: RetryPolicy


# The composer's preview: 10,000 members, about 10 s on a slow iMIS site.
PREVIEW: Final = SampleLimits(20, 10_000, httpx.Timeout(15.0, connect=5.0), RetryPolicy(attempts=2, base_s=0.5,
                                                                                          cap_s=2.0))
# Send now / schedule: one page and one try, so a 100,000-member IQA or a slow iMIS cannot hold the button.
SEND_CHECK: Final = SampleLimits(1, 500, httpx.Timeout(5.0, connect=3.0), RetryPolicy(attempts=1))


@dataclass(frozen=True, slots=True)
class AudienceSample:
    estimate: AudienceEstimate
    sender: uploads_db.Sender | None
    body_known: bool
    rows: tuple[rules.SnapshotRow, ...] = ()  # the sample, classified (``reason`` None: a recipient)


async def sample_audience(
    pool: asyncpg.Pool, secrets: SecretStore, org_id: UUID, prefix: str, audience: AudienceSpec, *,
    body: str | None, sender_id: UUID | None, web: WebConfig, limits: SampleLimits,
    prices: PriceTable | None = None,
) -> AudienceSample:
    """Read, render, classify and estimate; see the module docstring. No connection is held while iMIS answers."""
    refused: dict[str, int] = {}
    async with pool.acquire() as conn:
        sender = await uploads_db.campaign_sender(conn, org_id, sender_id)
        if isinstance(audience, IqaAudience):
            source = await uploads_db.imis_source(conn, secrets, org_id)
        elif isinstance(audience, CsvAudience):
            upload = await uploads_db.upload(conn, org_id, audience.upload_id)
            if upload is None:
                raise NotFound("csv_upload_not_found", f"audience.upload_id: no CSV upload {audience.upload_id}")
            size = upload["rows_accepted"]
            members = await uploads_db.csv_sample(conn, audience.upload_id, limits.rows)
            refused = upload["rejected_by_reason"]
            fields = set(upload["mapping"]) - {"mobile"}
        else:
            found = await uploads_db.list_size(conn, org_id, audience.list_id)
            if found is None:
                raise NotFound("list_not_found", f"audience.list_id: no member list {audience.list_id}")
            size = found
            members, fields = await uploads_db.list_sample(conn, audience.list_id, limits.rows)
    if isinstance(audience, IqaAudience):
        fields = source.columns.merge_fields() if source is not None else set()
        template = _template(body, fields)
        members, size = await _iqa_sample(source, web, audience, template, limits)
    else:
        template = _template(body, fields | {"member_id", "full_name"})
    numbers = sorted(rules.candidate_numbers(members, prefix))
    async with pool.acquire() as conn:
        suppressed, bad = await uploads_db.excluded_numbers(conn, secrets, org_id, sender.address if sender else None,
                                                            numbers)
    rows = await asyncio.to_thread(rules.classify, members, template, default_country_prefix=prefix,
                                   suppressed=suppressed, bad_numbers=bad)
    estimate = estimate_audience(rows, audience=max(size, len(rows)), refused=refused, prices=prices)
    return AudienceSample(estimate, sender, template is not None, tuple(rows))


def refusal(sample: AudienceSample, member_cap: int) -> Refusal | None:
    """Why it would not be sent, judged on the sample: more members than ``member_cap`` (the audience's
    size is known from iMIS's TotalCount or the stored rows); an empty audience only when the sample was
    the whole audience (or the audience has no members at all); an unreachable sender on any sampled number."""
    figures = sample.estimate
    too_large = over_member_cap(figures.audience, member_cap)
    if too_large is not None:
        return too_large
    if figures.complete or figures.audience == 0:
        empty = nobody_receives(figures.audience, figures.sample_recipients, figures.by_reason)
        if empty is not None:
            return empty
    if sample.sender is None:
        return None
    return sender_cannot_reach(sample.sender.address, sample.sender.verification, figures.nanp_recipients,
                               figures.sample_recipients)


def _template(body: str | None, fields: set[str]) -> Template | None:
    if not body or not body.strip():
        return None
    try:
        return compile_template(body, fields=STANDARD_FIELDS | {name.lower() for name in fields})
    except MergeError as exc:
        raise InvalidInput("body", exc.code, exc.message) from None


async def _iqa_sample(source: uploads_db.ImisSource | None, web: WebConfig, audience: IqaAudience,
                      template: Template | None, limits: SampleLimits) -> tuple[list[rules.AudienceMember], int]:
    """The first pages' members and the query's TotalCount (the members read, when iMIS gives none)."""
    # A link without a base_url means the deployment's iMIS (TEXTPULSE_IMIS_BASE_URL), as a run reads it
    # (services/audience/handlers.py); deploy/demo.py links its organisations that way.
    base_url = (source.base_url or web.imis_base_url) if source is not None else None
    if source is None or base_url is None:
        raise InvalidInput("audience.query", "imis_account_missing",
                           "the organisation has no iMIS site set up (Settings > iMIS)")
    reader = IqaRows(source.columns, keep=set(template.fields) if template is not None else set())
    members: list[rules.AudienceMember] = []
    total: int | None = None
    pages = 0
    async with web.imis_client(limits.imis_timeout) as http:
        client = ImisQueryClient(http, base_url, source.username, source.password, retry=limits.imis_retry,
                                 endpoint=source.query_endpoint)
        async with aclosing(client.pages(audience.query, audience.parameters,
                                         row_key=source.columns.member_id)) as paging:
            async for page in paging:
                members.extend(reader.member(row) for row in page.rows)
                total = page.total if page.total is not None else total
                pages += 1
                if pages >= limits.imis_pages:
                    break
            else:
                total = len(members)  # every page was read: the sample is the audience
    return members, max(total or 0, len(members))

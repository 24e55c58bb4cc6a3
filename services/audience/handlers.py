"""campaign-due -> the run's snapshot -> recipient events. One handler, idempotent per run.

For a run in ``pending`` (or ``resolving`` after a crash), :meth:`AudienceResolver.handle`:

1. loads the run, its campaign, organisation, sender and limits; compiles the body (an unknown merge
   field fails the run before iMIS is asked for anything);
2. reads the audience (IQA pages, a CSV upload's rows or a list's entries) a batch at a time into the
   run's stage (:mod:`services.audience.stage_db`): each batch's numbers looked up in the suppression
   and bad-number tables, its members classified on their own (:mod:`libs.common.audience_rules`, rules
   2-7) and copied in with their address state (a value that is no US state is counted and left out),
   so memory does not grow with the audience. More members than the run's cap
   (the organisation's, else the platform's) refuses the run (``audience_too_large``) as soon as the
   source's size or the count shows it -> ``stages["fetch"]``;
3. settles the stage in PostgreSQL (a repeated member id, a number shared by a household) and adds up
   its figures -> ``stages["preflight"]``;
4. decides the run's state (sending, completed, refused, over_limit) and writes the snapshot from the
   stage, the member-phone index and the run's figures in one transaction -> ``stages["store"]``;
5. when the run is ``sending``, publishes its queued recipients in batches, in snapshot order, keyed by
   sender, moving the run's ``published_through`` checkpoint after Kafka acknowledged each batch
   -> ``stages["publish"]``.

The event is a pointer, believed only as far as the database agrees: a run that does not exist
(``run_unknown``), belongs to another campaign or organisation (``run_mismatch``) or is not due yet
(``run_not_due``) is dead-lettered and nothing is resolved.

A redelivered event for a run already ``sending`` only does step 5 for what is past the checkpoint; any
other state (completed, failed, over_limit, refused, cancelled...) is left alone. Failures to resolve
(iMIS down after its retries, credentials refused, a bad audience setting, no sender) mark the run
``failed`` with the reason and publish nothing. PostgreSQL and Kafka errors are RetryableError: the
consumer redelivers the same event and the steps above resume where they stopped.

Every final state carries a reason (:mod:`libs.common.run_reasons`): a code the alert watcher
(services/usage) decides on, with its facts: ``segment_limit``, ``sender_unverified``, ``imis_unavailable``,
``imis_credentials_rejected``, ``iqa_not_found``, ``iqa_rejected``, ``iqa_column_missing``,
``merge_unknown_field``, ``sender_missing``, ``audience_invalid``, ``audience_too_large``... A row in campaign_audit
(``run_resolved``, ``run_over_limit``, ``run_refused``, ``run_completed``, ``run_failed``) records it too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from aiokafka.errors import KafkaError

from libs.common import audience_rules as rules
from libs.common.audience import AudienceInvalid, CsvAudience, IqaAudience, ListAudience, parse_audience
from libs.common.audience_members import AddressStates, ColumnMap, IqaRows, stored_member
from libs.common.envelope import SecretUnreadable
from libs.common.errors import ConfigurationError, DependencyUnavailable, PermanentError
from libs.common.events import CampaignDue
from libs.common.imis_iqa import ImisQueryClient, IqaResultShifted, RetryPolicy
from libs.common.links import LinkError, Shortener, check_links
from libs.common.logging import get_logger
from libs.common.merge import STANDARD_FIELDS, MergeError, Template, compile_template
from libs.common.outages import POSTGRES_UNAVAILABLE
from libs.common.phone import region_for_prefix
from libs.common.pricing import PriceTable
from libs.common.send_checks import member_cap, over_member_cap
from services.audience.db import AudienceStore, RunContext, StoredMember
from services.audience.publishing import RecipientPublisher, RunOfRecipients
from services.audience.stage_db import Stage, cost_inputs

log = get_logger(__name__)

_RESOLVABLE = frozenset({"pending", "resolving"})


class RunFailed(PermanentError):
    """The run's audience cannot be resolved; the run ends ``failed`` with ``code: message``."""


class RunRefused(PermanentError):
    """The run may not be sent as it is (more members than its cap); it ends ``refused`` with ``code: message``."""


@dataclass(frozen=True)
class ImisSettings:
    """How iMIS is reached: the default site, the shared HTTP client, page size, retry policy, and how many
    pages may wait read ahead (each 500 rows, a few MB parsed: a stage batch of 5,000 members, so iMIS keeps
    serving while a batch is classified and copied)."""

    http: httpx.AsyncClient
    default_base_url: str
    retry: RetryPolicy = RetryPolicy()
    page_size: int = 500
    read_ahead: int = 10


@dataclass(frozen=True)
class ShortLinks:
    """Where tracked links point when the organisation set no short domain, and how long they redirect."""

    default_base_url: str = "http://127.0.0.1:8005"
    days: int = 180


@dataclass
class Stages:
    """Wall and CPU time per stage of the last run handled, and how many members it had (for logs and bench)."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    members: int = 0
    pages: int = 0
    published: int = 0
    address_states_ignored: int = 0  # values in the state column that are no US state: no address, no error

    def rounded(self) -> dict[str, dict[str, float]]:
        return {stage: {"wall": round(seconds, 2), "cpu": round(self.cpu_seconds.get(stage, 0.0), 2)}
                for stage, seconds in self.seconds.items()}

    @asynccontextmanager
    async def timed(self, stage: str) -> AsyncIterator[None]:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + time.process_time() - cpu


class AudienceResolver:
    def __init__(self, store: AudienceStore, publisher: RecipientPublisher, imis: ImisSettings, *,
                 publish_batch: int = 5_000, stage_batch: int = 5_000, member_cap: int = 250_000,
                 prices: PriceTable | None = None, short_links: ShortLinks | None = None) -> None:
        """``member_cap``: the platform's most members per run (TEXTPULSE_RUN_MEMBER_CAP), for organisations
        without their own; ``stage_batch``: members classified and copied into the stage at a time."""
        self._store = store
        self._publisher = publisher
        self._imis = imis
        self._batch = publish_batch
        self._stage_batch = stage_batch
        self._member_cap = member_cap
        self._prices = prices or PriceTable()
        self._short_links = short_links or ShortLinks()
        self.last = Stages()

    async def handle(self, event: CampaignDue) -> None:
        """The consumer's handler for campaign-due; see the module docstring. Idempotent per run."""
        try:
            await self._handle(event)
        except POSTGRES_UNAVAILABLE as exc:
            raise DependencyUnavailable("postgres_unavailable", f"{type(exc).__name__}: {exc}") from exc
        except KafkaError as exc:
            raise DependencyUnavailable("kafka_unavailable", f"{type(exc).__name__}: {exc}") from exc

    async def _handle(self, event: CampaignDue) -> None:
        self.last = stages = Stages()
        ctx = await self._store.run_context(event.run_id)
        if ctx is None:
            raise PermanentError("run_unknown", f"no campaign run {event.run_id}")
        if (ctx.org_id, ctx.campaign_id) != (event.org_id, event.campaign_id):
            raise PermanentError("run_mismatch", f"run {event.run_id} belongs to another campaign or organisation")
        if ctx.run_state == "pending" and not await self._store.run_is_due(ctx.run_id):
            raise PermanentError("run_not_due", f"run {event.run_id} is not due yet")
        if ctx.run_state == "sending":
            await self._publish(ctx, stages)
            return
        if ctx.run_state not in _RESOLVABLE or not await self._store.begin_resolving(ctx.run_id):
            log.info("run.skipped", extra={"run_id": str(ctx.run_id), "state": ctx.run_state})
            return
        try:
            verdict = await self._resolve(ctx, stages)
        except (RunFailed, RunRefused) as exc:
            state = "refused" if isinstance(exc, RunRefused) else "failed"
            if await self._store.fail_run(ctx, exc.code, exc.message, state=state):
                log.error(f"run.{state}", extra={"run_id": str(ctx.run_id), "code": exc.code, "error": exc.message})
            return
        if verdict is None:  # another consumer wrote the snapshot first (a rebalance overlap): help it publish
            current = await self._store.run_context(ctx.run_id)
            if current is not None and current.run_state == "sending":
                await self._publish(current, stages)
        elif verdict.publishes:
            await self._publish(ctx, stages)

    async def _resolve(self, ctx: RunContext, stages: Stages) -> rules.Verdict | None:
        if not ctx.body.strip():
            raise RunFailed("body_empty", "the campaign has no message body")
        try:
            region_for_prefix(ctx.default_country_prefix)
        except ConfigurationError as exc:
            raise RunFailed(exc.code, exc.message) from None
        if ctx.sender is None:
            raise RunFailed("sender_missing", "the campaign has no sender and the organisation no default sender")
        try:
            audience = parse_audience(ctx.audience)
        except AudienceInvalid as exc:
            raise RunFailed(exc.code, exc.message) from None
        cap = member_cap(ctx.run_member_cap, self._member_cap)
        async with self._store.stage() as stage:
            async with stages.timed("fetch"):
                await self._read_into(stage, ctx, audience, cap, stages)
            stages.members = stage.members
            async with stages.timed("preflight"):
                figures, cost_groups = await stage.settle()
                verdict = rules.decide(
                    figures, sender=ctx.sender, sender_verification=ctx.sender_verification or "verified",
                    segment_limit=ctx.segment_limit, account_max_segments=ctx.account_max_segments)
                cost = self._prices.estimate(cost_inputs(cost_groups))
            async with stages.timed("store"):
                saved = await self._store.save_snapshot(stage, ctx, figures, verdict, _money(cost.total),
                                                        link_days=self._short_links.days)
        if not saved:
            log.info("run.resolved_elsewhere", extra={"run_id": str(ctx.run_id)})
            return None
        level = log.info if verdict.publishes or verdict.state == "completed" else log.error
        level("run.resolved", extra={"run_id": str(ctx.run_id), "state": verdict.state,
                                     "reason": verdict.reason and verdict.reason.code,
                                     "targeted": figures.recipients, "excluded": figures.by_reason,
                                     "segments": figures.segments, "members": stages.members,
                                     "address_states_ignored": stages.address_states_ignored,
                                     "seconds": stages.rounded()})
        return verdict

    async def _read_into(self, stage: Stage, ctx: RunContext, audience: IqaAudience | CsvAudience | ListAudience,
                         cap: int, stages: Stages) -> None:
        """Read the audience into ``stage`` a batch at a time: each batch's numbers looked up in the
        suppression and bad-number tables, its members classified (rules 2-7) and copied in. Raises
        RunRefused past ``cap`` members, as soon as the source's size or the count shows it."""
        members, template = await self._members(ctx, audience, stages)
        shortener = self._shortener(ctx, template)
        pending: list[rules.AudienceMember] = []
        async with aclosing(members) as batches:
            async for batch, size in batches:
                refusal = over_member_cap(max(size or 0, stage.members + len(pending) + len(batch)), cap,
                                          at_least=size is None)
                if refusal is not None:
                    raise RunRefused(refusal.code, refusal.message)
                pending += batch
                if len(pending) >= self._stage_batch:
                    await self._stage(stage, ctx, pending, template, shortener)
                    pending = []
        if pending:
            await self._stage(stage, ctx, pending, template, shortener)

    def _shortener(self, ctx: RunContext, template: Template) -> Shortener | None:
        """The run's shortener when it tracks links; a link that cannot be tracked fails the run."""
        if not ctx.track_links:
            return None
        try:
            check_links(template.source)
            return Shortener(ctx.short_link_base_url or self._short_links.default_base_url)
        except LinkError as exc:
            raise RunFailed(exc.code, exc.message) from None

    async def _stage(self, stage: Stage, ctx: RunContext, members: list[rules.AudienceMember],
                     template: Template, shortener: Shortener | None) -> None:
        numbers = sorted(rules.candidate_numbers(members, ctx.default_country_prefix))
        suppressed, bad = await self._store.excluded_numbers(ctx.org_id, ctx.sender or "", numbers)
        rows = rules.classify_each(members, template, start=stage.members,
                                   default_country_prefix=ctx.default_country_prefix,
                                   suppressed=suppressed, bad_numbers=bad, shortener=shortener)
        await stage.add(rows)

    async def _members(self, ctx: RunContext, audience: IqaAudience | CsvAudience | ListAudience,
                       stages: Stages) -> tuple[AsyncGenerator[tuple[list[rules.AudienceMember], int | None], None],
                                                Template]:
        """The audience's members as batches (each with the source's stated size, if it states one) and the
        compiled body. The body is compiled as soon as the source's fields are known (before iMIS is asked
        for anything), and members keep only the values the body uses."""
        if isinstance(audience, IqaAudience):
            columns = await self._store.column_map(ctx.org_id) or ColumnMap()
            template = _compile(ctx.body, columns.merge_fields())
            client = await self._imis_client(ctx)
            return self._iqa_members(client, audience, columns, template, stages), template
        if isinstance(audience, CsvAudience):
            upload = await self._store.csv_upload(ctx.org_id, audience.upload_id)
            if upload is None or upload[0] != "ready":
                raise RunFailed("csv_upload_unusable", f"CSV upload {audience.upload_id} is missing or was refused")
            template = _compile(ctx.body, set(upload[1]) - {"mobile"} | {"member_id", "full_name"})
            stored = self._store.csv_members(audience.upload_id, self._stage_batch)
        else:
            fields = await self._store.list_fields(ctx.org_id, audience.list_id)
            if fields is None:
                raise RunFailed("list_missing", f"member list {audience.list_id} does not exist")
            template = _compile(ctx.body, fields | {"member_id", "full_name"})
            stored = self._store.list_members(audience.list_id, self._stage_batch)
        return _stored_members(stored, set(template.fields), stages), template

    async def _imis_client(self, ctx: RunContext) -> ImisQueryClient:
        try:
            account = await self._store.imis_account(ctx.org_id)
        except SecretUnreadable as exc:
            raise RunFailed(exc.code, exc.message) from None
        if account is None:
            raise RunFailed("imis_account_missing", "the organisation has no iMIS credentials")
        return ImisQueryClient(self._imis.http, account.base_url or self._imis.default_base_url, account.username,
                               account.password, retry=self._imis.retry, page_size=self._imis.page_size,
                               read_ahead=self._imis.read_ahead, endpoint=account.query_endpoint)

    async def _iqa_members(self, client: ImisQueryClient, audience: IqaAudience, columns: ColumnMap,
                           template: Template, stages: Stages,
                           ) -> AsyncGenerator[tuple[list[rules.AudienceMember], int | None], None]:
        reader = IqaRows(columns, keep=set(template.fields))
        pages = client.pages(audience.query, audience.parameters, row_key=columns.member_id)
        try:
            async with aclosing(pages):
                async for page in pages:
                    stages.pages += 1
                    members = [reader.member(row) for row in page.rows]
                    stages.address_states_ignored = reader.states.ignored
                    yield members, page.total
        except IqaResultShifted:
            raise  # retryable: the event is redelivered and the run, still resolving, read again from the start
        except (DependencyUnavailable, PermanentError) as exc:
            raise RunFailed(exc.code, f"{audience.query}: {exc.message}") from None
        if reader.rows and not reader.mobile_seen:
            raise RunFailed("iqa_column_missing", f"{audience.query} returns no column {columns.mobile!r} for the "
                            f"mobile number; its columns are {', '.join(sorted(reader.columns))}")

    async def _publish(self, ctx: RunContext, stages: Stages) -> None:
        """Publish every queued, unpublished recipient of the run, batch by batch, in snapshot order.

        The next batch is read while Kafka acknowledges the last one; the checkpoint moves only past
        batches Kafka acknowledged, in order."""
        run = RunOfRecipients(ctx.org_id, ctx.campaign_id, ctx.run_id, ctx.validity_period_s)
        async with stages.timed("publish"):
            batch = await self._store.unpublished(ctx.run_id, -1, self._batch)
            while batch:
                acked = await self._publisher.send(run, batch)
                try:
                    following = await self._store.unpublished(ctx.run_id, batch[-1].position, self._batch)
                finally:
                    await acked
                await self._store.mark_published(ctx.run_id, batch[-1].position)
                stages.published += len(batch)
                batch = following
        if stages.published:
            log.info("run.published", extra={"run_id": str(ctx.run_id), "recipients": stages.published,
                                             "seconds": stages.rounded()})


async def _stored_members(stored: AsyncGenerator[list[StoredMember], None], keep: set[str], stages: Stages,
                          ) -> AsyncGenerator[tuple[list[rules.AudienceMember], int | None], None]:
    states = AddressStates()
    async with aclosing(stored):
        async for batch in stored:
            members = [stored_member(s.member_id, s.mobile, s.merge_values, keep, states) for s in batch]
            stages.address_states_ignored = states.ignored
            yield members, None


def _compile(body: str, fields: set[str]) -> Template:
    try:
        return compile_template(body, fields=STANDARD_FIELDS | fields)
    except MergeError as exc:
        raise RunFailed(exc.code, exc.message) from None


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.00001"))


"""The only module of the opt-out service that runs SQL: typed calls over ``queries.sql``.

Every function takes the connection it runs on, so callers decide what shares a transaction (the
processor runs a batch of webhooks' whole effect, events and iMIS jobs included, in one). Processing
calls take a sequence of items and run one statement for all of them: a round trip per step of a
batch, not per message, is what lets one process keep up with Twilio at hundreds of requests a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from uuid import UUID

from libs.common import erased_suppressions, revocation_confirmations, run_reasons
from libs.common.db import Connection, Queries
from libs.common.events import Event
from libs.common.secret_store import AUTH_TOKEN, IMIS_PASSWORD, WEBHOOK_SHARED_KEY_SECRET, SecretStore
from libs.common.topics import TopicSpec
from services.optout import review_holds

QUERIES_PATH = Path(__file__).with_name("queries.sql")
RELAY_LOCK_ID = 0x7E47_0904  # arbitrary, constant: one event relay at a time
PROCESSOR_LOCK_ID = 0x7E47_0905  # arbitrary, constant: one webhook processor at a time


@dataclass(frozen=True, slots=True)
class AccountRow:
    org_id: UUID
    account_sid: str
    auth_token: str = field(repr=False)
    webhook_base_url: str
    webhook_shared_key_id: str | None = None  # a SharedKey Twilio may sign with instead (both or neither)
    webhook_shared_key_secret: str | None = None


WebhookKind = Literal["inbound", "status"]


@dataclass(frozen=True, slots=True)
class IncomingWebhook:
    request_id: UUID  # given on arrival; stored once whichever path (Kafka or direct) and however often
    kind: WebhookKind
    org_id: UUID
    account_sid: str
    url: str
    params: dict[str, str]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AccountOwner:
    org_id: UUID
    since: datetime  # the account row's last write: at latest, when it moved to this organisation


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: int
    kind: str
    org_id: UUID
    params: dict[str, str]
    received_at: datetime
    attempts: int
    default_country_prefix: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class WebhookResult:
    webhook_id: int
    state: str  # done | failed
    outcome: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class InboundRow:
    webhook_id: int
    org_id: UUID
    message_sid: str
    from_number: str
    phone: str | None
    to_number: str
    messaging_service_sid: str | None
    body: str
    num_media: int
    kind: str
    keyword: str | None
    run_id: UUID | None
    recipient_id: UUID | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackInsert:
    webhook_id: int
    org_id: UUID
    message_sid: str
    status: str
    error_code: str  # as Twilio sent it, '' when absent
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    org_id: UUID  # the organisation whose account signed the callback
    message_sid: str
    status: str
    error_code: int | None
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class LedgerMatch:
    """What a callback found in the ledger: its own organisation's message (matched), raised by it
    (applied), or another organisation's message (foreign: nothing is changed)."""

    matched: bool
    applied: bool
    foreign: bool


@dataclass(frozen=True, slots=True)
class ImisJobRequest:
    org_id: UUID
    phone: str
    action: str
    source_text: str
    occurred_at: datetime
    consent_id: int


@dataclass(frozen=True, slots=True)
class CallbackRow:
    id: int
    org_id: UUID
    message_sid: str
    message_status: str
    error_code: str
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    topic: str
    key: str
    payload: str


@dataclass(frozen=True, slots=True)
class ImisJob:
    id: int
    org_id: UUID
    member_id: str
    phone: str
    action: str
    source_text: str
    occurred_at: datetime
    attempts: int
    time_zone: str


@dataclass(frozen=True, slots=True)
class ImisAccount:
    base_url: str | None
    username: str
    password: str = field(repr=False)
    sms_panel: str
    writeback_enabled: bool
    writeback_target: str = "panel"  # services/optout/writeback_targets.py
    sms_communication_type_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One row of consent_history, as the processor writes it."""

    org_id: UUID
    phone: str
    scope: str
    action: str
    source: str
    keyword: str | None
    body: str | None
    message_sid: str | None
    actor: str
    changed: bool
    occurred_at: datetime
    superseded: bool = False  # a later word of the member or Twilio had already been applied


def _without_nul(params: Mapping[str, str]) -> dict[str, str]:
    """jsonb cannot hold NUL; the signature was checked on the exact text already."""
    return {name.replace("\x00", "\ufffd"): value.replace("\x00", "\ufffd") for name, value in params.items()}


def _webhook_columns(requests: Sequence[IncomingWebhook]) -> dict[str, list[object]]:
    return {
        "request_ids": [r.request_id for r in requests], "kinds": [r.kind for r in requests],
        "org_ids": [r.org_id for r in requests], "account_sids": [r.account_sid for r in requests],
        "urls": [r.url for r in requests],
        "params": [json.dumps(_without_nul(r.params), ensure_ascii=False) for r in requests],
        "received_ats": [r.received_at for r in requests],
    }


class OptoutDb:
    def __init__(self, queries: Queries, secrets: SecretStore) -> None:
        self.q = queries
        self._secrets = secrets

    @classmethod
    def load(cls, secrets: SecretStore) -> OptoutDb:
        return cls(Queries.load(QUERIES_PATH), secrets)

    async def check(self, conn: Connection) -> None:
        """Prepare every statement; raises ConfigurationError naming the first that fails."""
        await self.q.check(conn)
        await erased_suppressions.QUERIES.check(conn)
        await revocation_confirmations.QUERIES.check(conn)
        await review_holds.QUERIES.check(conn)
        await self._secrets.check(conn)

    # -- webhook edge ---------------------------------------------------------------------------

    async def account_by_sid(self, conn: Connection, account_sid: str) -> AccountRow | None:
        """The account with its auth token decrypted; SecretUnreadable if the token does not decrypt."""
        row = await self.q.fetchrow(conn, "account-by-sid", account_sid=account_sid)
        if row is None:
            return None
        token = await self._secrets.open(conn, row["org_id"], AUTH_TOKEN, row["auth_token"])
        key_secret = row["webhook_shared_key_secret"]
        if key_secret is not None:
            key_secret = await self._secrets.open(conn, row["org_id"], WEBHOOK_SHARED_KEY_SECRET, key_secret)
        return AccountRow(row["org_id"], row["account_sid"], token, row["webhook_base_url"],
                          row["webhook_shared_key_id"], key_secret)

    async def insert_webhooks(self, conn: Connection, requests: Sequence[IncomingWebhook]) -> None:
        """The edge's direct write; a request id already stored is skipped."""
        await self.q.execute(conn, "insert-webhooks", **_webhook_columns(requests))

    async def intake_webhooks(self, conn: Connection, requests: Sequence[IncomingWebhook]) -> set[UUID]:
        """The intake consumer's write; returns the ids refused because the account is not the
        organisation's (not stored). A request id already stored is skipped."""
        rows = await self.q.fetch(conn, "intake-webhooks", **_webhook_columns(requests))
        return {r["request_id"] for r in rows}

    async def account_owners(self, conn: Connection, account_sids: Sequence[str]) -> dict[str, AccountOwner]:
        """The current owner of each account that has one."""
        rows = await self.q.fetch(conn, "account-owners", account_sids=list(account_sids))
        return {r["account_sid"]: AccountOwner(r["org_id"], r["updated_at"]) for r in rows}

    async def add_signature_refusals(
        self, conn: Connection, counts: Sequence[tuple[UUID, datetime, int, str]]
    ) -> None:
        """(org_id, minute, refusals, url checked against): added to the minute's count."""
        await self.q.execute(conn, "add-signature-refusals", org_ids=[c[0] for c in counts],
                             minutes=[c[1] for c in counts], refusals=[c[2] for c in counts],
                             urls=[c[3] for c in counts])

    # -- processing -----------------------------------------------------------------------------
    # The processor applies a batch with one statement per step; these take one item per message.

    async def try_processor_lock(self, conn: Connection) -> bool:
        return bool(await self.q.fetchval(conn, "try-processor-lock", lock_id=PROCESSOR_LOCK_ID))

    async def claim_webhooks(self, conn: Connection, limit: int) -> list[WebhookRow]:
        rows = await self.q.fetch(conn, "claim-webhooks", limit=limit)
        return [WebhookRow(**{**dict(r), "params": json.loads(r["params"])}) for r in rows]

    async def finish_webhooks(self, conn: Connection, results: Sequence[WebhookResult]) -> None:
        await self.q.execute(
            conn, "finish-webhooks", ids=[r.webhook_id for r in results], states=[r.state for r in results],
            outcomes=[r.outcome for r in results], errors=[r.error for r in results],
        )

    async def retry_webhook(self, conn: Connection, webhook_id: int, *, error: str, delay_s: float) -> None:
        await self.q.execute(conn, "retry-webhook", id=webhook_id, error=error, delay_s=delay_s)

    async def sender_kinds(self, conn: Connection, senders: Sequence[tuple[UUID, str]]) -> dict[
        tuple[UUID, str], str
    ]:
        """{(org_id, address): kind} for the senders that exist."""
        rows = await self.q.fetch(conn, "sender-kinds", org_ids=[o for o, _ in senders],
                                  addresses=[a for _, a in senders])
        return {(r["org_id"], r["address"]): r["kind"] for r in rows}

    async def last_sends_to(
        self, conn: Connection, replies: Sequence[tuple[UUID, str, str, str | None]]
    ) -> dict[int, tuple[UUID, UUID]]:
        """For (org_id, phone, to, service) replies: {index: (run_id, recipient_id)} where one was found."""
        rows = await self.q.fetch(
            conn, "last-sends-to", org_ids=[r[0] for r in replies], phones=[r[1] for r in replies],
            tos=[r[2] for r in replies], services=[r[3] for r in replies],
        )
        return {int(r["n"]) - 1: (r["run_id"], r["recipient_id"]) for r in rows}

    async def insert_inbound(self, conn: Connection, rows: Sequence[InboundRow]) -> set[int]:
        """Store the messages; returns the webhook ids whose message SID was new."""
        stored = await self.q.fetch(
            conn, "insert-inbound", org_ids=[r.org_id for r in rows], message_sids=[r.message_sid for r in rows],
            from_numbers=[r.from_number for r in rows], phones=[r.phone for r in rows],
            to_numbers=[r.to_number for r in rows], services=[r.messaging_service_sid for r in rows],
            bodies=[r.body for r in rows], num_media=[r.num_media for r in rows], kinds=[r.kind for r in rows],
            keywords=[r.keyword for r in rows], run_ids=[r.run_id for r in rows],
            recipient_ids=[r.recipient_id for r in rows], webhook_ids=[r.webhook_id for r in rows],
            received_ats=[r.received_at for r in rows],
        )
        return {r["webhook_request_id"] for r in stored}

    # -- consent --------------------------------------------------------------------------------
    # One item per (org, phone, scope); a call never holds the same one twice.

    async def suppress(
        self, conn: Connection, entries: Sequence[tuple[UUID, str, str]], *, sources: Sequence[str],
        reasons: Sequence[str | None],
    ) -> set[tuple[UUID, str, str]]:
        """Insert the suppressions; returns the (org_id, phone, scope) that were not suppressed before."""
        rows = await self.q.fetch(
            conn, "suppress", org_ids=[e[0] for e in entries], phones=[e[1] for e in entries],
            scopes=[e[2] for e in entries], sources=list(sources), reasons=list(reasons),
        )
        return {(r["org_id"], r["phone"], r["scope"]) for r in rows}

    async def lift_suppressions(
        self, conn: Connection, entries: Sequence[tuple[UUID, str, str]]
    ) -> set[tuple[UUID, str, str]]:
        """Delete the suppressions, an erased member's too; returns the (org_id, phone, scope) that existed."""
        rows = await self.q.fetch(
            conn, "lift-suppressions", org_ids=[e[0] for e in entries], phones=[e[1] for e in entries],
            scopes=[e[2] for e in entries],
        )
        lifted = {(r["org_id"], r["phone"], r["scope"]) for r in rows}
        for org_id in {e[0] for e in entries}:
            erased = await erased_suppressions.lift(conn, self._secrets, org_id,
                                                    [(phone, scope) for org, phone, scope in entries if org == org_id])
            lifted |= {(org_id, phone, scope) for phone, scope in erased}
        return lifted

    async def superseded_consent(
        self, conn: Connection, entries: Sequence[tuple[UUID, str, str, datetime]]
    ) -> set[int]:
        """For (org_id, phone, scope, received at) entries: the indexes of those a later member or Twilio
        change to the same number and scope, already in the history, overrides."""
        if not entries:
            return set()
        rows = await self.q.fetch(
            conn, "superseded-consent", org_ids=[e[0] for e in entries], phones=[e[1] for e in entries],
            scopes=[e[2] for e in entries], occurred_ats=[e[3] for e in entries],
        )
        return {int(r["n"]) - 1 for r in rows}

    async def insert_consent(
        self, conn: Connection, records: Sequence[ConsentRecord]
    ) -> dict[tuple[UUID, str, str], int]:
        """Append the history; returns {(org_id, phone, scope): id} of the rows new for their message."""
        rows = await self.q.fetch(
            conn, "insert-consent", org_ids=[r.org_id for r in records], phones=[r.phone for r in records],
            scopes=[r.scope for r in records], actions=[r.action for r in records],
            sources=[r.source for r in records], keywords=[r.keyword for r in records],
            bodies=[r.body for r in records], message_sids=[r.message_sid for r in records],
            actors=[r.actor for r in records], changed=[r.changed for r in records],
            superseded=[r.superseded for r in records], occurred_ats=[r.occurred_at for r in records],
        )
        return {(r["org_id"], r["phone"], r["scope"]): r["id"] for r in rows}

    async def enqueue_events(self, conn: Connection, events: Sequence[tuple[TopicSpec[Event], Event, str]]) -> None:
        """Queue (topic, event, key) for the relay, in this order."""
        for spec, event, _ in events:
            if not isinstance(event, spec.event_type):
                raise TypeError(f"{spec.name} carries {spec.event_type.__name__}, not {type(event).__name__}")
        if events:
            await self.q.execute(
                conn, "enqueue-events", topics=[s.name for s, _, _ in events], keys=[k for _, _, k in events],
                payloads=[e.model_dump_json() for _, e, _ in events],
            )

    async def enqueue_imis_jobs(
        self, conn: Connection, requests: Sequence[ImisJobRequest], *, window_days: int
    ) -> None:
        if requests:
            await self.q.execute(
                conn, "enqueue-imis-jobs", org_ids=[r.org_id for r in requests], phones=[r.phone for r in requests],
                actions=[r.action for r in requests], source_texts=[r.source_text for r in requests],
                occurred_ats=[r.occurred_at for r in requests], consent_ids=[r.consent_id for r in requests],
                window_days=window_days,
            )

    # -- status callbacks -----------------------------------------------------------------------

    async def insert_status_callbacks(self, conn: Connection, rows: Sequence[CallbackInsert]) -> dict[
        int, int
    ]:
        """Store the callbacks; returns {webhook_id: callback_id} for those not seen before."""
        stored = await self.q.fetch(
            conn, "insert-status-callbacks", org_ids=[r.org_id for r in rows],
            message_sids=[r.message_sid for r in rows], statuses=[r.status for r in rows],
            error_codes=[r.error_code for r in rows], prices=[r.price for r in rows],
            webhook_ids=[r.webhook_id for r in rows],
        )
        return {r["webhook_request_id"]: r["id"] for r in stored}

    async def apply_statuses(
        self, conn: Connection, updates: Sequence[StatusUpdate], ranks: Mapping[str, int]
    ) -> dict[tuple[UUID, str], LedgerMatch]:
        """Raise each (org, SID)'s ledger status, in that organisation's ledger only (one update per
        pair); returns {(org_id, sid): LedgerMatch}."""
        if not updates:
            return {}
        rows = await self.q.fetch(
            conn, "apply-statuses", rank_statuses=list(ranks), rank_values=list(ranks.values()),
            org_ids=[u.org_id for u in updates], message_sids=[u.message_sid for u in updates],
            statuses=[u.status for u in updates], error_codes=[u.error_code for u in updates],
            prices=[u.price for u in updates],
        )
        return {(r["org_id"], r["message_sid"]): LedgerMatch(r["matched"], r["applied"], r["foreign"]) for r in rows}

    async def mark_callbacks(self, conn: Connection, marks: Sequence[tuple[int, bool, bool]]) -> None:
        """(callback_id, matched, applied) for each callback just applied."""
        if marks:
            await self.q.execute(conn, "mark-callbacks", ids=[m[0] for m in marks], matched=[m[1] for m in marks],
                                 applied=[m[2] for m in marks])

    async def mark_bad_numbers(self, conn: Connection, bad: Sequence[tuple[UUID, str, int]]) -> None:
        """(org_id, message_sid, error_code) of callbacks saying the number cannot receive texts."""
        if bad:
            await self.q.execute(conn, "mark-bad-numbers", org_ids=[b[0] for b in bad],
                                 message_sids=[b[1] for b in bad], codes=[b[2] for b in bad])

    async def stop_unverified_senders(self, conn: Connection, messages: Sequence[tuple[UUID, str]]) -> None:
        """(org_id, message_sid) of callbacks saying the sender is not verified. The runs sending from it
        pause with :func:`run_reasons.toll_free_blocked` (the query adds each run's sender)."""
        if messages:
            await self.q.execute(conn, "stop-unverified-senders", org_ids=[m[0] for m in messages],
                                 message_sids=[m[1] for m in messages],
                                 **run_reasons.columns(run_reasons.toll_free_blocked()))

    async def unmatched_callbacks_now_known(self, conn: Connection, limit: int) -> list[CallbackRow]:
        rows = await self.q.fetch(conn, "unmatched-callbacks-now-known", limit=limit)
        return [CallbackRow(**dict(r)) for r in rows]

    # -- event relay ----------------------------------------------------------------------------

    async def try_relay_lock(self, conn: Connection) -> bool:
        return bool(await self.q.fetchval(conn, "try-relay-lock", lock_id=RELAY_LOCK_ID))

    async def unpublished_events(self, conn: Connection, limit: int) -> list[OutboxEvent]:
        return [OutboxEvent(**dict(r)) for r in await self.q.fetch(conn, "unpublished-events", limit=limit)]

    async def mark_events_published(self, conn: Connection, ids: list[int]) -> None:
        await self.q.execute(conn, "mark-events-published", ids=ids)

    async def mark_event_unpublishable(self, conn: Connection, event_id: int, error: str) -> None:
        await self.q.execute(conn, "mark-event-unpublishable", id=event_id, error=error)

    # -- iMIS write-back ------------------------------------------------------------------------

    async def due_imis_orgs(self, conn: Connection, *, busy: Sequence[UUID]) -> list[UUID]:
        return [r["org_id"] for r in await self.q.fetch(conn, "due-imis-orgs", busy=list(busy))]

    async def claim_imis_jobs(self, conn: Connection, org_id: UUID, *, limit: int, lease_s: float) -> list[ImisJob]:
        rows = await self.q.fetch(conn, "claim-imis-jobs", org_id=org_id, limit=limit, lease_s=lease_s)
        return [ImisJob(**dict(r)) for r in rows]

    async def imis_account(self, conn: Connection, org_id: UUID) -> ImisAccount | None:
        """The organisation's iMIS login, password decrypted; SecretUnreadable if it does not decrypt."""
        row = await self.q.fetchrow(conn, "imis-account", org_id=org_id)
        if row is None:
            return None
        password = await self._secrets.open(conn, org_id, IMIS_PASSWORD, row["password"])
        return ImisAccount(**{**dict(row), "password": password})

    async def complete_imis_job(self, conn: Connection, job_id: int) -> None:
        await self.q.execute(conn, "complete-imis-job", id=job_id)

    async def retry_imis_job(self, conn: Connection, job_id: int, *, error: str, delay_s: float) -> None:
        await self.q.execute(conn, "retry-imis-job", id=job_id, error=error, delay_s=delay_s)

    async def fail_imis_job(self, conn: Connection, job_id: int, *, error: str) -> None:
        await self.q.execute(conn, "fail-imis-job", id=job_id, error=error)

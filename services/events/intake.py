"""Kafka records -> outgoing events, stored (with their deliveries) before the record's offset is committed.

- send-results: ``sent`` (outcome sent) and ``failed`` (outcome failed, with Twilio's error code);
- message-status: ``delivered``, and ``failed`` for undelivered or failed (the member found in the send ledger);
- link-clicks: ``clicked``, people only (link-preview bots are not members tapping);
- webhooks (inbound): ``replied``, every message a member sends, STOP included (its opt-out follows as well);
- consent: ``opted_out`` and ``opted_in``.

Each handler raises while PostgreSQL is away, so :class:`libs.common.kafka.EventConsumer` retries the record and
commits nothing past it: a record is acknowledged only once its events are in the outbox tables.
"""

from __future__ import annotations

from libs.common.events import ConsentChanged, LinkClicked, MessageStatus, SendResult, WebhookReceived
from libs.common.outgoing_events import outgoing
from services.events.db import EventStore

_FAILED_STATUSES = frozenset({"undelivered", "failed"})


class Intake:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def send_result(self, event: SendResult) -> None:
        if event.outcome not in ("sent", "failed"):
            return
        await self._store.store([outgoing(
            str(event.event_id), event.org_id, "sent" if event.outcome == "sent" else "failed", event.to,
            event.occurred_at, phone=event.to, run_id=event.run_id, recipient_id=event.recipient_id,
            message_sid=event.message_sid, error_code=event.error_code, stage="submission")])

    async def message_status(self, event: MessageStatus) -> None:
        if event.status != "delivered" and event.status not in _FAILED_STATUSES:
            return
        row = await self._store.message_by_sid(event.message_sid)
        phone = row["to_number"] if row else None
        await self._store.store([outgoing(
            str(event.event_id), event.org_id, "delivered" if event.status == "delivered" else "failed",
            phone or event.message_sid, event.occurred_at, phone=phone, message_sid=event.message_sid,
            run_id=row["run_id"] if row else None, recipient_id=row["recipient_id"] if row else None,
            error_code=event.error_code, stage=None if event.status == "delivered" else "carrier")])

    async def link_clicked(self, event: LinkClicked) -> None:
        if event.agent_class == "preview_bot":
            return
        phone = await self._store.phone_of(event.run_id, event.recipient_id)
        await self._store.store([outgoing(
            str(event.event_id), event.org_id, "clicked", phone or str(event.recipient_id), event.occurred_at,
            phone=phone, run_id=event.run_id, recipient_id=event.recipient_id, device=event.agent_class)])

    async def webhook(self, event: WebhookReceived) -> None:
        if event.kind != "inbound":
            return
        phone = event.params.get("From", "")
        await self._store.store([outgoing(
            str(event.event_id), event.org_id, "replied", phone, event.occurred_at, phone=phone,
            to=event.params.get("To"), body=event.params.get("Body", ""), message_sid=event.params.get("MessageSid"))])

    async def consent(self, event: ConsentChanged) -> None:
        await self._store.store([outgoing(
            str(event.event_id), event.org_id, "opted_out" if event.action == "opt_out" else "opted_in",
            event.phone, event.occurred_at, phone=event.phone, sender=event.sender, source=event.source)])

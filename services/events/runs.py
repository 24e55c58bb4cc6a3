"""``run_completed``: runs that ended (completed, cancelled, failed, ...) announced once each.

No Kafka stream says a run ended (whoever ends it writes ``campaign_runs`` in its transaction,
libs/common/run_endings.py), so this worker looks for ended runs of organisations with an endpoint taking
``run_completed``, since that endpoint was created, and marks each announced in the transaction that stores
its event.
"""

from __future__ import annotations

from libs.common.db import transaction
from libs.common.outgoing_events import outgoing
from libs.common.polling import drain, poll_forever
from libs.common.run_endings import RUN_ENDED
from services.events.db import QUERIES, EventStore


class RunAnnouncer:
    def __init__(self, store: EventStore, *, poll_s: float = 5.0, batch: int = 100) -> None:
        self._store = store
        self._poll_s = poll_s
        self._batch = batch

    async def run(self) -> None:
        await poll_forever(lambda: drain(self.run_once, self._batch), stalled="run_announcer.stalled",
                           poll_s=self._poll_s)

    async def run_once(self) -> int:
        async with transaction(self._store.pool) as conn:
            runs = await QUERIES.fetch(conn, "ended-runs", ended=sorted(RUN_ENDED), batch=self._batch)
        for run in runs:
            event = outgoing(str(run["id"]), run["org_id"], "run_completed", str(run["id"]), run["finished_at"],
                             run_id=run["id"], campaign_id=run["campaign_id"], state=run["state"],
                             reason=run["state_reason"], targeted=run["targeted"], excluded=run["excluded"],
                             sent=run["sent"], delivered=run["delivered"], failed=run["failed"])
            await self._store.store([event], mark_run=run["id"])
        return len(runs)

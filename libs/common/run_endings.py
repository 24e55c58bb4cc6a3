"""A run always ends, and its campaign follows: the one place that moves a campaign when a run ends.

Whoever ends a run calls :func:`follow_run` in the transaction that ended it: the audience service
(completed with no recipients, over_limit, refused, failed), the dispatcher (completed, refused) and the
scheduler (missed). The move itself is :func:`libs.common.campaign_states.after_run`, so the transition
table stays the only authority; this module only reads the facts it needs and writes the result.

Callers that also change the run's row lock the campaign first (:func:`lock_campaign_of_run`), as the
API does, so two transactions never wait on each other's rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final
from uuid import UUID

from libs.common.campaign_states import CampaignState, after_run
from libs.common.db import Connection, Queries
from libs.common.logging import get_logger
from libs.common.run_states import ENDED

__all__ = ["QUERIES", "RUN_ENDED", "follow_run", "lock_campaign_of_run"]

log = get_logger(__name__)

QUERIES: Final = Queries.load(Path(__file__).with_name("run_endings.sql"))

# The run states after which a run does nothing more (the run table's final states).
RUN_ENDED: Final = frozenset(state.value for state in ENDED)


async def lock_campaign_of_run(conn: Connection, run_id: UUID) -> None:
    """Lock the run's campaign for the rest of the caller's transaction."""
    await QUERIES.fetchval(conn, "lock-campaign-of-run", run_id=run_id)


async def follow_run(conn: Connection, run_id: UUID, *, actor: str) -> CampaignState | None:
    """Move the campaign of ``run_id`` as the table says, if the run has ended; return its new state.

    Idempotent: a second call for the same run finds the campaign already moved and returns None, and so
    does a call for a run still open. Runs in the caller's transaction.
    """
    row = await QUERIES.fetchrow(conn, "run-ending", run_id=run_id)
    if row is None or row["run_state"] not in RUN_ENDED:
        return None
    target = after_run(
        row["campaign_state"],
        sent_anything=row["run_state"] == "completed" and row["sent"] > 0,
        has_more_occurrences=row["has_more_occurrences"],
        other_runs_open=row["other_runs_open"],
    )
    if target is None:
        return None
    await QUERIES.execute(conn, "move-campaign", campaign_id=row["campaign_id"], state=target)
    await QUERIES.execute(
        conn, "audit-run-ended", org_id=row["org_id"], campaign_id=row["campaign_id"], run_id=run_id, actor=actor,
        from_state=row["campaign_state"], to_state=target,
        detail=json.dumps({"run_state": row["run_state"], "reason": row["state_reason"]}),
    )
    log.info("campaign.followed_run", extra={"campaign_id": str(row["campaign_id"]), "run_id": str(run_id),
                                             "run_state": row["run_state"], "state": target.value})
    return target

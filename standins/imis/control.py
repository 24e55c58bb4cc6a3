"""Control API of the iMIS stand-in, under ``/_control`` (not part of iMIS; no auth).

- ``POST /_control/reset``: back to the start-up state (tokens, edits, panel rows, faults, write log).
- ``POST /_control/faults`` (body: ``FaultPlanIn``), ``GET /_control/faults``, ``DELETE /_control/faults``.
- ``POST /_control/tokens/expire``: every issued access token stops working now.
- ``GET /_control/writes?path=/api/TP_SmsPreferences``: every PUT/POST clients made, oldest first.
- ``GET /_control/panels/{panel}/{party_id}``: a panel row's plain values (404 if none).
- ``GET /_control/activities?party_id=23145``: the contact's activities' plain values (SEQN, ACTIVITY_TYPE...).
- ``GET /_control/parties/{party_id}``: the contact as ``/api/Party`` would serve it.
- ``GET /_control/stats``: members loaded, tokens issued, data version.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException

from standins.imis.api import StateDep
from standins.imis.faults import FaultPlanIn

router = APIRouter(prefix="/_control", tags=["control"])


@router.post("/reset")
async def reset(state: StateDep) -> dict[str, str]:
    state.reset()
    return {"status": "reset"}


@router.post("/faults", status_code=201)
async def add_fault(plan: FaultPlanIn, state: StateDep) -> dict[str, Any]:
    added = state.faults.add(plan)
    return {"id": added.id, **plan.model_dump()}


@router.get("/faults")
async def list_faults(state: StateDep) -> dict[str, Any]:
    return {"faults": state.faults.describe()}


@router.delete("/faults")
async def clear_faults(state: StateDep) -> dict[str, str]:
    state.faults.clear()
    return {"status": "cleared"}


@router.post("/tokens/expire")
async def expire_tokens(state: StateDep) -> dict[str, int]:
    return {"expired": state.tokens.expire_all()}


@router.get("/writes")
async def writes(state: StateDep, path: str = "") -> dict[str, Any]:
    lowered = path.lower()
    return {"writes": [asdict(w) for w in state.writes if w.path.lower().startswith(lowered)]}


@router.get("/panels/{panel}/{party_id}")
async def panel_row(panel: str, party_id: str, state: StateDep) -> dict[str, Any]:
    name = state.panels.canonical(panel)
    row = state.panels.get(name, party_id) if name is not None else None
    if row is None:
        raise HTTPException(404, f"no {panel} row for {party_id}")
    return row


@router.get("/activities")
async def activities(state: StateDep, party_id: str = "") -> dict[str, Any]:
    seqns = state.activities.matching({"PartyId": party_id} if party_id else {})
    return {"activities": [state.activities.rows[s] for s in seqns]}


@router.get("/parties/{party_id}")
async def party(party_id: str, state: StateDep) -> dict[str, Any]:
    document = state.party(party_id)
    if document is None:
        raise HTTPException(404, f"no party {party_id}")
    return document


@router.get("/stats")
async def stats(state: StateDep) -> dict[str, Any]:
    return {
        "members": len(state.members),
        "tokens_issued": state.tokens.issued_count,
        "version": state.version,
        "writes": len(state.writes),
        "pages_served": state.pages_served,
    }

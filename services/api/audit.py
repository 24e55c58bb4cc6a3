"""The organisation's audit log: who did what to which thing, from where, with the thing before and after.

``record`` is the one way a row is written, always inside the transaction of the change it describes, so a
change and its row are committed or rolled back together. Values whose key names a secret (``SECRET_KEYS``,
or a name ending in one of ``SECRET_SUFFIXES``) are replaced by ``REDACTED`` at any depth before they are
stored; a secret that is not set stays ``null``, so the log still shows whether one was set or cleared.

Routes take ``CallerDep`` (the signed-in user or API key, and the client address); sign-in, which has no
principal yet, builds a ``Caller`` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from fastapi import Depends, Request
from pydantic import BaseModel

from libs.common.db import Connection, Queries
from services.api import db
from services.api.deps import PrincipalDep

QUERIES: Final = Queries.load(Path(__file__).with_name("audit.sql"))

REDACTED: Final = "[redacted]"
SECRET_KEYS: Final = frozenset({"auth_token", "api_key_secret", "password", "secret", "key", "token"})
SECRET_SUFFIXES: Final = ("_secret", "_token", "_password", "password_hash")

ActorKind = Literal["user", "api_key", "system"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a row is written for: the organisation, the actor as shown elsewhere, and where they called from."""

    org_id: UUID
    actor: str
    kind: ActorKind
    client_address: str | None


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_caller(principal: PrincipalDep, request: Request) -> Caller:
    kind: ActorKind = "api_key" if principal.via == "api_key" else "user"
    return Caller(principal.org.id, principal.actor, kind, client_address(request))


CallerDep = Annotated[Caller, Depends(current_caller)]


def is_secret(key: str) -> bool:
    name = key.lower()
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    """``value`` with every secret-named entry replaced, at any depth (models are dumped first)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(redact(value), default=str)


async def record(
    conn: Connection, caller: Caller, action: str, target_type: str, target_id: object = None, *,
    before: Any = None, after: Any = None, detail: dict[str, Any] | None = None,
) -> None:
    """Append one row; call it in the transaction of the change."""
    await QUERIES.execute(
        conn, "insert-audit-event", org_id=caller.org_id, actor=caller.actor, actor_kind=caller.kind,
        action=action, target_type=target_type, target_id=None if target_id is None else str(target_id),
        before=_json(before), after=_json(after), client_address=caller.client_address,
        detail=_json(detail or {}),
    )


async def record_campaign(
    conn: Connection, caller: Caller, action: str, campaign_id: UUID, *, from_state: str | None = None,
    to_state: str | None = None, run_id: UUID | None = None, detail: dict[str, Any] | None = None,
) -> None:
    """A person's or key's campaign action: in the campaign's own history and in the organisation's log."""
    await db.record_audit(conn, org_id=caller.org_id, campaign_id=campaign_id, actor=caller.actor, action=action,
                          from_state=from_state, to_state=to_state, run_id=run_id, detail=detail)
    await record(conn, caller, f"campaign.{action}", "campaign", campaign_id,
                 before=None if from_state is None else {"state": from_state},
                 after=None if to_state is None else {"state": to_state},
                 detail=(detail or {}) | ({"run_id": str(run_id)} if run_id else {}))

"""Rows of user-defined panels (business objects) such as ``TP_SmsPreferences``, one per contact.

Single-instance panels only: a row is keyed by the contact id. POST creates, PUT replaces a row that
must exist (404 otherwise, as iMIS answers), GET reads. Values are stored untyped (``{"$value": true}``
is kept as ``True``) and re-typed when rendered.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from standins.imis.envelopes import generic_entity, prop, properties_of


class PanelError(Exception):
    """A refused panel write; ``status`` is the HTTP status iMIS gives."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class PanelStore:
    """Rows of every configured panel: ``rows[panel][party_id]`` -> property name -> value."""

    panels: tuple[str, ...]
    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for panel in self.panels:
            self.rows.setdefault(panel, {})

    def canonical(self, panel: str) -> str | None:
        """The configured spelling of ``panel`` (entity names are case-insensitive in URLs), or None."""
        lowered = panel.lower()
        return next((p for p in self.panels if p.lower() == lowered), None)

    def get(self, panel: str, party_id: str) -> dict[str, Any] | None:
        return self.rows[panel].get(party_id)

    def create(self, panel: str, body: Any, parties: Container[str]) -> str:
        """Store a new row from a GenericEntityData body; returns its id.

        Raises PanelError 400 for a body without an id or for an existing row, 404 for an unknown contact.
        """
        party_id = _row_id(body)
        if party_id not in parties:
            raise PanelError(404, f"Party {party_id} was not found.")
        if party_id in self.rows[panel]:
            raise PanelError(400, f"BadRequest: a {panel} row already exists for {party_id}.")
        self.rows[panel][party_id] = _with_id(party_id, properties_of(body))
        return party_id

    def replace(self, panel: str, party_id: str, body: Any) -> None:
        """Replace the row of ``party_id``; raises PanelError 404 when there is none, 400 on an id mismatch."""
        if party_id not in self.rows[panel]:
            raise PanelError(404, f"No {panel} row exists for {party_id}.")
        if _row_id(body, default=party_id) != party_id:
            raise PanelError(400, "ArgumentFault: Incorrect number of identity element")
        self.rows[panel][party_id] = _with_id(party_id, properties_of(body))

    def render(self, panel: str, party_id: str) -> dict[str, Any]:
        values = self.rows[panel][party_id]
        return generic_entity(
            panel,
            [prop(name, value) for name, value in values.items()],
            party_id=party_id,
            identity_elements=(party_id,),
        )


def _with_id(party_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The row's values with ``ID`` first, as the panel defines it."""
    return {"ID": party_id, **{k: v for k, v in values.items() if k != "ID"}}


def _row_id(body: Any, default: str | None = None) -> str:
    if not isinstance(body, dict):
        raise PanelError(400, "BadRequest: ValidationError")
    elements = body.get("Identity", {}).get("IdentityElements", {}).get("$values") or body.get(
        "PrimaryParentIdentity", {}
    ).get("IdentityElements", {}).get("$values")
    if elements:
        if len(elements) != 1:
            raise PanelError(400, "ArgumentFault: Incorrect number of identity element")
        return str(elements[0])
    row_id = properties_of(body).get("ID")
    if row_id is not None:
        return str(row_id)
    if default is not None:
        return default
    raise PanelError(400, "ArgumentFault: Incorrect number of identity element")

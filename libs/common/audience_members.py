"""Members as a source returns them, turned into :class:`AudienceMember`: IQA rows through the organisation's
:class:`ColumnMap` (``audience_column_maps``), CSV upload rows and list entries with their merge values.

The audience service reads a whole audience this way and the API's audience preview reads a sample the
same way, so both see the same member ids, numbers, opt-out flags, merge values and address states. A
member's address state is the IQA's state column (``State`` by default, as iMIS's CsContact names it) or a
CSV or list's ``state`` merge value, read by :class:`AddressStates`: a US state's code, else None and
counted (``Calif.``, ``ZZ``, a province, a state of another country when the country column or value says
so), never an error: the number's area code then places the member. Values of any JSON
type are turned into text here, so a number typed as Int32 or a Decimal still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from libs.common.audience_rules import AudienceMember
from libs.common.nul_text import NUL, without_nul
from libs.common.us_states import us_state

__all__ = ["AddressStates", "ColumnMap", "IqaRows", "as_text", "is_true", "stored_member"]

_ABSENT = "\x00absent"  # a key no row has: a column the row lacks reads as None


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """IQA column aliases: which hold the member id, mobile, opt-out flag, address state and country, and
    ``fields`` (merge field -> column). Aliases are matched without regard to case; a column the IQA does
    not return reads as NULL (for the state: no address)."""

    member_id: str = "ID"
    mobile: str = "Mobile"
    opt_out: str | None = "SmsOptOut"
    fields: Mapping[str, str] = field(
        default_factory=lambda: {
            "first_name": "FirstName",
            "last_name": "LastName",
            "informal_name": "InformalName",
            "member_type": "MemberType",
            "chapter": "Chapter",
        }
    )
    state: str | None = "State"
    country: str | None = "Country"

    def merge_fields(self) -> set[str]:
        """Every merge field a row of this map can fill (``member_id`` and ``full_name`` always)."""
        return {name.lower() for name in self.fields} | {"member_id", "full_name"}


@dataclass(slots=True)
class AddressStates:
    """Reads members' address states and counts the values it ignored (not a US state, or not in the US)."""

    ignored: int = 0

    def read(self, state: object, country: object = None) -> str | None:
        text = as_text(state)
        if text is None:
            return None
        code = us_state(text, country=as_text(country))
        if code is None:
            self.ignored += 1
        return code


class IqaRows:
    """Turns decoded IQA rows into AudienceMembers; also notices a mobile column the IQA never returns.

    ``keep`` names the merge fields to keep (the ones the body uses; None keeps all): 100,000 members
    with every column would hold several times the memory.
    """

    def __init__(self, columns: ColumnMap, *, keep: set[str] | None = None) -> None:
        self._member_id = columns.member_id.lower()
        self._mobile = columns.mobile.lower()
        self._opt_out = columns.opt_out.lower() if columns.opt_out else None
        self._state = columns.state.lower() if columns.state else None
        self._country = columns.country.lower() if columns.country else None
        fields = {name.lower(): column.lower() for name, column in columns.fields.items()}
        wanted = set(fields) | {"member_id", "full_name"} if keep is None else keep
        self._full_name = "full_name" in wanted and "full_name" not in fields
        if self._full_name:
            wanted = wanted | {"first_name", "last_name"}
        self._fields = [(name, column) for name, column in fields.items() if name in wanted]
        self._member_id_field = "member_id" in wanted
        self._keep = keep
        self._wanted = {self._member_id, "$partyid", self._mobile, *(column for _, column in self._fields)}
        self._wanted |= {column for column in (self._opt_out, self._state, self._country) if column is not None}
        self._row_keys: AbstractSet[str] | None = None
        self._spelling: dict[str, str] = {}
        self.mobile_seen = False
        self.rows = 0
        self.columns: set[str] = set()
        self.states = AddressStates()

    def member(self, row: Mapping[str, Any]) -> AudienceMember:
        keys = self._keys_of(row)
        self.rows += 1
        member_id = as_text(row.get(keys[self._member_id])) or as_text(row.get(keys["$partyid"])) or ""
        values: dict[str, object] = {name: as_text(row.get(keys[column])) for name, column in self._fields}
        if self._member_id_field:
            values["member_id"] = member_id
        if self._full_name:
            values["full_name"] = _full_name(values)
            if self._keep is not None:
                for name in ("first_name", "last_name"):
                    if name not in self._keep:
                        del values[name]
        opted_out = self._opt_out is not None and is_true(row.get(keys[self._opt_out]))
        state = None
        if self._state is not None:
            country = row.get(keys[self._country]) if self._country is not None else None
            state = self.states.read(row.get(keys[self._state]), country)
        return AudienceMember(member_id, as_text(row.get(keys[self._mobile])), values, opted_out, state)

    def _keys_of(self, row: Mapping[str, Any]) -> Mapping[str, str]:
        """Each column this reader looks at (lower case) -> the row's own spelling of it (``_ABSENT`` when
        the row lacks it). Rows of one IQA share their columns, so this is worked out again only when the
        columns change: a million rows, one lower-casing."""
        if self._row_keys is None or row.keys() != self._row_keys:
            self._row_keys = set(row)
            spelled = {key.lower(): key for key in row}
            if self.rows == 0:
                self.columns = set(spelled)
            self.mobile_seen = self.mobile_seen or self._mobile in spelled
            self._spelling = {column: spelled.get(column, _ABSENT) for column in self._wanted}
        return self._spelling


def stored_member(member_id: str, mobile: str | None, merge_values: Mapping[str, Any],
                  keep: set[str] | None = None, states: AddressStates | None = None) -> AudienceMember:
    """A member from a CSV upload row or a list entry (merge values already keyed by field name); its
    ``state`` (and ``country``) merge values are its address, read by ``states``."""
    values: dict[str, object] = {str(k).lower(): as_text(v) for k, v in merge_values.items()}
    values.setdefault("member_id", member_id)
    if "full_name" not in values:
        values["full_name"] = _full_name(values)
    state = (states or AddressStates()).read(values.get("state"), values.get("country"))
    if keep is not None:
        values = {name: value for name, value in values.items() if name in keep}
    return AudienceMember(member_id, mobile, values, address_state=state)


def _full_name(values: Mapping[str, object]) -> str | None:
    return " ".join(str(v) for v in (values.get("first_name"), values.get("last_name")) if v) or None


def as_text(value: Any) -> str | None:
    """A value of any JSON type as text, or None when there is nothing usable (NULL, blank, objects, lists).
    A NUL character, which PostgreSQL cannot store, is removed (``libs/common/nul_text.py``)."""
    if value.__class__ is str:  # most values: checked first
        return (without_nul(value) if NUL in value else value).strip() or None  # the test first: a million rows
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value).strip()
    return text or None


def is_true(value: Any) -> bool:
    """An opt-out flag: true, 1, or text such as 'true', 'yes', 'y', '1' (case-insensitive)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "y", "1"}
    return False

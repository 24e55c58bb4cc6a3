"""A campaign's audience: the one definition the API validates with and the audience service parses with.

``campaigns.audience`` (jsonb) is one of::

    {"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": ["eq:AK", ""]}
    {"kind": "csv", "upload_id": "<csv_uploads.id>"}
    {"kind": "list", "list_id": "<member_lists.id>"}

``parameters`` are the IQA's prompts in the order the query declares them, each sent as given: an unused
optional prompt stays ``""`` so the later ones keep their positions (iMIS reads them by position). Unknown
fields are refused, never dropped: an audience that silently lost its parameters would reach everyone the
query returns unfiltered.

:func:`describe_audience` states a whole audience in words; the campaign page and the composer's confirm
dialog both show that one sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, TypeAdapter, ValidationError

from libs.common.errors import PermanentError

KINDS = ("iqa", "csv", "list")
MAX_PARAMETERS = 30
IqaParameter = Annotated[str, StringConstraints(max_length=500)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IqaAudience(_Spec):
    kind: Literal["iqa"]
    query: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\$/", max_length=500)] = Field(
        description="the IQA's document-system path, starting with $/")
    parameters: tuple[IqaParameter, ...] = Field(
        default=(), max_length=MAX_PARAMETERS,
        description="the query's prompts in order, e.g. \"eq:AK\"; \"\" keeps an unused prompt's place")


class CsvAudience(_Spec):
    kind: Literal["csv"]
    upload_id: UUID


class ListAudience(_Spec):
    kind: Literal["list"]
    list_id: UUID


AudienceSpec = IqaAudience | CsvAudience | ListAudience


def _kind(value: Any) -> Any:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


Audience = Annotated[
    Annotated[IqaAudience, Tag("iqa")] | Annotated[CsvAudience, Tag("csv")] | Annotated[ListAudience, Tag("list")],
    Discriminator(_kind, custom_error_type="audience_kind_invalid",
                  custom_error_message='kind must be "iqa" (an iMIS query), "list" or "csv"'),
]
_AUDIENCE: TypeAdapter[AudienceSpec] = TypeAdapter(Audience)


class AudienceInvalid(PermanentError):
    """A stored audience that cannot be used; a run fails with this reason (``audience_invalid``)."""


def parse_audience(data: Any) -> AudienceSpec:
    """The audience in ``data`` (a dict as stored); raise AudienceInvalid naming what is wrong."""
    try:
        return _AUDIENCE.validate_python(data)
    except ValidationError as exc:
        raise AudienceInvalid("audience_invalid", f"the campaign's audience is not usable: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{error_field(e['loc'], 'audience')}: {e['msg']}" for e in exc.errors()[:5])


def stored_form(audience: AudienceSpec) -> dict[str, Any]:
    """The audience as it is stored in ``campaigns.audience`` and returned by the API."""
    return audience.model_dump(mode="json")


def error_field(location: Sequence[int | str], prefix: str = "") -> str:
    """A validation error's location as the client wrote the field: pydantic puts the kind's tag in the
    path of a discriminated union (``audience.iqa.parameters.0``); the client sent ``audience.parameters.0``."""
    parts = [prefix, *map(str, location)] if prefix else [str(p) for p in location]
    return ".".join(p for i, p in enumerate(parts) if not (i and parts[i - 1] == "audience" and p in KINDS))


@dataclass(frozen=True, slots=True)
class AudienceFacts:
    """What the database knows about the audience's source, for :func:`describe_audience`."""

    list_name: str | None = None
    list_members: int | None = None
    upload_filename: str | None = None
    upload_rows: int | None = None
    parameter_names: Sequence[str] = ()


def parameter_label(names: Sequence[str], index: int) -> str:
    """The name iMIS gives the prompt at ``index`` (0-based), else "Parameter n"."""
    name = names[index].strip() if index < len(names) else ""
    return name or f"Parameter {index + 1}"


def describe_audience(audience: dict[str, Any] | None, facts: AudienceFacts = AudienceFacts()) -> str:
    """The whole audience in one sentence::

        iMIS query $/Textpulse/Members By Chapter with parameters: Parameter 1 = eq:AK, Parameter 2 = (empty)
        List 'Board members' (12 members)
        CSV upload members.csv (436 rows)
    """
    if not audience:
        return "Not chosen yet"
    try:
        spec = _AUDIENCE.validate_python(audience)
    except ValidationError as exc:
        return f"Not usable: {_problems(exc)}"
    if isinstance(spec, IqaAudience):
        if not spec.parameters:
            return f"iMIS query {spec.query} with no parameters"
        values = ", ".join(f"{parameter_label(facts.parameter_names, i)} = {value or '(empty)'}"
                           for i, value in enumerate(spec.parameters))
        return f"iMIS query {spec.query} with parameters: {values}"
    if isinstance(spec, ListAudience):
        if facts.list_name is None:
            return "A list that no longer exists"
        return f"List '{facts.list_name}' ({_count(facts.list_members, 'member', 'members')})"
    if facts.upload_rows is None:
        return "A CSV upload that no longer exists"
    return f"CSV upload {facts.upload_filename or 'without a file name'} ({_count(facts.upload_rows, 'row', 'rows')})"


def _count(n: int | None, one: str, many: str) -> str:
    n = n or 0
    return f"{n:,} {one if n == 1 else many}"

"""The IQA queries the stand-in serves, and how a query's rows are selected and shaped. Pure.

Each query has positional prompts (``Parameter`` values, in order) and optional named URL filters. A
prompt value may carry an operator prefix (``eq:REG``); an empty value means the prompt is unused. Rows
come in ascending member id order, so paging with ``offset`` sees every row exactly once as long as the
data does not change between pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from standins.imis.envelopes import Value
from standins.members.dataset import AS_OF, Member


class QueryParameterError(ValueError):
    """A parameter iMIS would refuse; the message is the one iMIS gives."""


@dataclass(frozen=True, slots=True)
class Column:
    """An IQA column: its alias (the property name clients see) and how to read it from a member."""

    alias: str
    read: Callable[[Member, bool], Value]  # (member, opted_out) -> value


@dataclass(frozen=True, slots=True)
class Prompt:
    """A positional prompt: a value (already stripped of ``eq:``) narrows the rows with ``matches``."""

    name: str
    matches: Callable[[Member, str], bool]


@dataclass(frozen=True, slots=True)
class IqaQuery:
    path: str
    entity_type: str
    columns: tuple[Column, ...]
    prompts: tuple[Prompt, ...]
    include: Callable[[Member, bool], bool]  # (member, opted_out) -> in the result
    exposed: bool = True  # False: not "available to REST", so iMIS answers 404
    # What "opted out" means to it: the SMS flag (panel or preference), or a TEXTUNSUB activity, as the
    # audiences built for iMIS Text Messenger test it.
    excludes: Literal["sms_flag", "textunsub"] = "sms_flag"


def _has_mobile(member: Member) -> bool:
    return bool(member.mobile and member.mobile.strip())


def _date_param(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise QueryParameterError(f"Invalid date parameter '{value}'.") from None


_COMMON: tuple[Column, ...] = (
    Column("ID", lambda m, _: m.id),
    Column("FirstName", lambda m, _: m.first_name),
    Column("LastName", lambda m, _: m.last_name),
    Column("InformalName", lambda m, _: m.informal_name),
    Column("Mobile", lambda m, _: m.mobile),
    Column("Email", lambda m, _: m.email),
    Column("MemberType", lambda m, _: m.member_type),
    Column("Chapter", lambda m, _: m.chapter),
    # The contact's address as an IQA on CsContact returns it: the state (or province) code and the ZIP code
    # as typed, NULL when the member has no address.
    Column("City", lambda m, _: m.address.city if m.address else None),
    Column("State", lambda m, _: (m.address.state or None) if m.address else None),
    Column("Zip", lambda m, _: m.address.postal_code if m.address else None),
    Column("Country", lambda m, _: m.address.country_code if m.address else None),
)
_MEMBER_TYPE = Prompt("MemberType", lambda m, v: m.member_type.lower() == v.lower())

QUERIES: tuple[IqaQuery, ...] = (
    IqaQuery(
        path="$/Textpulse/SMS Audience",
        entity_type="48",
        columns=_COMMON
        + (
            Column("SmsOptOut", lambda _, opted_out: opted_out),
            Column("YearsAsMember", lambda m, _: m.years_as_member),
            Column("JoinDate", lambda m, _: m.join_date),
        ),
        prompts=(_MEMBER_TYPE,),
        # The site's audience IQA: active members with something in Mobile, SmsOptOut not true
        # (docs/imis.md#the-sms-preferences-panel).
        include=lambda m, opted_out: m.status == "A" and _has_mobile(m) and not opted_out,
    ),
    IqaQuery(
        path="$/Text Messenger/SMS Audience",
        entity_type="48",
        columns=_COMMON,
        prompts=(_MEMBER_TYPE,),
        # An audience built for iMIS Text Messenger: active members with a mobile and no TEXTUNSUB activity.
        include=lambda m, unsubscribed: m.status == "A" and _has_mobile(m) and not unsubscribed,
        excludes="textunsub",
    ),
    IqaQuery(
        path="$/Textpulse/Members By Chapter",
        entity_type="48",
        columns=_COMMON + (Column("SmsOptOut", lambda _, opted_out: opted_out),),
        prompts=(Prompt("Chapter", lambda m, v: m.chapter.lower() == v.lower()), _MEMBER_TYPE),
        include=lambda m, _: m.status == "A",
    ),
    IqaQuery(
        path="$/Textpulse/Lapsed Members",
        entity_type="9",
        columns=_COMMON
        + (
            Column("PaidThrough", lambda m, _: m.paid_thru),
            Column("LastDuesAmount", lambda m, _: m.last_dues),
        ),
        prompts=(Prompt("PaidThroughBefore", lambda m, v: m.paid_thru < _date_param(v)),),
        include=lambda m, _: m.status == "A" and m.paid_thru < AS_OF,
    ),
    IqaQuery(
        path="$/Textpulse/Staff Only",
        entity_type="48",
        columns=_COMMON,
        prompts=(),
        include=lambda m, _: True,
        exposed=False,
    ),
)

_BY_PATH = {q.path.lower(): q for q in QUERIES}


def find_query(path: str) -> IqaQuery | None:
    """The query at ``path`` (case-insensitive, as iMIS's document system is), if it is exposed to REST."""
    query = _BY_PATH.get(path.strip().lower())
    return query if query is not None and query.exposed else None


def strip_operator(value: str, *, require_eq: bool) -> str:
    """``eq:REG`` -> ``REG``; other operators are refused, as sites that demand ``eq:`` do."""
    if ":" in value[:4]:
        operator, _, rest = value.partition(":")
        if operator.lower() != "eq":
            raise QueryParameterError("In IQA query, parameters must be Parameter Equal")
        return rest
    if require_eq and value:
        raise QueryParameterError("In IQA query, parameters must be Parameter Equal")
    return value


def select_rows(
    query: IqaQuery,
    members: Sequence[Member],
    parameters: Sequence[str],
    *,
    opted_out: Callable[[str], bool],
    party_id: str | None = None,
    require_eq: bool = False,
) -> list[tuple[Member, bool]]:
    """Members in the result, in id order, each with its current SmsOptOut flag.

    Raises QueryParameterError for a malformed parameter.
    """
    active: list[tuple[Prompt, str]] = []
    for prompt, raw in zip(query.prompts, parameters, strict=False):
        value = strip_operator(raw, require_eq=require_eq)
        if value:
            active.append((prompt, value))
    wanted_id = strip_operator(party_id, require_eq=require_eq) if party_id else None
    rows: list[tuple[Member, bool]] = []
    for member in members:
        if wanted_id is not None and member.id != wanted_id:
            continue
        flag = opted_out(member.id)
        if query.include(member, flag) and all(p.matches(member, v) for p, v in active):
            rows.append((member, flag))
    return rows

"""``/api/v1/settings/keywords``: who answers HELP / INFO, and the organisation's own keywords.

``help_answered_by`` is ``twilio`` (Twilio's Advanced Opt-Out answers them; Textpulse sends nothing) or
``textpulse`` (the help text: the organisation's name, how to opt out, and ``help_contact``). Only one side
answers, so a member never gets two. An organisation's own keywords (RENEW with a link...) are always
answered by Textpulse. A keyword may not be one Twilio acts on (STOP, START, HELP...), nor a duplicate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import Queries, transaction
from libs.common.one_off_texts import help_text
from libs.common.segments import InvalidBody, count_segments
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, OrgDep, PoolDep
from services.api.errors import InvalidInput
from services.optout.keywords import HELP_KEYWORDS, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS

QUERIES: Final = Queries.load(Path(__file__).parents[1] / "keyword_settings.sql")

router = APIRouter(prefix="/settings/keywords", tags=["settings"])

RESERVED: Final = OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS
_KEYWORD = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_KEYWORDS: Final = 50

Word = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=20)]
ReplyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
Contact = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]


class Keyword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyword: Word
    reply: ReplyText


class KeywordsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "help_answered_by": "textpulse", "help_contact": "(617) 555-0100",
        "keywords": [{"keyword": "RENEW", "reply": "Renew at https://example.org/renew"}]}]})

    help_answered_by: Literal["twilio", "textpulse"]
    help_contact: Contact = ""
    keywords: list[Keyword] = Field(default_factory=list, max_length=MAX_KEYWORDS)


class KeywordsOut(KeywordsIn):
    help_text: str = Field(description="what HELP / INFO gets when Textpulse answers")


@router.get("", summary="Who answers HELP, and the organisation's own keywords")
async def read_keywords(org: OrgDep, pool: PoolDep) -> KeywordsOut:
    async with pool.acquire() as conn:
        row = await QUERIES.fetchrow(conn, "keywords", org_id=org.id)
    assert row is not None
    return KeywordsOut(help_answered_by=row["help_answered_by"], help_contact=row["help_contact"],
                       keywords=[Keyword(keyword=k, reply=v)
                                 for k, v in zip(row["keywords"], row["replies"], strict=True)],
                       help_text=help_text(row["name"], row["help_contact"]))


@router.put("", summary="Set who answers HELP, and replace the organisation's own keywords")
async def write_keywords(body: KeywordsIn, _admin: AdminDep, caller: CallerDep, org: OrgDep,
                         pool: PoolDep) -> KeywordsOut:
    check_keywords(body)
    async with transaction(pool) as conn:
        await QUERIES.execute(conn, "set-help", org_id=org.id, answered_by=body.help_answered_by,
                              contact=body.help_contact)
        await QUERIES.execute(conn, "drop-keywords", org_id=org.id)
        await QUERIES.execute(conn, "add-keywords", org_id=org.id, keywords=[k.keyword for k in body.keywords],
                              replies=[k.reply for k in body.keywords])
        await audit.record(conn, caller, "keywords_changed", "organisation", str(org.id),
                           detail={"help_answered_by": body.help_answered_by,
                                   "keywords": [k.keyword for k in body.keywords]})
    return await read_keywords(org, pool)


def check_keywords(body: KeywordsIn) -> None:
    """A clear 422 naming the field for a keyword that cannot be one."""
    seen: set[str] = set()
    for index, item in enumerate(body.keywords):
        field = f"keywords.{index}.keyword"
        if not _KEYWORD.match(item.keyword):
            raise InvalidInput(field, "keyword_invalid", "a keyword is one word of 2 to 20 letters or digits")
        if item.keyword in RESERVED:
            raise InvalidInput(field, "keyword_reserved",
                               f"{item.keyword} is a keyword Twilio acts on (opt-out, opt-in or help)")
        if item.keyword in seen:
            raise InvalidInput(field, "keyword_duplicate", f"{item.keyword} is listed twice")
        seen.add(item.keyword)
        try:
            count_segments(item.reply)
        except InvalidBody as exc:
            raise InvalidInput(f"keywords.{index}.reply", exc.code, exc.message) from None

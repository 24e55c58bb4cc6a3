"""Where a campaign's members come from: its ``audience`` setting.

``campaigns.audience`` (jsonb) is one of::

    {"kind": "iqa", "query": "$/Textpulse/SMS Audience", "parameters": ["eq:REG"]}
    {"kind": "csv", "upload_id": "<csv_uploads.id>"}
    {"kind": "list", "list_id": "<member_lists.id>"}

``parameters`` are the IQA's prompts in order, sent as given (imis.md §2: keep positions with ``""``).
Rows become AudienceMembers in :mod:`libs.common.audience_members`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from libs.common.errors import PermanentError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IqaAudience(_Spec):
    kind: Literal["iqa"]
    query: Annotated[str, Field(pattern=r"^\$/", max_length=500)]
    parameters: tuple[str, ...] = ()


class CsvAudience(_Spec):
    kind: Literal["csv"]
    upload_id: UUID


class ListAudience(_Spec):
    kind: Literal["list"]
    list_id: UUID


Audience = Annotated[IqaAudience | CsvAudience | ListAudience, Field(discriminator="kind")]
_AUDIENCE: TypeAdapter[IqaAudience | CsvAudience | ListAudience] = TypeAdapter(Audience)


class AudienceInvalid(PermanentError):
    """The campaign's audience setting cannot be used; the run fails with this reason."""


def parse_audience(data: Any) -> IqaAudience | CsvAudience | ListAudience:
    """Raise AudienceInvalid (``audience_invalid``) naming what is wrong."""
    try:
        return _AUDIENCE.validate_python(data)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'audience'}: {e['msg']}" for e in exc.errors()[:5])
        raise AudienceInvalid("audience_invalid", f"the campaign's audience is not usable: {detail}") from None

"""Everything the iMIS stand-in holds in memory: members, tokens, saved parties, panel rows, faults, writes.

One instance per app. Reads of IQA results are cached per (query, parameters) and dropped whenever a
write could change them (``version``), so paging through 100,000 rows costs one scan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standins.imis.activities import ActivityStore
from standins.imis.config import ImisConfig, load_members
from standins.imis.faults import FaultBook
from standins.imis.panels import PanelStore
from standins.imis.parties import render_person, sms_opted_in
from standins.imis.queries import IqaQuery, select_rows
from standins.imis.tokens import TokenStore
from standins.members.dataset import Member

SMS_PANEL = "TP_SmsPreferences"
TEXT_UNSUBSCRIBE = "TEXTUNSUB"


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """A write a client made (for tests to assert on): method, path, status answered and the body sent."""

    at: float
    method: str
    path: str
    status: int
    body: Any


@dataclass(slots=True)
class ImisState:
    config: ImisConfig
    members: list[Member] = field(default_factory=list)
    by_id: dict[str, Member] = field(default_factory=dict)
    tokens: TokenStore = field(init=False)
    panels: PanelStore = field(init=False)
    activities: ActivityStore = field(default_factory=ActivityStore)
    saved_parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: FaultBook = field(default_factory=FaultBook)
    writes: list[WriteRecord] = field(default_factory=list)
    version: int = 0
    pages_served: dict[str, int] = field(default_factory=dict)  # query pages answered per endpoint, for tests
    _rows: dict[tuple[object, ...], list[tuple[Member, bool]]] = field(default_factory=dict)
    _unsubscribed: set[str] | None = None

    def __post_init__(self) -> None:
        if not self.members:
            self.members = load_members(self.config.dataset, self.config.seed)
        self.members.sort(key=lambda m: int(m.id))
        self.by_id = {m.id: m for m in self.members}
        self.reset()

    def reset(self) -> None:
        """Back to the state at start: no tokens, no saved edits, seeded opt-outs only, no faults."""
        c = self.config
        self.tokens = TokenStore(c.username, c.password, c.client_id, c.client_secret, c.expires_in)
        self.panels = PanelStore(c.panels)
        if SMS_PANEL in c.panels and c.preexisting_opt_out_every:
            for member in self.members:
                if int(member.id) % c.preexisting_opt_out_every == 0:
                    self.panels.rows[SMS_PANEL][member.id] = {
                        "ID": member.id,
                        "SmsOptOut": True,
                        "SmsOptOutDate": "2024-11-05T09:30:00",
                        "SmsOptOutSource": "Imported from the previous SMS provider",
                        "SmsOptInDate": None,
                    }
        self.activities = ActivityStore()
        self.saved_parties.clear()
        self.faults.clear()
        self.writes.clear()
        self.pages_served.clear()
        self.changed()

    def changed(self) -> None:
        self.version += 1
        self._rows.clear()
        self._unsubscribed = None

    def now(self) -> float:
        return time.time()

    def opted_out(self, party_id: str) -> bool:
        """SmsOptOut as the audience IQA sees it: the panel flag, or SMS unticked on the contact."""
        row = self.panels.rows.get(SMS_PANEL, {}).get(party_id)
        if row is not None and row.get("SmsOptOut") is True:
            return True
        saved = self.saved_parties.get(party_id)
        return saved is not None and sms_opted_in(saved) is False

    def text_unsubscribed(self, party_id: str) -> bool:
        """A TEXTUNSUB activity on the contact, as iMIS Text Messenger's audience IQAs test."""
        if self._unsubscribed is None:
            self._unsubscribed = self.activities.members_with(TEXT_UNSUBSCRIBE)
        return party_id in self._unsubscribed

    def rows(self, query: IqaQuery, parameters: list[str], party_id: str | None) -> list[tuple[Member, bool]]:
        """The full result of ``query``; raises QueryParameterError for malformed parameters."""
        key = (query.path, tuple(parameters), party_id)
        cached = self._rows.get(key)
        if cached is None:
            cached = select_rows(
                query,
                self.members,
                parameters,
                opted_out=self.text_unsubscribed if query.excludes == "textunsub" else self.opted_out,
                party_id=party_id,
                require_eq=self.config.require_eq_prefix,
            )
            self._rows[key] = cached
        return cached

    def party(self, party_id: str) -> dict[str, Any] | None:
        saved = self.saved_parties.get(party_id)
        if saved is not None:
            return saved
        member = self.by_id.get(party_id)
        return render_person(member) if member is not None else None

    def record_write(self, method: str, path: str, status: int, body: Any) -> None:
        self.writes.append(WriteRecord(self.now(), method, path, status, body))

    @staticmethod
    def utc_now() -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

"""Where one write-back job lands in iMIS: the organisation's ``writeback_target`` (migration 0046).

Every opt-out and opt-in that reaches ``imis_outbox`` (a keyword, a 21610, staff) is written here, so the
choice is made in this one place:

- ``activity`` (the default for new organisations): a ``TEXTUNSUB`` Activity on opt-out, archived to
  ``TEXTUNSUB_A`` on opt-in, as iMIS Text Messenger writes them (libs/common/imis_activities.py);
- ``preference``: ``OptInFlag`` of the SMS communication type on the party (libs/common/imis_preferences.py);
- ``panel``: the ``TP_SmsPreferences`` panel row (docs/imis.md#the-sms-preferences-panel).

Each returns a short word for the log (``created``, ``already_recorded``, ``archived 1``, ``updated``...).
"""

from __future__ import annotations

from libs.common.errors import PermanentError
from libs.common.imis import ImisSession, write_panel
from libs.common.imis_activities import archive_unsubscribes, record_unsubscribe
from libs.common.imis_preferences import write_sms_preference
from libs.common.imis_values import PanelValue
from services.optout.consent import imis_local_time
from services.optout.db import ImisAccount, ImisJob


async def write_back(session: ImisSession, account: ImisAccount, job: ImisJob) -> str:
    """Write ``job`` to the organisation's target; raises the session's typed errors."""
    if job.action not in ("opt_out", "opt_in"):
        raise PermanentError("imis_action_unknown", f"no iMIS write-back is defined for {job.action!r}")
    opted_out = job.action == "opt_out"
    if account.writeback_target == "activity":
        if opted_out:
            return await record_unsubscribe(session, job.member_id, job.phone, job.occurred_at, job.source_text)
        return await archive_unsubscribes(session, job.member_id, job.phone)
    if account.writeback_target == "preference":
        if account.sms_communication_type_id is None:
            raise PermanentError("imis_preference_missing", "no SMS communication type is set for the write-back")
        return await write_sms_preference(session, job.member_id, account.sms_communication_type_id,
                                          opted_in=not opted_out)
    return await write_panel(session, account.sms_panel, job.member_id, panel_values(job))


def panel_values(job: ImisJob) -> list[tuple[str, PanelValue]]:
    """The TP_SmsPreferences row for this job, dates in the organisation's time zone."""
    when = imis_local_time(job.occurred_at, job.time_zone)
    if job.action == "opt_out":
        return [("ID", job.member_id), ("SmsOptOut", True), ("SmsOptOutDate", when),
                ("SmsOptOutSource", job.source_text)]
    return [("ID", job.member_id), ("SmsOptOut", False), ("SmsOptInDate", when)]

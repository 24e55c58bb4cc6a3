"""The ``--state-file``: messages, opt-outs and number settings saved on shutdown (or on request) and
loaded at start, so a restarted stand-in still answers fetches and lists for what it took before.

Written to a temporary file and renamed, so a crash mid-write leaves the previous snapshot. Messages
still waiting when saved are queued again at load, from the load time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from standins.twilio.messages import FINAL_STATUSES, Message
from standins.twilio.state import TwilioState

VERSION = 1
_MESSAGE_FIELDS = {f.name for f in fields(Message)}


def save(state: TwilioState, path: str | Path) -> int:
    """Write the snapshot; returns how many messages it holds."""
    data: dict[str, Any] = {
        "version": VERSION,
        "account_sid": state.config.account_sid,
        "messages": [asdict(m) for m in state.store.ordered],
        "opt_outs": sorted([scope, member] for scope, member in state.opt_outs),
        "numbers": {
            n.phone_number: {
                "verification": n.verification,
                "rate": n.rate,
                "sms_url": n.sms_url,
                "service": n.service_sid,
                "friendly_name": n.friendly_name,
            }
            for n in state.senders.numbers.values()
        },
        "account": {"type": state.account_type, "status": state.account_status, "friendly_name": state.friendly_name},
    }
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, target)
    return len(data["messages"])


def load(state: TwilioState, path: str | Path, now: float) -> int:
    """Restore a snapshot written for the same account; returns how many messages it restored.

    Raises ValueError for a snapshot of another account or version.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("version") != VERSION or data.get("account_sid") != state.config.account_sid:
        raise ValueError(f"{path} is not a version-{VERSION} snapshot of account {state.config.account_sid}")
    for phone, settings in data["numbers"].items():
        state.senders.add_number(phone, now=now, **settings)
    account = data["account"]
    state.account_type = account["type"]
    state.account_status = account["status"]
    state.friendly_name = account["friendly_name"]
    state.opt_outs = {(scope, member) for scope, member in data["opt_outs"]}
    for raw in data["messages"]:
        message = Message(**{k: v for k, v in raw.items() if k in _MESSAGE_FIELDS})
        if message.direction == "outbound-api" and message.status not in FINAL_STATUSES and message.sender:
            message.status = "queued"
            number = state.senders.numbers.get(message.sender)
            rate = number.rate if number is not None else state.config.default_rate
            state.queues.enqueue(message, message.sender, rate, now, max_wait=None)
        state.store.add(message)
    state.store.advance_seq(max((m.seq for m in state.store.ordered), default=0))
    return len(data["messages"])

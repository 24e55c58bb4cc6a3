"""Where the catcher keeps what it received: one ``.eml`` file per message and ``index.jsonl``.

    outbox = Outbox(Path("var/outbox"))
    caught = outbox.save(mail_from, rcpt_tos, raw_bytes, received_at=datetime.now(UTC))
    outbox.messages()  # newest first, each with its plain-text body

The ``.eml`` is exactly the bytes the client sent (open it in any mail client); the index line holds the
envelope and the headers a list needs, so listing never parses every file. Saving is serialised by the
caller (one SMTP server, one event loop); a message whose index line was never written is not listed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

INDEX = "index.jsonl"


@dataclass(frozen=True, slots=True)
class CaughtMessage:
    id: str
    received_at: str  # ISO 8601, UTC
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    message_id: str | None
    text: str  # the plain-text part, or "" when there is none
    file: str  # the .eml's name inside the outbox


class Outbox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, mail_from: str, rcpt_tos: list[str], content: bytes, *, received_at: datetime) -> CaughtMessage:
        """Write the message's .eml, then its index line (so a listed message always has its file)."""
        message_id = f"{received_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        file = f"{message_id}.eml"
        (self.directory / file).write_bytes(content)
        parsed = message_from_bytes(content, policy=policy.default)
        caught = CaughtMessage(
            id=message_id, received_at=received_at.isoformat(), mail_from=mail_from, rcpt_tos=list(rcpt_tos),
            subject=" ".join(str(parsed.get("Subject", "")).split()),  # unfold a long subject
            message_id=str(parsed["Message-ID"]).strip() if parsed["Message-ID"] else None,
            text=_plain_text(parsed), file=file,
        )
        with (self.directory / INDEX).open("a", encoding="utf-8") as index:
            index.write(json.dumps(asdict(caught)) + "\n")
        return caught

    def messages(self) -> list[CaughtMessage]:
        """Every message caught so far, newest first."""
        path = self.directory / INDEX
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [CaughtMessage(**json.loads(line)) for line in reversed(lines) if line.strip()]

    def raw(self, message_id: str) -> bytes | None:
        """The .eml bytes of one caught message, or None for an id that was never caught."""
        found = next((m for m in self.messages() if m.id == message_id), None)
        return (self.directory / found.file).read_bytes() if found else None


def _plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""

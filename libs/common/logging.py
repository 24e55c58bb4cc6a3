"""Structured logging: one stable event name per line plus fields, JSON in production.

Usage::

    log = get_logger(__name__)
    log.info("send.succeeded", extra={"run_id": run_id, "sender": sender, "segments": 2})

Names are ``<noun>.<past-tense verb>``. Never log tokens, full phone numbers or message bodies:
use ``mask_phone`` for numbers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "event": record.getMessage(),
            "logger": record.name,
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname[0]} {record.getMessage()} {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line.rstrip()


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED}


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Send every log line of this process to stderr in the chosen format; call once from main."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kafka client, the web server and the twilio SDK (every request and header) are chatty at INFO;
    # their warnings still come through.
    for noisy in ("aiokafka", "uvicorn.access", "twilio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def mask_phone(e164: str) -> str:
    """+14155550134 -> +1415*****34: enough to correlate, not enough to identify."""
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:5] + "*" * (len(e164) - 7) + e164[-2:]

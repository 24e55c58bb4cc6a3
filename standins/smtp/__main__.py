"""``python -m standins.smtp --port 8082 --smtp-port 8025 --outbox var/outbox``: run the SMTP catcher.

Every flag can also come from an ``SMTP_CATCHER_<FLAG>`` environment variable (``SMTP_CATCHER_PORT``...).
``--port`` is the HTTP API (``/healthz``, ``/messages``); ``--smtp-port`` is where mail is sent.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from libs.common.logging import configure_logging
from standins.serving import serve_forever
from standins.smtp.app import create_app
from standins.smtp.outbox import Outbox


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SMTP_CATCHER_{name}", default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m standins.smtp", description="Local SMTP server that keeps mail.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", "8082")), help="HTTP API; 0 picks a free port")
    p.add_argument("--smtp-port", type=int, default=int(_env("SMTP_PORT", "8025")))
    p.add_argument("--outbox", type=Path, default=Path(_env("OUTBOX", "var/outbox")),
                   help="where each message is kept as .eml, with index.jsonl")
    p.add_argument("--log-format", choices=("json", "text"), default=_env("LOG_FORMAT", "text"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("smtp-catcher", fmt=args.log_format)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    app = create_app(Outbox(args.outbox), smtp_host=args.host, smtp_port=args.smtp_port)
    serve_forever(app, name="smtp-catcher", host=args.host, port=args.port)


if __name__ == "__main__":
    main()

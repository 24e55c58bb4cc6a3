"""``python -m standins.twilio --port 8080 [--config FILE] [--state-file FILE]``: run the Twilio stand-in.

Every flag can also come from a ``TWILIO_STANDIN_<FLAG>`` environment variable (``TWILIO_STANDIN_PORT``...).
Point the SDK at it with ``client.api.base_url = client.messaging.base_url = "http://127.0.0.1:8080"``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from typing import Any

from libs.common.logging import configure_logging
from standins.serving import serve_forever
from standins.twilio.app import create_app
from standins.twilio.config import TwilioConfig, load_config


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(f"TWILIO_STANDIN_{name}", default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m standins.twilio", description="Local Twilio Messaging stand-in.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", "8080") or 8080), help="0 picks a free port")
    p.add_argument("--config", default=_env("CONFIG", None), help="JSON or YAML overriding TwilioConfig fields")
    p.add_argument("--state-file", default=_env("STATE_FILE", None), help="snapshot loaded at start, saved at exit")
    p.add_argument("--rate", type=float, default=None, help="segments/s of every sender without its own (default 3)")
    p.add_argument("--inbound-url", default=_env("INBOUND_URL", None), help="incoming-message webhook of the numbers")
    p.add_argument("--delivery-delay", type=float, default=None, help="seconds from sent to delivered")
    p.add_argument(
        "--tollfree-policy",
        choices=("blocked", "caps"),
        default=_env("TOLLFREE_POLICY", None),
        help="unverified toll-free numbers: blocked to US/CA (since 2024, default) or the 2023 volume caps",
    )
    p.add_argument("--log-format", choices=("json", "text"), default=_env("LOG_FORMAT", "text"))
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> TwilioConfig:
    overrides: dict[str, Any] = {}
    if args.state_file:
        overrides["state_file"] = args.state_file
    rate = args.rate if args.rate is not None else _env("RATE", None)
    if rate is not None:
        overrides["default_rate"] = float(rate)
    if args.inbound_url:
        overrides["inbound_url"] = args.inbound_url
    if args.delivery_delay is not None:
        overrides["delivery_delay"] = args.delivery_delay
    if args.tollfree_policy:
        overrides["tollfree_policy"] = args.tollfree_policy
    base = load_config(args.config) if args.config else TwilioConfig()
    return replace(base, **overrides)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("twilio-standin", fmt=args.log_format)
    serve_forever(create_app(build_config(args)), name="twilio-standin", host=args.host, port=args.port)


if __name__ == "__main__":
    main()

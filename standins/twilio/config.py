"""Settings of one Twilio stand-in process: the account, its numbers and services, and timings.

The defaults describe one ready-to-use account (``default_config()``); ``load_config(path)`` overlays a
JSON or YAML file with the same field names. SIDs of configured objects are derived from their names,
so they are the same on every start.

Default numbers (all US toll-free, 3 segments/s):

=================  =============  ==============================================
number             verification   role
=================  =============  ==============================================
+18885550100       verified       direct ``From`` sender
+18885550101       verified       in the "Textpulse" Messaging Service
+18885550102       verified       in the "Textpulse" Messaging Service
+18885550103       pending        blocked to US/CA (30032) since Jan 31, 2024
+18885550104       restricted     never submitted: blocked to US/CA (30032)
+18885550105       rejected       blocked to US/CA (30032)
=================  =============  ==============================================
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

Verification = Literal["verified", "pending", "restricted", "rejected"]
TollfreePolicy = Literal["blocked", "caps"]

TOLL_FREE_AREA_CODES = frozenset({"800", "833", "844", "855", "866", "877", "888"})


def derived_sid(prefix: str, *parts: str) -> str:
    """A stable SID: the 2-letter ``prefix`` and 32 hex digits derived from ``parts``."""
    return prefix + hashlib.sha1("|".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class NumberConfig:
    phone_number: str
    verification: Verification = "verified"
    rate: float | None = None  # segments per second; None: the account default
    sms_url: str | None = None  # incoming-message webhook; None: the config's inbound_url
    service: str | None = None  # friendly name or SID of the Messaging Service it belongs to
    friendly_name: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    friendly_name: str
    inbound_request_url: str | None = None
    status_callback: str | None = None
    sticky_sender: bool = True
    smart_encoding: bool = False
    validity_period: int = 36_000
    use_inbound_webhook_on_number: bool = True
    advanced_opt_out: bool = True  # OptOutType on incoming webhooks (docs/twilio.md#incoming-messages)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """Another live account besides the main one: it authenticates and fetches itself (``GET
    /2010-04-01/Accounts/{Sid}.json``), so credential checks can be tested for several organisations;
    it owns no numbers. Twilio accepts an account's secondary auth token as well as its primary one."""

    account_sid: str
    auth_token: str
    secondary_auth_token: str | None = None
    friendly_name: str = "Textpulse stand-in (other account)"
    account_type: Literal["Trial", "Full"] = "Full"


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str = derived_sid("AC", "textpulse-standin")
    # The fake token of the worked example in docs/twilio.md#webhook-signatures; never a real credential.
    auth_token: str = "0123456789abcdef0123456789abcdef"
    friendly_name: str = "Textpulse stand-in"
    account_type: Literal["Trial", "Full"] = "Full"
    account_status: Literal["active", "suspended", "closed"] = "active"
    api_key_sid: str = derived_sid("SK", "textpulse-standin-api-key")
    api_key_secret: str = "standin-api-key-secret-000000000"
    test_account_sid: str = derived_sid("AC", "textpulse-standin-test")
    test_auth_token: str = "fedcba9876543210fedcba9876543210"
    numbers: tuple[NumberConfig, ...] = (
        NumberConfig("+18885550100"),
        NumberConfig("+18885550101", service="Textpulse"),
        NumberConfig("+18885550102", service="Textpulse"),
        NumberConfig("+18885550103", verification="pending"),
        NumberConfig("+18885550104", verification="restricted"),
        NumberConfig("+18885550105", verification="rejected"),
    )
    services: tuple[ServiceConfig, ...] = (ServiceConfig("Textpulse"),)
    other_accounts: tuple[AccountConfig, ...] = ()
    inbound_url: str | None = None  # incoming-message webhook of numbers that name none
    # Segments per second per sender: US toll-free to US/CA (docs/twilio.md#toll-free-senders).
    default_rate: float = 3.0
    tollfree_policy: TollfreePolicy = "blocked"  # "caps": the 2023 daily/weekly/monthly caps instead
    tick_seconds: float = 0.005  # how often the drain loop looks for due messages and status changes
    delivery_delay: float = 0.05  # seconds from "sent" to the delivery receipt
    price_per_segment: str = "0.00790"
    failed_message_fee: str = "0.00100"
    callback_timeout: float = 15.0  # Twilio waits at most 15 s (docs/twilio.md#status-callbacks)
    callback_attempts: int = 3  # including the first
    callback_backoff: float = 0.2  # seconds before the first retry; doubles each time
    callback_workers: int = 16
    status_callbacks: bool = True  # False: post none (a benchmark of the sender, not of Twilio's callbacks)
    state_file: str | None = None


def default_config(**overrides: Any) -> TwilioConfig:
    return replace(TwilioConfig(), **overrides)


def _coerce(name: str, value: Any) -> Any:
    if name == "numbers":
        return tuple(NumberConfig(**n) for n in value)
    if name == "services":
        return tuple(ServiceConfig(**s) for s in value)
    if name == "other_accounts":
        return tuple(AccountConfig(**a) for a in value)
    return value


def load_config(path: str | Path, **overrides: Any) -> TwilioConfig:
    """The defaults overlaid with a JSON/YAML file (``numbers``/``services`` replace the defaults whole).

    Raises ValueError naming an unknown field.
    """
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text) or {}
    known = {f.name for f in fields(TwilioConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown Twilio stand-in settings in {path}: {', '.join(sorted(unknown))}")
    values = {k: _coerce(k, v) for k, v in data.items()}
    values.update(overrides)
    return replace(TwilioConfig(), **values)


def is_toll_free(phone_number: str) -> bool:
    return phone_number.startswith("+1") and phone_number[2:5] in TOLL_FREE_AREA_CODES

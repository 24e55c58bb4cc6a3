"""A member texting one of the account's numbers: keyword rules, Twilio's own reply, the signed webhook.

Driven by ``POST /_control/replies``. The opt-out list changes even when no webhook is configured, and
the keyword message is still posted to the webhook (docs/twilio.md#opt-out-keywords).
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

import phonenumbers

from standins.twilio.callbacks import CallbackDispatcher
from standins.twilio.formats import price
from standins.twilio.keywords import effect
from standins.twilio.messages import API_VERSION, Message
from standins.twilio.senders import Number
from standins.twilio.state import TwilioState, new_sid, segments_of


def _country(e164: str) -> str:
    try:
        region = phonenumbers.region_code_for_country_code(phonenumbers.parse(e164).country_code or 0)
    except phonenumbers.NumberParseException:
        return ""
    return "" if region == "ZZ" else region


def incoming_params(message: Message, number: Number, opt_out_type: str | None, advanced_opt_out: bool) -> tuple[
    tuple[str, str], ...
]:
    """An incoming-message webhook body, in the order Twilio sends it (docs/twilio.md#incoming-messages)."""
    sid = message.sid
    params = [
        ("ToCountry", _country(message.to)), ("ToState", ""), ("SmsMessageSid", sid), ("NumMedia", "0"),
        ("ToCity", ""), ("FromZip", ""), ("SmsSid", sid), ("FromState", ""), ("SmsStatus", "received"),
        ("FromCity", ""), ("Body", message.body), ("FromCountry", _country(message.from_ or "")),
        ("To", message.to),
    ]
    if number.service_sid is not None:
        params.append(("MessagingServiceSid", number.service_sid))
    params += [
        ("ToZip", ""), ("NumSegments", str(message.num_segments)), ("MessageSid", sid),
        ("AccountSid", message.account_sid), ("From", message.from_ or ""), ("ApiVersion", API_VERSION),
    ]
    if opt_out_type is not None and advanced_opt_out:
        params.append(("OptOutType", opt_out_type))
    return tuple(params)


async def receive(
    state: TwilioState, dispatcher: CallbackDispatcher, member: str, to: str, body: str, now: float
) -> dict[str, Any]:
    """Apply a member's text ``body`` from ``member`` to the account's number ``to``; returns what happened.

    Raises KeyError when ``to`` is not one of the account's numbers.
    """
    number = state.senders.numbers[to]
    scope = state.senders.opt_out_scope(to)
    opted_out_before = (scope, member) in state.opt_outs
    result = effect(body, toll_free=number.toll_free, opted_out_before=opted_out_before)
    if result.opt_out_type == "STOP":
        state.opt_outs.add((scope, member))
    elif result.opt_out_type == "START":
        state.opt_outs.discard((scope, member))
    segments, encoding = segments_of(body, False)
    account = state.config.account_sid
    incoming = Message(
        seq=state.store.next_seq(), sid=new_sid(), account_sid=account, to=to, from_=member, body=body,
        messaging_service_sid=number.service_sid, status="received", direction="inbound", num_segments=segments,
        encoding=encoding, date_created=now, date_updated=now, sender=None, date_sent=now, accepted_at=now,
        price=price(state.per_segment * segments),
    )
    state.store.add(incoming)
    reply_sid = None
    if result.auto_reply is not None:
        reply_segments, reply_encoding = segments_of(result.auto_reply, False)
        reply = Message(
            seq=state.store.next_seq(), sid=new_sid(), account_sid=account, to=member, from_=to,
            body=result.auto_reply, messaging_service_sid=number.service_sid, status="delivered",
            direction="outbound-reply", num_segments=reply_segments, encoding=reply_encoding, date_created=now,
            date_updated=now, sender=to, date_sent=now, accepted_at=now, left_queue_at=now, price=price(Decimal(0)),
        )
        state.store.add(reply)
        reply_sid = reply.sid
    service = state.senders.services.get(number.service_sid or "")
    advanced = service is not None and service.advanced_opt_out
    url = state.senders.inbound_url(number)
    webhook = None
    if url is not None:
        params = incoming_params(incoming, number, result.opt_out_type, advanced)
        webhook = asdict(await dispatcher.post_once(url, params))
        webhook["params"] = dict(params)
    return {
        "message_sid": incoming.sid,
        "opt_out_type": result.opt_out_type,
        "opted_out": (scope, member) in state.opt_outs,
        "scope": scope,
        "auto_reply": result.auto_reply,
        "auto_reply_sid": reply_sid,
        "webhook": webhook,
    }

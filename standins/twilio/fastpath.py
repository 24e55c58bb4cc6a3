"""``POST /2010-04-01/Accounts/{Sid}/Messages.json`` served as plain ASGI, in front of FastAPI.

The benchmarks need 2,000 creates/s on two cores shared with the client; FastAPI's routing and
dependency machinery cost more per request than the create itself. Everything else goes on to FastAPI.
The answers are the same as ``api.create_message``'s would be, and both share ``create_response``.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from standins.twilio.context import TwilioApp
from standins.twilio.errors import TwilioApiError
from standins.twilio.messages import Message
from standins.twilio.state import new_sid, segments_of
from standins.twilio.validation import check_create

CREATE_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Messages\.json")
_JSON = b"application/json; charset=utf-8"


def create_response(twilio: TwilioApp, account_sid: str, authorization: str | None, body: bytes) -> tuple[int, bytes]:
    """Status and JSON body of a create; raises TwilioApiError for every refusal."""
    principal = twilio.auth.principal(authorization, account_sid)
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    state = twilio.state
    checked = check_create(
        form, owned=state.senders.numbers, services=state.senders.services, test_credentials=principal.test
    )
    now = time.time()
    if principal.test:
        # Test credentials: a well-formed answer, but nothing is stored, queued or delivered
        # (docs/twilio.md#test-credentials).
        segments, encoding = segments_of(checked.body, checked.smart_encoded)
        message = Message(
            seq=0, sid=new_sid(), account_sid=account_sid, to=checked.to, from_=checked.from_, body=checked.body,
            messaging_service_sid=None, status="queued", direction="outbound-api", num_segments=segments,
            encoding=encoding, date_created=now, date_updated=now, sender=checked.from_,
        )
    else:
        message = state.accept(checked, account_sid, now)
    return 201, message.resource_json()


class CreateFastPath:
    def __init__(self, app: ASGIApp, twilio: TwilioApp) -> None:
        self.app = app
        self.twilio = twilio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = CREATE_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            status, payload = create_response(self.twilio, match.group(1), authorization, b"".join(chunks))
            headers = [(b"content-type", _JSON)]
        except TwilioApiError as exc:
            status, payload = exc.status, bytes(exc.render().body)
            headers = [(b"content-type", _JSON)]
            headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

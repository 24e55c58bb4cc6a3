"""Twilio's error responses: ``{"code", "message", "more_info", "status"}`` JSON.

See docs/twilio.md#rest-basics-and-errors.

Routes raise ``TwilioApiError``; the app renders it. Messages follow Twilio's wording where it is known.
"""

from __future__ import annotations

import json

from starlette.responses import Response


class TwilioApiError(Exception):
    """An API error answered as ``status`` with Twilio's JSON body; ``detail`` and ``headers`` optional."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code}
        if self.detail is not None:
            body["detail"] = self.detail
        body["message"] = self.message
        body["more_info"] = f"https://www.twilio.com/docs/errors/{self.code}"
        body["status"] = self.status
        return body

    def render(self) -> Response:
        return Response(
            json.dumps(self.body()).encode(),
            status_code=self.status,
            media_type="application/json; charset=utf-8",
            headers=self.headers,
        )


def unauthenticated() -> TwilioApiError:
    return TwilioApiError(
        401,
        20003,
        "Authenticate",
        detail="Your AccountSid or AuthToken was incorrect.",
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
    )


def not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, 20404, f"The requested resource {path} was not found")


def test_credentials_refused() -> TwilioApiError:
    return TwilioApiError(403, 20008, "Resource not accessible with Test Account Credentials")


def invalid(code: int, message: str, status: int = 400) -> TwilioApiError:
    return TwilioApiError(status, code, message)


def too_many_requests() -> TwilioApiError:
    return TwilioApiError(429, 20429, "Too Many Requests")


def internal_error() -> TwilioApiError:
    return TwilioApiError(500, 20500, "An internal server error has occurred")


def unavailable() -> TwilioApiError:
    return TwilioApiError(503, 20503, "Service unavailable")


UNAVAILABLE_HTML = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)
GATEWAY_TIMEOUT_HTML = (
    b"<html><head><title>504 Gateway Time-out</title></head>"
    b"<body><center><h1>504 Gateway Time-out</h1></center></body></html>"
)

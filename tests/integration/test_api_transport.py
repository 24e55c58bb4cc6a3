"""What every API response carries and logs: HSTS over https only, and one access-log line per request
with phone numbers masked."""

from __future__ import annotations

import logging

import pytest

from libs.common.access_log import masked
from tests.integration import api_harness
from tests.integration.api_harness import client_for


@pytest.mark.parametrize(("public_url", "hsts"), [("https://sms.example.org", True), ("http://127.0.0.1:8000", False)])
async def test_strict_transport_security_is_sent_only_over_https(database_url: str, kafka_bootstrap: str,
                                                                 public_url: str, hsts: bool) -> None:
    async with api_harness.api_app(database_url, kafka_bootstrap, public_base_url=public_url) as app:
        async with client_for(app) as client:
            response = await client.get("/sign-in")
    assert ("strict-transport-security" in response.headers) is hsts
    if hsts:
        assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_each_request_is_logged_once_with_its_phone_numbers_masked(
    database_url: str, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app, client_for(app) as client:
        with caplog.at_level(logging.INFO, logger="http"):
            await client.get("/api/v1/suppressions/history", params={"phone": "+1 (415) 555-0134"})
    lines = [r for r in caplog.records if r.getMessage() == "http.request"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.status) == ("GET", 401)  # type: ignore[attr-defined]
    assert line.path == "/api/v1/suppressions/history?phone=+1415*****34"  # type: ignore[attr-defined]
    assert "5550134" not in str(line.__dict__)


def test_masking_keeps_ids_that_are_not_phone_numbers() -> None:
    campaign = "/campaigns/3f2b1c4e-0000-4000-8000-000000000000"
    assert masked(campaign, "page=2&limit=1000000") == campaign + "?page=2&limit=1000000"
    assert masked("/x", "phone=%2B447700900123&page=2") == "/x?phone=+4477******23&page=2"

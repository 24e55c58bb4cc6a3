"""The opt-out service counts each Twilio webhook by kind and verdict, and serves the counts at /metrics
on the same port as the webhooks (no member's number in any label)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.factories import fresh_sid
from tests.integration.optout_harness import PUBLIC_BASE, OptoutHarness, Org, fresh_phone, running_optout

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def optout(database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool) -> AsyncIterator[OptoutHarness]:
    async with running_optout(database_url, kafka_bootstrap, db_pool) as harness:
        yield harness


async def webhook_counts(optout: OptoutHarness) -> dict[tuple[str, str], float]:
    response = await optout.client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    if "textpulse_webhooks" not in families:
        return {}
    return {(s.labels["kind"], s.labels["verdict"]): s.value for s in families["textpulse_webhooks"].samples}


async def test_webhooks_are_counted_by_kind_and_verdict(optout: OptoutHarness) -> None:
    org: Org = await optout.new_org()
    phone = fresh_phone()
    before = await webhook_counts(optout)
    assert (await optout.inbound(org, "STOP", phone)).status_code == 200
    assert (await optout.inbound(org, "hello", fresh_phone())).status_code == 200
    assert (await optout.status(org, fresh_sid(), "delivered")).status_code == 200
    params = optout.inbound_params(org, "STOP", fresh_phone())
    forged = optout.sign(PUBLIC_BASE + "/twilio/inbound", params, "f" * 32)
    assert (await optout.post("/twilio/inbound", content=urlencode(params).encode(), signature=forged)).status_code \
        == 403
    unsigned = urlencode(optout.status_params(org, fresh_sid(), "sent")).encode()
    assert (await optout.post("/twilio/status", content=unsigned, signature=None)).status_code == 403
    after = await webhook_counts(optout)

    added = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert added == {("inbound", "accepted"): 2, ("status", "accepted"): 1, ("inbound", "signature_invalid"): 1,
                     ("status", "signature_missing"): 1}
    scrape = (await optout.client.get("/metrics")).text
    assert phone not in scrape and org.account_sid not in scrape

"""``GET /2010-04-01/Accounts/{Sid}.json`` as Twilio answers it, for the main account and other accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from standins.twilio.app import create_app
from standins.twilio.config import AccountConfig, TwilioConfig

OTHER = AccountConfig("AC" + "b" * 32, "primary-token-000000000000000000",
                      secondary_auth_token="secondary-token-0000000000000000",
                      friendly_name="Harbor Nurses", account_type="Trial")
CONFIG = replace(TwilioConfig(), other_accounts=(OTHER,))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Fetching an account needs none of the stand-in's background loops (no lifespan).
    transport = httpx.ASGITransport(app=create_app(CONFIG))
    async with httpx.AsyncClient(transport=transport, base_url="http://twilio.test") as c:
        yield c


async def test_each_account_fetches_itself_with_either_of_its_tokens(client: httpx.AsyncClient) -> None:
    for token in (OTHER.auth_token, OTHER.secondary_auth_token):
        answer = await client.get(f"/2010-04-01/Accounts/{OTHER.account_sid}.json", auth=(OTHER.account_sid, token))
        assert answer.status_code == 200
        body = answer.json()
        assert (body["sid"], body["friendly_name"], body["type"], body["status"]) == (
            OTHER.account_sid, "Harbor Nurses", "Trial", "active")
    main = await client.get(f"/2010-04-01/Accounts/{CONFIG.account_sid}.json",
                            auth=(CONFIG.account_sid, CONFIG.auth_token))
    assert main.json()["sid"] == CONFIG.account_sid


async def test_a_wrong_token_or_test_credentials_get_twilios_errors(client: httpx.AsyncClient) -> None:
    wrong = await client.get(f"/2010-04-01/Accounts/{OTHER.account_sid}.json", auth=(OTHER.account_sid, "0" * 32))
    assert wrong.status_code == 401 and wrong.json()["code"] == 20003
    assert wrong.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    elsewhere = await client.get(f"/2010-04-01/Accounts/{CONFIG.account_sid}.json",
                                 auth=(OTHER.account_sid, OTHER.auth_token))  # another account's path
    assert elsewhere.status_code == 401
    test = await client.get(f"/2010-04-01/Accounts/{CONFIG.test_account_sid}.json",
                            auth=(CONFIG.test_account_sid, CONFIG.test_auth_token))
    assert test.status_code == 403 and test.json()["code"] == 20008

"""What fuzzing the API (test_api_fuzz.py) found, each as a plain case: a 500 or an error that was not
the problem+json the OpenAPI document promises."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.integration import api_harness
from tests.integration.api_harness import PROBLEM, Caller, client_for, problem, signed_in


@pytest.fixture(scope="module")
async def client(database_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app, client_for(app) as c:
        yield c


@pytest.fixture
async def admin(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await signed_in(db_pool, client, org.id, role="admin")


def _field_error(body: dict, field: str) -> dict:
    [error] = [e for e in body["errors"] if e["field"] == field]
    return error


async def test_the_document_describes_every_api_error_as_problem_json(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert {"code", "status", "detail"} <= set(document["components"]["schemas"]["Problem"]["required"])
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
            assert {"4XX", "5XX"} <= set(errors), f"{method} {path}"
            for status, response in errors.items():
                assert list(response["content"]) == [PROBLEM], f"{method} {path} {status}"


@pytest.mark.parametrize("path", ["/api/v1/campaigns", "/api/v1/lists", "/api/v1/users", "/api/v1/suppressions",
                                  "/api/v1/suppressions/writebacks"])
async def test_an_offset_past_any_page_is_a_422_not_a_database_error(admin: Caller, path: str) -> None:
    response = await admin.call("GET", f"{path}?offset=9223372036854775808")
    body = problem(response, 422, "request_invalid")
    assert _field_error(body, "offset")["message"] == "Offset must be at most 1000000000."


async def test_a_twilio_auth_token_with_an_accent_is_a_422_naming_it(admin: Caller) -> None:
    response = await admin.call("PUT", "/api/v1/settings/sms-account/credentials",
                                {"account_sid": "AC" + "0" * 32, "auth_token": "secret-tōken-1234"})
    body = problem(response, 422, "request_invalid")
    assert "without spaces or accents" in _field_error(body, "auth_token")["message"]


async def test_a_nul_character_in_a_json_field_is_a_422_naming_it_and_nothing_is_created(
    admin: Caller, db_pool: asyncpg.Pool
) -> None:
    response = await admin.call("POST", "/api/v1/lists", {"name": "Board", "description": "a\u0000b"})
    body = problem(response, 422, "nul_character")
    assert body["errors"] == [{"field": "description", "code": "nul_character",
                               "message": "must not contain the NUL character (\\u0000)"}]
    assert await db_pool.fetchval("SELECT count(*) FROM member_lists WHERE org_id = $1", admin.org_id) == 0


async def test_a_nul_character_in_a_query_parameter_is_a_422_naming_it(admin: Caller) -> None:
    body = problem(await admin.call("GET", "/api/v1/suppressions?q=%00"), 422, "nul_character")
    assert body["errors"][0]["field"] == "q"


async def test_a_body_over_the_limit_is_a_complete_problem(admin: Caller) -> None:
    response = await admin.call("POST", "/api/v1/lists/00000000-0000-0000-0000-000000000000/entries",
                                {"text": "x" * 2_000_000})
    body = problem(response, 413, "body_too_large")
    assert body["instance"] == "/api/v1/lists/00000000-0000-0000-0000-000000000000/entries"

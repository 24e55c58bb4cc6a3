"""The API fuzzed from its own OpenAPI document with schemathesis: every operation, signed in as staff and
as an admin, against the real app (in process over ASGI) on the test database.

For every generated request: no 5xx; every error is ``application/problem+json`` with ``code``,
``status`` and ``detail``; responses conform to the document where schemathesis can tell; and a refused
(4xx) write leaves the row counts of the main tables as they were.

Nothing leaves the machine: Twilio is the stand-in on 127.0.0.1 (test-send and credential checks reach
it), iMIS a closed port on 127.0.0.1, and no scheduler or dispatcher runs, so a campaign sent now or
scheduled stays a row. Each role gets its own organisation with a draft campaign, a list, a user and an
API key, and path ids are drawn from those as well as generated, so requests reach past the 404s.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness import factories
from harness.dispatch import TwilioStandin
from harness.kafka import own_topics
from harness.processes import free_port, wait_http
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.settings import load_settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api import auth_db
from services.api.main import build, create_app
from tests.integration import api_harness

SENDER = "+18885550100"
PROBLEM = "application/problem+json"
# The tables a refused create or update must leave alone.
COUNTED = ("campaigns", "campaign_runs", "suppressions", "member_lists", "api_keys", "users")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class World:
    """One organisation the fuzzer works in, and the ids it may aim path parameters at."""

    org_id: uuid.UUID
    headers: dict[str, str]
    ids: dict[str, list[str]]
    # Deleting the only campaign or list early would turn the operations after it into 404s.
    doomed: dict[str, list[str]] = field(default_factory=dict)


class DatabaseThread:
    """A pool on an event loop of its own, for seeding and counting from the (synchronous) fuzz tests."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, pool: asyncpg.Pool) -> None:
        self.portal, self.pool = portal, pool

    def counts(self, org_id: uuid.UUID) -> dict[str, int]:
        selects = ", ".join(f"(SELECT count(*) FROM {t} WHERE org_id = $1) AS {t}" for t in COUNTED)
        row = self.portal.call(self.pool.fetchrow, f"SELECT {selects}", org_id)
        return dict(row)


class AppWithLifespan:
    """The app as ``services.api.main.build`` makes it, built when the ASGI lifespan starts: schemathesis
    calls the app on an event loop of its own, and the app's pool must live on that loop. ``configure``
    says where its database and broker are before the first call."""

    def __init__(self) -> None:
        self.args: tuple[str, str, dict[str, Any]] | None = None
        self.app: Any = None

    def configure(self, database_url: str, kafka_bootstrap: str, **overrides: Any) -> None:
        self.args = (database_url, kafka_bootstrap, overrides)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        assert self.args is not None, "configure() the app before calling it"
        database_url, kafka_bootstrap, overrides = self.args
        await receive()  # lifespan.startup
        async with own_topics(kafka_bootstrap) as prefix:
            await ensure_topics(KafkaAccess(kafka_bootstrap), [CAMPAIGN_DUE, CONSENT], prefix=prefix)
            async with build(api_harness.api_settings(database_url, kafka_bootstrap, prefix, **overrides)) as service:
                self.app = service.app
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


APP = AppWithLifespan()
# The document /openapi.json serves, from the same factory (it needs no connections to describe the routes).
schema = schemathesis.openapi.from_dict(create_app(None, load_settings(env="test")).openapi())  # type: ignore[arg-type]
schema.app = APP
# Callers are signed in (a session or a key) by the test: schemathesis must not invent an Authorization header.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module")
async def standin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TwilioStandin]:
    twilio = TwilioStandin(tmp_path_factory.mktemp("twilio"), [SENDER])
    await wait_http(f"{twilio.url}/healthz")
    yield twilio
    twilio.process.stop()


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[DatabaseThread]:
    with anyio.from_thread.start_blocking_portal() as portal:
        pool = portal.call(lambda: asyncpg.create_pool(database_url, min_size=1, max_size=2))
        yield DatabaseThread(portal, pool)
        portal.call(pool.close)


@pytest.fixture(scope="module")
def api(database_url: str, kafka_bootstrap: str, standin: TwilioStandin) -> Iterator[None]:
    closed_port = f"http://127.0.0.1:{free_port()}"
    APP.configure(database_url, kafka_bootstrap, twilio_api_base_url=standin.url,
                  twilio_messaging_base_url=standin.url, imis_base_url=closed_port)
    yield
    asgi.shutdown_lifespans()


CURRENT: list[World] = []  # the world of the test that runs now: the path-parameter hook aims at it


@schema.hook("flatmap_path_parameters")
def _known_ids_sometimes(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
    if not CURRENT or not path_parameters:
        return st.just(path_parameters)
    world, method = CURRENT[0], context.operation.method.upper() if context.operation else ""
    pools = world.doomed if method == "DELETE" else world.ids
    choices = {name: st.sampled_from([value, *pools.get(name, [])]) for name, value in path_parameters.items()}
    return st.fixed_dictionaries(choices)


async def _seed(pool: asyncpg.Pool, standin: TwilioStandin, role: str) -> World:
    org = await api_harness.make_org(pool, sender=SENDER)
    # One organisation per Twilio account: the other role's organisation gives it up.
    await factories.make_standin_account(pool, org.id, standin.config, webhook_base_url="https://hooks.example.org")

    async def campaign(name: str) -> str:
        return str(await factories.make_campaign(pool, org.id, name=name,
                                                 body="Hi {{first_name}}, the AGM is on Friday.",
                                                 sender_id=org.sender_id, state="draft"))

    async def member_list(name: str) -> str:
        list_id = await pool.fetchval(
            "INSERT INTO member_lists (org_id, name) VALUES ($1, $2) RETURNING id", org.id, name)
        await pool.execute(
            "INSERT INTO member_list_entries (list_id, member_id, mobile) VALUES ($1, 'M1', '+12025550143')", list_id)
        return str(list_id)

    async def api_key(name: str) -> str:
        async with pool.acquire() as conn:
            key, _ = await auth_db.insert_api_key(conn, org.id, name, "staff", "test")
        return str(key["id"])

    caller_id, _ = await api_harness.make_user(pool, org.id, role=role)
    colleague_id, _ = await api_harness.make_user(pool, org.id, role="staff")
    await api_harness.make_user(pool, org.id, role="admin")  # an admin left however the fuzzer edits the others
    return World(
        org_id=org.id,
        headers=await api_harness.session_headers(pool, caller_id, org.id),
        ids={"campaign_id": [await campaign("AGM notice")], "list_id": [await member_list("Board")],
             "user_id": [str(colleague_id)], "key_id": [await api_key("iMIS sync")]},
        doomed={"campaign_id": [await campaign("Old draft")], "list_id": [await member_list("Old list")],
                "key_id": [await api_key("Old key")]},
    )


def _world_of(role: str, database: DatabaseThread, standin: TwilioStandin) -> Iterator[World]:
    seeded = database.portal.call(_seed, database.pool, standin, role)
    CURRENT[:] = [seeded]
    yield seeded
    CURRENT.clear()


@pytest.fixture
def staff(api: None, database: DatabaseThread, standin: TwilioStandin) -> Iterator[World]:
    yield from _world_of("staff", database, standin)


@pytest.fixture
def admin(api: None, database: DatabaseThread, standin: TwilioStandin) -> Iterator[World]:
    yield from _world_of("admin", database, standin)


def errors_are_problem_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == PROBLEM, f"a {response.status_code} answered as {content_type!r}: {response.text[:300]}"
    body = response.json()
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body


# The fuzz's iMIS is a closed port, so a route that must ask iMIS answers 503 imis_unavailable: the honest
# answer to a dependency that is down, not a server error.
DEPENDENCY_DOWN = frozenset({"imis_unavailable"})


def no_server_error_but_imis_down(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    if response.status_code == 503 and response.json().get("code") in DEPENDENCY_DOWN:
        return
    not_a_server_error(ctx, response, case)


CHECKS = [no_server_error_but_imis_down, errors_are_problem_json, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


FUZZ_SETTINGS = settings(max_examples=12, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_as_staff(case: schemathesis.Case, staff: World, database: DatabaseThread) -> None:
    call_and_check(case, staff, database)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_as_an_admin(case: schemathesis.Case, admin: World, database: DatabaseThread) -> None:
    call_and_check(case, admin, database)


def call_and_check(case: schemathesis.Case, world: World, database: DatabaseThread) -> None:
    before = database.counts(world.org_id) if case.method.upper() in WRITES else None
    response = case.call(headers=world.headers)
    case.validate_response(response, checks=CHECKS, headers=world.headers)
    if before is not None and 400 <= response.status_code < 500:
        assert database.counts(world.org_id) == before, f"a refused {case.method} {case.path} changed rows"

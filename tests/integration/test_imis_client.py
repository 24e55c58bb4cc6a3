"""The IQA client against the real iMIS stand-in over HTTP: paging, $values, tokens, retries, failures."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from libs.common.errors import DependencyUnavailable, PermanentError
from libs.common.imis import ImisSession, write_panel
from libs.common.imis_iqa import Endpoint, ImisQueryClient, Page, RetryPolicy
from libs.common.imis_values import decode_row
from standins.imis.app import create_app
from standins.imis.config import ImisConfig, load_members
from standins.imis.queries import find_query, select_rows
from standins.serving import ServerThread

pytestmark = pytest.mark.timeout(60)

CONFIG = ImisConfig(dataset="1500")
AUDIENCE = "$/Textpulse/SMS Audience"
FAST = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05)


@pytest.fixture(scope="module")
def imis() -> Iterator[ServerThread]:
    with ServerThread(create_app(CONFIG)) as server:
        yield server


@pytest.fixture(scope="module")
def expected_ids() -> list[str]:
    members = load_members(CONFIG.dataset, CONFIG.seed)
    query = find_query(AUDIENCE)
    assert query is not None
    rows = select_rows(query, members, [], opted_out=lambda i: int(i) % CONFIG.preexisting_opt_out_every == 0)
    return [m.id for m, _ in rows]


@pytest.fixture
async def control(imis: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=imis.url + "/_control") as client:
        await client.post("/reset")
        yield client
        await client.delete("/faults")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
        yield client


def client_for(http: httpx.AsyncClient, url: str, *, password: str = CONFIG.password, page_size: int = 500,
               retry: RetryPolicy = FAST) -> ImisQueryClient:
    return ImisQueryClient(http, url, CONFIG.username, password, retry=retry, page_size=page_size)


async def all_pages(client: ImisQueryClient, query: str = AUDIENCE, parameters: tuple[str, ...] = ()) -> list[Page]:
    return [page async for page in client.pages(query, parameters)]


def ids(pages: list[Page]) -> list[str]:
    return [str(row["ID"]) for page in pages for row in page.rows]


async def fault(control: httpx.AsyncClient, **plan: Any) -> None:
    (await control.post("/faults", json={"path": "/api/IQA", **plan})).raise_for_status()


async def tokens_issued(control: httpx.AsyncClient) -> int:
    return (await control.get("/stats")).json()["tokens_issued"]


async def test_paging_returns_every_row_once_in_order(imis: ServerThread, control: httpx.AsyncClient,
                                                      http: httpx.AsyncClient, expected_ids: list[str]) -> None:
    pages = await all_pages(client_for(http, imis.url, page_size=100))
    assert len(expected_ids) > 1000 and ids(pages) == expected_ids
    # Each page after the first is asked for from 10 rows back (to find where the last one ended), so it
    # brings 90 new rows; a page's offset is its first new row's.
    assert [p.offset for p in pages] == [0, *range(100, len(expected_ids), 90)]
    assert {p.total for p in pages} == {len(expected_ids)}
    assert await tokens_issued(control) == 1  # one token for every page


async def test_a_page_larger_than_the_server_allows_is_cut_and_paging_follows_next_offset(
    imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient, expected_ids: list[str]
) -> None:
    pages = await all_pages(client_for(http, imis.url, page_size=10_000))  # asks 500, the most iMIS serves
    assert ids(pages) == expected_ids and len(pages[0].rows) == 500


async def test_typed_values_are_decoded(imis: ServerThread, control: httpx.AsyncClient,
                                        http: httpx.AsyncClient) -> None:
    [first, *_] = await all_pages(client_for(http, imis.url, page_size=50))
    row = first.rows[0]
    assert isinstance(row["SmsOptOut"], bool) and row["SmsOptOut"] is False
    assert isinstance(row["YearsAsMember"], int)
    assert row["$PartyId"] == row["ID"] and row["ResultRow"] == "1"
    assert isinstance(row["JoinDate"], str) and row["JoinDate"].endswith("T00:00:00")
    assert any(r["Email"] is None for r in first.rows)  # a NULL property has no Value key at all


async def test_a_401_mid_paging_renews_the_token_and_repeats_that_page(
    imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient, expected_ids: list[str]
) -> None:
    await fault(control, kind="unauthorized", skip=3, count=1)
    pages = await all_pages(client_for(http, imis.url, page_size=100))
    assert ids(pages) == expected_ids
    assert await tokens_issued(control) == 2


async def test_tokens_expiring_between_pages_are_renewed(
    imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient, expected_ids: list[str]
) -> None:
    seen: list[str] = []
    async for page in client_for(http, imis.url, page_size=300).pages(AUDIENCE):
        seen += [row["ID"] for row in page.rows]
        await control.post("/tokens/expire")
    assert seen == expected_ids
    # The next page is already requested when a page is handed over, so not every expiry costs a token;
    # the one after page 1 does by page 3 at the latest.
    assert 2 <= await tokens_issued(control) <= len(range(0, len(expected_ids), 300))


@pytest.mark.parametrize(
    "plan",
    [
        {"kind": "server_error", "count": 2},
        {"kind": "server_error", "count": 2, "body": "html"},
        {"kind": "rate_limited", "count": 2, "retry_after": 0},
        {"kind": "slow", "count": 1, "delay_seconds": 2.5},  # longer than the client's 2 s timeout
    ],
    ids=["500-json", "500-html", "429", "timeout"],
)
async def test_transient_failures_are_retried(imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient,
                                              expected_ids: list[str], plan: dict[str, Any]) -> None:
    await fault(control, skip=1, **plan)
    pages = await all_pages(client_for(http, imis.url, page_size=500))
    assert ids(pages) == expected_ids


async def test_iMIS_that_stays_down_is_a_clear_failure(imis: ServerThread, control: httpx.AsyncClient,
                                                       http: httpx.AsyncClient) -> None:
    await fault(control, kind="server_error", skip=1, count=50)
    client = client_for(http, imis.url, page_size=500)
    got: list[Page] = []
    with pytest.raises(DependencyUnavailable) as info:
        async for page in client.pages(AUDIENCE):
            got.append(page)
    assert info.value.code == "imis_unavailable" and "after 3 tries" in info.value.message
    assert "HTTP 500" in info.value.message and len(got) == 1  # the caller saw where it stopped

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DependencyUnavailable) as info:
        await all_pages(client_for(http, closed))
    assert info.value.code == "imis_unavailable" and "ConnectError" in info.value.message


@pytest.mark.parametrize(
    ("query", "parameters", "password", "code"),
    [
        (AUDIENCE, (), "wrong", "imis_credentials_rejected"),
        ("$/Textpulse/Staff Only", (), CONFIG.password, "iqa_not_found"),
        ("$/Textpulse/No Such Query", (), CONFIG.password, "iqa_not_found"),
        (AUDIENCE, ("ne:REG",), CONFIG.password, "iqa_rejected"),
    ],
)
async def test_permanent_failures_are_not_retried(imis: ServerThread, control: httpx.AsyncClient,
                                                  http: httpx.AsyncClient, query: str, parameters: tuple[str, ...],
                                                  password: str, code: str) -> None:
    slow = RetryPolicy(attempts=5, base_s=5.0)  # a retry would blow the test's time
    with pytest.raises(PermanentError) as info:
        await all_pages(client_for(http, imis.url, password=password, retry=slow), query, parameters)
    assert info.value.code == code


async def test_401_after_fresh_tokens_is_a_permanent_failure(imis: ServerThread, control: httpx.AsyncClient,
                                                             http: httpx.AsyncClient) -> None:
    await fault(control, kind="unauthorized", count=10)
    with pytest.raises(PermanentError) as info:
        await all_pages(client_for(http, imis.url))
    assert info.value.code == "imis_unauthorized"
    assert await tokens_issued(control) == 3


async def test_a_query_with_no_rows_is_one_empty_page(imis: ServerThread, control: httpx.AsyncClient,
                                                      http: httpx.AsyncClient) -> None:
    pages = await all_pages(client_for(http, imis.url), "$/Textpulse/Members By Chapter", ("eq:Atlantis", ""))
    assert [(p.rows, p.total) for p in pages] == [([], 0)]


def test_rows_decode_from_both_iqa_shapes_and_odd_values() -> None:
    generic = {"$type": "GenericEntityData", "PrimaryParentIdentity": {"IdentityElements": {"$values": ["77"]}},
               "Properties": {"$values": [
                   {"Name": "ID", "Value": "77"}, {"Name": "Email"},
                   {"Name": "Dues", "Value": {"$type": "System.Decimal", "$value": 12.5}},
                   {"Name": "Tags", "Value": {"$type": "List", "$values": ["a", {"$value": 1}]}},
                   {"Name": "Odd", "Value": {"$type": "System.Object"}}, {"Value": "no name"}, "junk"]}}
    assert decode_row(generic) == {"ID": "77", "Email": None, "Dues": 12.5, "Tags": ["a", 1], "Odd": None,
                                   "$PartyId": "77"}
    expando = {"$type": "System.Dynamic.ExpandoObject, System.Core", "ID": 65, "Company": None,
               "filter-Member Type": "REG"}
    assert decode_row(expando) == {"ID": 65, "Company": None, "filter-Member Type": "REG"}


class WritesBetweenPages(httpx.AsyncBaseTransport):
    """The real transport; after the n-th query page is answered (and before the next is asked for), runs
    ``changes[n]`` against the stand-in: a member joining or leaving the result between two pages."""

    def __init__(self, changes: dict[int, Callable[[], Awaitable[None]]]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._changes = changes
        self.pages = 0
        self.totals: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path.lower() not in ("/api/query", "/api/iqa"):
            return response
        await response.aread()
        self.pages += 1
        self.totals.append(response.json()["TotalCount"])
        change = self._changes.get(self.pages)
        if change is not None:
            await change()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("endpoint", ["query", "iqa"])
async def test_every_row_arrives_once_when_rows_leave_and_join_the_result_between_pages(
    imis: ServerThread, control: httpx.AsyncClient, expected_ids: list[str], endpoint: Endpoint
) -> None:
    query = find_query(AUDIENCE)
    assert query is not None
    # Members the audience leaves out only for their opt-out row, placed within the first 300 rows.
    rejoining = [m.id for m in load_members(CONFIG.dataset, CONFIG.seed)
                 if int(m.id) % CONFIG.preexisting_opt_out_every == 0 and query.include(m, False)
                 and int(m.id) < int(expected_ids[300])][:2]
    assert len(rejoining) == 2
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as writer:
        session = ImisSession(writer, imis.url, CONFIG.username, CONFIG.password)

        def set_opt_out(member_ids: list[str], flag: bool) -> Callable[[], Awaitable[None]]:
            async def change() -> None:
                for member_id in member_ids:
                    await write_panel(session, "TP_SmsPreferences", member_id, [("ID", member_id), ("SmsOptOut", flag)])
            return change

        # Page 1 brings 50 rows, each later page 40 new ones (10 are asked for again).
        changes = {
            2: set_opt_out(expected_ids[3:6], True),  # 3 rows already read leave: later rows move back 3
            8: set_opt_out(rejoining, False),  # 2 join before the 330 rows read: later rows move on 2
            10: set_opt_out(expected_ids[20:45], True),  # 25 leave: more than the 10-row overlap
        }
        transport = WritesBetweenPages(changes)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0)) as http:
            client = ImisQueryClient(http, imis.url, CONFIG.username, CONFIG.password, retry=FAST, page_size=50,
                                     endpoint=endpoint)
            pages = await all_pages(client)
    # The result changed under the paging (28 left, 2 joined), yet every member who was in it when paging
    # began arrives exactly once and in order: those who left after being read were read, and those who
    # joined at positions already read are not.
    assert transport.totals[0] == len(expected_ids) and transport.totals[-1] == len(expected_ids) - 28 + 2
    assert ids(pages) == expected_ids


async def test_the_query_endpoint_brings_the_same_rows_as_the_iqa_endpoint(
    imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    by_iqa = await all_pages(ImisQueryClient(http, imis.url, CONFIG.username, CONFIG.password, endpoint="iqa"))
    by_query = await all_pages(ImisQueryClient(http, imis.url, CONFIG.username, CONFIG.password, endpoint="query"))
    iqa_rows = [{k: v for k, v in row.items() if k not in ("ResultRow", "$PartyId")}
                for page in by_iqa for row in page.rows]
    query_rows = [row | {"ID": str(row["ID"])} for page in by_query for row in page.rows]
    assert len(query_rows) > 1000 and query_rows == iqa_rows


async def test_link_time_detection_finds_the_query_endpoint_or_falls_back_to_iqa(
    imis: ServerThread, control: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    assert await client_for(http, imis.url).detect_endpoint() == "query"
    with ServerThread(create_app(ImisConfig(dataset="small", query_service=False))) as older:
        assert await client_for(http, older.url).detect_endpoint() == "iqa"
        rows = await all_pages(ImisQueryClient(http, older.url, CONFIG.username, CONFIG.password, endpoint="iqa"))
        assert sum(len(p.rows) for p in rows) > 0
    with pytest.raises(PermanentError) as info:
        await client_for(http, imis.url, password="wrong-password").detect_endpoint()
    assert info.value.code == "imis_credentials_rejected"

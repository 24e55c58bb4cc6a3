"""CSV audience uploads and audience previews through the API, on the real app and PostgreSQL."""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from starlette import formparsers

from harness.credentials import seal_credentials
from libs.common.csv_audience import CsvRow
from libs.common.db import Connection
from services.api import audience_sample, dashboard_db, uploads_db
from tests.integration import api_harness
from tests.integration.api_harness import Caller, client_for, problem, with_api_key

CSV = "/api/v1/audiences/csv"
PREVIEW = "/api/v1/audiences/preview"


@pytest.fixture(scope="module")
async def app(database_url: str, kafka_bootstrap: str) -> AsyncIterator[FastAPI]:
    async with api_harness.api_app(database_url, kafka_bootstrap) as app:
        app.state.csv_upload_max_bytes = 40 * 1024 * 1024
        async with app.state.pool.acquire() as conn:
            await uploads_db.QUERIES.check(conn)
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
async def caller(db_pool: asyncpg.Pool, client: httpx.AsyncClient) -> Caller:
    org = await api_harness.make_org(db_pool)
    return await with_api_key(db_pool, client, org.id)


async def send(caller: Caller, data: bytes, name: str = "members.csv", **fields: str) -> httpx.Response:
    return await caller.client.post(CSV, files={"file": (name, data, "text/csv")}, data=fields,
                                    headers=caller.headers)


async def test_an_upload_is_stored_and_counted_by_reason(caller: Caller, db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("INSERT INTO suppressions (org_id, phone, scope, source) "
                          "VALUES ($1, '+14155550107', '', 'staff')", caller.org_id)
    data = ("\ufeffMember ID,Cell Phone,First Name\r\n"
            "1,(415) 555-0101,Ana\r\n"
            "2,415-555-0101,Ben\r\n"        # same number as 1: a household
            "3,,Cy\r\n"                      # missing mobile
            "4,12,Di\r\n"                    # invalid number
            "1,(415) 555-0102,Ana again\r\n"  # same member id as row 2
            "5,(415) 555-0107,Eve\r\n"       # suppressed
            "=cmd|' /C calc'!A0\r\n"        # ragged, and a formula
            "7,(415) 555-0103,\"Zoë, \"\"Z\"\"\"\r\n").encode()
    response = await send(caller, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["mapping"]["mobile"] == "Cell Phone" and body["mapping"]["member_id"] == "Member ID"
    assert (body["rows_accepted"], body["rows_rejected"], body["recipients"]) == (5, 3, 2)
    assert body["by_reason"] == {"duplicate_member": 1, "duplicate_number": 1, "invalid_number": 1,
                                 "missing_mobile": 1, "opted_out": 1, "row_ragged": 1}
    summary = await caller.call("GET", f"{CSV}/{body['id']}")
    assert summary.status_code == 200 and summary.json() == body

    report = await caller.call("GET", body["rejections_url"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["line", "reason", "detail", "row"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("4", "missing_mobile"), ("5", "invalid_number"), ("8", "row_ragged")]
    assert rows[3][3] == "'=cmd|' /C calc'!A0"  # inert in a spreadsheet: text, not a formula


async def test_header_mapping_from_form_fields(caller: Caller) -> None:
    data = b"Ref;Contact;Name\n9;4155550111;Al\n"
    response = await send(caller, data, mobile_column="contact", member_id_column="Ref")
    assert response.status_code == 201, response.text
    assert response.json()["mapping"]["mobile"] == "Contact" and response.json()["recipients"] == 1
    body = problem(await send(caller, data, mobile_column="Mobile"), 422, "csv_header_missing")
    assert body["errors"][0]["field"] == "mobile_column"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "csv_empty"),
    (b"\n\n", "csv_empty"),
    (b"Name,Email\nAl,a@example.org\n", "csv_mobile_column_missing"),
    ("Mobile,Name\n4155550100,Zoë\n".encode("utf-16"), "csv_utf16"),
    ("Mobile,Prénom\n4155550100,Zoë\n".encode("latin-1"), "csv_not_utf8"),
    (b"PK\x03\x04rest-of-a-workbook", "csv_workbook"),
    (b"Mobile,Name\n", "csv_no_rows"),
])
async def test_a_file_that_cannot_be_used_is_a_422_naming_the_file(caller: Caller, data: bytes, code: str) -> None:
    body = problem(await send(caller, data), 422, code)
    assert body["errors"][0]["field"] == "file"


async def test_no_file_and_a_file_over_the_limit(app: FastAPI, caller: Caller) -> None:
    body = problem(await caller.client.post(CSV, data={"mobile_column": "Mobile"}, headers=caller.headers),
                   422, "file_missing")
    assert body["errors"][0]["field"] == "file"
    app.state.csv_upload_max_bytes = 1000
    try:
        response = await send(caller, b"Mobile\n" + b"4155550100\n" * 200)
    finally:
        app.state.csv_upload_max_bytes = 40 * 1024 * 1024
    assert response.status_code == 413 and response.headers["content-type"] == api_harness.PROBLEM
    assert response.json()["detail"].startswith("file: ")


async def test_200000_rows(caller: Caller) -> None:
    lines = ["ID,Mobile,First Name"] + [f"{i},+1415{2_000_000 + i:07d},M{i}" for i in range(200_000)]
    response = await send(caller, ("\r\n".join(lines) + "\r\n").encode())
    assert response.status_code == 201, response.text
    assert (response.json()["rows_accepted"], response.json()["recipients"]) == (200_000, 200_000)


async def test_another_organisation_gets_404(caller: Caller, db_pool: asyncpg.Pool) -> None:
    upload_id = (await send(caller, b"Mobile\n4155550100\n")).json()["id"]
    other_org = await api_harness.make_org(db_pool)
    other = await with_api_key(db_pool, caller.client, other_org.id)
    for path in (f"{CSV}/{upload_id}", f"{CSV}/{upload_id}/rejections.csv"):
        problem(await other.call("GET", path), 404, "csv_upload_not_found")
    problem(await other.call("POST", "/api/v1/audiences/preview",
                             {"audience": {"kind": "csv", "upload_id": upload_id}}), 404, "csv_upload_not_found")
    problem(await caller.call("GET", f"{CSV}/{uuid.uuid4()}"), 404, "csv_upload_not_found")


async def test_preview_of_a_csv_and_a_list_creates_no_run(caller: Caller, db_pool: asyncpg.Pool) -> None:
    upload = (await send(caller, b"ID,Mobile\n1,4155550100\n2,4155550100\n3,x\n4,\n")).json()
    preview = await caller.call("POST", "/api/v1/audiences/preview",
                                {"audience": {"kind": "csv", "upload_id": upload["id"]}})
    assert preview.status_code == 200, preview.text
    figures = preview.json()
    assert {k: figures[k] for k in ("members", "recipients", "complete", "note", "audience_size", "by_reason")} == {
        "members": 4, "recipients": 1, "complete": True, "note": None, "audience_size": 4,
        "by_reason": {"duplicate_number": 1, "invalid_number": 1, "missing_mobile": 1}}
    assert figures["estimate"] is None and figures["refusal"] is None  # no body: nothing to render or price
    list_id = await db_pool.fetchval("INSERT INTO member_lists (org_id, name) VALUES ($1, 'Board') RETURNING id",
                                     caller.org_id)
    await db_pool.executemany("INSERT INTO member_list_entries (list_id, member_id, mobile) VALUES ($1, $2, $3)",
                              [(list_id, "1", "4155550120"), (list_id, "2", None), (list_id, "3", "4155550121")])
    preview = await caller.call("POST", PREVIEW, {"audience": {"kind": "list", "list_id": str(list_id)}})
    assert preview.json()["recipients"] == 2 and preview.json()["by_reason"] == {"missing_mobile": 1}
    problem(await caller.call("POST", PREVIEW, {"audience": {"kind": "list", "list_id": str(uuid.uuid4())}}),
            404, "list_not_found")
    assert await db_pool.fetchval("SELECT count(*) FROM campaign_runs WHERE org_id = $1", caller.org_id) == 0


async def test_preview_of_an_iqa_reads_imis_and_says_when_it_stopped_early(
    caller: Caller, db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from standins.imis.app import create_app
    from standins.imis.config import ImisConfig
    from standins.serving import ServerThread

    problem(await caller.call("POST", "/api/v1/audiences/preview",
                              {"audience": {"kind": "iqa", "query": "$/Textpulse/SMS Audience"}}),
            422, "imis_account_missing")
    with ServerThread(create_app(ImisConfig(dataset="1200"))) as imis:
        await db_pool.execute("INSERT INTO imis_accounts (org_id, base_url, username, password) "
                              "VALUES ($1, $2, 'SMS_INTEGRATION', 'standin-password')", caller.org_id, imis.url)
        await seal_credentials(db_pool)
        audience = {"audience": {"kind": "iqa", "query": "$/Textpulse/SMS Audience"}}
        full = (await caller.call("POST", "/api/v1/audiences/preview", audience)).json()
        assert full["complete"] and full["members"] > 500 and full["recipients"] > 0
        monkeypatch.setattr(audience_sample, "PREVIEW", replace(audience_sample.PREVIEW, imis_pages=1))
        capped = (await caller.call("POST", "/api/v1/audiences/preview", audience)).json()
        assert not capped["complete"] and capped["members"] == 500 and capped["audience_size"] == full["members"]
        assert f"only the first 500 of {full['members']:,} members were read" in capped["note"]
        problem(await caller.call("POST", PREVIEW, {"audience": {"kind": "iqa", "query": "$/Nope"}}),
                422, "iqa_not_found")


# -- hostile files: every row counted, the report bounded, the body bounded, rows stored in batches -------


async def test_two_million_ragged_rows_are_refused_at_the_row_cap(caller: Caller, db_pool: asyncpg.Pool) -> None:
    data = b"ID,Mobile,Name\n" + b"1\n" * 2_000_000  # 4 MB: every row a cell short
    body = problem(await send(caller, data), 422, "csv_too_many_rows")
    assert body["errors"][0]["field"] == "file"
    assert "500,000 rows" in body["detail"]
    assert await db_pool.fetchval("SELECT count(*) FROM csv_uploads WHERE org_id = $1", caller.org_id) == 0


async def test_the_rejected_rows_report_is_bounded_and_every_row_counted(caller: Caller,
                                                                         db_pool: asyncpg.Pool) -> None:
    data = b"ID,Mobile,Name\n1,4155550100,Ann\n" + b"2\n" * 12_000 + b"3,4155550101,Bo\n"
    response = await send(caller, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows_accepted"], body["rows_rejected"], body["recipients"]) == (2, 12_000, 2)
    assert body["by_reason"] == {"row_ragged": 12_000}
    assert body["rejections_shown"] == 5_000
    assert body["rejections_note"] == "showing the first 5,000 of 12,000 rejected rows"
    assert (await caller.call("GET", f"{CSV}/{body['id']}")).json() == body
    assert await db_pool.fetchval("SELECT count(*) FROM csv_upload_rejections WHERE upload_id = $1",
                                  uuid.UUID(body["id"])) == 5_000

    downloaded = await caller.call("GET", body["rejections_url"])
    report = list(csv.reader(io.StringIO(downloaded.content.decode("utf-8-sig"))))
    assert report[0] == ["line", "reason", "detail", "row"]
    assert report[1] == ["", "", "showing the first 5,000 of 12,000 rejected rows", ""]
    assert [r[0] for r in (report[2], report[-1])] == ["3", "5002"] and len(report) == 2 + 5_000
    preview = await caller.call("POST", PREVIEW, {"audience": {"kind": "csv", "upload_id": body["id"]}})
    assert preview.json()["by_reason"] == {"row_ragged": 12_000} and preview.json()["audience_size"] == 12_002


async def test_a_chunked_upload_over_the_cap_is_refused_before_its_spool_passes_the_cap(
    app: FastAPI, caller: Caller, db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled: list[int] = []

    class RecordingSpool(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def write(self, data: bytes) -> int:  # type: ignore[override]
            written = super().write(data)
            spooled.append(self.tell())
            return written

    # Starlette's form parser and ours both spool through tempfile.SpooledTemporaryFile.
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", RecordingSpool)
    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", RecordingSpool)
    boundary = "x7b1f0c"

    async def chunked_body() -> AsyncIterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
               "Content-Type: text/csv\r\n\r\nMobile\n").encode()
        for _ in range(48):  # 3 MB in 64 KB chunks, with no Content-Length
            yield b"4155550100\n" * 6_000
        yield f"\r\n--{boundary}--\r\n".encode()

    app.state.csv_upload_max_bytes = 1024 * 1024
    try:
        response = await caller.client.post(CSV, content=chunked_body(), headers={
            **caller.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    finally:
        app.state.csv_upload_max_bytes = 40 * 1024 * 1024
    assert response.status_code == 413 and response.json()["detail"] == (
        "file: the upload is over 1 MB; split it into smaller files")
    assert spooled and max(spooled) <= 1024 * 1024
    assert await db_pool.fetchval("SELECT count(*) FROM csv_uploads WHERE org_id = $1", caller.org_id) == 0


async def test_rows_are_committed_in_batches_and_the_upload_is_listed_only_when_all_are_in(
    caller: Caller, db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int, int, bool]] = []
    add_rows = uploads_db.add_rows

    async def observed(conn: Connection, upload_id: uuid.UUID, rows: Sequence[CsvRow]) -> None:
        await add_rows(conn, upload_id, rows)
        # From another connection: what is committed so far, and whether anything would offer the upload.
        state, stored = await db_pool.fetchrow(
            "SELECT state, (SELECT count(*) FROM csv_upload_rows r WHERE r.upload_id = u.id) FROM csv_uploads u "
            "WHERE id = $1", upload_id)
        listed = any(u["id"] == upload_id for u in await dashboard_db.csv_uploads(db_pool, caller.org_id))
        seen.append((state, stored, len(rows), listed or await uploads_db.upload(db_pool, caller.org_id, upload_id)
                     is not None))

    monkeypatch.setattr(uploads_db, "add_rows", observed)
    data = ("ID,Mobile\n" + "".join(f"{i},+1415{2_000_000 + i:07d}\n" for i in range(25_000))).encode()
    response = await send(caller, data)
    assert response.status_code == 201, response.text
    assert seen == [("receiving", 10_000, 10_000, False), ("receiving", 20_000, 10_000, False),
                    ("receiving", 25_000, 5_000, False)]
    assert response.json()["rows_accepted"] == 25_000
    assert await db_pool.fetchval("SELECT state FROM csv_uploads WHERE id = $1",
                                  uuid.UUID(response.json()["id"])) == "ready"


async def test_an_upload_that_fails_midway_leaves_nothing_and_an_abandoned_one_is_pruned(
    caller: Caller, db_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_rows = uploads_db.add_rows
    batches = 0

    async def failing_on_the_second(conn: Connection, upload_id: uuid.UUID, rows: Sequence[CsvRow]) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise asyncpg.PostgresConnectionError("connection lost")
        await add_rows(conn, upload_id, rows)

    monkeypatch.setattr(uploads_db, "add_rows", failing_on_the_second)
    data = ("ID,Mobile\n" + "".join(f"{i},+1415{2_000_000 + i:07d}\n" for i in range(15_000))).encode()
    assert (await send(caller, data)).status_code == 503  # a PostgreSQL outage (services/api/errors.py)
    assert await db_pool.fetchval("SELECT count(*) FROM csv_uploads WHERE org_id = $1", caller.org_id) == 0
    monkeypatch.undo()

    # A process killed mid-upload leaves its 'receiving' row: never offered, and pruned by a later upload.
    abandoned = await db_pool.fetchval(
        "INSERT INTO csv_uploads (org_id, state, created_at) VALUES ($1, 'receiving', now() - interval '2 hours') "
        "RETURNING id", caller.org_id)
    await db_pool.execute("INSERT INTO csv_upload_rows (upload_id, line, mobile) VALUES ($1, 2, '4155550100')",
                          abandoned)
    problem(await caller.call("GET", f"{CSV}/{abandoned}"), 404, "csv_upload_not_found")
    list_id = (await caller.call("POST", "/api/v1/lists", {"name": "Board"})).json()["id"]
    problem(await caller.call("POST", f"/api/v1/lists/{list_id}/entries/from-upload", {"upload_id": str(abandoned)}),
            404, "csv_upload_not_found")
    assert (await send(caller, b"Mobile\n4155550100\n")).status_code == 201
    assert await db_pool.fetchval("SELECT count(*) FROM csv_uploads WHERE id = $1", abandoned) == 0

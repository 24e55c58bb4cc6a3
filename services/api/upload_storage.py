"""A CSV upload stored as it is read: rows in batches, each committed alone; usable only when all are in.

``store_csv`` drives a :class:`~libs.common.csv_audience.CsvStream` (in a thread, a batch at a time) and
writes through :mod:`services.api.uploads_db`: the upload row first, as 'receiving', then each batch of
``BATCH_ROWS`` accepted rows with its own COPY, then the first refused rows, the counts and 'ready' in one
transaction. A file refused part-way (``CsvRefused``: too many rows, a malformed line, no rows at all) or
any failure deletes what was stored; a process killed part-way leaves a 'receiving' row that nothing
offers and a later upload prunes (migration 0019). Memory holds one batch, never the file.
"""

from __future__ import annotations

import asyncio
from typing import Final
from uuid import UUID

import asyncpg

from libs.common.csv_audience import CsvRefused, CsvStream
from libs.common.db import Connection
from libs.common.logging import get_logger
from services.api import uploads_db

log = get_logger(__name__)
BATCH_ROWS: Final = 10_000


async def store_csv(conn: Connection, org_id: UUID, filename: str, uploaded_by: str,
                    stream: CsvStream) -> UUID:
    """Store the stream's rows and report; return the upload's id. Raises ``CsvRefused`` (nothing stored)."""
    await uploads_db.prune_abandoned(conn)
    upload_id: UUID = (await uploads_db.begin_upload(conn, org_id, filename, uploaded_by, stream))["id"]
    try:
        batches = stream.batches(BATCH_ROWS)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            await uploads_db.add_rows(conn, upload_id, batch)
        if not stream.rows_accepted and not stream.rows_rejected:
            raise CsvRefused("csv_no_rows", "the file has a header row but no members under it")
        await uploads_db.finish_upload(conn, upload_id, stream)
    except BaseException:
        try:
            await uploads_db.discard_upload(conn, upload_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # The connection may be what failed; prune-abandoned-csv-uploads removes the row later.
            log.warning("csv_upload.discard_failed", extra={"upload_id": str(upload_id)})
        raise
    return upload_id

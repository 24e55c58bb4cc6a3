"""PostgreSQL access: a pool factory, transactions, named queries from ``.sql`` files, migrations.

Named queries follow the listmonk / aiosql convention: each statement in a ``queries.sql`` starts
with ``-- name: claim-send`` and may use ``:param`` placeholders, which are turned into asyncpg's
``$n`` once, at load. ``Queries.check(conn)`` prepares every statement so a broken query fails at boot.

Migrations are numbered files (``0001_organisations.sql``) applied in order, each in its own
transaction, under an advisory lock so that two processes starting together do not race. Applying
twice is a no-op; an applied file whose text changed is refused (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from libs.common.errors import ConfigurationError
from libs.common.logging import get_logger

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_ID = 0x7E47_0001  # arbitrary, constant: serialises migration runners
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

# What code that runs SQL is handed: a pool's ``acquire()`` yields a proxy, ``asyncpg.connect()`` a connection.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    # No reset round trip on release: no code here leaves session state (LISTEN, SET, temp tables,
    # advisory locks) on a pooled connection, and transactions always close in their context manager.
    # (The dispatcher's ledger-entry locks are released, or their connection terminated: ``DispatchStore.entry``.)
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=30,
                                     reset=_no_reset)


async def _no_reset(conn: Connection) -> None:
    return None


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A connection from the pool inside one transaction: committed on exit, rolled back on error."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1", timeout=2)


# ---------------------------------------------------------------------------------------------
# Named queries


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    params: tuple[str, ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        missing = [p for p in self.params if p not in values]
        if missing:
            raise TypeError(f"query {self.name} needs {', '.join(missing)}")
        return [values[p] for p in self.params]


class Queries:
    """The named statements of one ``queries.sql``; call them as ``await q.fetch(conn, "name", x=1)``."""

    def __init__(self, queries: dict[str, Query]) -> None:
        self._queries = queries

    @classmethod
    def load(cls, path: Path) -> Queries:
        return cls(parse_queries(path.read_text(encoding="utf-8")))

    def __getitem__(self, name: str) -> Query:
        return self._queries[name]

    def names(self) -> list[str]:
        return sorted(self._queries)

    async def check(self, conn: Connection) -> None:
        """Prepare every statement; raise ConfigurationError naming the first that fails."""
        for query in self._queries.values():
            try:
                await conn.prepare(query.sql)
            except asyncpg.PostgresError as exc:
                raise ConfigurationError("query_invalid", f"query {query.name}: {exc}") from exc

    async def execute(self, conn: Connection, name: str, **values: Any) -> str:
        q = self._queries[name]
        return await conn.execute(q.sql, *q.args(values))

    async def fetch(self, conn: Connection, name: str, **values: Any) -> list[asyncpg.Record]:
        q = self._queries[name]
        return await conn.fetch(q.sql, *q.args(values))

    async def fetchrow(self, conn: Connection, name: str, **values: Any) -> asyncpg.Record | None:
        q = self._queries[name]
        return await conn.fetchrow(q.sql, *q.args(values))

    async def fetchval(self, conn: Connection, name: str, **values: Any) -> Any:
        q = self._queries[name]
        return await conn.fetchval(q.sql, *q.args(values))


def parse_queries(text: str) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    name: str | None = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip().rstrip(";")
        if not sql:
            raise ConfigurationError("query_invalid", f"query {name} has no statement")
        queries[name] = _compile(name, sql)

    for line in text.splitlines():
        header = re.match(r"^--\s*name:\s*([a-z0-9-]+)\s*$", line)
        if header:
            flush()
            name, body = header.group(1), []
            if name in queries:
                raise ConfigurationError("query_invalid", f"query {name} is defined twice")
        else:
            body.append(line)
    flush()
    return queries


def _compile(name: str, sql: str) -> Query:
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        param = match.group(1)
        if param not in order:
            order.append(param)
        return f"${order.index(param) + 1}"

    return Query(name=name, sql=_PARAM.sub(number, sql), params=tuple(order))


# ---------------------------------------------------------------------------------------------
# Migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", path.name)
        if not match:
            raise ConfigurationError("migration_invalid", f"migration file {path.name} is not NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ConfigurationError("migration_invalid", "two migration files share a number")
    return migrations


async def apply_migrations(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now (empty if none)."""
    applied_now = []
    # The lock comes first: even CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL.
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
        for migration in discover_migrations(directory):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise ConfigurationError(
                        "migration_changed",
                        f"migration {migration.version:04d}_{migration.name} changed after it was applied",
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration.applied", extra={"version": migration.version, "migration": migration.name})
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now

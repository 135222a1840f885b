"""What counts as the database being away (infra.database.UNAVAILABLE), from what a real
PostgreSQL and asyncpg raise: the staff API answers it 503, to try again, where a query's own
defect stays a failure to be fixed."""

from __future__ import annotations

import asyncpg
import pytest

from infra.database import UNAVAILABLE
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def raised(pool: asyncpg.Pool, query: str, *args: object) -> BaseException:
    with pytest.raises(Exception) as caught:
        await pool.fetchval(query, *args)
    return caught.value


async def test_a_connection_the_server_ends_is_unavailable(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(Exception) as ended:
            await conn.fetchval("SELECT pg_terminate_backend(pg_backend_pid())")
    assert isinstance(ended.value, UNAVAILABLE), type(ended.value)


async def test_a_closed_pool_is_unavailable(pg_dsn: str) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=0)
    await pool.close()
    closed = await raised(pool, "SELECT 1")
    assert isinstance(closed, UNAVAILABLE), type(closed)


async def test_nothing_listening_is_unavailable() -> None:
    with pytest.raises(Exception) as refused:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:9/none", timeout=2)
    assert isinstance(refused.value, UNAVAILABLE), type(refused.value)


@pytest.mark.parametrize(
    ("query", "argument"),
    [
        ("SELECT * FROM no_such_table", None),
        ("SELECT 1 / $1::int", 0),
        ("SELECT $1::int", "not a number"),  # refused by asyncpg before it is sent
    ],
)
async def test_a_query_refused_is_not(db_pool: asyncpg.Pool, query: str, argument: object) -> None:
    refusal = await raised(db_pool, query, *([] if argument is None else [argument]))
    assert isinstance(refusal, asyncpg.PostgresError)
    assert not isinstance(refusal, UNAVAILABLE), type(refusal)

"""Every refused push is counted, however slow the database (R6.3): a count write cut short by
a request's timeout, or failing, puts its counts back, and a flush returns only once what was
counted before it is on record. (A loaded run of the flood test once found 9,707 of 10,000.)"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from meituan.codes import ErrorCode
from starter.push_keeper import Bounds, Push, PushKeeper
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn


def _forged(n: int) -> Push:
    return Push(
        route="/meituan/push/order",
        method="POST",
        query="",
        body=b"sig=forged",
        headers={},
        source=f"198.51.100.{n % 200}",
        received_at=datetime.now(UTC),
        reason="bad signature",
        cause=ErrorCode.BAD_SIGNATURE,
        signed=False,
    )


class SlowFirstWrite:
    """The pool, whose first count write outlasts the request's timeout."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.slow = True

    async def executemany(self, *args: Any) -> None:
        if self.slow:
            self.slow = False
            await asyncio.sleep(0.5)
        await self._pool.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def _counted(pool: asyncpg.Pool) -> int:
    total = await pool.fetchval(
        "SELECT COALESCE(sum(refused), 0) FROM refused_push_counts WHERE cause = 'bad_signature'"
    )
    return int(total)


async def test_a_count_write_cut_short_by_the_timeout_loses_nothing(db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("DELETE FROM refused_push_counts")
    slow = SlowFirstWrite(db_pool)
    keeper = PushKeeper(
        slow,  # type: ignore[arg-type]
        Bounds(1000, 30, 1000),
        secret="s",
        zone=ZoneInfo("Asia/Shanghai"),
        timeout_s=0.2,  # the first write takes 0.5 s
    )
    keeper._flushed_at = time.monotonic() - 120  # the first push writes the counts
    await asyncio.gather(*(keeper.keep(_forged(n)) for n in range(50)))
    await keeper.flush()
    assert await _counted(db_pool) == 50


async def test_a_failed_count_write_is_written_by_the_next(db_pool: asyncpg.Pool) -> None:
    await db_pool.execute("DELETE FROM refused_push_counts")

    class FailsOnce(SlowFirstWrite):
        async def executemany(self, *args: Any) -> None:
            if self.slow:
                self.slow = False
                raise asyncpg.exceptions.ConnectionDoesNotExistError("the database went away")
            await self._pool.executemany(*args)

    keeper = PushKeeper(
        FailsOnce(db_pool),  # type: ignore[arg-type]
        Bounds(1000, 30, 1000),
        secret="s",
        zone=ZoneInfo("Asia/Shanghai"),
        timeout_s=5,
    )
    for n in range(7):
        await keeper.keep(_forged(n))
    try:
        await keeper.flush()
    except asyncpg.exceptions.ConnectionDoesNotExistError:
        pass
    else:
        raise AssertionError("the first write was to fail")
    await keeper.flush()
    assert await _counted(db_pool) == 7

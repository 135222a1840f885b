"""R4.3.1 the statistics' rollup kept fresh by the workers: the activity a
`StatsRefreshWorkflow` round runs, every ORDERFLOW_STATS_REFRESH_MINUTES.

`orderctl stats` as the read-only reporting role cannot refresh the rollup; without these
rounds every read would count more of the period from the raw rows, slower by the day. The
refresh runs as ORDERFLOW_STATS_DATABASE_URL's role when it is set (as the reports do), else
as the worker's, which may since migration 0021.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from temporalio import activity

from analytics.rollup import refresh
from infra.database import Conn, connect
from infra.heartbeats import beating
from infra.settings import settings
from schemas.reports import REFRESH_STATS, RefreshRound, StatsRefreshed


class Refreshing:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=REFRESH_STATS)
    async def refresh_stats(self, _: RefreshRound) -> StatsRefreshed:
        """Idempotent: one refresh at a time (an advisory lock), each in one transaction."""
        async with beating(), self._connection() as conn:
            done = await refresh(conn, settings().business.timezone)
        activity.logger.info(
            "statistics rollup refreshed: %d pairs, %d orders", done.pairs, done.orders
        )
        return StatsRefreshed(
            pairs=done.pairs, orders=done.orders, rebuilt=done.rebuilt, seconds=done.seconds
        )

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        stats_url = settings().database.stats_url
        pool = await connect(stats_url, max_size=1) if stats_url else self._pool
        try:
            async with pool.acquire() as conn:
                yield conn
        finally:
            if pool is not self._pool:
                await pool.close()

"""`orderctl stats`: refresh the rollup, read the period, compute the figures (R4.3, R7.2).

Returns the answer as data; the caller renders it (JSON, the terminal, the HTML report). A
database problem is raised as `StatsError`, one line a person can act on.
"""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

import asyncpg

from activities.policy import current_policy
from analytics.figures import compute
from analytics.findings import DEFAULT_THRESHOLDS, Thresholds
from analytics.period import Group, Period
from analytics.reads import read
from analytics.rollup import refresh
from infra.database import connect
from infra.settings import settings


class StatsError(Exception):
    """A failure explained in one line for the person."""


async def collect(
    period: Period,
    by: Group | None = None,
    *,
    database_url: str | None = None,
    zone: tzinfo | None = None,
    limits: Thresholds = DEFAULT_THRESHOLDS,
    pool: asyncpg.Pool | None = None,
) -> dict[str, Any]:
    """Refresh the rollup, read the period, compute: the stats of `orderctl stats --json`."""
    zone = zone or settings().business.timezone
    began = time.perf_counter()
    own = pool is None
    try:
        if pool is None:
            pool = await connect(database_url, max_size=2)
    except (OSError, asyncpg.PostgresError) as err:
        raise StatsError(f"cannot reach the database: {err}") from None
    try:
        async with pool.acquire() as conn:
            done = await refresh(conn, zone)
            raw = await read(conn, period, by, zone)
        raw.seconds["refresh"] = round(done.seconds, 4)
        stats = compute(raw, limits, current_policy().targets)
        stats["source"]["refreshed_pairs"] = done.pairs
        stats["source"]["refreshed_orders"] = done.orders
        stats["source"]["refresh_steps"] = done.steps
        stats["source"]["seconds"]["total"] = round(time.perf_counter() - began, 4)
        return stats
    except asyncpg.UndefinedTableError as err:
        raise StatsError(
            f"the database lacks the statistics tables ({err}); run `python -m starter.db_cli "
            "migrate`"
        ) from None
    except (OSError, asyncpg.PostgresError) as err:
        raise StatsError(f"database: {err}") from None
    finally:
        if own:
            await pool.close()

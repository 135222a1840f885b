"""`orderctl stats`: refresh the rollup, read the period, compute the figures (R4.3, R7.2).

Returns the answer as data; the caller renders it (JSON, the terminal, the HTML report). A
database problem is raised as `StatsError`, one line a person can act on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta, tzinfo
from typing import Any

import asyncpg

from activities.policy import current_policy
from analytics.figures import compute
from analytics.findings import DEFAULT_THRESHOLDS, Thresholds
from analytics.measures import value_of
from analytics.period import Group, Period
from analytics.reads import read
from analytics.rollup import refresh
from infra.database import Conn, connect
from infra.settings import settings
from schemas.policy import Targets


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
        targets = current_policy().targets
        async with pool.acquire() as conn:
            done = await refresh(conn, zone)
            raw = await read(conn, period, by, zone)
            raw.seconds["refresh"] = round(done.seconds, 4)
            stats = compute(raw, limits, targets)
            stats["measures"] = await measures_of(conn, period, stats, zone, targets)
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


async def measures_of(
    conn: Conn, period: Period, stats: Mapping[str, Any], zone: tzinfo, targets: Targets
) -> list[dict[str, Any]]:
    """R4.3.3 the measures open in the period, or closed in it, each with its figure before it
    was taken (the same length of time just before) and in the period reported."""
    first, last = period.bounds(zone)
    rows = await conn.fetch(
        """
        SELECT * FROM measures
        WHERE created_at < $2 AND (state = 'open' OR closed_at >= $1)
        ORDER BY created_at, measure_id
        """,
        first,
        last,
    )
    befores: dict[Period, Mapping[str, Any]] = {}
    out = []
    for r in rows:
        taken = r["created_at"].astimezone(zone).date()
        before = Period(taken - timedelta(days=period.days), taken - timedelta(days=1))
        if before not in befores:
            befores[before] = compute(await read(conn, before, None, zone), targets=targets)
        out.append(
            {
                "measure_id": r["measure_id"],
                "what": r["what"],
                "owner": r["owner"],
                "due": str(r["due"]),
                "state": r["state"],
                "finding": f"{r['finding_kind']}: {r['subject']}",
                "figure": r["figure"],
                "before": value_of(r["figure"], befores[before]),
                "before_period": before.label(),
                "after": value_of(r["figure"], stats),
            }
        )
    return out

"""`orderctl stats`: refresh the rollup, read the period, compute the figures (R4.3, R7.2).

Returns the answer as data; the caller renders it (JSON, the terminal, the HTML report). A
database problem is raised as `StatsError`, one line a person can act on.

The rollup is refreshed here only by a role that may write it; the read-only reporting role
(migration 0007) reads it as the workers' Schedule `order-stats-refresh` last left it, which is
as right, since a read counts what is not yet rolled up from the raw rows (`analytics.reads`),
only slower the staler it is. `source.rollup_refreshed_at` says when that was.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

import asyncpg

from activities.policy import current_policy
from analytics.figures import compute
from analytics.findings import DEFAULT_THRESHOLDS, Thresholds
from analytics.measures import value_of
from analytics.period import Group, Period, zone_name
from analytics.reads import read
from analytics.rollup import FORMAT, Refreshed, may_refresh, refresh, state
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
    refreshing: bool = True,
) -> dict[str, Any]:
    """Refresh the rollup (when `refreshing` and the role may), read the period, compute: the
    stats of `orderctl stats --json`."""
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
            done = await refresh(conn, zone) if refreshing and await may_refresh(conn) else None
            refreshed_at = await _rolled_up_as_of(conn, zone)
            raw = await read(conn, period, by, zone)
            raw.seconds["refresh"] = round(done.seconds, 4) if done else 0.0
            stats = compute(raw, limits, targets)
            stats["measures"] = await measures_of(conn, period, stats, zone, targets)
        stats["source"] |= _refresh_source(done, refreshed_at.astimezone(zone))
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


async def _rolled_up_as_of(conn: Conn, zone: tzinfo) -> datetime:
    """When the rollup was last refreshed; a `StatsError` when it cannot be read as it is:
    never refreshed (finished orders are marked for it only from then on), or cut in another
    time zone or format than this read's, until the next refresh rebuilds it."""
    current = await state(conn)
    waiting = "the workers' Schedule order-stats-refresh refreshes it"
    if current is None:
        raise StatsError(f"the statistics' rollup was never refreshed; {waiting}")
    if current.zone != zone_name(zone):
        raise StatsError(
            f"the statistics' rollup is cut in {current.zone}, not {zone_name(zone)}: set "
            f"ORDERFLOW_TIMEZONE={current.zone} as the workers have it"
        )
    if current.format != FORMAT:
        raise StatsError(f"the statistics' rollup is being rebuilt in a new format; {waiting}")
    return current.refreshed_at


def _refresh_source(done: Refreshed | None, refreshed_at: datetime) -> dict[str, Any]:
    return {
        "rollup_refreshed_at": refreshed_at.isoformat(timespec="seconds"),
        "refreshed_here": done is not None,
        "refreshed_pairs": done.pairs if done else 0,
        "refreshed_orders": done.orders if done else 0,
        "refresh_steps": done.steps if done else {},
    }


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

"""Reading a period and the one before it, in one snapshot (R4.3.1).

The rollup's rows of clean pairs plus the live rows (running orders, pending orders, marked
pairs) computed on the spot by the rollup's own statements: every order counts exactly once,
and a period of a million orders answers in under two seconds (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from datetime import datetime, tzinfo
from typing import Any

from analytics.facts import SCOPE_LIVE
from analytics.period import Group, Period, zone_name
from analytics.rollup import PAIRS_TABLE, ROLLUP, build
from analytics.totals import Raw, Rows
from infra.database import Conn
from infra.settings import settings


def _source(table: str) -> str:
    """Rollup rows of clean pairs in the range, plus the live rows."""
    return f"""(
        SELECT r.* FROM stats_{table} r
        WHERE r.day BETWEEN $1 AND $2
          AND NOT EXISTS (
              SELECT 1 FROM read_dirty d WHERE d.day = r.day AND d.store_code = r.store_code)
        UNION ALL
        SELECT * FROM live_{table}
    ) x"""


_PERIOD = "CASE WHEN x.day >= $3 THEN 'current' ELSE 'previous' END AS period"
# Types all three parameters, also in a query that does not need the third.
_WHERE = "($1::date IS NOT NULL AND $2::date IS NOT NULL AND $3::date IS NOT NULL)"

_READS: dict[str, str] = {
    "orders": f"""
SELECT {_PERIOD}, store_code, order_type, region, hour, outcome, sum(orders)::int AS orders,
       sum(gross) AS gross, sum(discounts) AS discounts, sum(paid) AS paid,
       sum(refunded) AS refunded, sum(rated)::int AS rated, sum(rating_sum)::int AS rating_sum,
       sum(rating_1)::int AS r1, sum(rating_2)::int AS r2, sum(rating_3)::int AS r3,
       sum(rating_4)::int AS r4, sum(rating_5)::int AS r5,
       sum(complained_orders)::int AS complained, sum(breached_orders)::int AS breached,
       sum(hard_orders)::int AS hard, sum(anomaly_orders)::int AS anomalous,
       sum(patrol_found)::int AS patrol
FROM {_source("orders")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "daily": f"""
SELECT x.day, sum(x.orders)::int AS orders
FROM {_source("orders")} WHERE {_WHERE}
GROUP BY 1
""",
    "durations": f"""
SELECT {_PERIOD}, {{keys}} metric, bucket, sum(n)::int AS n, sum(seconds) AS seconds
FROM {_source("durations")} WHERE {_WHERE}
GROUP BY {{groups}}
""",
    "deadlines": f"""
SELECT {_PERIOD}, store_code, order_type, region, clause, sum(met)::int AS met,
       sum(breached)::int AS breached, sum(hard)::int AS hard
FROM {_source("deadlines")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5
""",
    "anomalies": f"""
SELECT x.day, {_PERIOD}, store_code, order_type, region, kind, decision, sum(n)::int AS n,
       sum(escalated)::int AS escalated, sum(resumed)::int AS resumed
FROM {_source("anomalies")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5, 6, 7
""",
    "cancels": f"""
SELECT {_PERIOD}, outcome, code, by_whom, sum(n)::int AS n
FROM {_source("cancels")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4
""",
    "feedback": f"""
SELECT {_PERIOD}, store_code, order_type, region, kind, sum(cases)::int AS cases,
       sum(responded)::int AS responded, sum(rounds)::int AS rounds,
       sum(multi_round)::int AS multi_round, sum(satisfied)::int AS satisfied,
       sum(escalated)::int AS escalated
FROM {_source("feedback")} WHERE {_WHERE}
GROUP BY 1, 2, 3, 4, 5
""",
    "staff": f"""
SELECT {_PERIOD}, staff_id, sum(orders)::int AS orders, sum(handled)::int AS handled,
       sum(handling_seconds) AS handling_seconds, sum(rated)::int AS rated,
       sum(rating_sum)::int AS rating_sum, sum(complaints)::int AS complaints,
       sum(anomalies_decided)::int AS anomalies_decided
FROM {_source("staff")} WHERE {_WHERE}
GROUP BY 1, 2
""",
    "staff_deadlines": f"""
SELECT {_PERIOD}, staff_id, clause, sum(met)::int AS met, sum(breached)::int AS breached,
       sum(hard)::int AS hard
FROM {_source("staff_deadlines")} WHERE {_WHERE}
GROUP BY 1, 2, 3
""",
}

_PATROL = """
SELECT CASE WHEN at >= $2 THEN 'current' ELSE 'previous' END AS period,
       count(*)::int AS runs, COALESCE(sum(cardinality(found)), 0)::int AS found
FROM patrol_reports WHERE at >= $1 AND at < $3
GROUP BY 1
"""


# R6.3 pushes refused for what they are (signature, format, size, age), counted whether kept or
# not (migration 0015): bad traffic and a wrong secret show in the statistics too.
_REFUSED = """
SELECT CASE WHEN day >= $2 THEN 'current' ELSE 'previous' END AS period, cause,
       sum(refused)::int AS refused, sum(not_kept)::int AS not_kept
FROM refused_push_counts WHERE day >= $1 AND day <= $3
GROUP BY 1, 2
"""


# R3.3.3 / R4.3.2 what went wrong in the orders of each period, by cause (the part of each
# improvement before its colon, `workflows/summary.py`).
_CAUSES = """
SELECT CASE WHEN o.created_at >= $2 THEN 'current' ELSE 'previous' END AS period,
       split_part(i.line, ':', 1) AS cause, count(DISTINCT s.order_id)::int AS n
FROM order_summaries s JOIN orders_masked o ON o.order_id = s.order_id
CROSS JOIN LATERAL jsonb_array_elements_text(s.improvements) AS i(line)
WHERE o.created_at >= $1 AND o.created_at < $3
GROUP BY 1, 2
"""


class _Reader:
    """One read's connection and its timings (`Raw.seconds`, per query)."""

    def __init__(self, conn: Conn, raw: Raw) -> None:
        self.conn = conn
        self.raw = raw

    async def rows(self, key: str, sql: str, *params: Any) -> Rows:
        began = time.perf_counter()
        rows = [dict(r) for r in await self.conn.fetch(sql, *params)]
        self.raw.seconds[key] = round(time.perf_counter() - began, 4)
        return rows


async def read(conn: Conn, period: Period, by: Group | None, zone: tzinfo | None = None) -> Raw:
    """Everything the figures need, for the period and the one before, in one snapshot."""
    zone = zone or settings().business.timezone
    name = zone_name(zone)
    raw = Raw(period, name, by)
    previous = period.previous()
    first, _ = previous.bounds(zone)
    current_start, last = period.bounds(zone)
    reader = _Reader(conn, raw)
    async with conn.transaction(isolation="repeatable_read"):
        await _live(conn, raw, first, last)
        await _rollup_rows(reader, previous.start, period.end, period.start)
        raw.staff = await reader.rows(
            "staff_info", "SELECT staff_id, department, role FROM staff_masked"
        )
        raw.departments = {
            r["code"]: r["name"] for r in await conn.fetch("SELECT code, name FROM departments")
        }
        for row in await reader.rows("patrol", _PATROL, first, current_start, last):
            raw.patrol[row["period"]] = {"runs": row["runs"], "found": row["found"]}
        raw.rows["causes"] = await reader.rows("causes", _CAUSES, first, current_start, last)
        raw.rows["refused"] = await reader.rows(
            "refused", _REFUSED, previous.start, period.start, period.end
        )
    return raw


async def _live(conn: Conn, raw: Raw, first: datetime, last: datetime) -> None:
    """The rows of the range's marked pairs, running and pending orders, into `live_*`."""
    began = time.perf_counter()
    await conn.execute(PAIRS_TABLE)
    await conn.execute(
        """
        CREATE TEMP TABLE read_dirty ON COMMIT DROP AS
        SELECT day, store_code FROM stats_dirty WHERE day BETWEEN $1 AND $2
        """,
        raw.period.previous().start,
        raw.period.end,
    )
    await conn.execute(
        """
        INSERT INTO stats_pairs
        SELECT day, store_code, day::timestamp AT TIME ZONE $1,
               (day + 1)::timestamp AT TIME ZONE $1
        FROM read_dirty
        """,
        raw.zone,
    )
    raw.dirty_pairs = await conn.fetchval("SELECT count(*) FROM read_dirty")
    for table in ROLLUP:
        await conn.execute(
            f"CREATE TEMP TABLE live_{table} (LIKE stats_{table} INCLUDING INDEXES) ON COMMIT DROP"
        )
    raw.live_orders, _ = await build(conn, raw.zone, "live", SCOPE_LIVE, first, last)
    raw.seconds["live"] = round(time.perf_counter() - began, 4)


async def _rollup_rows(reader: _Reader, *args: Any) -> None:
    """Each table's rows of both periods; durations per group only by store, region or type."""
    rows = reader.raw.rows
    for key in ("orders", "daily", "deadlines", "anomalies", "cancels", "feedback"):
        rows[key] = await reader.rows(key, _READS[key], *args)
    keys = "store_code, order_type, region," if reader.raw.by in ("store", "region", "type") else ""
    groups = "1, 2, 3, 4, 5, 6" if keys else "1, 2, 3"
    durations = _READS["durations"].format(keys=keys, groups=groups)
    rows["durations"] = await reader.rows("durations", durations, *args)
    rows["staff"] = await reader.rows("staff", _READS["staff"], *args)
    rows["staff_deadlines"] = await reader.rows("staff_deadlines", _READS["staff_deadlines"], *args)

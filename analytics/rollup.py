"""The rollup of migration 0008: finished orders summed per business day and store, and its
refresh (R4.3.1).

A pair (day, store) is rolled up once its orders are finished; a change to one of them marks
the pair (`stats_dirty`) or the order (`stats_pending`) by trigger, and `refresh` recomputes
only those. `build` is shared with the read: the rows of the live part are computed by the
same statements, aimed at `live_*` tables instead of `stats_*`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final

from analytics.facts import CASE_ANSWERED, CASE_OPENED, ENDED_BADLY, FINISHED, SCOPE_REFRESH, STEPS
from analytics.period import zone_name
from analytics.totals import BUCKETS_PER_UNIT
from analytics.vocabulary import (
    FIRST_RESPONSE,
    HANDLING,
    STAGE_METRIC,
    SYSTEM_CLAUSES,
    TERMINAL,
    lit,
    lits,
)
from infra.database import Conn
from infra.settings import settings
from schemas.contract import Event
from schemas.feedback import FeedbackState
from schemas.messages import FeedbackKind
from schemas.order import Stage

ROLLUP: Final = (
    "orders",
    "durations",
    "deadlines",
    "anomalies",
    "cancels",
    "feedback",
    "staff",
    "staff_deadlines",
)
"""The rollup's tables, `stats_<name>` (and `live_<name>` in a read)."""

WRITTEN: Final = (*(f"stats_{t}" for t in ROLLUP), "stats_dirty", "stats_pending")
"""What a refresh deletes from (and writes): a role without that right only reads."""

FORMAT: Final = f"1:ln*{BUCKETS_PER_UNIT}"
"""The rollup's format; another one in stats_state rebuilds the rollup."""
_REFRESH_LOCK: Final = 0x7374_6174_7331  # pg_advisory_lock key: one refresh at a time

CANCELLED_BY: Final = ("platform", "policy", "refund", "review", "operator", "system", "customer")
"""Who cancels, as the `cancelled` event's `by` names them; any other name is a person's."""
_REJECTED_BY: Final = "review"

# --- the rows: keys and summed values of each table -------------------------------------------

_DIMENSIONS = ("day", "store_code", "order_type", "region")
_KEYS_OF: dict[str, tuple[str, ...]] = {
    "orders": (*_DIMENSIONS, "hour", "outcome"),
    "durations": (*_DIMENSIONS, "metric", "bucket"),
    "deadlines": (*_DIMENSIONS, "clause"),
    "anomalies": (*_DIMENSIONS, "kind", "decision"),
    "cancels": (*_DIMENSIONS, "outcome", "code", "by_whom"),
    "feedback": (*_DIMENSIONS, "kind"),
    "staff": ("day", "store_code", "staff_id"),
    "staff_deadlines": ("day", "store_code", "staff_id", "clause"),
}
_VALUES_OF: dict[str, tuple[str, ...]] = {
    "orders": (
        "orders",
        "gross",
        "discounts",
        "paid",
        "refunded",
        "rated",
        "rating_sum",
        "rating_1",
        "rating_2",
        "rating_3",
        "rating_4",
        "rating_5",
        "complained_orders",
        "breached_orders",
        "hard_orders",
        "anomaly_orders",
        "patrol_found",
    ),
    "durations": ("n", "seconds"),
    "deadlines": ("met", "breached", "hard"),
    "anomalies": ("n", "escalated", "resumed"),
    "cancels": ("n",),
    "feedback": ("cases", "responded", "rounds", "multi_round", "satisfied", "escalated"),
    "staff": (
        "orders",
        "handled",
        "handling_seconds",
        "rated",
        "rating_sum",
        "complaints",
        "anomalies_decided",
    ),
    "staff_deadlines": ("met", "breached", "hard"),
}

_SELECTS: dict[str, str] = {
    "orders": """
SELECT day, store_code, order_type, region, hour, outcome, count(*), sum(gross),
       sum(discounts), sum(paid), sum(refunded), count(rating), COALESCE(sum(rating), 0),
       count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
       count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
       count(*) FILTER (WHERE rating = 5), count(*) FILTER (WHERE complained),
       count(*) FILTER (WHERE breached), count(*) FILTER (WHERE hard),
       count(*) FILTER (WHERE anomalous), count(*) FILTER (WHERE patrol)
FROM stats_ord
GROUP BY day, store_code, order_type, region, hour, outcome
""",
    "durations": f"""
SELECT day, store_code, order_type, region, metric,
       floor(ln(1 + greatest(seconds, 0)) * {BUCKETS_PER_UNIT})::smallint, count(*), sum(seconds)
FROM (
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, {lit(STAGE_METRIC)} || st.key AS metric,
           st.value::float8 AS seconds
    FROM stats_scope sc
    CROSS JOIN LATERAL jsonb_each_text(sc.stage_seconds) AS st(key, value)
    WHERE sc.summarised AND st.key NOT IN ({lits(TERMINAL)})
    UNION ALL
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, {lit(HANDLING)}, h.seconds
    FROM stats_handling h JOIN stats_scope sc ON sc.order_id = h.order_id
    UNION ALL
    SELECT sc.day, sc.store_code, sc.order_type, sc.region, {lit(FIRST_RESPONSE)},
           extract(epoch FROM fr.responded - fr.opened)::float8
    FROM (  -- R4.2.2 every case, the platform's reminders and refund requests included
        SELECT order_id, case_no,
               min(at) FILTER (WHERE event IN ({lits(CASE_OPENED)})) AS opened,
               min(at) FILTER (WHERE event IN ({lits(CASE_ANSWERED)})) AS responded
        FROM stats_ev
        WHERE event IN ({lits((*CASE_OPENED, *CASE_ANSWERED))})
          AND case_no IS NOT NULL
        GROUP BY order_id, case_no
    ) fr
    JOIN stats_scope sc ON sc.order_id = fr.order_id
    WHERE fr.opened IS NOT NULL AND fr.responded IS NOT NULL
) x
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "deadlines": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, k.clause,
       count(*) FILTER (WHERE k.state = 'met'), count(*) FILTER (WHERE k.state = 'breached'),
       count(*) FILTER (WHERE k.state = 'hard')
FROM stats_keys k JOIN stats_scope sc ON sc.order_id = k.order_id
GROUP BY 1, 2, 3, 4, 5
""",
    "anomalies": """
SELECT sc.day, sc.store_code, sc.order_type, sc.region, a.kind, COALESCE(a.decision, 'open'),
       count(*), count(*) FILTER (WHERE a.escalations > 0), count(*) FILTER (WHERE a.resumed)
FROM stats_scope sc JOIN anomalies_masked a ON a.order_id = sc.order_id
GROUP BY 1, 2, 3, 4, 5, 6
""",
    "cancels": f"""
SELECT sc.day, sc.store_code, sc.order_type, sc.region, sc.stage,
       COALESCE(t.cancel_code, 0),
       CASE WHEN sc.stage = {lit(Stage.REJECTED)} THEN {lit(_REJECTED_BY)}
            WHEN t.by_whom IS NULL THEN 'unknown'
            WHEN t.by_whom IN ({lits(CANCELLED_BY)}) THEN t.by_whom
            ELSE 'staff' END,
       count(*)
FROM stats_scope sc
LEFT JOIN (
    SELECT DISTINCT ON (order_id, event) order_id, event, cancel_code, by_whom
    FROM stats_ev WHERE event IN ({lits((Event.CANCELLED, Event.REJECTED))})
    ORDER BY order_id, event, seq DESC
) t ON t.order_id = sc.order_id AND t.event = sc.stage
WHERE sc.stage IN ({ENDED_BADLY})
GROUP BY 1, 2, 3, 4, 5, 6, 7
""",
    "feedback": f"""
SELECT sc.day, sc.store_code, sc.order_type, sc.region, f.kind, count(*),
       count(*) FILTER (WHERE f.responses > 0), sum(f.rounds),
       count(*) FILTER (WHERE f.rounds > 1),
       count(*) FILTER (WHERE f.state = {lit(FeedbackState.SATISFIED)}),
       count(*) FILTER (WHERE f.state = {lit(FeedbackState.ESCALATED)})
FROM stats_scope sc JOIN feedback_masked f ON f.order_id = sc.order_id
GROUP BY 1, 2, 3, 4, 5
""",
    "staff": f"""
SELECT sc.day, sc.store_code, x.staff_id,
       count(DISTINCT x.order_id) FILTER (WHERE x.held), count(x.handling),
       COALESCE(sum(x.handling), 0), count(x.rating), COALESCE(sum(x.rating), 0),
       count(*) FILTER (WHERE x.complaint), count(*) FILTER (WHERE x.decided)
FROM (
    SELECT order_id, took AS staff_id, true AS held, NULL::float8 AS handling,
           NULL::int AS rating, false AS complaint, false AS decided
    FROM stats_ev WHERE took IS NOT NULL
    UNION ALL
    SELECT h.order_id, h.holder, false, h.seconds, o.rating, false, false
    FROM stats_handling h JOIN stats_ord o ON o.order_id = h.order_id
    WHERE h.holder IS NOT NULL
    UNION ALL
    SELECT order_id, holder, false, NULL, NULL, true, false
    FROM stats_ev
    WHERE event = {lit(Event.FEEDBACK_OPENED)} AND kind = {lit(FeedbackKind.COMPLAINT)}
      AND holder IS NOT NULL
    UNION ALL
    SELECT a.order_id, a.decided_by, false, NULL, NULL, false, true
    FROM stats_scope s2 JOIN anomalies_masked a ON a.order_id = s2.order_id
    WHERE a.decided_by NOT IN ('system', 'policy')
) x
JOIN stats_scope sc ON sc.order_id = x.order_id
GROUP BY 1, 2, 3
""",
    "staff_deadlines": f"""
SELECT sc.day, sc.store_code, k.holder, k.clause,
       count(*) FILTER (WHERE k.state = 'met'), count(*) FILTER (WHERE k.state = 'breached'),
       count(*) FILTER (WHERE k.state = 'hard')
FROM stats_keys k JOIN stats_scope sc ON sc.order_id = k.order_id
WHERE k.holder IS NOT NULL AND k.clause NOT IN ({lits(SYSTEM_CLAUSES)})
GROUP BY 1, 2, 3, 4
""",
}


def _upsert(table: str, target: str) -> str:
    """Every rollup column is a sum, so rows of orders not yet counted are added to it."""
    keys, values = _KEYS_OF[table], _VALUES_OF[table]
    added = ", ".join(f"{v} = {target}.{v} + EXCLUDED.{v}" for v in values)
    return (
        f"INSERT INTO {target} ({', '.join((*keys, *values))})"
        + _SELECTS[table]
        + f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


PAIRS_TABLE: Final = """
CREATE TEMP TABLE stats_pairs (
    day date, store_code text, starts timestamptz, ends timestamptz
) ON COMMIT DROP
"""


async def build(
    conn: Conn, zone: str, target: str, scope_sql: str, *scope_args: Any
) -> tuple[int, dict[str, float]]:
    """Compute the rollup rows of the scope's orders into `<target>_*`; returns its orders and
    the seconds of each step."""
    seconds: dict[str, float] = {}

    async def step(label: str, sql: str, *args: Any) -> None:
        began = time.perf_counter()
        await conn.execute(sql, *args)
        seconds[label] = round(time.perf_counter() - began, 4)

    await step("scope", scope_sql, zone, *scope_args)
    for label, sql, args in STEPS:
        await step(label, sql, *args)
    for table in ROLLUP:
        await step(f"insert_{table}", _upsert(table, f"{target}_{table}"))
    orders: int = await conn.fetchval("SELECT count(*) FROM stats_scope")
    return orders, seconds


# --- the refresh -------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Migration 0008's stats_state: how the rollup is cut, and when it was last refreshed."""

    zone: str
    format: str
    refreshed_at: datetime


async def state(conn: Conn) -> State | None:
    """None before the first refresh, which also starts the marking of finished orders."""
    row = await conn.fetchrow("SELECT zone, format, refreshed_at FROM stats_state")
    return None if row is None else State(row["zone"], row["format"], row["refreshed_at"])


async def may_refresh(conn: Conn) -> bool:
    """Whether the connected role may write the rollup: the workers' may (migration 0021),
    the reporting role may not, and reads it as they left it."""
    allowed = await conn.fetchval(
        """
        SELECT bool_and(has_table_privilege(t, 'DELETE'))
               AND has_table_privilege('stats_state', 'INSERT')
               AND has_table_privilege('stats_state', 'UPDATE')
        FROM unnest($1::text[]) AS t
        """,
        list(WRITTEN),
    )
    return bool(allowed)


@dataclass
class Refreshed:
    pairs: int
    orders: int
    rebuilt: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


async def refresh(conn: Conn, zone: tzinfo | None = None) -> Refreshed:
    """Add the orders finished since the last refresh and recompute the marked pairs (every pair
    when the zone or the rollup's format changed). One refresh at a time; the figures of
    `read` are right without it, only slower."""
    zone = zone or settings().business.timezone
    began = time.perf_counter()
    name = zone_name(zone)
    await conn.execute("SELECT pg_advisory_lock($1)", _REFRESH_LOCK)
    try:
        rebuilt = await _restart_if_changed(conn, name)
        async with conn.transaction():
            pairs, orders, steps = await _recompute_marked(conn, name)
            # Every order finished before it is rolled up, or marked for the reads' live part.
            await conn.execute("UPDATE stats_state SET refreshed_at = now()")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _REFRESH_LOCK)
    return Refreshed(pairs, orders, rebuilt, time.perf_counter() - began, steps)


async def _restart_if_changed(conn: Conn, name: str) -> bool:
    """Another zone or format: empty the rollup and mark every finished pair. Committed before
    the rebuild, so that an order finishing from now on is pending."""
    state = await conn.fetchrow("SELECT zone, format FROM stats_state")
    if state is not None and state["zone"] == name and state["format"] == FORMAT:
        return False
    async with conn.transaction():
        await conn.execute(
            """
            INSERT INTO stats_state (zone, format) VALUES ($1, $2)
            ON CONFLICT (singleton) DO UPDATE
                SET zone = EXCLUDED.zone, format = EXCLUDED.format, refreshed_at = now()
            """,
            name,
            FORMAT,
        )
        for table in ROLLUP:
            await conn.execute(f"DELETE FROM stats_{table}")
        await conn.execute("DELETE FROM stats_pending")
        await conn.execute(
            f"""
            INSERT INTO stats_dirty (day, store_code)
            SELECT DISTINCT (created_at AT TIME ZONE $1)::date, store_code
            FROM orders WHERE stage IN ({FINISHED})
            ON CONFLICT (day, store_code) DO NOTHING
            """,
            name,
        )
    return True


async def _recompute_marked(conn: Conn, name: str) -> tuple[int, int, dict[str, float]]:
    """Claim the marked pairs and pending orders, drop the pairs' rows and build them anew;
    returns the pairs, the orders and the seconds of each step."""
    await conn.execute(PAIRS_TABLE)
    await conn.execute(
        """
        WITH claimed AS (DELETE FROM stats_dirty RETURNING day, store_code)
        INSERT INTO stats_pairs
        SELECT day, store_code, day::timestamp AT TIME ZONE $1,
               (day + 1)::timestamp AT TIME ZONE $1
        FROM claimed
        """,
        name,
    )
    await conn.execute(
        """
        CREATE TEMP TABLE stats_claimed ON COMMIT DROP AS
        WITH claimed AS (DELETE FROM stats_pending RETURNING order_id, day, store_code)
        SELECT * FROM claimed
        """
    )
    pairs: int = await conn.fetchval("SELECT count(*) FROM stats_pairs")
    pending: int = await conn.fetchval("SELECT count(*) FROM stats_claimed")
    if not (pairs or pending):
        return pairs, 0, {}
    deleting = time.perf_counter()
    if pairs:
        for table in ROLLUP:
            await conn.execute(
                f"""
                DELETE FROM stats_{table} r USING stats_pairs p
                WHERE r.day = p.day AND r.store_code = p.store_code
                """
            )
    steps = {"delete": round(time.perf_counter() - deleting, 4)}
    orders, built = await build(conn, name, "stats", SCOPE_REFRESH)
    return pairs, orders, steps | built

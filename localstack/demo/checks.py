"""R1.3 at the end of the demo: the system of record agrees with the workflows, and nothing the
finished orders claimed (staff, stock, service slots) is left claimed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import asyncpg

from schemas.status import OrderOutcome, OrderStatus


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def check_database(
    pool: asyncpg.Pool,
    placed: set[str],
    outcomes: dict[str, OrderOutcome],
    statuses: dict[str, OrderStatus],
) -> list[Check]:
    """R1.3 the system of record agrees with the workflows of the finished orders (`outcomes`),
    and nothing they claimed is left claimed. Orders still open are left out (their claims are
    rightly held) but for their event logs, which hold no line their workflow did not log."""
    ids = set(outcomes)
    finished = [s for s in statuses.values() if s.order_id in ids]
    still_open = [s for s in statuses.values() if s.order_id not in ids]
    return [
        *await _recorded(pool, placed, outcomes),
        await _event_log(pool, ids, finished),
        await _open_event_logs(pool, still_open),
        await _summaries(pool, outcomes),
        *await _claims_released(pool, sorted(ids)),
        await _anomalies_closed(pool, sorted(ids), finished),
    ]


async def _recorded(
    pool: asyncpg.Pool, placed: set[str], outcomes: dict[str, OrderOutcome]
) -> list[Check]:
    """Every finished order has its row, at the workflow's final stage; no row is a stranger."""
    ids = set(outcomes)
    rows = await pool.fetch("SELECT order_id, stage FROM orders")
    db_stage = {r["order_id"]: r["stage"] for r in rows}
    missing, unknown = ids - set(db_stage), set(db_stage) - placed
    recorded = Check(
        "every order recorded",
        not missing and not unknown,
        f"{len(set(db_stage) & ids)} rows for {len(ids)} finished orders"
        + (f"; missing {sorted(missing)[:5]}" if missing else "")
        + (f"; not placed by the demo {sorted(unknown)[:5]}" if unknown else ""),
    )
    wrong = [
        f"{o.order_id}: db {db_stage.get(o.order_id)} / workflow {o.stage.value}"
        for o in outcomes.values()
        if db_stage.get(o.order_id) != o.stage.value
    ]
    staged = Check(
        "row stage = workflow's final stage",
        not wrong,
        f"{len(ids) - len(wrong)} of {len(ids)} agree" + (f"; {wrong[:3]}" if wrong else ""),
    )
    return [recorded, staged]


async def _event_logs(pool: asyncpg.Pool, ids: list[str]) -> dict[str, dict[int, str]]:
    """Each order's event log, seq by seq."""
    events = await pool.fetch(
        "SELECT order_id, seq, event FROM order_events WHERE order_id = ANY($1::text[])", ids
    )
    logged: dict[str, dict[int, str]] = defaultdict(dict)
    for r in events:
        logged[r["order_id"]][r["seq"]] = r["event"]
    return logged


def _disagreeing(logged: dict[str, dict[int, str]], statuses: list[OrderStatus]) -> list[str]:
    """The orders whose event log is not their timeline from the log's first line on (events
    of an order cancelled before it was recorded live in its history only), and where."""
    disagree = []
    for s in statuses:
        mine = logged.get(s.order_id, {})
        expected = {e.seq: e.event for e in s.timeline if e.seq >= min(mine, default=0)}
        if mine != expected:
            disagree.append(f"{s.order_id} ({_first_difference(mine, expected)})")
    return disagree


async def _event_log(pool: asyncpg.Pool, ids: set[str], finished: list[OrderStatus]) -> Check:
    """R4.1.3 the event log holds each finished order's timeline, seq for seq."""
    logged = await _event_logs(pool, sorted(ids))
    timeline_total = sum(len(s.timeline) for s in finished)
    before_record = sum(
        len([e for e in s.timeline if e.seq < min(logged.get(s.order_id, {}), default=0)])
        for s in finished
    )
    disagree = _disagreeing(logged, finished)
    return Check(
        "event log = workflow timelines (R4.1.3)",
        not disagree and len(finished) == len(ids),
        f"{sum(map(len, logged.values()))} events in the database, {timeline_total} in the "
        "timelines"
        + (f" ({before_record} logged before the order was recorded)" if before_record else "")
        + (f"; differ: {disagree[:3]}" if disagree else ""),
    )


async def _open_event_logs(pool: asyncpg.Pool, still_open: list[OrderStatus]) -> Check:
    """R4.1.3 an open order's event log is its timeline so far: a line its workflow never
    logged (written by a workflow task that did not complete) tells people what did not happen,
    and an order waiting for what its record says was done waits for good."""
    logged = await _event_logs(pool, sorted(s.order_id for s in still_open))
    disagree = _disagreeing(logged, [s for s in still_open if logged.get(s.order_id)])
    return Check(
        "open orders' event logs = their timelines so far (R4.1.3)",
        not disagree,
        f"{len(still_open) - len(disagree)} of {len(still_open)} open orders agree"
        + (f"; differ: {disagree[:4]}" if disagree else ""),
    )


def _first_difference(logged: dict[int, str], timeline: dict[int, str]) -> str:
    """Where an order's event log first parts from its timeline: seq, database / workflow."""
    seq = min(n for n in logged.keys() | timeline.keys() if logged.get(n) != timeline.get(n))
    return f"seq {seq}: {logged.get(seq, '-')} / {timeline.get(seq, '-')}"


async def _summaries(pool: asyncpg.Pool, outcomes: dict[str, OrderOutcome]) -> Check:
    summaries = await pool.fetch("SELECT order_id, outcome FROM order_summaries")
    summary_of = {r["order_id"]: r["outcome"] for r in summaries}
    ids = set(outcomes)
    off = [i for i in ids if summary_of.get(i) != outcomes[i].stage.value]
    return Check(
        "post-execution summary per order (R3.3.3)",
        not off,
        f"{len(ids) - len(off)} of {len(ids)}"
        + (f"; missing or different: {off[:3]}" if off else ""),
    )


async def _claims_released(pool: asyncpg.Pool, finished_ids: list[str]) -> list[Check]:
    """Assignments, stock reservations and service slots of finished orders are all let go."""
    active = await pool.fetchval(
        "SELECT count(*) FROM assignments WHERE active AND order_id = ANY($1::text[])",
        finished_ids,
    )
    all_active = await pool.fetchval("SELECT count(*) FROM assignments WHERE active")
    load = await pool.fetchval("SELECT coalesce(sum(active_load), 0) FROM staff")
    assignments = Check(
        "no assignment left active (R2.3.2)",
        active == 0 and load == all_active,
        f"{active} active for finished orders; staff load {load} = {all_active} active",
    )
    dangling = await pool.fetchval(
        """
        SELECT count(*) FROM (
            SELECT order_id, round, sku FROM stock_ledger
            WHERE order_id = ANY($1::text[])
            GROUP BY order_id, round, sku
            HAVING bool_or(kind = 'reserve') AND NOT bool_or(kind IN ('commit', 'release'))
        ) AS open_reservations
        """,
        finished_ids,
    )
    taken = await pool.fetchval(
        "SELECT count(DISTINCT order_id) FROM stock_ledger WHERE kind = 'commit'"
    )
    stock = Check(
        "no stock reservation left open (R3.1.2)",
        dangling == 0,
        f"{dangling} reservations neither committed nor released; "
        f"goods taken from stock for {taken} orders",
    )
    bookings = await pool.fetchval(
        "SELECT count(*) FROM service_bookings WHERE active AND order_id = ANY($1::text[])",
        finished_ids,
    )
    slots = Check("no service slot left booked (R3.2.1)", bookings == 0, f"{bookings}")
    return [assignments, stock, slots]


async def _anomalies_closed(
    pool: asyncpg.Pool, finished_ids: list[str], finished: list[OrderStatus]
) -> Check:
    anomaly_rows = await pool.fetch(
        "SELECT anomaly_id, closed_at FROM anomalies WHERE order_id = ANY($1::text[])",
        finished_ids,
    )
    in_workflows = {a.anomaly_id for s in finished for a in s.anomalies}
    unclosed = [r["anomaly_id"] for r in anomaly_rows if r["closed_at"] is None]
    return Check(
        "anomalies recorded and closed (R5.2.4)",
        {r["anomaly_id"] for r in anomaly_rows} == in_workflows and not unclosed,
        f"{len(anomaly_rows)} rows for {len(in_workflows)} anomalies"
        + (f"; still open {unclosed[:3]}" if unclosed else ""),
    )

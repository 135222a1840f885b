"""How fast `orderctl stats` answers over a million orders (R4.3.1).

    .venv/bin/python -m bench.stats_bench [--orders 1000000] [--days 120] [--keep]

Makes a fresh database (on `DATABASE_URL`'s server, else a throwaway embedded PostgreSQL),
migrates it and fills it straight from SQL (generate_series, no workflows): stores, departments
and staff, then orders with their summaries, event log, anomalies, feedback cases, refunds and
patrol reports, with realistic shapes: popular and quiet stores, lunch and dinner peaks for goods
and daytime visits for service, a growing business, lognormal stage times, a few percent of
orders late or past the hard limit (one store much more often), low ratings and complaints,
partial refunds agreed (each a feedback case too), price anomalies that become more frequent, a
handful of orders only the patrol found, and the orders of the last evening still running.

Then it builds the rollup once (as the first `stats` on an existing database would) and times
`stats` for the last half of the days, compared with the first half, so every order is read:
warm (nothing to refresh), by store, and after the last day's orders changed (its pairs marked,
as if they had just finished). It prints JSON and appends a line to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import analytics as st
from analytics.rollup import ROLLUP, refresh
from infra import database as db
from infra.settings import settings

DOC = db.REPO_ROOT / "docs" / "benchmarks.md"
GOAL_S = 2.0

# Regions, and per region how many goods and service stores.
REGIONS = [
    ("shanghai-xuhui", 6, 3),
    ("shanghai-pudong", 6, 2),
    ("shanghai-jingan", 5, 2),
    ("beijing-chaoyang", 5, 2),
    ("beijing-haidian", 4, 2),
    ("hangzhou-xihu", 2, 1),
]
STAFF_PER_DEPARTMENT = 6
SLOW_STORE = "G-03"  # misses deadlines three times as often

# Share of a day's goods / service orders created in each hour (lunch and dinner; daytime).
GOODS_HOURS = [
    0.4,
    0.2,
    0.1,
    0.1,
    0.1,
    0.2,
    0.6,
    1.5,
    2.5,
    2.5,
    4,
    9,
    13,
    8,
    3,
    2,
    3,
    7,
    11,
    10,
    6,
    4,
    2,
    1,
]
SERVICE_HOURS = [0, 0, 0, 0, 0, 0, 0.3, 2, 6, 9, 10, 9, 6, 6, 8, 9, 9, 8, 6, 4, 2, 1, 0.5, 0]


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    out, running = [], 0.0
    for w in weights[:-1]:
        running += w / total
        out.append(round(running, 6))
    return out


def _lognormal(median_s: float, sigma: float, r1: str, r2: str) -> str:
    """SQL for a lognormal duration from two uniform randoms (Box-Muller)."""
    return (
        f"({median_s} * exp({sigma} * sqrt(-2 * ln(greatest({r1}, 1e-12))) * cos(2 * pi() * {r2})))"
    )


def fill_statements(orders: int, days: int, first_day: date) -> list[tuple[str, str]]:
    """(label, SQL) in order; random() is seeded first, so a fill is the same every time."""
    stores: list[tuple[str, str, str, str, float]] = []  # code, type, region, department, weight
    departments: list[tuple[str, str, str]] = []
    n = 0
    for region, goods, service in REGIONS:
        for kind, count in (("goods", goods), ("service", service)):
            dept = f"{'K' if kind == 'goods' else 'H'}-{region}"
            departments.append((dept, kind, region))
            for _ in range(count):
                n += 1
                code = f"{kind[0].upper()}-{n:02d}"
                weight = 1.0 / (1 + 0.15 * n) * (1.0 if kind == "goods" else 0.6)
                stores.append((code, kind, region, dept, weight))
    store_rows = ", ".join(
        f"({i}, '{c}', '{k}', '{r}', '{d}')" for i, (c, k, r, d, _) in enumerate(stores, 1)
    )
    store_bounds = _cumulative([s[4] for s in stores])
    dept_rows = ", ".join(f"('{d}', '{k}', '{r}')" for d, k, r in departments)
    start = f"'{first_day.isoformat()} 00:00'::timestamp AT TIME ZONE 'Asia/Shanghai'"
    goods_hours = "ARRAY[" + ", ".join(map(str, _cumulative(GOODS_HOURS))) + "]::float8[]"
    service_hours = "ARRAY[" + ", ".join(map(str, _cumulative(SERVICE_HOURS))) + "]::float8[]"
    half = days // 2

    goods_stages: dict[str, tuple[float, float]] = {
        "received": (2, 0.5),
        "reviewing": (3, 0.6),
        "accepted": (25, 0.7),
        "assigned": (70, 0.9),
        "confirmed": (4, 0.5),
        "in_progress": (900, 0.5),
        "delivering": (1500, 0.45),
        "delivered": (86400, 0.01),
    }
    service_stages: dict[str, tuple[float, float]] = {
        "received": (2, 0.5),
        "reviewing": (4, 0.6),
        "accepted": (30, 0.7),
        "assigned": (180, 0.9),
        "confirmed": (600, 0.8),
        "in_progress": (72000, 0.6),
        "delivered": (86400, 0.01),
    }

    def stage_json(stages: dict[str, tuple[float, float]], slower: str) -> str:
        parts = []
        for i, (stage, (median, sigma)) in enumerate(stages.items()):
            value = _lognormal(median, sigma, f"b.u[{2 * i + 1}]", f"b.u[{2 * i + 2}]")
            if stage == "in_progress":
                value = f"({value} * {slower})"
            parts.append(f"'{stage}', round({value}::numeric, 3)")
        return "jsonb_build_object(" + ", ".join(parts) + ")"

    slower = f"CASE WHEN b.day_no >= {half} THEN 1.35 ELSE 1.0 END"
    return [
        ("seed", "SELECT setseed(0.2024)"),
        (
            "company",
            f"""
            INSERT INTO departments (code, name, order_type, region, manager_id)
            SELECT d.code, d.code, d.kind, d.region, 'M-' || d.code
            FROM (VALUES {dept_rows}) AS d(code, kind, region);
            INSERT INTO stores (code, name, region, order_type)
            SELECT s.code, s.code, s.region, s.kind
            FROM (VALUES {store_rows}) AS s(idx, code, kind, region, dept);
            INSERT INTO staff (staff_id, name, department, region, role, capacity)
            SELECT 'M-' || d.code, 'manager', d.code, d.region, 'manager', 2
            FROM departments d
            UNION ALL
            SELECT d.code || '-' || g, 'staff', d.code, d.region,
                   CASE d.order_type WHEN 'service' THEN 'technician' ELSE 'staff' END, 6
            FROM departments d, generate_series(1, {STAFF_PER_DEPARTMENT}) g;
            CREATE UNLOGGED TABLE bench_stores AS
            SELECT * FROM (VALUES {store_rows}) AS s(idx, code, kind, region, dept);
            INSERT INTO customers (customer_id)
            SELECT 'C' || g FROM generate_series(1, 200000) g
            """,
        ),
        (
            "plan",
            f"""
            CREATE UNLOGGED TABLE bench_raw AS
            SELECT g AS n, 'B' || lpad(g::text, 9, '0') AS order_id, s.code AS store_code,
                   s.kind AS order_type, s.region, s.dept, x.*
            FROM generate_series(1, {orders}) g
            CROSS JOIN LATERAL (
                SELECT width_bucket(random() + 0 * g, ARRAY{store_bounds}::float8[]) + 1 AS idx,
                       floor({days} * sqrt(random() + 0 * g))::int AS day_no
            ) p
            JOIN bench_stores s ON s.idx = p.idx
            CROSS JOIN LATERAL (
                SELECT p.day_no,
                       {start} + make_interval(days => p.day_no)
                           + make_interval(hours => width_bucket(random(),
                                 CASE s.kind WHEN 'goods' THEN {goods_hours}
                                             ELSE {service_hours} END))
                           + make_interval(secs => random() * 3600) AS created,
                       ARRAY(SELECT random() FROM generate_series(1, 16 + 0 * g)) AS u,
                       random() AS r_out, random() AS r_amt, random() AS r_disc,
                       random() AS r_rate, random() AS r_fb, random() AS r_an,
                       random() AS r_late, random() AS r_staff, random() AS r_src
            ) x;
            CREATE UNLOGGED TABLE bench_orders AS
            SELECT r.*, o.running,
                   CASE WHEN o.running THEN 'open' WHEN r.r_out < 0.05 THEN 'cancelled'
                        WHEN r.r_out < 0.075 THEN 'rejected' ELSE 'closed' END AS outcome,
                   round((CASE r.order_type WHEN 'goods' THEN 25 + 120 * r.r_amt ^ 2
                                            ELSE 90 + 300 * r.r_amt ^ 2 END)::numeric, 1)
                       AS total,
                   CASE WHEN r.r_disc < 0.3 THEN round((3 + 25 * r.r_disc)::numeric)
                        ELSE 0 END AS discount,
                   r.dept || '-' || (1 + floor(r.r_staff * {STAFF_PER_DEPARTMENT})) AS staff_id,
                   CASE WHEN o.done AND r.r_late < CASE r.store_code WHEN '{SLOW_STORE}'
                                                       THEN 0.18 ELSE 0.06 END
                        THEN CASE r.order_type
                            WHEN 'goods' THEN (ARRAY['prepare', 'prepare', 'deliver', 'deliver',
                                                     'assign'])[1 + (r.n % 5)]
                            ELSE (ARRAY['confirm', 'schedule', 'reconfirm_visit', 'execute',
                                        'execute'])[1 + (r.n % 5)] END END AS late_key,
                   r.u[16] < 0.2 AS hard,
                   CASE WHEN NOT o.running AND r.r_an < 0.03 THEN
                       CASE WHEN r.u[15] < 0.15 + 0.35 * r.day_no / {days} THEN 'price'
                            WHEN r.u[15] < 0.65 THEN 'info'
                            WHEN r.u[15] < 0.85 THEN 'other'
                            WHEN r.u[15] < 0.95 THEN 'prohibited' ELSE 'fraud' END END
                       AS anomaly,
                   CASE WHEN o.done AND r.r_fb < 0.045 THEN
                       CASE WHEN r.u[14] < 0.6 THEN 'complaint' WHEN r.u[14] < 0.85 THEN 'inquiry'
                            WHEN r.u[14] < 0.95 THEN 'suggestion' ELSE 'dispute' END END
                       AS feedback,
                   o.done AND r.u[8] < 0.015 AS refund,
                   CASE WHEN o.done AND r.r_rate < CASE r.order_type WHEN 'goods' THEN 0.25
                                                                     ELSE 0.7 END
                       THEN (ARRAY[1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5])
                            [1 + floor(r.u[13] * 20)] END AS rating
            FROM bench_raw r
            CROSS JOIN LATERAL (
                SELECT r.day_no = {days - 1}
                           AND r.created > {start} + make_interval(days => {days - 1}, hours => 18)
                           AND r.r_out < 0.4 AS running
            ) o0
            CROSS JOIN LATERAL (
                SELECT o0.running, NOT o0.running AND r.r_out >= 0.075 AS done
            ) o;
            DROP TABLE bench_raw
            """,
        ),
        (
            "orders",
            """
            INSERT INTO orders (order_id, store_code, order_type, region, delivery_mode,
                                customer_id, stage, stage_seq, items_total, discount_total,
                                total, created_at, received_at, source)
            SELECT b.order_id, b.store_code, b.order_type, b.region,
                   CASE b.order_type WHEN 'goods' THEN 'platform_courier' ELSE 'on_site' END,
                   'C' || (1 + floor(b.u[12] * 200000))::int,
                   CASE WHEN b.running THEN 'in_progress' ELSE b.outcome END, 20,
                   b.total + b.discount, b.discount, b.total, b.created,
                   b.created + interval '2 seconds',
                   CASE WHEN b.r_src < 0.0004 THEN 'patrol' ELSE 'push' END
            FROM bench_orders b
            """,
        ),
        (
            "summaries",
            f"""
            INSERT INTO order_summaries (order_id, order_type, outcome, stage_seconds, breaches,
                                         anomalies, feedback_rounds, rating, recorded_at)
            SELECT b.order_id, b.order_type, b.outcome,
                   CASE WHEN b.outcome <> 'closed' THEN
                        jsonb_build_object('received', 2.1, 'reviewing', 3.5, b.outcome, 0)
                        WHEN b.order_type = 'goods' THEN {stage_json(goods_stages, slower)}
                        ELSE {stage_json(service_stages, slower)} END
                   || CASE WHEN b.anomaly IS NOT NULL
                           THEN jsonb_build_object('on_hold', round((300 + 900 * b.u[11])::numeric))
                           ELSE '{{}}'::jsonb END,
                   CASE WHEN b.late_key IS NULL THEN '[]'::jsonb
                        WHEN b.hard THEN jsonb_build_array(b.late_key, b.late_key || ' (hard)')
                        ELSE jsonb_build_array(b.late_key) END,
                   CASE WHEN b.anomaly IS NULL THEN '[]'::jsonb
                        ELSE jsonb_build_array(b.anomaly || ': dismiss') END,
                   CASE WHEN b.feedback IS NULL THEN 0 ELSE 1 END, b.rating,
                   b.created + interval '1 day'
            FROM bench_orders b
            WHERE NOT b.running
            """,
        ),
        (
            "events",
            """
            INSERT INTO order_events (order_id, seq, at, event, stage, actor, details, recorded_at)
            SELECT b.order_id, v.seq, b.created + make_interval(secs => v.seq * 60), v.event,
                   v.stage, v.actor, v.details, b.created
            FROM bench_orders b
            CROSS JOIN LATERAL (VALUES
                (1, 'received', 'received', 'system', '{}'::jsonb),
                (2, CASE WHEN b.outcome = 'rejected' THEN 'review_reject' ELSE 'review_pass' END,
                    'reviewing', 'system', '{"round": 1}'::jsonb),
                (3, CASE WHEN b.outcome <> 'rejected' THEN 'accepted' END, 'accepted', 'system',
                    '{}'::jsonb),
                (4, CASE WHEN b.outcome <> 'rejected' THEN 'assigned' END, 'assigned', 'system',
                    jsonb_build_object('assignee', b.staff_id)),
                (5, CASE WHEN b.order_type = 'service' AND b.outcome = 'closed'
                         THEN 'confirmed_with_customer' END, 'assigned', b.staff_id,
                    '{"channel": "phone"}'::jsonb),
                (6, CASE WHEN b.order_type = 'service' AND b.outcome = 'closed'
                              AND NOT b.running THEN 'booked' END, 'in_progress', 'system',
                    jsonb_build_object('staff_id', b.staff_id)),
                (7, CASE WHEN b.late_key IS NOT NULL THEN 'deadline_breached' END,
                    'in_progress', 'system', jsonb_build_object('key', b.late_key)),
                (8, CASE WHEN b.late_key IS NOT NULL AND b.hard THEN 'hard_limit_passed' END,
                    'in_progress', 'system',
                    jsonb_build_object('key', b.late_key, 'action', 'escalate')),
                (9, CASE WHEN b.running OR b.outcome <> 'closed' THEN NULL
                         WHEN b.order_type = 'goods' THEN 'ready' ELSE 'visit_reconfirmed' END,
                    'in_progress', b.staff_id, '{}'::jsonb),
                (10, CASE WHEN b.outcome = 'closed' AND NOT b.running THEN 'delivered' END,
                    'delivered', 'system', '{}'::jsonb),
                (11, CASE WHEN b.rating IS NOT NULL THEN 'rated' END, 'delivered', 'customer',
                    jsonb_build_object('score', b.rating)),
                (12, CASE WHEN b.feedback IS NOT NULL THEN 'feedback_opened' END, 'delivered',
                    'customer', jsonb_build_object('case', 1, 'kind', b.feedback)),
                (13, CASE WHEN b.feedback IS NOT NULL THEN 'feedback_responded' END,
                    'delivered', b.staff_id, '{"case": 1, "round": 1}'::jsonb),
                (14, CASE WHEN b.feedback IS NOT NULL THEN 'feedback_resolved' END, 'delivered',
                    b.staff_id, '{"case": 1, "satisfied": true}'::jsonb),
                (15, CASE WHEN b.refund THEN 'refund_notice' END, 'delivered', 'platform',
                    jsonb_build_object('refund_id', 'R' || b.n, 'notify_type', 'apply',
                                       'case', 2)),
                (16, CASE WHEN b.refund THEN 'refund_decided' END, 'delivered', 'M-' || b.dept,
                    jsonb_build_object('refund_id', 'R' || b.n, 'agree', true, 'case', 2)),
                (17, CASE WHEN NOT b.running THEN b.outcome END, b.outcome, 'system',
                    CASE b.outcome
                        WHEN 'cancelled' THEN jsonb_build_object(
                            'cancel_code', (ARRAY[1101, 1101, 1102, 2006, 2009, 2007])
                                [1 + (b.n % 6)],
                            'by', (ARRAY['platform', 'platform', 'platform', 'S', 'S',
                                         'policy'])[1 + (b.n % 6)])
                        WHEN 'rejected' THEN jsonb_build_object('cancel_code', 2007)
                        ELSE '{}'::jsonb END)
            ) AS v(seq, event, stage, actor, details)
            WHERE v.event IS NOT NULL
            """,
        ),
        (
            "anomalies",
            """
            INSERT INTO anomalies (anomaly_id, order_id, kind, detail, opened_at, decision,
                                   outcome, closed_at)
            SELECT 'anomaly-' || b.order_id || '-1', b.order_id, b.anomaly, '', b.created,
                   d.decision,
                   jsonb_build_object('decision', d.decision, 'decided_by', 'M-' || b.dept,
                                      'escalations', CASE WHEN b.u[10] < 0.1 THEN 1 ELSE 0 END,
                                      'resume', d.decision <> 'cancel'),
                   b.created + interval '10 minutes'
            FROM bench_orders b
            CROSS JOIN LATERAL (SELECT CASE
                WHEN b.outcome = 'cancelled' THEN 'cancel'
                WHEN b.anomaly = 'price' THEN 'adjust_price'
                WHEN b.anomaly = 'info' THEN 'correct_info'
                WHEN b.anomaly = 'other' THEN 'agreed_with_platform'
                ELSE 'dismiss' END AS decision) d
            WHERE b.anomaly IS NOT NULL
            """,
        ),
        (
            "feedback",
            """
            INSERT INTO feedback (order_id, case_no, kind, text, owner, state, rounds,
                                  responses, resolutions, satisfied, opened_at)
            SELECT b.order_id, 1, b.feedback, '', b.staff_id,
                   CASE WHEN b.u[9] < 0.05 THEN 'escalated' ELSE 'satisfied' END,
                   CASE WHEN b.u[9] < 0.2 THEN 2 ELSE 1 END, '["..."]', '["..."]',
                   b.u[9] >= 0.05, b.created + interval '1 hour'
            FROM bench_orders b
            WHERE b.feedback IS NOT NULL
            """,
        ),
        (
            "refunds",
            """
            INSERT INTO refunds (order_id, refund_id, partial, amount, state, refunded,
                                 decided_by, requested_at, decided_at)
            SELECT b.order_id, 'R' || b.n, true, round(b.total * 0.2, 2), 'agreed',
                   round(b.total * 0.2, 2), 'M-' || b.dept, b.created + interval '15 minutes',
                   b.created + interval '16 minutes'
            FROM bench_orders b
            WHERE b.refund;
            INSERT INTO feedback (order_id, case_no, kind, text, owner, state, rounds,
                                  responses, resolutions, opened_at, ref)
            SELECT b.order_id, 2, 'refund', '', 'M-' || b.dept, 'closed', 1, '["..."]',
                   '["..."]', b.created + interval '15 minutes', 'R' || b.n
            FROM bench_orders b
            WHERE b.refund
            """,
        ),
        (
            "patrol",
            f"""
            INSERT INTO patrol_reports (patrol_id, at, stores, walked, found, report)
            SELECT 'patrol-' || g, {start} + make_interval(mins => 30 * g),
                   ARRAY(SELECT code FROM stores), 40, ARRAY[]::text[], '{{}}'::jsonb
            FROM generate_series(0, {days} * 48 - 1) g;
            UPDATE patrol_reports p SET found = f.ids
            FROM (
                SELECT 'patrol-' || floor(extract(epoch FROM o.created_at - {start}) / 1800)
                           AS patrol_id, array_agg(o.order_id) AS ids
                FROM orders o WHERE o.source = 'patrol' GROUP BY 1
            ) f
            WHERE p.patrol_id = f.patrol_id
            """,
        ),
        ("cleanup", "DROP TABLE bench_orders; DROP TABLE bench_stores"),
        ("analyze", "ANALYZE"),
    ]


async def fill(conn: db.Conn, orders: int, days: int, first_day: date) -> dict[str, float]:
    """Triggers off while filling (as a restore would): the rollup is then built from scratch."""
    timings: dict[str, float] = {}
    await conn.execute("SET session_replication_role = replica")
    for label, sql in fill_statements(orders, days, first_day):
        began = time.perf_counter()
        await conn.execute(sql)
        timings[label] = round(time.perf_counter() - began, 2)
        print(f"  {label}: {timings[label]} s", file=sys.stderr, flush=True)
    await conn.execute("SET session_replication_role = origin")
    return timings


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    url = settings().database.url
    folder: tempfile.TemporaryDirectory[str] | None = None
    if url:
        server = url
    else:
        folder = tempfile.TemporaryDirectory(prefix="stats-bench-")
        server = await asyncio.to_thread(db.start_embedded, Path(folder.name) / "pg")
    name = f"stats_bench_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(server, name)
    dsn = db.with_database(server, name)
    pool = await db.connect(dsn, max_size=2)
    try:
        await db.migrate(pool)
        today = datetime.now(settings().business.timezone).date()
        first_day = today - timedelta(days=args.days - 1)
        async with pool.acquire() as conn:
            fill_s = await fill(conn, args.orders, args.days, first_day)
            counts = {
                t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                for t in (
                    "orders",
                    "order_summaries",
                    "order_events",
                    "anomalies",
                    "feedback",
                    "refunds",
                )
            }
            built = await refresh(conn)
        half = args.days // 2
        period = st.Period(first_day + timedelta(days=half), today)
        warm = [await st.collect(period, pool=pool) for _ in range(3)]
        by_store = await st.collect(period, "store", pool=pool)
        async with pool.acquire() as conn, conn.transaction():
            # As if the last day's orders had all just finished: out of the rollup, pending.
            for table in ROLLUP:
                await conn.execute(f"DELETE FROM stats_{table} WHERE day = $1", today)
            marked = await conn.execute(
                """
                INSERT INTO stats_pending (order_id, day, store_code)
                SELECT order_id, $1::date, store_code FROM orders
                WHERE created_at >= $2 AND stage IN ('closed', 'rejected', 'cancelled')
                """,
                today,
                datetime.combine(today, datetime.min.time(), settings().business.timezone),
            )
        after_today = await st.collect(period, pool=pool)
        totals = [s["source"]["seconds"]["total"] for s in warm]
        result = {
            "orders": args.orders,
            "days": args.days,
            "rows": counts,
            "fill_seconds": fill_s,
            "rollup_build": {"seconds": round(built.seconds, 2), "pairs": built.pairs},
            "period": {"from": str(period.start), "to": str(period.end)},
            "orders_in_period_and_previous": warm[0]["orders"]["count"]
            + warm[0]["previous"]["orders"]["count"],
            "stats_seconds": {
                "warm_runs": totals,
                "warm_median": statistics.median(totals),
                "per_query": warm[-1]["source"]["seconds"],
                "by_store": by_store["source"]["seconds"]["total"],
                "last_day_refreshed": after_today["source"]["seconds"]["total"],
                "last_day_refresh_only": after_today["source"]["seconds"]["refresh"],
                "last_day_orders": int(marked.split()[-1]),
                "last_day_refresh_steps": after_today["source"]["refresh_steps"],
            },
            "findings": [f["message"] for f in warm[-1]["findings"]],
            "goal_seconds": GOAL_S,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "total_seconds": round(time.perf_counter() - began, 1),
        }
    finally:
        await pool.close()
        if not args.keep:
            await db.drop_database(server, name)
        if folder is not None:
            await asyncio.to_thread(db.stop_embedded, Path(folder.name) / "pg")
            folder.cleanup()
    return result


HEADER = f"""## orderctl stats (R4.3.1)

`bench/stats_bench.py` fills a fresh database straight from SQL (orders with their summaries,
event log, anomalies, feedback cases and patrol reports), builds the rollup once (as the first
`stats` on an existing database does), then times `stats` for the last half of the days
compared with the first half, so every order is read. Goal: under {GOAL_S:g} s on 2 cores.

* warm: median of three runs, the rollup current (nothing finished since the last `stats`);
* by store: the same with `--by store` (percentiles per store too);
* last day: the first run after all of the last day's orders finished: its refresh rolls them
  up first, at a cost in proportion to the orders finished since the previous `stats`.

| date | command | data | warm | by store | last day (orders) | rollup build | machine |
|---|---|---|---|---|---|---|---|
"""


def record(result: dict[str, Any], command: str) -> None:
    """One line per run in docs/benchmarks.md, under the stats heading."""
    s = result["stats_seconds"]
    line = (
        f"| {datetime.now(UTC):%Y-%m-%d} | `{command}` | {result['orders']:,} orders, "
        f"{result['rows']['order_events']:,} events, {result['days']} days | "
        f"{s['warm_median']:.2f} s | {s['by_store']:.2f} s | {s['last_day_refreshed']:.2f} s "
        f"({s['last_day_orders']:,}) | {result['rollup_build']['seconds']:.0f} s | "
        f"{result['machine']} |\n"
    )
    DOC.parent.mkdir(exist_ok=True)
    existing = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if "## orderctl stats" not in existing:
        with DOC.open("a", encoding="utf-8") as out:
            out.write("\n" + HEADER if existing else "# Benchmarks\n\n" + HEADER)
    with DOC.open("a", encoding="utf-8") as out:
        out.write(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stats_bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders (1,000,000)")
    parser.add_argument("--days", type=int, default=120, help="days they span (120)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    if args.orders < 1000 or args.days < 2:
        parser.error("at least 1000 orders over 2 days")
    result = asyncio.run(bench(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_record:
        shown = " ".join(a for a in (argv if argv is not None else sys.argv[1:]) if a != "--keep")
        record(result, f".venv/bin/python -m bench.stats_bench {shown}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

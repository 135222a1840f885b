"""Statistics (R4.3.1), findings (R4.3.2) and scorecards (R7.2) on a business day the simulator
ran through the real workflows, each figure against an independent count: plain SQL written
another way, or the workflows' own final status as the demo collected it. The findings logic is
also tested on hand-made totals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

import analytics as st
from analytics.findings import find, poisson_tail
from analytics.reads import read
from analytics.report import render as render_html
from analytics.rollup import ROLLUP, refresh
from analytics.targets import against_targets
from analytics.text import render as render_text
from analytics.totals import Histogram, StaffTotals, Totals
from infra import database as db
from infra.settings import settings
from localstack.demo import DemoOptions, DemoResult, run_demo
from schemas.people import Person, Role
from schemas.policy import Clause, Targets
from starter.api import measures
from starter.failures import Failure
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

ZONE = "Asia/Shanghai"
pytestmark = pytest.mark.timeout(300)  # the first test waits for the demo's business day


@dataclass
class Day:
    """The demo's business day: its result (the workflows' final status), its database, and
    the statistics of the days its orders were created on."""

    result: DemoResult
    dsn: str
    pool: asyncpg.Pool
    period: st.Period
    stats: dict[str, Any]


class _Shared:
    """One demo fill for the session, shared by the statistics and the report tests (pytest
    keeps a session fixture per importing module); the last user drops the database."""

    result: DemoResult | None = None
    name: str | None = None
    users = 0


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def demo_day(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Day]:
    if _Shared.result is None:
        name = f"t_stats_{uuid.uuid4().hex[:8]}"
        options = DemoOptions(
            orders=10,
            seed=5,
            data_dir=tmp_path_factory.mktemp("stats-temporal"),
            database=name,
            server_dsn=pg_dsn,
            temporal_port=None,
            ui_port=None,
            gateway_port=None,
            simulator_port=None,
            limit_s=75,
        )
        _Shared.result = await run_demo(options, say=lambda _: None)
        _Shared.name = name
    assert _Shared.name is not None
    _Shared.users += 1
    dsn = db.with_database(pg_dsn, _Shared.name)
    pool = await db.connect(dsn, max_size=4)
    try:
        days = await pool.fetchrow(
            "SELECT min((created_at AT TIME ZONE $1)::date) AS first,"
            " max((created_at AT TIME ZONE $1)::date) AS last FROM orders",
            ZONE,
        )
        assert days is not None
        period = st.Period(days["first"], days["last"])
        stats = await st.collect(period, "store", pool=pool)
        yield Day(_Shared.result, dsn, pool, period, stats)
    finally:
        await pool.close()
        _Shared.users -= 1
        if _Shared.users == 0:
            await db.drop_database(pg_dsn, _Shared.name)
            _Shared.result = _Shared.name = None


# --- the figures against independent counts ---------------------------------------------------


async def test_the_day_finished_and_every_order_counts(demo_day: Day) -> None:
    summary = demo_day.result.summary
    assert demo_day.result.ok, summary["open_orders"]
    stats = demo_day.stats
    totals = summary["outcome_totals"]  # the workflows' final status
    assert stats["orders"]["count"] == sum(totals.values()) == 10
    assert stats["orders"]["by_outcome"] == totals
    assert stats["previous"]["orders"]["count"] == 0
    assert stats["source"]["pairs_not_yet_rolled_up"] == 0
    assert stats["source"]["orders_computed_live"] == 0  # all finished and rolled up
    by_hour = Counter(
        r["h"]
        for r in await demo_day.pool.fetch(
            "SELECT extract(hour FROM created_at AT TIME ZONE $1)::int AS h FROM orders", ZONE
        )
    )
    assert stats["orders_per_hour"] == [by_hour.get(h, 0) for h in range(24)]
    stores = Counter(r["store_code"] for r in await demo_day.pool.fetch("SELECT * FROM orders"))
    assert {g["key"]: g["orders"] for g in stats["groups"]["rows"]} == dict(stores)


async def test_amounts(demo_day: Day) -> None:
    rows = await demo_day.pool.fetch("SELECT order_id, total, discount_total, stage FROM orders")
    gross = sum((r["total"] + r["discount_total"] for r in rows), Decimal(0))
    discounts = sum((r["discount_total"] for r in rows), Decimal(0))
    agreed: Counter[str] = Counter()
    for r in await demo_day.pool.fetch("SELECT order_id, refunded FROM refunds"):
        agreed[r["order_id"]] += r["refunded"]  # zero unless agreed
    # Cancelled and rejected orders give back everything, any other its agreed refunds.
    refunded = sum(
        (
            r["total"]
            if r["stage"] in ("cancelled", "rejected")
            else min(r["total"], agreed[r["order_id"]])
            for r in rows
        ),
        Decimal(0),
    )
    amount = demo_day.stats["amount"]
    assert Decimal(amount["gross"]) == gross
    assert Decimal(amount["discounts"]) == discounts
    assert Decimal(amount["refunded"]) == refunded
    assert Decimal(amount["net"]) == gross - discounts - refunded


async def test_satisfaction(demo_day: Day) -> None:
    ratings = Counter(
        r["rating"]
        for r in await demo_day.pool.fetch(
            "SELECT rating FROM order_summaries WHERE rating IS NOT NULL"
        )
    )
    sat = demo_day.stats["satisfaction"]
    assert sat["distribution"] == {str(k): ratings.get(k, 0) for k in range(1, 6)}
    assert sat["rated"] == sum(ratings.values())
    if ratings:
        average = sum(k * v for k, v in ratings.items()) / sum(ratings.values())
        assert sat["rating_average"] == pytest.approx(average, abs=0.005)
    complained = await demo_day.pool.fetchval(
        "SELECT count(*) FROM orders o WHERE EXISTS "
        "(SELECT 1 FROM feedback f WHERE f.order_id = o.order_id AND f.kind = 'complaint')"
    )
    assert sat["complaint_orders"] == complained
    assert sat["complaint_rate"] == pytest.approx(complained / 10)


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


async def test_stage_times_are_the_summaries_within_half_a_bucket(demo_day: Day) -> None:
    per_stage: dict[str, list[float]] = defaultdict(list)
    for row in await demo_day.pool.fetch("SELECT stage_seconds FROM order_summaries"):
        for stage, seconds in row["stage_seconds"].items():
            if stage not in ("closed", "rejected", "cancelled"):
                per_stage[stage].append(float(seconds))
    reported = demo_day.stats["stage_seconds"]
    assert set(reported) == set(per_stage)
    for stage, values in per_stage.items():
        assert reported[stage]["n"] == len(values)
        assert reported[stage]["mean"] == pytest.approx(sum(values) / len(values), abs=0.001)
        for p, key in ((0.5, "p50"), (0.9, "p90")):
            exact = _nearest_rank(values, p)
            # The reported value is the middle of the exact value's bucket: buckets are about
            # 5 % of 1 + seconds wide (a few ms below a second, 2.5 % from a minute on).
            assert Histogram.bucket_of(exact) == Histogram.bucket_of(reported[stage][key])
            assert abs(reported[stage][key] - exact) <= 0.026 * (1 + exact)


async def test_deadlines_agree_with_the_workflows_clocks(demo_day: Day) -> None:
    """The demo read each order's deadline views and breaches from its status query."""
    clocks = demo_day.result.summary["deadlines"]
    mine = demo_day.stats["deadlines"]
    assert set(mine) == set(clocks)
    for clause, seen in clocks.items():
        row = mine[clause]
        assert row["met"] == seen["met"], clause
        # The workflows count a key past its hard limit among the breached too.
        assert row["breached"] + row["hard"] == seen["breached"], clause
        if clause != "anomaly_decision":  # the demo does not count a policy decision as hard
            assert row["hard"] == seen["hard"], clause
    # and against the event log read another way
    breached = await demo_day.pool.fetchval(
        "SELECT count(DISTINCT (order_id, details ->> 'key')) FROM order_events"
        " WHERE event = 'deadline_breached'"
    )
    anomaly_late = sum(
        r["breached"] + r["hard"] for c, r in mine.items() if c == "anomaly_decision"
    )
    assert sum(r["breached"] + r["hard"] for r in mine.values()) - anomaly_late >= breached


async def test_anomalies_cancellations_and_feedback(demo_day: Day) -> None:
    stats, summary = demo_day.stats, demo_day.result.summary
    assert stats["anomalies"] == summary["anomalies"]  # from the workflows
    by_sql: dict[str, Counter[str]] = defaultdict(Counter)
    for r in await demo_day.pool.fetch("SELECT kind, decision FROM anomalies"):
        by_sql[r["kind"]][r["decision"] or "open"] += 1
    assert stats["anomalies"] == {k: dict(v) for k, v in by_sql.items()}

    codes = Counter(
        (r["event"], r["code"])
        for r in await demo_day.pool.fetch(
            "SELECT event, COALESCE((details ->> 'cancel_code')::int, 0) AS code"
            " FROM order_events WHERE event IN ('cancelled', 'rejected')"
        )
    )
    mine = Counter({(c["outcome"], c["code"]): 0 for c in stats["cancellations"]})
    for c in stats["cancellations"]:
        mine[(c["outcome"], c["code"])] += c["n"]
    assert mine == codes
    assert sum(n for (o, _), n in codes.items() if o == "cancelled") == summary[
        "outcome_totals"
    ].get("cancelled", 0)

    cases = await demo_day.pool.fetch("SELECT kind, rounds, state FROM feedback")
    fb = stats["feedback"]
    assert fb["cases"] == len(cases)
    assert fb["by_kind"].keys() == {c["kind"] for c in cases}
    assert fb["satisfied"] == sum(1 for c in cases if c["state"] == "satisfied")
    # R4.2.1 every reminder and refund request of the day is a case of its kind.
    for kind, event in (("reminder", "customer_reminded"), ("refund", "refund_notice")):
        pushed = await demo_day.pool.fetchval(
            "SELECT count(*) FROM order_events WHERE event = $1 AND details ? 'case'", event
        )
        assert sum(1 for c in cases if c["kind"] == kind) == pushed, kind
    waits = [
        float(r["seconds"])
        for r in await demo_day.pool.fetch(
            """
            SELECT extract(epoch FROM (
                SELECT min(r.at) FROM order_events r
                WHERE r.order_id = o.order_id
                  AND r.event IN ('feedback_responded', 'reminder_replied', 'refund_decided')
                  AND r.details -> 'case' = o.details -> 'case') - o.at) AS seconds
            FROM order_events o
            WHERE o.event IN ('feedback_opened', 'customer_reminded', 'refund_notice')
              AND o.details ? 'case'
            """
        )
        if r["seconds"] is not None
    ]
    first = fb["first_response_seconds"]
    assert first["n"] == len(waits)
    if waits:
        exact = _nearest_rank(waits, 0.5)
        assert Histogram.bucket_of(exact) == Histogram.bucket_of(first["p50"])


async def test_scorecards_agree_with_assignments_and_decisions(demo_day: Day) -> None:
    cards = {c["staff_id"]: c for c in demo_day.stats["staff"]}
    held = {
        r["staff_id"]: r["n"]
        for r in await demo_day.pool.fetch(
            "SELECT staff_id, count(DISTINCT order_id) AS n FROM assignments GROUP BY staff_id"
        )
    }
    assert {s: c["orders"] for s, c in cards.items() if c["orders"]} == held
    decided = Counter(
        r["by"]
        for r in await demo_day.pool.fetch(
            "SELECT outcome ->> 'decided_by' AS by FROM anomalies WHERE outcome IS NOT NULL"
        )
        if r["by"] not in ("system", "policy")
    )
    assert {s: c["anomalies_decided"] for s, c in cards.items() if c["anomalies_decided"]} == (
        dict(decided)
    )
    # Every rated, delivered order is some person's; departments add their people up.
    assert sum(c["rated"] for c in cards.values()) == demo_day.stats["satisfaction"]["rated"]
    units = {d["department"]: d for d in demo_day.stats["departments"]}
    for unit, card in units.items():
        people = [c for c in cards.values() if (c["department"] or "unknown") == unit]
        assert card["orders"] == sum(c["orders"] for c in people)
        assert card["people"] == len(people)
    staff_rows = {
        r["staff_id"]: r["department"]
        for r in await demo_day.pool.fetch("SELECT staff_id, department FROM staff")
    }
    assert all(c["department"] == staff_rows[s] for s, c in cards.items())


async def test_live_figures_equal_the_rollup(demo_day: Day) -> None:
    """With every pair marked (nothing read from the rollup) or every order pending again, the
    figures are the same: the rollup and the live part are one computation."""
    pool = demo_day.pool

    def core(stats: dict[str, Any]) -> dict[str, Any]:
        """The figures: not where they came from, nor the measures `collect` adds."""
        return {k: v for k, v in stats.items() if k not in ("source", "measures")}

    expected = core(demo_day.stats)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO stats_dirty (day, store_code) SELECT DISTINCT"
            " (created_at AT TIME ZONE $1)::date, store_code FROM orders ON CONFLICT DO NOTHING",
            ZONE,
        )
        raw = await read(conn, demo_day.period, "store")
        assert raw.dirty_pairs > 0 and raw.live_orders == 10
        assert core(st.compute(raw)) == expected
        done = await refresh(conn)
        assert done.pairs == raw.dirty_pairs and done.orders == 10
        async with conn.transaction():
            for table in ROLLUP:
                await conn.execute(f"DELETE FROM stats_{table}")
            await conn.execute(
                "INSERT INTO stats_pending (order_id, day, store_code)"
                " SELECT order_id, (created_at AT TIME ZONE $1)::date, store_code FROM orders",
                ZONE,
            )
        raw = await read(conn, demo_day.period, "store")
        assert raw.live_orders == 10
        assert core(st.compute(raw)) == expected
    again = await st.collect(demo_day.period, "store", pool=pool)
    assert again["source"]["refreshed_orders"] == 10
    assert core(again) == expected


async def test_a_summary_written_after_the_rollup_marks_its_pair(demo_day: Day) -> None:
    pool = demo_day.pool
    order = await pool.fetchrow(
        "SELECT o.order_id, o.store_code, s.rating FROM orders o"
        " JOIN order_summaries s USING (order_id) WHERE o.stage = 'closed' LIMIT 1"
    )
    assert order is not None
    await st.collect(demo_day.period, pool=pool)  # nothing left to refresh
    before = (await st.collect(demo_day.period, pool=pool))["satisfaction"]["distribution"]
    try:
        await pool.execute(
            "UPDATE order_summaries SET rating = 1 WHERE order_id = $1", order["order_id"]
        )
        marked = await pool.fetch("SELECT store_code FROM stats_dirty")
        assert [r["store_code"] for r in marked] == [order["store_code"]]
        after = await st.collect(demo_day.period, pool=pool)
        assert after["source"]["refreshed_pairs"] == 1
        expected = Counter({int(k): v for k, v in before.items()})
        if order["rating"] is not None:
            expected[order["rating"]] -= 1
        expected[1] += 1
        assert after["satisfaction"]["distribution"] == {str(k): expected[k] for k in range(1, 6)}
    finally:
        await pool.execute(
            "UPDATE order_summaries SET rating = $2 WHERE order_id = $1",
            order["order_id"],
            order["rating"],
        )
        await st.collect(demo_day.period, pool=pool)


def test_the_command_line(demo_day: Day) -> None:
    env = {**os.environ, "DATABASE_URL": demo_day.dsn}
    period = demo_day.period
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "starter.cli",
            "stats",
            "--from",
            str(period.start),
            "--to",
            str(period.end),
            "--by",
            "type",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["orders"]["count"] == 10
    assert {g["key"] for g in figures["groups"]["rows"]} <= {"goods", "service"}
    text = subprocess.run(
        [sys.executable, "-m", "starter.cli", "stats", "--from", str(period.start)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert "findings (R4.3.2)" in text.stdout
    for bad, message in (
        (["--from", "2025-13-01"], "expected a date"),
        (["--from", "2025-06-02", "--to", "2025-06-01"], "before it starts"),
        (["--by", "colour"], "invalid choice"),
    ):
        refused = subprocess.run(
            [sys.executable, "-m", "starter.cli", "stats", *bad],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 2, (bad, refused.stderr)
        assert message in refused.stderr


# --- the findings logic on hand-made totals -----------------------------------------------------


def _totals(
    orders: int,
    *,
    in_progress: list[float] | None = None,
    breached: int = 0,
    complained: int = 0,
    price: int = 0,
    patrol: int = 0,
) -> Totals:
    tot = Totals(orders=orders, breached_orders=breached, complained=complained)
    tot.patrol_found = patrol
    if in_progress:
        tot.durations["stage:in_progress"] = Histogram.of(in_progress)
    if price:
        tot.anomalies["price"]["adjust_price"] = price
    return tot


def _spread(centre: float, n: int = 40) -> list[float]:
    return [centre * (0.6 + 0.8 * i / n) for i in range(n)]


def _person(staff_id: str, orders: int, late: int, complaints: int = 0) -> StaffTotals:
    person = StaffTotals(staff_id=staff_id, department="K", orders=orders)
    person.deadlines["prepare"].add(orders - late, late, 0)
    person.complaints = complaints
    return person


def test_a_quiet_period_finds_nothing() -> None:
    current = _totals(400, in_progress=_spread(600), breached=8, complained=4, price=2)
    previous = _totals(390, in_progress=_spread(590), breached=9, complained=5, price=2)
    stores = {
        "A": _totals(200, breached=4, complained=2),
        "B": _totals(200, breached=4, complained=2),
    }
    staff = {"S-1": _person("S-1", 200, 4), "S-2": _person("S-2", 200, 5)}
    assert find(current, previous, stores, staff) == []


def test_a_slower_stage_is_found() -> None:
    current = _totals(400, in_progress=_spread(900))
    previous = _totals(400, in_progress=_spread(600))
    [finding] = find(current, previous, {}, {})
    assert finding.kind == "stage_slower" and finding.subject == "in_progress"
    assert "got slower" in finding.message and "+" in finding.message
    # Too few orders, or a rise under the threshold, is not a finding.
    few = _totals(10, in_progress=_spread(900, 10))
    assert find(few, _totals(10, in_progress=_spread(600, 10)), {}, {}) == []
    slight = _totals(400, in_progress=_spread(660))
    assert find(slight, previous, {}, {}) == []


def test_a_store_and_a_person_standing_out_are_found() -> None:
    current = _totals(600, breached=60, complained=12)
    stores = {
        "A": _totals(200, breached=44, complained=2),  # 22 % against 10 %
        "B": _totals(200, breached=8, complained=5),
        "C": _totals(200, breached=8, complained=5),
        "D": _totals(8, breached=6),  # high but too few orders to say
    }
    staff = {
        "S-1": _person("S-1", 200, 40, complaints=12),
        "S-2": _person("S-2", 200, 6, complaints=1),
        "S-3": _person("S-3", 200, 7, complaints=1),
    }
    found = find(current, _totals(600), stores, staff)
    kinds = {(f.kind, f.subject) for f in found}
    assert ("store_breach_rate", "A") in kinds
    assert ("person_breach_rate", "S-1") in kinds
    assert ("person_complaint_rate", "S-1") in kinds
    assert not {s for k, s in kinds if s in ("B", "C", "D", "S-2", "S-3")}
    store = next(f for f in found if f.subject == "A")
    assert "2.2×" in store.message and "44 of 200" in store.message


def test_a_person_is_weighed_against_their_own_clauses() -> None:
    """A manager late on anomaly decisions as often as every manager is not singled out."""
    cook = StaffTotals(staff_id="S-1", orders=300)
    cook.deadlines["prepare"].add(297, 3, 0)
    managers = {}
    for m in ("M-1", "M-2", "M-3"):
        manager = StaffTotals(staff_id=m)
        manager.deadlines["anomaly_decision"].add(90, 10, 0)
        managers[m] = manager
    assert find(Totals(orders=300), Totals(), {}, {"S-1": cook, **managers}) == []


def test_price_anomalies_and_the_patrol_are_found() -> None:
    current = _totals(500, price=12, patrol=2)
    previous = _totals(500, price=4)
    found = {f.kind: f for f in find(current, previous, {}, {})}
    assert set(found) == {"price_anomalies_up", "patrol_found"}
    assert "R5.3.2" in found["price_anomalies_up"].message
    assert (
        "2 order(s)" in found["patrol_found"].message and "R6.3.2" in found["patrol_found"].message
    )
    assert find(_totals(500, price=5), _totals(500, price=4), {}, {}) == []


def test_percentiles_and_periods() -> None:
    values = [float(v) for v in range(1, 101)]
    hist = Histogram.of(values)
    assert hist.n == 100 and hist.seconds == sum(values)
    p90 = hist.percentile(0.9)
    assert p90 is not None and Histogram.bucket_of(p90) == Histogram.bucket_of(90.0)
    assert Histogram().percentile(0.5) is None
    period = st.Period(date(2025, 6, 1), date(2025, 6, 30))
    assert period.days == 30
    assert period.previous() == st.Period(date(2025, 5, 2), date(2025, 5, 31))
    assert st.period_of(date(2025, 6, 3), None) == st.Period(date(2025, 6, 3), date(2025, 6, 3))
    with pytest.raises(ValueError):
        st.Period(date(2025, 6, 2), date(2025, 6, 1))
    assert st.parse_day("yesterday") == st.parse_day("today") - timedelta(days=1)
    with pytest.raises(ValueError):
        st.parse_day("2025-02-30")
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(30, 10.0) < 1e-5 < poisson_tail(12, 10.0)


def test_a_report_path_is_not_needed_for_the_figures(tmp_path: Path) -> None:
    """`stats` renders without matplotlib: the report module is imported only by `report`."""
    done = subprocess.run(
        [sys.executable, "-c", "import starter.cli, sys; print('matplotlib' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(db.REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_day_late_everywhere_is_found_against_the_targets_not_the_day_before() -> None:
    """Every order missed a deadline and three passed the confirm clause's hard limit; the
    period before had no orders at all, so only the targets can say it."""
    day = _totals(5, breached=5)
    day.deadlines["confirm"].add(0, 2, 3)
    day.deadlines["prepare"].add(0, 5, 0)
    day.outcomes["cancelled"] = 3
    stores = {"SH-XH-001": day}
    found = {(f.kind, f.subject): f for f in against_targets(day, stores, Targets())}
    confirm = found[("clause_below_target", "confirm")]
    assert "0 of 5 deadlines met (0.0%), target 95.0%" in confirm.message
    assert "most at SH-XH-001 (5)" in confirm.message
    hard = found[("clause_past_hard_limit", "confirm")]
    assert "3 of 5 deadlines passed their hard limit" in hard.message
    assert ("clause_below_target", "prepare") in found
    assert ("cancellation_rate_above_target", "cancellation") in found
    # five deadlines are a small sample: said, not hidden
    assert confirm.severity == "notice" and "A small sample (5)" in confirm.message
    assert find(day, Totals(), stores, {}) == []  # against the empty day before: nothing


def test_targets_met_find_nothing_and_come_from_the_policy() -> None:
    good = _totals(100, breached=1)
    good.deadlines["confirm"].add(99, 1, 0)
    good.ratings[5] = 40
    assert against_targets(good, {"A": good}, Targets()) == []
    strict = Targets(on_time_by_clause={Clause.CONFIRM: 1.0})
    [finding] = against_targets(good, {"A": good}, strict)
    assert finding.severity == "warning" and "target 100.0%" in finding.message


async def test_the_most_frequent_causes_are_the_orders_own_improvements(demo_day: Day) -> None:
    """R3.3.3 counted from each order's summary, derived from what happened in it."""
    rows = await demo_day.pool.fetch("SELECT improvements FROM order_summaries")
    per_order = [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]
    lines = [line for order in per_order for line in order]
    counted = Counter(cause for order in per_order for cause in {x.split(":")[0] for x in order})
    causes = demo_day.stats["improvement_causes"]
    # A day may go without one (ten orders, real timing): then none is shown either.
    assert {c["cause"] for c in causes} <= set(counted) and bool(causes) == bool(counted)
    assert all(counted[c["cause"]] == c["n"] for c in causes)  # as on record
    assert [c["n"] for c in causes] == sorted(counted.values(), reverse=True)[:10]  # the top
    assert all(":" in line and not line.endswith("review staffing and hand-offs") for line in lines)


async def test_a_measure_on_a_finding_shows_in_the_next_periods_report(demo_day: Day) -> None:
    """R4.3.3 taken the day after the demo's days, on their confirm clause: the next period's
    statistics show it with the figure before (those days) and now (no orders yet)."""
    last = demo_day.period.end
    that_day = await st.collect(st.Period(last, last), pool=demo_day.pool)
    clause = next(iter(that_day["deadlines"]))
    admin = Person(staff_id="A-901", name="", role=Role.ADMIN, region="", departments=[])
    body = {
        "finding_kind": "clause_below_target",
        "subject": clause,
        "what": "两人接单",
        "owner": "M-001",
        "due": str(demo_day.period.end + timedelta(days=14)),
    }
    with pytest.raises(Failure, match="only managers and admins"):
        await measures.add(demo_day.pool, admin.model_copy(update={"role": Role.STAFF}), body)
    taken = await measures.add(demo_day.pool, admin, body)
    next_day = demo_day.period.end + timedelta(days=1)
    zone = settings().business.timezone
    await demo_day.pool.execute(
        "UPDATE measures SET created_at = $2 WHERE measure_id = $1",
        taken["measure_id"],
        datetime.combine(next_day, time(8), zone),
    )
    try:
        later = await st.collect(st.Period(next_day, next_day), pool=demo_day.pool)
        [shown] = [m for m in later["measures"] if m["measure_id"] == taken["measure_id"]]
        before = that_day["deadlines"][clause]["on_time_rate"]
        assert shown["figure"] == f"on_time:{clause}" and shown["after"] is None
        assert before is not None and shown["before"] == before
        assert shown["before_period"] == str(last)
        html = st.report.render(later)
        assert f"#{taken['measure_id']} 两人接单" in html and "Measures (R4.3.3)" in html
    finally:
        await demo_day.pool.execute("DELETE FROM measures")


async def test_refused_pushes_are_counted_and_a_bad_signature_is_a_finding(
    demo_day: Day,
) -> None:
    """R6.3 what the gateway refused for what it was, kept or not (`refused_push_counts`, as
    `starter.push_keeper` writes it), in a period of its own so the demo's days stay as they
    are."""
    day, before = date(2030, 1, 2), date(2030, 1, 1)
    rows = [
        (day, "order", "bad_signature", 40, 31),
        (day, "order_cancel", "bad_signature", 2, 0),
        (day, "order", "bad_parameter_format", 3, 0),
        (before, "order", "bad_signature", 1, 0),
    ]
    await demo_day.pool.executemany(
        "INSERT INTO refused_push_counts (day, route, cause, refused, not_kept) "
        "VALUES ($1, $2, $3, $4, $5)",
        rows,
    )
    try:
        stats = await st.collect(st.Period(day, day), pool=demo_day.pool)
    finally:
        await demo_day.pool.execute("DELETE FROM refused_push_counts WHERE day >= $1", before)
    assert stats["refused_pushes"] == {
        "refused": 45,
        "not_kept": 31,
        "previous": 1,
        "by_cause": {"bad_signature": 42, "bad_parameter_format": 3},
    }
    [finding] = [f for f in stats["findings"] if f["kind"] == "pushes_refused_for_signature"]
    assert "42 push(es)" in finding["message"] and "MEITUAN_APP_SECRET" in finding["message"]
    assert "pushes refused: 45 (the period before 1), bad_signature 42" in render_text(stats)
    assert "Pushes refused:\n 45, the period before 1" in render_html(stats)

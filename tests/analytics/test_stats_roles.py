"""The statistics by role (R4.3.1, migration 0021): the workers keep the rollup fresh on a
Schedule, as the service role, and `orderctl stats` as the read-only reporting role reads the
same figures without writing anything, through the masked views only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

import analytics as st
from activities.orders import OrderRecords
from analytics.refreshing import Refreshing
from analytics.rollup import may_refresh
from analytics.text import render
from schemas.contract import STATS_REFRESH_SCHEDULE_ID, TASK_QUEUE, Event
from schemas.order import Stage
from schemas.records import RecordEvent, RecordOrder
from schemas.reports import RefreshRound, StatsRefreshed
from schemas.timeline import TimelineEntry
from tests.db_fixtures import as_role, make_order
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from workers.registry import WORKFLOWS
from workers.schedules import ensure_stats_refresh_schedule

pytestmark = pytest.mark.timeout(120)

ZONE = ZoneInfo("Asia/Shanghai")
CREATED = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
PERIOD = st.Period(CREATED.astimezone(ZONE).date(), CREATED.astimezone(ZONE).date())
PHONE = "13812345678"


async def _finished_order(pool: asyncpg.Pool, rating: int) -> str:
    """An order on record, assigned, its customer's change in the log, rated and closed."""
    order = make_order(created_at=CREATED)
    records = OrderRecords(pool)
    await records.record_order(RecordOrder(order=order, received_at=CREATED, source="push"))
    steps = [
        (Event.ASSIGNED, Stage.ASSIGNED, {"assignee": "S-101"}),
        (Event.CUSTOMER_CHANGED, Stage.ASSIGNED, {"phone": PHONE, "address": "漕溪北路100号"}),
        (Event.DELIVERED, Stage.DELIVERED, {}),
        (Event.RATED, Stage.DELIVERED, {"score": rating}),
        (Stage.CLOSED.value, Stage.CLOSED, {}),
    ]
    for seq, (event, stage, details) in enumerate(steps, start=1):
        at = CREATED + timedelta(minutes=10 * seq)
        entry = TimelineEntry(seq=seq, at=at, event=event, stage=stage, details=details)
        await records.record_event(RecordEvent(order_id=order.order_id, entry=entry))
    return order.order_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def roles(demo_pool: asyncpg.Pool, pg_dsn: str) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    pools = {
        name: await as_role(demo_pool, pg_dsn, f"orderflow_{name}")
        for name in ("service", "reporting")
    }
    try:
        yield pools
    finally:
        for pool in pools.values():
            await pool.close()


def core(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in ("source", "measures")}


async def test_reporting_reads_the_rollup_the_workers_refresh(
    demo_pool: asyncpg.Pool, roles: dict[str, asyncpg.Pool]
) -> None:
    reporting, service = roles["reporting"], roles["service"]
    for rating in (5, 3):
        await _finished_order(demo_pool, rating)
    async with reporting.acquire() as conn:
        assert not await may_refresh(conn)
    async with service.acquire() as conn:
        assert await may_refresh(conn)
    # Before the workers' first refresh nothing marks finished orders: no figures to trust.
    with pytest.raises(st.StatsError, match="never refreshed; the workers' Schedule"):
        await st.collect(PERIOD, pool=reporting)

    done = await ActivityEnvironment().run(
        Refreshing(service).refresh_stats, RefreshRound()
    )  # the Schedule's activity, as the workers' role
    assert (done.orders, done.rebuilt) == (2, True)

    read = await st.collect(PERIOD, "store", pool=reporting)
    assert read["orders"]["count"] == 2 and read["satisfaction"]["rated"] == 2
    assert read["staff"] and read["staff"][0]["staff_id"] == "S-101"  # from the masked events
    assert read["source"]["refreshed_here"] is False
    assert read["source"]["orders_computed_live"] == 0
    refreshed_at = datetime.fromisoformat(read["source"]["rollup_refreshed_at"])
    assert abs(datetime.now(UTC) - refreshed_at) < timedelta(minutes=1)
    assert "rollup refreshed" in render(read) and "by the workers" in render(read)

    # An order finished since is read live, and counted the same as the owner counts it.
    await _finished_order(demo_pool, 1)
    live = await st.collect(PERIOD, "store", pool=reporting)
    assert live["orders"]["count"] == 3 and live["source"]["orders_computed_live"] == 1
    owner = await st.collect(PERIOD, "store", pool=demo_pool)
    assert owner["source"]["refreshed_here"] is True
    assert owner["source"]["refreshed_orders"] == 1
    assert core(owner) == core(live)
    skipped = await st.collect(PERIOD, pool=demo_pool, refreshing=False)  # --no-refresh
    assert skipped["source"]["refreshed_here"] is False
    # The regular reports collect as the workers' role, refreshing first.
    reports = await st.collect(PERIOD, "store", pool=roles["service"])
    assert reports["source"]["refreshed_here"] is True and core(reports) == core(owner)


async def test_reporting_sees_the_statistics_facts_and_nothing_personal(
    demo_pool: asyncpg.Pool, roles: dict[str, asyncpg.Pool]
) -> None:
    reporting = roles["reporting"]
    order_id = await _finished_order(demo_pool, 4)
    events = [
        dict(r)
        for r in await reporting.fetch(
            "SELECT * FROM order_events_masked WHERE order_id = $1 ORDER BY seq", order_id
        )
    ]
    assert [e["assignee"] for e in events][:1] == ["S-101"]
    assert events[3]["score"] == "4"
    text = json.dumps(events, ensure_ascii=False, default=str)
    assert PHONE not in text and "漕溪" not in text
    for statement in (
        "SELECT details FROM order_events",
        "SELECT outcome FROM anomalies",
        "SELECT report FROM patrol_reports",
        "DELETE FROM stats_orders",
        "UPDATE stats_state SET refreshed_at = now()",
        "INSERT INTO stats_dirty (day, store_code) VALUES ('2030-03-01', 'x')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reporting.execute(statement)
    assert await reporting.fetchval("SELECT count(*) FROM patrol_reports") == 0  # its columns
    assert await reporting.fetchval("SELECT count(*) FROM stats_dirty") >= 0


async def test_a_rollup_cut_in_another_zone_is_not_read_as_this_one(
    roles: dict[str, asyncpg.Pool],
) -> None:
    with pytest.raises(st.StatsError, match="cut in Asia/Shanghai, not UTC"):
        await st.collect(PERIOD, pool=roles["reporting"], zone=ZoneInfo("UTC"))


async def test_the_workers_schedule_refreshes_the_rollup(
    dev_server: WorkflowEnvironment, demo_pool: asyncpg.Pool, roles: dict[str, asyncpg.Pool]
) -> None:
    client = dev_server.client
    schedule = client.get_schedule_handle(STATS_REFRESH_SCHEDULE_ID)
    await ensure_stats_refresh_schedule(client, timedelta(minutes=10))
    await ensure_stats_refresh_schedule(client, timedelta(minutes=5))  # brought in line
    try:
        spec = (await schedule.describe()).schedule.spec
        assert [i.every for i in spec.intervals] == [timedelta(minutes=5)]
        await _finished_order(demo_pool, 2)  # pending until the round
        refresh = Refreshing(roles["service"]).refresh_stats
        async with Worker(client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=[refresh]):
            await schedule.trigger()
            run = client.get_workflow_handle(await _started(schedule))
            done = StatsRefreshed.model_validate(await asyncio.wait_for(run.result(), 60))
        assert done.orders >= 1 and not done.rebuilt
        assert await demo_pool.fetchval("SELECT count(*) FROM stats_pending") == 0
    finally:  # no round may start later on the module's shared server
        await schedule.delete()


async def _started(schedule: Any) -> str:
    """The run the trigger started (a Schedule suffixes its workflow id with the time)."""
    for _ in range(200):
        actions = (await schedule.describe()).info.recent_actions
        if actions:
            workflow_id: str = actions[-1].action.workflow_id
            return workflow_id
        await asyncio.sleep(0.05)
    raise AssertionError("the trigger started nothing")

"""The patrol (R2.1.2, R6.3.2): orders the pushes missed are found on the platform, started,
and reported; the schedule that runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.patrol import CALL_TRIES, Patrol
from infra.settings import settings
from localstack.simulator.engine import AUTO_CANCEL_REASON, Simulator
from meituan.client import PLATFORM_TZ
from meituan.codes import DealOpType, PlatformCancelReason
from schemas.order import OrderInput, Stage
from schemas.patrol import PatrolInput, PatrolReport
from tests.conftest import TASK_QUEUE
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.doubles import Business
from tests.orders import GOODS_STORE, Handle, at_stage, has_event, platform_order, until
from tests.real_stack import QUEUE, one, place
from tests.real_stack import platform as platform
from tests.real_stack import real_worker as real_worker
from tests.time_skipping import terminate_at_rest
from workers.registry import WORKFLOWS, build_activities
from workers.schedules import SCHEDULE_ID, ensure_patrol_schedule
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

STORE = "SH-PD-002"
QUIET_STORE = "SH-XH-001"
"""Not patrolled by the other tests, which settle the previous day of theirs at once: their
patrols run long after midnight, when no order can join that day any more."""
LIVE_QUEUE = "orders-live"


async def patrol(env: WorkflowEnvironment, name: str) -> PatrolReport:
    return await env.client.execute_workflow(
        PatrolWorkflow.run,
        PatrolInput(stores=[STORE]),
        id=f"patrol-test-{name}",
        task_queue=QUEUE,
    )


async def test_orders_the_pushes_missed_are_found_started_and_reported(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    sim: Simulator = platform.sim
    held = await place(own_env, sim, STORE)  # its push arrived
    await at_stage(held, Stage.IN_PROGRESS)
    dropped = [sim.create_order({"app_poi_code": STORE}, push=False) for _ in range(2)]

    report = await patrol(own_env, "first")

    assert sorted(report.found) == sorted(str(o.order_id) for o in dropped)
    assert report.missed_and_closed == []
    assert report.walked == 3
    for order in dropped:
        handle = own_env.client.get_workflow_handle_for(
            OrderWorkflow.run, f"order-{order.order_id}"
        )
        await at_stage(handle, Stage.IN_PROGRESS)
        source = await one(
            demo_pool, "SELECT source FROM orders WHERE order_id = $1", str(order.order_id)
        )
        assert source == "patrol"  # R4.3: orders found only by the patrol are counted
    assert (
        await one(
            demo_pool, "SELECT found FROM patrol_reports WHERE patrol_id = $1", report.patrol_id
        )
        == report.found
    )
    alerts = await one(
        demo_pool,
        "SELECT count(*) FROM notifications WHERE key LIKE $1 || ':%'",
        report.patrol_id,
    )
    assert alerts == 2  # the supervisor and the platform liaison: the push feed is failing

    again = await patrol(own_env, "second")
    assert again.found == [] and again.raced == []  # nothing is started twice


async def test_a_walk_gets_through_a_flaky_platform_in_one_attempt(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """Each call the walk makes fails once or twice first: it is tried again on the spot, so
    the walk is not started over (and the missed orders are found while still open)."""
    sim: Simulator = platform.sim
    dropped = [sim.create_order({"app_poi_code": STORE}, push=False) for _ in range(3)]
    sim.config.faults.fail_next.update(
        {
            "order/getOrderDaySeq": 1,
            "order/getOrderIdByDaySeq": 2,
            "order/getOrderDetail": 2,
            "order/viewstatus": 1,
        }
    )
    try:
        handle = await own_env.client.start_workflow(
            PatrolWorkflow.run,
            PatrolInput(stores=[STORE]),
            id="patrol-test-flaky",
            task_queue=QUEUE,
        )
        report = await handle.result()
    finally:
        sim.config.faults.fail_next.clear()
    assert set(report.found) == {str(o.order_id) for o in dropped}
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert attempts and set(attempts) == {1}
    assert any(c.error_code == 700 for c in sim.api_log)  # the platform did fail


async def test_an_order_whose_workflow_ended_unrecorded_is_not_started_again(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """Its workflow ended before it was on record, so the patrol sees it missing: one run per
    order all the same."""
    order = platform_order(order_id, GOODS_STORE, await env.get_current_time())
    first = await env.client.start_workflow(
        OrderWorkflow.run, OrderInput(order=order), id=f"order-{order_id}", task_queue=TASK_QUEUE
    )
    # At rest, waiting for the kitchen (its clock started, its status on record, no step in
    # flight): a workflow ended mid-step stops the test server's time for good
    # (tests/time_skipping.py).
    await until(first, lambda s: any(d.key == "prepare" for d in s.deadlines), "prepare")
    await terminate_at_rest(first, "ended before it was recorded")
    business.on_platform_only.append(order)  # not on record, as far as the patrol can see
    try:
        report = await env.client.execute_workflow(
            PatrolWorkflow.run,
            PatrolInput(stores=[GOODS_STORE]),
            id=f"patrol-once-{order_id}",
            task_queue=TASK_QUEUE,
        )
    finally:
        business.on_platform_only.remove(order)
    assert report.raced == [order_id] and report.found == []
    described = await env.client.get_workflow_handle(first.id).describe()
    assert described.run_id == first.result_run_id
    assert described.status is WorkflowExecutionStatus.TERMINATED


async def test_a_cancellation_the_platform_did_not_push_is_a_mismatch(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    sim: Simulator = platform.sim
    handle = await place(own_env, sim, STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    order_id = handle.id.removeprefix("order-")
    sim.user_cancel(int(order_id))

    report = await patrol(own_env, "mismatch")

    assert [(m.order_id, m.platform_status) for m in report.mismatches] == [(order_id, 9)]
    await handle.cancel()


async def test_the_patrol_schedule_is_created_once_and_follows_the_policy(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    await ensure_patrol_schedule(client, timedelta(minutes=10))
    await ensure_patrol_schedule(client, timedelta(minutes=4))
    described = await client.get_schedule_handle(SCHEDULE_ID).describe()
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=4)]
    action = described.schedule.action
    assert getattr(action, "workflow", None) == "PatrolWorkflow"


PATROL_STEPS = ("patrol_stores", "patrol_store", "record_patrol")


@dataclass
class Live:
    """The real activities on a real Temporal dev server, with the patrol's clock in the test's
    hands (`at`; None: the platform's time now). For patrols whose orders end on their own: on
    the time-skipping server an abandoned child that completes stops time skipping for the rest
    of the session (temporalio/sdk-java#2392)."""

    env: WorkflowEnvironment
    at: datetime | None = None

    def now(self) -> datetime:
        return self.at or datetime.now(PLATFORM_TZ)

    async def patrol(self, name: str, store: str = STORE) -> PatrolReport:
        return await self.env.client.execute_workflow(
            PatrolWorkflow.run,
            PatrolInput(stores=[store]),
            id=f"patrol-live-{name}",
            task_queue=LIVE_QUEUE,
        )

    def order(self, order_id: int) -> Handle:
        return self.env.client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order_id}")


@pytest_asyncio.fixture(scope="module")
async def live(
    dev_server: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> AsyncIterator[Live]:
    live = Live(dev_server)
    client = platform.client()
    walk = Patrol(demo_pool, client, clock=live.now)
    patrol_steps = [walk.patrol_stores, walk.patrol_store, walk.record_patrol]
    steps = [a for a in build_activities(demo_pool, client) if a.__name__ not in PATROL_STEPS]
    async with Worker(
        dev_server.client,
        task_queue=LIVE_QUEUE,
        workflows=WORKFLOWS,
        activities=[*steps, *patrol_steps],
    ):
        yield live
    await client.aclose()


async def test_an_order_the_platform_cancelled_before_anyone_saw_it_is_started_cancelled(
    live: Live, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """The order the 1,000-order fault run lost: its push never came, the platform cancelled it
    for want of a confirmation, and that cancellation's push was lost as well (no push reaches
    the gateway here). The patrol is then the only way to it, and it is closed: it is started
    cancelled, once, so it is on record like every other order (R2.1.2, R1.3)."""
    sim: Simulator = platform.sim
    lost = sim.create_order({"app_poi_code": STORE}, push=False)
    sim.user_cancel(
        lost.order_id,
        reason_code=PlatformCancelReason.NOT_CONFIRMED_IN_TIME,
        reason=AUTO_CANCEL_REASON,
        deal_op_type=DealOpType.SYSTEM,
    )
    order_id = str(lost.order_id)

    report = await live.patrol("cancelled-unseen")

    assert order_id in report.found and order_id in report.missed_and_closed
    assert (await live.order(lost.order_id).result()).stage is Stage.CANCELLED
    recorded = "SELECT source || ' ' || stage FROM orders WHERE order_id = $1"
    assert await one(demo_pool, recorded, order_id) == "patrol cancelled"
    again = await live.patrol("cancelled-unseen-again")
    assert order_id not in again.found + again.raced + again.missed_and_closed


async def test_a_number_the_platform_fails_to_resolve_is_asked_again_on_the_next_run(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """A lookup still failing after its tries costs its own number, not the walk: the walk
    ends in one attempt with what it found, and the next run resolves the number."""
    sim: Simulator = platform.sim
    first, second = (sim.create_order({"app_poi_code": STORE}, push=False) for _ in range(2))
    sim.config.faults.fail_next = {"order/getOrderIdByDaySeq": CALL_TRIES}  # first's number
    try:
        handle = await own_env.client.start_workflow(
            PatrolWorkflow.run,
            PatrolInput(stores=[STORE]),
            id="patrol-test-unresolved",
            task_queue=QUEUE,
        )
        report = await handle.result()
    finally:
        sim.config.faults.fail_next = {}
    assert report.found == [str(second.order_id)] and report.unresolved == 1
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert set(attempts) == {1}

    again = await patrol(own_env, "unresolved-again")

    assert again.found == [str(first.order_id)] and again.unresolved == 0
    for order in (first, second):  # at rest: ended mid-step, the test server stalls
        started = own_env.client.get_workflow_handle_for(
            OrderWorkflow.run, f"order-{order.order_id}"
        )
        await at_stage(started, Stage.IN_PROGRESS)


async def test_a_patrol_just_after_midnight_finds_the_previous_days_last_order(
    live: Live, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """An order of 23:58:30 whose push never came is on the previous day's sequence, which
    `getOrderDaySeq` no longer shows after midnight: the patrol walks that day too, from what
    it remembers on until the platform has no such order (806), and stops once the day is
    settled (R2.1.2)."""
    sim: Simulator = platform.sim
    midnight = datetime.combine(datetime.now(PLATFORM_TZ).date(), time(), PLATFORM_TZ)
    yesterday = (midnight - timedelta(days=1)).strftime("%Y%m%d")
    ctime = int((midnight - timedelta(seconds=90)).timestamp())
    late = sim.create_order({"app_poi_code": QUIET_STORE, "ctime": ctime}, push=False)
    assert (late.date, late.order.day_seq) == (yesterday, 1)

    live.at = midnight + timedelta(minutes=5)
    report = await live.patrol("midnight", QUIET_STORE)

    assert report.found == [str(late.order_id)]
    source = "SELECT source FROM orders WHERE order_id = $1"
    await has_event(live.order(late.order_id), "received")
    assert await one(demo_pool, source, str(late.order_id)) == "patrol"

    live.at = midnight + settings().patrol.previous_day + timedelta(minutes=1)
    await live.patrol("midnight-settles", QUIET_STORE)
    settled = "SELECT last_seq FROM patrol_days WHERE store_code = $1 AND platform_date = $2"
    assert await one(demo_pool, settled, QUIET_STORE, yesterday) == 1
    calls_before = len(sim.api_log)
    await live.patrol("midnight-settled", QUIET_STORE)
    assert not [
        c
        for c in sim.api_log[calls_before:]
        if c.name == "order/getOrderIdByDaySeq" and c.params["date_time"] == yesterday
    ]  # a settled day is not walked again

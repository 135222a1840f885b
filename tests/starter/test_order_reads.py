"""People's reads against what real orders put on record (R1.3): the customer's changes, a
manager's corrections and price adjustments, the assignee, the promise and the deadlines a person
works to, read back by starter.order_reads while the workflows run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import settings
from schemas.anomaly import Decide, Decision
from schemas.messages import ConfirmWithCustomer, CustomerChange, PlatformCancel
from schemas.order import CustomerChanges, OrderType, Stage
from schemas.policy import Clause
from schemas.reads import OrderFilter
from starter.db_cli import generate_slots
from starter.order_reads import list_orders, open_anomalies, order_scope, order_view
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import anomaly_open, at_stage, has_event, later, until
from tests.real_stack import Handle, one, place, reaches
from tests.real_stack import platform as platform
from tests.real_stack import real_worker as real_worker
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

CORRECTED = "13900001111"


async def _cancelled(handle: Handle) -> None:
    """Ended by the platform, as a running order ends in these tests."""
    await handle.signal(
        OrderWorkflow.platform_cancel, PlatformCancel(reason_code=1101, deal_op_type=1)
    )
    assert (await handle.result()).stage is Stage.CANCELLED


async def _decide(env: WorkflowEnvironment, order_id: str, decide: Decide) -> None:
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, f"anomaly-{order_id}-1")
    await child.execute_update(AnomalyWorkflow.decide, decide)


async def test_the_assignee_the_promise_a_change_and_the_deadlines_are_on_record(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-HS-100")
    order_id = handle.id.removeprefix("order-")
    # R2.4.1 the confirm deadline opens after the assignment's event: on record all the same.
    assigned = await until(
        handle,
        lambda s: any(d.clause is Clause.CONFIRM for d in s.deadlines),
        "the confirm deadline",
    )
    assert assigned.assignee is not None
    technician = assigned.assignee.staff_id
    confirm_open = "SELECT view @> $2::jsonb FROM orders WHERE order_id = $1"
    waiting = {"deadlines": [{"clause": Clause.CONFIRM.value, "state": "open"}]}
    assert await reaches(demo_pool, confirm_open, order_id, waiting, value=True)
    row = await demo_pool.fetchrow(
        "SELECT assignee, next_due_at FROM orders WHERE order_id = $1", order_id
    )
    confirm = next(d for d in assigned.deadlines if d.clause is Clause.CONFIRM)
    assert row is not None and (row["assignee"], row["next_due_at"]) == (technician, confirm.due_at)

    # R2.4.2 the customer's change is the order's data on record.
    changes = CustomerChanges(name="周(女士)", remarks="请先电话联系")
    await handle.signal(OrderWorkflow.customer_change, CustomerChange(changes=changes))
    name = "SELECT customer_name || '/' || remarks FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, name, order_id, value="周(女士)/请先电话联系")

    # R2.4.3 the promise, and the visit's re-confirmation deadline once booked.
    now = await own_env.get_current_time()
    async with demo_pool.acquire() as conn:
        await generate_slots(
            conn,
            "SH-HS-100",
            days_ahead=2,
            slot_minutes=120,
            day_start="00:00",
            day_end="23:59",
            first_day=now.astimezone(settings().business.timezone).date(),
        )
    promised = later(now, 180)
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by=technician, promised_delivery_at=promised),
    )
    await has_event(handle, "booked")
    reconfirm = {"deadlines": [{"clause": Clause.RECONFIRM_VISIT.value, "state": "open"}]}
    assert await reaches(demo_pool, confirm_open, order_id, reconfirm, value=True)
    shown = await order_view(demo_pool, order_id)
    assert shown is not None and shown.promise is not None
    assert (shown.promise.delivery_at, shown.promise.confirmed_by) == (promised, technician)
    assert shown.booking is not None and shown.assignee == assigned.assignee

    # The detail's timeline is the workflow's, from the event log.
    current = await until(handle, lambda s: s.stage is Stage.IN_PROGRESS, "in progress")
    events = "SELECT count(*) FROM order_events WHERE order_id = $1"
    assert await reaches(demo_pool, events, order_id, value=len(current.timeline))
    shown = await order_view(demo_pool, order_id)
    assert shown is not None and shown.stage is Stage.IN_PROGRESS
    assert [(e.seq, e.event, e.stage) for e in shown.timeline] == [
        (e.seq, e.event, e.stage) for e in current.timeline
    ]

    # Listings and the permission scope.
    async def listed(**f: Any) -> list[str]:
        return [r.order_id for r in await list_orders(demo_pool, OrderFilter(**f), 50)]

    assert order_id in await listed(assignee=technician, open_only=True)
    assert order_id in await listed(store_code="SH-HS-100", order_type=OrderType.SERVICE)
    assert order_id in await listed(stage=Stage.IN_PROGRESS, anomaly_open=False)
    assert order_id not in await listed(order_type=OrderType.GOODS)
    assert order_id not in await listed(assignee="nobody")
    assert order_id not in await listed(stage=Stage.CLOSED)
    scope = await order_scope(demo_pool, order_id)
    assert scope is not None
    assert (scope.assignee, scope.departments) == (technician, [assigned.assignee.department])

    await _cancelled(handle)
    row_of = (await list_orders(demo_pool, OrderFilter(store_code="SH-HS-100"), 50))[0]
    assert (row_of.order_id, row_of.status, row_of.stage) == (
        order_id,
        "completed",
        Stage.CANCELLED,
    )
    assert row_of.closed_at is not None and row_of.workflow_id == handle.id
    assert order_id not in await listed(open_only=True)


async def test_a_corrected_phone_is_on_record_and_the_anomaly_listed_while_open(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-XH-001", anomaly="bad_phone")
    order_id = handle.id.removeprefix("order-")
    paused = await anomaly_open(handle)
    opened = "SELECT count(*) FROM anomalies WHERE order_id = $1 AND closed_at IS NULL"
    assert await reaches(demo_pool, opened, order_id, value=1)
    inbox = await open_anomalies(demo_pool, "SH-XH-001", 50)
    mine = next(a for a in inbox if a.order_id == order_id)
    assert (mine.anomaly_id, mine.paused_stage) == (
        paused.anomalies[0].anomaly_id,
        paused.anomalies[0].paused_stage,
    )
    assert mine.due_at is not None and mine.due_at > mine.opened_at
    held = await list_orders(demo_pool, OrderFilter(anomaly_open=True, open_only=True), 50)
    assert order_id in [r.order_id for r in held]

    await _decide(
        own_env,
        order_id,
        Decide(
            by="M-001",
            decision=Decision.CORRECT_INFO,
            cause="the customer gave a wrong number",
            responsibility="customer",
            corrections=CustomerChanges(phone=CORRECTED),
        ),
    )
    phone = "SELECT customer_phone FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, phone, order_id, value=CORRECTED) == CORRECTED
    await at_stage(handle, Stage.IN_PROGRESS)
    prepare = {"deadlines": [{"clause": Clause.PREPARE.value, "state": "open"}]}
    waiting = "SELECT view @> $2::jsonb FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, waiting, order_id, prepare, value=True)
    assert order_id not in [a.order_id for a in await open_anomalies(demo_pool, None, 50)]
    await _cancelled(handle)


async def test_an_adjusted_price_is_on_record(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-XH-001", anomaly="wrong_price")
    order_id = handle.id.removeprefix("order-")
    await anomaly_open(handle)
    await _decide(
        own_env,
        order_id,
        Decide(
            by="M-001",
            decision=Decision.ADJUST_PRICE,
            cause="menu price not updated on the platform",
            responsibility="store",
            new_total=Decimal("50.00"),
        ),
    )
    total = "SELECT total FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, total, order_id, value=Decimal("50.00")) == Decimal("50.00")
    assert await one(demo_pool, "SELECT view->>'stage' FROM orders WHERE order_id = $1", order_id)
    await _cancelled(handle)

"""The lifecycle against the real activities: PostgreSQL as the system of record and the
platform simulator on the other end of every merchant call."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import settings
from localstack.simulator.engine import Simulator
from schemas.anomaly import Decide, Decision
from schemas.messages import (
    ConfirmWithCustomer,
    MarkDelivered,
    MarkReady,
    PlatformCancel,
    ReconfirmVisit,
    RecordRating,
)
from schemas.order import Stage
from starter.db_cli import generate_slots
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import anomaly_open, at_stage, has_event, later, status
from tests.real_stack import calls, one, place, reaches
from tests.real_stack import platform as platform
from tests.real_stack import real_worker as real_worker
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow


async def test_a_goods_order_is_on_record_at_every_step(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    sim: Simulator = platform.sim
    handle = await place(own_env, sim, "SH-XH-001")
    order_id = handle.id.removeprefix("order-")
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    stage = "SELECT stage FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, stage, order_id, value="in_progress") == "in_progress"
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by=current.assignee.staff_id))
    await at_stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered,
        MarkDelivered(by=current.assignee.staff_id, proof="photo://door"),
    )
    outcome = await handle.result()

    assert outcome.stage is Stage.CLOSED
    final = await handle.query(OrderWorkflow.status)
    assert await one(demo_pool, "SELECT stage FROM orders WHERE order_id = $1", order_id) == (
        "closed"
    )
    assert await one(
        demo_pool, "SELECT count(*) FROM order_events WHERE order_id = $1", order_id
    ) == len(final.timeline)  # R4.1.3 every event on record, once
    kinds = await one(
        demo_pool,
        "SELECT array_agg(DISTINCT kind ORDER BY kind) FROM stock_ledger WHERE order_id = $1",
        order_id,
    )
    assert kinds == ["commit", "reserve"]
    assert not await one(
        demo_pool, "SELECT bool_or(active) FROM assignments WHERE order_id = $1", order_id
    )
    assert (
        await one(demo_pool, "SELECT count(*) FROM order_summaries WHERE order_id = $1", order_id)
        == 1
    )
    assert calls(sim, handle) == [
        "poi_received",
        "confirm",
        "preparationMealComplete",
        "delivering",
        "arrived",
    ]
    assert sim.order(int(order_id)).status == 8  # completed on the platform


async def test_a_service_order_books_a_real_slot(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-HS-100")
    order_id = handle.id.removeprefix("order-")
    assigned = await at_stage(handle, Stage.ASSIGNED)
    assert assigned.assignee is not None
    technician = assigned.assignee.staff_id
    now = await own_env.get_current_time()
    # Bookable slots from the test server's "today", which runs ahead of the wall clock.
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
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by=technician, promised_delivery_at=later(now, 180)),
    )
    booked = await has_event(handle, "booked")
    assert booked.booking is not None
    assert booked.booking.slot_start >= later(now, 180) - timedelta(seconds=1)
    assert (
        await one(demo_pool, "SELECT count(*) FROM service_bookings WHERE order_id = $1", order_id)
        >= 1
    )
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by=technician))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=technician, proof="service report")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.execute_update(OrderWorkflow.record_rating, RecordRating(by="customer", score=5))
    assert (await handle.result()).stage is Stage.CLOSED
    assert await one(demo_pool, "SELECT stage FROM orders WHERE order_id = $1", order_id) == (
        "closed"
    )


async def test_a_wrong_price_is_found_by_the_real_review_and_decided(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-XH-001", anomaly="wrong_price")
    order_id = handle.id.removeprefix("order-")
    paused = await anomaly_open(handle)
    assert paused.anomalies[0].kind.value == "price"
    child = own_env.client.get_workflow_handle_for(AnomalyWorkflow.run, f"anomaly-{order_id}-1")
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.ADJUST_PRICE,
            cause="menu price not updated on the platform",
            responsibility="store",
            new_total=Decimal("50.00"),
        ),
    )
    await at_stage(handle, Stage.IN_PROGRESS)
    outcome = await one(
        demo_pool, "SELECT outcome->>'decision' FROM anomalies WHERE order_id = $1", order_id
    )
    assert outcome == "adjust_price"  # R5.2.4 recorded for lookup and statistics
    await handle.signal(
        OrderWorkflow.platform_cancel, PlatformCancel(reason_code=1101, deal_op_type=1)
    )
    assert (await handle.result()).stage is Stage.CANCELLED


async def test_a_platform_cancellation_releases_every_claim(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    handle = await place(own_env, platform.sim, "SH-XH-001")
    order_id = handle.id.removeprefix("order-")
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    load_before = await one(
        demo_pool,
        "SELECT count(*) FROM assignments WHERE staff_id = $1 AND active",
        current.assignee.staff_id,
    )
    await handle.signal(
        OrderWorkflow.platform_cancel,
        PlatformCancel(reason_code=1101, reason="用户取消", deal_op_type=1),
    )
    assert (await handle.result()).stage is Stage.CANCELLED

    assert (
        await one(
            demo_pool,
            "SELECT count(*) FROM assignments WHERE staff_id = $1 AND active",
            current.assignee.staff_id,
        )
        == load_before - 1
    )
    ledger = await one(
        demo_pool,
        "SELECT array_agg(DISTINCT kind ORDER BY kind) FROM stock_ledger WHERE order_id = $1",
        order_id,
    )
    assert ledger == ["release", "reserve"]
    assert (
        await one(
            demo_pool,
            "SELECT count(*) FROM credit_events WHERE order_id = $1 AND kind = 'cancellation'",
            order_id,
        )
        == 1
    )
    assert "cancel" not in calls(platform.sim, handle)  # the platform cancelled it itself
    assert (await status(handle)).stage is Stage.CANCELLED

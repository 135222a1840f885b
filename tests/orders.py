"""Building orders and driving them through a running workflow in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.messages import ConfirmWithCustomer, CustomerReminder, MarkDelivered, MarkReady
from schemas.order import Customer, OrderInput, OrderItem, PlatformOrder, Stage
from schemas.status import OrderStatus
from tests.conftest import TASK_QUEUE
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

GOODS_STORE, COURIER_STORE, SERVICE_STORE = "SH-XH-001", "SH-PD-002", "SH-HS-100"

Handle = WorkflowHandle[OrderWorkflow, Any]


def platform_order(order_id: str, store: str, created_at: datetime) -> PlatformOrder:
    if store == SERVICE_STORE:
        items = [
            OrderItem(sku="S-CLN2", name="日常保洁(2小时)", quantity=1, unit_price=Decimal(120))
        ]
    else:
        items = [
            OrderItem(sku="G-HSR", name="红烧肉", quantity=1, unit_price=Decimal(48), box_num=1),
            OrderItem(sku="G-CKW", name="可乐(330ml)", quantity=2, unit_price=Decimal(5)),
        ]
    return PlatformOrder(
        order_id=order_id,
        view_id=f"V{order_id}",
        store_code=store,
        customer=Customer(
            name="陆(先生)",
            phone="13812345678_1234",
            address="上海市徐汇区漕溪北路100号",
            latitude=31.19,
            longitude=121.43,
        ),
        items=items,
        total=sum((i.unit_price * i.quantity for i in items), Decimal(0)),
        created_at=created_at,
    )


async def start(
    env: WorkflowEnvironment, order_id: str, store: str = GOODS_STORE, age: timedelta = timedelta()
) -> Handle:
    now = await env.get_current_time()
    order = platform_order(order_id, store, now - age)
    return await env.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order),
        id=f"order-{order_id}",
        task_queue=TASK_QUEUE,
        search_attributes=sa.at_start(store),  # as the gateway starts it
    )


async def status(handle: Handle) -> OrderStatus:
    return await handle.query(OrderWorkflow.status)


async def until(
    handle: Handle, check: Callable[[OrderStatus], bool], what: str, patience: float = 15
) -> OrderStatus:
    """Poll the status query until `check` holds; time does not skip while polling."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        current = await status(handle)
        if check(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last status: {current}")
        await asyncio.sleep(0.05)


async def at_stage(handle: Handle, stage: Stage, patience: float = 15) -> OrderStatus:
    return await until(handle, lambda s: s.stage is stage, f"stage {stage.value}", patience)


async def has_event(handle: Handle, event: str, patience: float = 15) -> OrderStatus:
    return await until(
        handle, lambda s: any(e.event == event for e in s.timeline), f"event {event}", patience
    )


def later(now: datetime, minutes: float) -> datetime:
    return now + timedelta(minutes=minutes)


async def start_by_reminder(env: WorkflowEnvironment, order_id: str) -> Handle:
    """A goods order started by its reminder (signal-with-start): the order's own push was lost
    and the customer's reminder came first."""
    order = platform_order(order_id, GOODS_STORE, await env.get_current_time())
    return await env.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order),
        id=f"order-{order_id}",
        task_queue=TASK_QUEUE,
        start_signal="customer_reminder",
        start_signal_args=[CustomerReminder(remind_id="RM-0", text="到哪了")],
    )


async def deliver_self(handle: Handle, staff: str = "S-101") -> None:
    """A goods order in progress made ready and delivered by the store's own rider."""
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by=staff))
    await at_stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=staff, proof="photo")
    )


async def confirm_visit(
    env: WorkflowEnvironment, handle: Handle, in_minutes: float, staff: str = "T-301"
) -> None:
    """An assigned service order confirmed with the customer for a visit `in_minutes` away."""
    await at_stage(handle, Stage.ASSIGNED)
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by=staff, promised_delivery_at=later(now, in_minutes)),
    )


async def anomaly_open(handle: Handle, patience: float = 15) -> OrderStatus:
    """On hold, with its anomaly's child started (the status shows an anomaly only then)."""
    return await until(
        handle,
        lambda s: (
            s.stage is Stage.ON_HOLD and bool(s.anomalies) and s.anomalies[-1].closed_at is None
        ),
        "an open anomaly",
        patience,
    )


async def eventually(check: Callable[[], bool], what: str, patience: float = 15) -> None:
    """Activities run after the status changes: poll the doubles until `check` holds."""
    deadline = asyncio.get_running_loop().time() + patience
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def task_waiting(handle: WorkflowHandle[Any, Any]) -> None:
    """Until the workflow has a task waiting for a worker: what was sent to it has reached the
    server (a fixed pause is too short on a busy machine)."""
    for _ in range(200):
        if (await handle.describe()).raw_description.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("nothing reached the workflow within 10 s")

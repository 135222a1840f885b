"""The whole path on a real Temporal dev server: the simulator pushes, the gateway starts the
workflow, the worker's activities call back on the simulator, and the platform ends up with
the order completed — for a goods order and a service order. And the platform's auto-cancel
of an order the store never confirmed (R6.1) ends the workflow cancelled, compensated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle

from localstack.devstack import Stack, StackOptions, dev_stack
from localstack.simulator import SimConfig
from schemas.messages import ConfirmWithCustomer, MarkDelivered, MarkReady, ReconfirmVisit
from schemas.order import Stage
from schemas.status import OrderStatus
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from workflows.order import OrderWorkflow

AUTO_CANCEL_S = 6.0
POLICY = """
patrol_minutes = 60
[goods]
feedback_window_minutes = 0.02
[service]
feedback_window_minutes = 0.02
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("e2e")
    policy = folder / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    options = StackOptions(
        data_dir=folder / "temporal",
        database=f"t_e2e_{uuid.uuid4().hex[:8]}",
        server_dsn=pg_dsn,
        fresh=True,
        temporal_port=None,
        ui_port=None,
        gateway_port=None,
        simulator_port=None,
        sim_config=SimConfig(confirm_timeout_s=AUTO_CANCEL_S, courier_step_s=0.2, seed=5),
        policy=policy,
    )
    async with dev_stack(options) as running:
        yield running


async def arrived(client: Client, order_id: int) -> WorkflowHandle[OrderWorkflow, object]:
    """The push reaches the workflow through the gateway."""
    handle = client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order_id}")
    for _ in range(200):
        try:
            await handle.describe()
            return handle
        except Exception:  # not started yet: the push is on its way
            await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} never reached Temporal")


async def until(
    handle: WorkflowHandle[OrderWorkflow, object], check: Callable[[OrderStatus], bool]
) -> OrderStatus:
    for _ in range(400):
        current = await handle.query(OrderWorkflow.status)
        if check(current):
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"last status: {current}")


async def test_a_goods_order_from_push_to_completed_on_the_platform(stack: Stack) -> None:
    placed = stack.sim.sim.create_order({"app_poi_code": "SH-XH-001"})  # pushed
    handle = await arrived(stack.client, placed.order_id)
    current = await until(handle, lambda s: s.stage is Stage.IN_PROGRESS)
    assert current.assignee is not None
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by=current.assignee.staff_id))
    await until(handle, lambda s: s.stage is Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered,
        MarkDelivered(by=current.assignee.staff_id, proof="photo://door"),
    )
    outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome.stage is Stage.CLOSED
    platform_side = stack.sim.sim.order(placed.order_id)
    assert [c.name.removeprefix("order/") for c in platform_side.calls if c.ok] == [
        "poi_received",
        "confirm",
        "preparationMealComplete",
        "delivering",
        "arrived",
    ]
    assert platform_side.status == 8  # completed


async def test_a_service_order_from_push_to_completed_on_the_platform(stack: Stack) -> None:
    placed = stack.sim.sim.create_order({"app_poi_code": "SH-HS-100"})
    handle = await arrived(stack.client, placed.order_id)
    assigned = await until(handle, lambda s: s.stage is Stage.ASSIGNED)
    assert assigned.assignee is not None
    person = assigned.assignee.staff_id
    slot = await stack.db.pool.fetchval(
        "SELECT min(starts_at) FROM service_slots WHERE starts_at > now() + interval '1 hour'"
    )
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by=person, promised_delivery_at=slot),
    )
    booked = await until(handle, lambda s: s.booking is not None)
    assert booked.booking is not None and booked.booking.slot_start >= slot
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by=person))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=person, proof="service report")
    )
    outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome.stage is Stage.CLOSED
    assert [
        c.name.removeprefix("order/") for c in stack.sim.sim.order(placed.order_id).calls if c.ok
    ] == ["poi_received", "confirm", "arrived"]
    assert stack.sim.sim.order(placed.order_id).status == 8  # completed on the platform: R3.4.1


async def test_an_order_the_store_never_confirmed_is_auto_cancelled_and_compensated(
    stack: Stack,
) -> None:
    """R6.1: held on an anomaly past the platform's deadline, the platform cancels it (1001)."""
    placed = stack.sim.sim.create_order({"app_poi_code": "SH-XH-001"}, anomaly="wrong_price")
    handle = await arrived(stack.client, placed.order_id)
    await until(handle, lambda s: s.stage is Stage.ON_HOLD and bool(s.anomalies))
    outcome = await asyncio.wait_for(handle.result(), AUTO_CANCEL_S + 30)
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 1001
    final = await handle.query(OrderWorkflow.status)
    assert final.anomalies[0].decision == "cancel" and final.anomalies[0].closed_at is not None
    assert "cancel" not in [
        c.name.removeprefix("order/") for c in stack.sim.sim.order(placed.order_id).calls
    ]
    anomaly = await stack.db.pool.fetchval(
        "SELECT outcome->>'cause' FROM anomalies WHERE order_id = $1", str(placed.order_id)
    )
    assert anomaly == "the order ended before a decision"
    assert (
        await stack.db.pool.fetchval(
            "SELECT stage FROM orders WHERE order_id = $1", str(placed.order_id)
        )
        == "cancelled"
    )

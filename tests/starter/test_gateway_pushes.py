"""The pushes beyond an order's own: the confirmed- and completed-order pushes reconcile the order,
the privacy-number downgrade and refund steps no workflow takes are kept for a person, and a
push for an order that has ended (even once Temporal's retention deleted its workflow) never
starts it again: a refund request for it is a case for the manager (R4.2, R6.3.2).

A real Temporal dev server without a worker, the simulator and PostgreSQL with the demo
company; the workflow histories and the simulator's call log show what the gateway did.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest_asyncio
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.orders import OrderRecords
from infra import database as db
from infra.temporal import RETENTION
from localstack.devstack import ensure_retention
from localstack.simulator import RunningSimulator, SimConfig, SimOrder, serve_simulator
from meituan.intake import to_platform_order
from meituan.models import OrderRefPush, PartialRefundPush, PrivacyDowngradePush, RefundPush
from meituan.pushes import PushKind
from schemas.contract import order_workflow_id
from schemas.messages import PlatformRefund, RefundNotice
from schemas.records import RecordOrder
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.starter.test_gateway import (
    gateway_client,
    history,
    is_ok,
    push_order,
    rejected,
    send,
    signed,
)
from workflows import search_attributes as sa


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=13)
    async with serve_simulator(config) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(
    dev_server: WorkflowEnvironment, running: RunningSimulator, demo_pool: asyncpg.Pool
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(dev_server, running, demo_pool) as client:
        yield client


def new_order(running: RunningSimulator) -> SimOrder:
    return running.sim.create_order({"app_poi_code": "SH-XH-001"}, push=False)


def calls(order: SimOrder) -> list[str]:
    return [call.name for call in order.calls]


async def exists(client: Client, order_id: int) -> bool:
    try:
        await client.get_workflow_handle(f"order-{order_id}").describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def ended(pool: asyncpg.Pool, sim_order: SimOrder, stage: str) -> None:
    """An order that ran and ended: on record, with its last stage."""
    order = to_platform_order(sim_order.current())
    now = datetime.now(UTC)
    await OrderRecords(pool).record_order(RecordOrder(order=order, received_at=now, source="push"))
    await pool.execute("UPDATE orders SET stage = $2 WHERE order_id = $1", order.order_id, stage)


async def ended_and_deleted(
    client: Client, pool: asyncpg.Pool, sim_order: SimOrder, stage: str = "closed"
) -> None:
    """An order that ended, its closed workflow deleted as the namespace's retention does."""
    await ended(pool, sim_order, stage)
    handle = await client.start_workflow(
        "OrderWorkflow", id=f"order-{sim_order.order_id}", task_queue="nobody-polls"
    )
    await handle.terminate("ended")
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id),
        )
    )
    for _ in range(600):  # the dev server deletes after about half a minute
        if not await exists(client, sim_order.order_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow was not deleted")


async def test_a_refund_for_an_ended_order_is_a_case_for_its_manager(
    http: httpx.AsyncClient,
    running: RunningSimulator,
    dev_server: WorkflowEnvironment,
    demo_pool: asyncpg.Pool,
) -> None:
    sim_order = new_order(running)
    oid = sim_order.order_id
    await ended_and_deleted(dev_server.client, demo_pool, sim_order)
    refund = RefundPush(order_id=oid, refund_id=501, notify_type="apply", reason="没收到")

    for _ in range(2):  # the platform retries: one case all the same
        response = await send(http, PushKind.REFUND, signed(PushKind.REFUND, refund), "GET")
        assert is_ok(response), response.text

    assert not await exists(dev_server.client, oid)  # no run started
    assert calls(sim_order) == []  # no platform endpoint called
    [case] = await demo_pool.fetch(
        "SELECT kind, text, owner, state, ref FROM feedback WHERE order_id = $1", str(oid)
    )
    assert dict(case) == {
        "kind": "refund",
        "text": "没收到",
        "owner": "M-001",
        "state": "awaiting_response",
        "ref": "501",
    }
    [request] = await demo_pool.fetch(
        "SELECT state, partial FROM refunds WHERE order_id = $1", str(oid)
    )
    assert (request["state"], request["partial"]) == ("awaiting_decision", False)
    [notice] = await demo_pool.fetch(
        "SELECT audience, recipient FROM notifications WHERE order_id = $1", str(oid)
    )
    assert (notice["audience"], notice["recipient"]) == ("manager", "M-001")


async def test_an_ended_order_is_not_started_again_by_its_own_push(
    http: httpx.AsyncClient,
    running: RunningSimulator,
    dev_server: WorkflowEnvironment,
    demo_pool: asyncpg.Pool,
) -> None:
    """As after the retention: on record, unknown to Temporal."""
    sim_order = new_order(running)
    await ended(demo_pool, sim_order, stage="cancelled")
    assert is_ok(await push_order(http, sim_order.current()))
    confirmed = OrderRefPush(order_id=sim_order.order_id)
    response = await send(
        http, PushKind.ORDER_CONFIRMED, signed(PushKind.ORDER_CONFIRMED, confirmed)
    )
    assert is_ok(response), response.text
    assert not await exists(dev_server.client, sim_order.order_id)
    assert calls(sim_order) == []


async def test_a_confirmed_push_starts_an_order_we_never_had(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    """Its order push was lost: the confirmed push carries only the id, the rest is fetched."""
    lost = new_order(running)
    for kind in (PushKind.ORDER_CONFIRMED, PushKind.ORDER_COMPLETED):
        push = OrderRefPush(order_id=lost.order_id)
        response = await send(http, kind, signed(kind, push))
        assert is_ok(response), response.text
    inp, signals = await history(dev_server.client, lost.order_id)
    assert inp.order.order_id == str(lost.order_id) and signals == []
    assert inp.order.total == lost.order.total
    assert calls(lost) == ["order/getOrderDetail"]  # once: the second push found the run

    known = new_order(running)
    assert is_ok(await push_order(http, known.current()))
    push = OrderRefPush(order_id=known.order_id)
    response = await send(http, PushKind.ORDER_COMPLETED, signed(PushKind.ORDER_COMPLETED, push))
    assert is_ok(response), response.text
    assert calls(known) == []


async def test_refund_steps_as_the_platform_names_them(
    http: httpx.AsyncClient, running: RunningSimulator, dev_server: WorkflowEnvironment
) -> None:
    sim_order = new_order(running)
    oid = sim_order.order_id
    assert is_ok(await push_order(http, sim_order.current()))
    part = PartialRefundPush(
        order_id=oid, refund_id=61, notify_type="part", reason="少送", money=Decimal("5.5")
    )
    returned = RefundPush(order_id=oid, refund_id=62, status=1, service_type=2, reason="退货")
    for kind, push in ((PushKind.PARTIAL_REFUND, part), (PushKind.REFUND, returned)):
        response = await send(http, kind, signed(kind, push), "GET")
        assert is_ok(response), response.text
    _, signals = await history(dev_server.client, oid)
    assert signals == [
        (
            "platform_refund",
            PlatformRefund(
                refund_id="61",
                notify_type=RefundNotice.APPLY,
                reason="少送",
                partial=True,
                amount=Decimal("5.5"),
            ),
        ),
        (
            "platform_refund",
            PlatformRefund(refund_id="62", notify_type=RefundNotice.APPLY, reason="退货"),
        ),
    ]


async def test_what_no_workflow_takes_is_kept_for_a_person(
    http: httpx.AsyncClient,
    running: RunningSimulator,
    dev_server: WorkflowEnvironment,
    demo_pool: asyncpg.Pool,
) -> None:
    sim_order = new_order(running)
    oid = sim_order.order_id
    assert is_ok(await push_order(http, sim_order.current()))
    unknown = RefundPush(order_id=oid, refund_id=71, notify_type="applyAgain", reason="?")
    review = RefundPush(order_id=oid, refund_id=72, status=10, service_type=2)  # first review
    downgrade = PrivacyDowngradePush(app_poi_code="SH-XH-001")
    for kind, push in (
        (PushKind.REFUND, unknown),
        (PushKind.REFUND, review),
        (PushKind.PRIVACY_DOWNGRADE, downgrade),
    ):
        response = await send(http, kind, signed(kind, push))
        assert is_ok(response), response.text
    _, signals = await history(dev_server.client, oid)
    assert signals == []
    [first] = await rejected(demo_pool, "refund_id=71")
    assert "'applyAgain'" in first["reason"] and "for a person" in first["reason"]
    [second] = await rejected(demo_pool, "refund_id=72")
    assert "status 10" in second["reason"]
    [third] = await rejected(demo_pool, "app_poi_code=SH-XH-001")
    assert third["route"] == "/meituan/push/privacy-downgrade"
    assert "privacy numbers downgraded" in third["reason"]


async def test_the_local_stack_keeps_closed_orders_for_the_set_retention(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    assert await ensure_retention(client) is True  # the dev server's own default differs
    assert await ensure_retention(client) is False
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    assert described.config.workflow_execution_retention_ttl.ToTimedelta() == RETENTION


async def test_a_person_sees_what_was_kept(
    http: httpx.AsyncClient, demo_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    downgrade = PrivacyDowngradePush(app_poi_code="SH-PD-002")
    kind = PushKind.PRIVACY_DOWNGRADE
    assert is_ok(await send(http, kind, signed(kind, downgrade)))
    database = await demo_pool.fetchval("SELECT current_database()")
    env = {**os.environ, "DATABASE_URL": db.with_database(pg_dsn, database)}
    command = [sys.executable, "-m", "starter.cli", "pushes"]
    listed = await asyncio.to_thread(
        subprocess.run, [*command, "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    kept = json.loads(listed.stdout)
    assert kept[0]["route"] == "/meituan/push/privacy-downgrade"  # the newest first
    assert "privacy numbers downgraded" in kept[0]["reason"]
    text = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=60
    )
    assert text.returncode == 0 and "privacy-downgrade" in text.stdout
    assert "SH-PD-002" not in text.stdout  # the list names orders, not what pushes carry


async def test_a_database_that_is_down_does_not_hold_an_order_up(
    running: RunningSimulator, dev_server: WorkflowEnvironment, demo_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    database = await demo_pool.fetchval("SELECT current_database()")
    gone = await db.connect(db.with_database(pg_dsn, database), max_size=1)
    await gone.close()  # as good as a database that went down
    sim_order = new_order(running)
    async with gateway_client(dev_server, running, gone) as http:
        assert is_ok(await push_order(http, sim_order.current()))
    assert await exists(dev_server.client, sim_order.order_id)
    # Started with what the push says; the store's type and region were not waited for.
    handle = dev_server.client.get_workflow_handle(order_workflow_id(sim_order.order_id))
    found_by = (await handle.describe()).typed_search_attributes
    assert found_by.get(sa.STORE_CODE) == sim_order.current().app_poi_code
    assert found_by.get(sa.ORDER_TYPE) is None

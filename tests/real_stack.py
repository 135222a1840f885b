"""A worker with the real activities: PostgreSQL with the demo company, and the platform
simulator behind every merchant call. Imported by the tests that run the whole stack."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from localstack.simulator import SimConfig, serve_simulator
from localstack.simulator.engine import Simulator
from meituan.intake import to_platform_order
from schemas.order import OrderInput
from tests import jitter
from workers.registry import WORKFLOWS, build_activities
from workflows.order import OrderWorkflow

QUEUE = "orders-db"
Handle = WorkflowHandle[OrderWorkflow, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform() -> AsyncIterator[Any]:
    async with serve_simulator(
        SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=11)
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def db_worker(
    env: WorkflowEnvironment, pool: asyncpg.Pool, platform: Any
) -> AsyncIterator[Worker]:
    """Every workflow and activity on `env`, against `pool` and the simulator's merchant API."""
    client = platform.client()
    try:
        async with Worker(
            env.client,
            task_queue=QUEUE,
            workflows=WORKFLOWS,
            activities=build_activities(pool, client),
            interceptors=jitter.interceptors(),
        ) as worker:
            yield worker
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def real_worker(
    own_env: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> AsyncIterator[Worker]:
    async with db_worker(own_env, demo_pool, platform) as worker:
        yield worker  # orders left running go with the module's own server (`own_env`)


async def place(
    env: WorkflowEnvironment, sim: Simulator, store: str, anomaly: str | None = None
) -> Handle:
    """An order as the platform holds it, started as its push would start it."""
    sim_order = sim.create_order({"app_poi_code": store}, push=False, anomaly=anomaly)
    order = to_platform_order(sim_order.order).model_copy(
        update={"created_at": await env.get_current_time()}
    )
    return await env.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order),
        id=f"order-{order.order_id}",
        task_queue=QUEUE,
    )


def calls(sim: Simulator, handle: Handle) -> list[str]:
    order = sim.order(int(handle.id.removeprefix("order-")))
    return [c.name.removeprefix("order/") for c in order.calls if c.ok]


async def one(pool: asyncpg.Pool, sql: str, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def reaches(
    pool: asyncpg.Pool, sql: str, *args: Any, value: Any, patience: float = 15
) -> Any:
    """`one(...)` once it equals `value`: the record follows the workflow a step behind."""
    deadline = asyncio.get_running_loop().time() + patience
    while (found := await one(pool, sql, *args)) != value:
        if asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)
    return found

"""The worker as the long-lived process it is in production: SIGTERM lets the activity in
flight finish, then the process exits 0; one process per role."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState

from localstack.devstack import (
    TemporalServer,
    connect_temporal,
    database,
    simulator,
    temporal_dev_server,
)
from localstack.simulator import Faults, RunningSimulator, SimConfig
from meituan.intake import to_platform_order
from schemas.contract import TASK_QUEUE
from schemas.order import OrderInput, Stage
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import at_stage
from tests.steps_run import local_steps
from workflows.order import OrderWorkflow

SLOW_PLATFORM_S = 4.0


@contextlib.asynccontextmanager
async def stack(
    tmp_path: Path, pg_dsn: str, config: SimConfig
) -> AsyncIterator[tuple[TemporalServer, RunningSimulator, dict[str, str]]]:
    """A dev server, a database and the simulator, with the environment a worker process is
    given for them (no ORDERFLOW_ setting of this machine leaks in)."""
    async with (
        temporal_dev_server(tmp_path / "temporal", fresh=True, port=None, headless=True) as server,
        database(f"t_worker_{uuid.uuid4().hex[:8]}", server_dsn=pg_dsn, fresh=True) as db,
        simulator(config, port=None) as platform,
    ):
        yield (
            server,
            platform,
            {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
            | {
                "ORDERFLOW_DEV": "1",  # the local stack: the simulator's secret
                "TEMPORAL_ADDRESS": server.address,
                "DATABASE_URL": db.dsn,
                "MEITUAN_BASE_URL": platform.api_base_url,
            },
        )


async def test_sigterm_finishes_the_activity_in_flight_and_exits_0(
    tmp_path: Path, pg_dsn: str
) -> None:
    slow = SimConfig(
        push_base=None,
        confirm_timeout_s=None,
        courier_step_s=None,
        faults=Faults(api_latency_s=SLOW_PLATFORM_S),
    )
    async with stack(tmp_path, pg_dsn, slow) as (server, platform, environ):
        environ["ORDERFLOW_SHUTDOWN_SECONDS"] = "20"
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.main", env=environ, stdout=asyncio.subprocess.DEVNULL
        )
        try:
            client = await connect_temporal(server.address)
            placed = platform.sim.create_order({"app_poi_code": "SH-XH-001"}, push=False)
            handle = await client.start_workflow(
                OrderWorkflow.run,
                OrderInput(order=to_platform_order(placed.order)),
                id=f"order-{placed.order_id}",
                task_queue=TASK_QUEUE,
            )
            in_flight = ""
            for _ in range(300):  # until the worker runs the (slow) platform call
                pending = (await handle.describe()).raw_description.pending_activities
                started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                in_flight = next((p.activity_id for p in pending if p.state == started), "")
                if in_flight:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no activity started")
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 30) == 0
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        events = [e async for e in handle.fetch_history_events()]
        scheduled = next(
            e.event_id
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_id == in_flight
        )
        outcomes = [
            e.event_type
            for e in events
            if e.activity_task_completed_event_attributes.scheduled_event_id == scheduled
            or e.activity_task_failed_event_attributes.scheduled_event_id == scheduled
            or e.activity_task_timed_out_event_attributes.scheduled_event_id == scheduled
        ]
        assert outcomes == [EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]


async def test_each_role_in_its_own_process_runs_an_order(tmp_path: Path, pg_dsn: str) -> None:
    """Workflows, database activities and merchant API calls each in a worker process of
    their own, the calls on their own rate-limited queue. The order's database steps are
    local activities of the workflows' worker (LOCAL_WRITES); its merchant API calls run on
    the platform's."""
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None)
    async with stack(tmp_path, pg_dsn, config) as (server, platform, environ):
        base = environ | {
            "ORDERFLOW_PLATFORM_TASK_QUEUE": "orders-platform",
            "ORDERFLOW_PLATFORM_RATE": "20",
            "ORDERFLOW_SHUTDOWN_SECONDS": "5",
        }
        workers = {
            role: await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.main",
                env=base | {"ORDERFLOW_WORKER_ROLES": role},
                stdout=asyncio.subprocess.DEVNULL,
            )
            for role in ("workflows", "activities", "platform")
        }
        try:
            client = await connect_temporal(server.address)
            placed = platform.sim.create_order({"app_poi_code": "SH-XH-001"}, push=False)
            handle = await client.start_workflow(
                OrderWorkflow.run,
                OrderInput(order=to_platform_order(placed.order)),
                id=f"order-{placed.order_id}",
                task_queue=TASK_QUEUE,
            )
            await at_stage(handle, Stage.IN_PROGRESS, patience=60)
        finally:
            for process in workers.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(p.wait(), 30) for p in workers.values()]
        assert codes == [0, 0, 0]
        events = [e async for e in handle.fetch_history_events()]
    queue_of = {
        e.event_id: (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.task_queue.name,
        )
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    ran_by = {
        queue_of[e.activity_task_started_event_attributes.scheduled_event_id]: int(
            e.activity_task_started_event_attributes.identity.split("@", 1)[0]
        )
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    pid = {role: p.pid for role, p in workers.items()}
    assert ran_by[("platform_confirm", "orders-platform")] == pid["platform"]
    assert ("record_order", TASK_QUEUE) not in ran_by
    assert "record_order" in local_steps(events)  # in a task the workflows' worker completed
    assert {p for (kind, _), p in ran_by.items() if kind.startswith("platform_")} == {
        pid["platform"]
    }
    tasks = {
        e.workflow_task_completed_event_attributes.identity
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }
    assert {int(identity.split("@", 1)[0]) for identity in tasks} == {pid["workflows"]}


async def test_a_worker_asked_for_a_role_it_cannot_have_says_why_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_DEV"] = "1"
    for roles, expected in (
        ("platform", "ORDERFLOW_PLATFORM_TASK_QUEUE is not set"),
        ("workflows,cooking", "unknown role(s) cooking"),
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers.main",
            env=env | {"ORDERFLOW_WORKER_ROLES": roles},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 2
        assert expected in output.decode()


def test_workflow_workers_are_tuned_from_the_settings() -> None:
    from datetime import timedelta

    from workers.main import tuning

    assert tuning({})["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=3)
    tuned = tuning(
        {"ORDERFLOW_STICKY_TIMEOUT_SECONDS": "1.5", "ORDERFLOW_MAX_CACHED_WORKFLOWS": "7"}
    )
    assert tuned["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=1.5)
    assert tuned["max_cached_workflows"] == 7

"""The worker as the long-lived process it is in production: SIGTERM lets the activity in
flight finish, then the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType, PendingActivityState

from meituan.intake import to_platform_order
from meituan.simulator import Faults, SimConfig
from schemas.order import OrderInput
from starter.devstack import connect_temporal, database, simulator, temporal_dev_server
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from workers.temporal_client import TASK_QUEUE
from workflows.order import OrderWorkflow

SLOW_PLATFORM_S = 4.0


async def test_sigterm_finishes_the_activity_in_flight_and_exits_0(
    tmp_path: Path, pg_dsn: str
) -> None:
    slow = SimConfig(
        push_base=None,
        confirm_timeout_s=None,
        courier_step_s=None,
        faults=Faults(api_latency_s=SLOW_PLATFORM_S),
    )
    name = f"t_worker_{uuid.uuid4().hex[:8]}"
    async with (
        temporal_dev_server(tmp_path / "temporal", fresh=True, port=None, headless=True) as server,
        database(name, server_dsn=pg_dsn, fresh=True) as db,
        simulator(slow, port=None) as platform,
    ):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_CODEC")} | {
            "TEMPORAL_ADDRESS": server.address,
            "DATABASE_URL": db.dsn,
            "MEITUAN_BASE_URL": platform.api_base_url,
            "ORDERFLOW_SHUTDOWN_SECONDS": "20",
        }
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

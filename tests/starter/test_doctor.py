"""`orderctl doctor`: a workflow whose history stops replaying is found, and reset to before the
task its replay disagrees with it runs on.

As with the SDK's own faults (temporalio/sdk-python#1591, docs/upstream-cold-query.md), the
history holds a command that one worker made and no replay makes again, and more tasks completed
after it before a cold worker replayed the history and failed: a reset to the last good task
would keep that command and fail again; the reset must drop the task that made it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from activities import doctor
from activities.doctor import Doctor
from schemas.contract import DOCTOR_SCHEDULE_ID
from schemas.doctor import DoctorRound
from workers.schedules import ensure_doctor_schedule, remove_doctor_schedule
from workflows.doctor import DoctorWorkflow

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
STEPS = 5
ASTRAY_RUNS: set[str] = set()
"""Runs of `Diverging` whose first execution of step 1 makes a command no replay makes."""


@workflow.defn(sandboxed=False)
class Diverging:
    def __init__(self) -> None:
        self.steps = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.steps >= 1)
        if workflow.info().run_id in ASTRAY_RUNS and not workflow.unsafe.is_replaying():
            workflow.upsert_memo({"astray": True})  # in the history; never made on replay
        await workflow.wait_condition(lambda: self.steps >= STEPS)
        return self.steps

    @workflow.signal
    async def step(self) -> None:
        self.steps += 1


def test_the_reset_point_is_the_task_that_made_the_event_replay_disagrees_with() -> None:
    message = (
        "[TMPRL1100] Nondeterminism error: UpsertWorkflowSearchAttributesMachine does not "
        "handle HistoryEvent(id: 165, TimerStarted)"
    )
    # bench/evidence/not-replaying-after-temporal-restart.json: tasks completed at 159 and 164
    # (which made 165), then later ones; the failure at 203.
    assert doctor.reset_point([147, 153, 159, 164, 169, 174, 199], 203, message) == 164
    assert doctor.reset_point([147, 153, 159], 203, "no event named") == 159
    assert doctor.reset_point([], 4, message) is None


def _worker(client: Any, queue: str) -> Worker:
    return Worker(
        client, task_queue=queue, workflows=[Diverging], workflow_runner=UnsandboxedWorkflowRunner()
    )


async def _astray(client: Client, queue: str) -> WorkflowHandle[Any, Any]:
    """A run whose history holds a command no replay makes, three steps taken since."""
    query = f'TaskQueue="{queue}" AND ExecutionStatus="Running"'
    async with _worker(client, queue):  # keeps the run in its cache: no replay
        handle = await client.start_workflow(Diverging.run, id=queue, task_queue=queue)
        assert handle.result_run_id is not None
        ASTRAY_RUNS.add(handle.result_run_id)
        for n in range(1, 4):
            await handle.signal(Diverging.step)
            await _until(functools.partial(_taken, handle, n), f"step {n} taken")
        assert await doctor.find_stuck(client, query) == []
    return handle


async def test_a_workflow_that_stops_replaying_is_found_and_repaired(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    queue = f"doctor-{uuid.uuid4().hex[:8]}"
    query = f'TaskQueue="{queue}" AND ExecutionStatus="Running"'
    handle = await _astray(client, queue)

    async with _worker(client, queue):  # cold: replays the history, and disagrees
        await handle.signal(Diverging.step)
        stuck = await _until(lambda: doctor.find_stuck(client, query), "the failure found")
        [found] = stuck
        assert found.workflow_id == queue
        # Found among those the server reports, not by describing every open run.
        reported = f"{query} AND {doctor.REPORTED_NON_DETERMINISM}"
        assert [e.id async for e in client.list_workflows(reported)] == [queue]
        assert "Nondeterminism" in found.message
        memo = [e async for e in handle.fetch_history_events() if _is_memo(e)]
        assert found.reset_to == memo[0].event_id - 1  # the task that made it, not a later one

        address = client.service_client.config.target_host
        listed = await orderctl(address, "doctor", "--query", query, "--json")
        assert listed[0] == 1 and json.loads(listed[1])[0]["workflow_id"] == queue
        code, out = await orderctl(address, "doctor", "--repair", "--query", query, "--json")
        [repaired] = json.loads(out)
        assert code == 0 and repaired["error"] is None
        assert repaired["new_run_id"] not in (None, found.run_id)
        assert await orderctl(address, "doctor", "--query", query) == (
            0,
            "0 workflow(s) whose history no longer replays\n",
        )
        fresh = client.get_workflow_handle(queue, run_id=repaired["new_run_id"])
        await fresh.signal(Diverging.step)  # steps 2-4 were reapplied by the reset
        assert await asyncio.wait_for(fresh.result(), 20) == STEPS
    # And the new run replays from its start, as any cold worker would take it up.
    history = await fresh.fetch_history()
    await Replayer(
        workflows=[Diverging], workflow_runner=UnsandboxedWorkflowRunner()
    ).replay_workflow(history)


async def test_the_doctors_scheduled_round_repairs_what_it_finds(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    queue = f"doctor-{uuid.uuid4().hex[:8]}"
    query = f'TaskQueue="{queue}" AND ExecutionStatus="Running"'
    handle = await _astray(client, queue)
    async with (
        _worker(client, queue),
        Worker(
            client,
            task_queue=f"{queue}-doctor",
            workflows=[DoctorWorkflow],
            activities=[Doctor(client).doctor_round],
        ),
    ):
        await handle.signal(Diverging.step)
        await _until(lambda: doctor.find_stuck(client, query), "the failure found")
        report = await client.execute_workflow(
            DoctorWorkflow.run,
            DoctorRound(query=query),
            id=f"{queue}-round",
            task_queue=f"{queue}-doctor",
        )
        assert (report.found, report.unrepaired) == (1, [])
        assert [r.workflow_id for r in report.repaired] == [queue]
        await client.get_workflow_handle(queue).signal(Diverging.step)
        assert await asyncio.wait_for(client.get_workflow_handle(queue).result(), 20) == STEPS


async def test_the_doctors_schedule_is_kept_and_removed_only_when_asked(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    schedule = client.get_schedule_handle(DOCTOR_SCHEDULE_ID)
    await ensure_doctor_schedule(client, timedelta(minutes=15))
    await ensure_doctor_schedule(client, timedelta(minutes=5))  # brought in line, not added
    spec = (await schedule.describe()).schedule.spec
    assert [i.every for i in spec.intervals] == [timedelta(minutes=5)]
    await schedule.pause(note="investigating")
    await ensure_doctor_schedule(client, timedelta(minutes=5))  # a worker restarts
    assert (await schedule.describe()).schedule.state.paused  # the operator's pause stands
    assert await remove_doctor_schedule(client) is True
    with pytest.raises(RPCError):
        await schedule.describe()
    assert await remove_doctor_schedule(client) is False  # nothing to remove: no error


def _is_memo(event: Any) -> bool:
    return bool(event.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)


async def _taken(handle: WorkflowHandle[Any, Any], signals: int) -> bool:
    """`signals` steps sent and a task completed after the last of them."""
    events = [e async for e in handle.fetch_history_events()]
    sent = [
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    done = [
        e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    return len(sent) == signals and bool(done) and done[-1] > sent[-1]


async def orderctl(address: str, *args: str) -> tuple[int, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TEMPORAL_") and k != "ORDERFLOW_CODEC_KEYS"
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.cli",
        *args,
        env={**env, "TEMPORAL_ADDRESS": address},
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert b"Traceback" not in err, err.decode()
    return proc.returncode or 0, out.decode()


async def _until(check: Callable[[], Awaitable[T]], what: str, patience: float = 20) -> T:
    deadline = asyncio.get_running_loop().time() + patience
    while not (found := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return found

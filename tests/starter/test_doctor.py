"""`orderctl doctor`: a workflow whose history stops replaying is found, and reset to its last
good workflow task it runs on. The divergence here belongs to one run, as the SDK's own belong
to one worker's ordering (temporalio/sdk-python#1591): the same code replays the history fine
from a point before it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from starter import doctor

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
DIVERGING_RUNS: set[str] = set()
"""Runs of `Diverging` whose replays record a memo their history does not have."""


@workflow.defn(sandboxed=False)
class Diverging:
    def __init__(self) -> None:
        self.steps = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.steps >= 1)
        if workflow.info().run_id in DIVERGING_RUNS and workflow.unsafe.is_replaying():
            workflow.upsert_memo({"diverged": True})  # a command the history lacks
        await workflow.wait_condition(lambda: self.steps >= 3, timeout=timedelta(hours=1))
        return self.steps

    @workflow.signal
    async def step(self) -> None:
        self.steps += 1


async def test_a_workflow_that_stops_replaying_is_found_and_repaired(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    queue = f"doctor-{uuid.uuid4().hex[:8]}"
    query = f'TaskQueue="{queue}" AND ExecutionStatus="Running"'
    async with Worker(
        client,
        task_queue=queue,
        workflows=[Diverging],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=0,  # every task replays the history from its start
    ):
        handle = await client.start_workflow(Diverging.run, id=queue, task_queue=queue)
        await handle.signal(Diverging.step)
        await _until(lambda: _timer_started(handle), "the first step done")
        assert await doctor.find_stuck(client, query) == []
        assert handle.result_run_id is not None
        DIVERGING_RUNS.add(handle.result_run_id)
        await handle.signal(Diverging.step)  # its task replays, diverges, fails
        stuck = await _until(lambda: doctor.find_stuck(client, query), "the failure found")
        [found] = stuck
        assert found.workflow_id == queue and found.reset_to is not None
        assert "Nondeterminism" in found.message or "nondetermin" in found.message.lower()

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
        await fresh.signal(Diverging.step)
        assert await asyncio.wait_for(fresh.result(), 20) == 3  # the second step reapplied


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


async def _timer_started(handle: WorkflowHandle[Any, Any]) -> bool:
    events = [e async for e in handle.fetch_history_events()]
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events)


async def _until(check: Callable[[], Awaitable[T]], what: str, patience: float = 20) -> T:
    deadline = asyncio.get_running_loop().time() + patience
    while not (found := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return found

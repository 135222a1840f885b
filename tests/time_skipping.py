"""What stops the time-skipping test server's time for good, and how tests on the shared server
(`env`) keep clear of it.

The test server stops skipping time while a workflow task or an activity is scheduled or
running, and takes that lock back when it ends. Two ways leave a lock that is never taken back,
and every later test that waits on a timer then waits in real time (in CI, two-minute timeouts
for the rest of the session):

- A workflow ends while one of its steps is scheduled or running, e.g. terminated mid-activity
  (temporalio/sdk-java#1138). Tests on `env` end their workflows at rest (`terminate_at_rest`)
  or let them finish; a module whose teardown cannot wait for that (the real stack's) takes
  `own_env`.
- A child its parent abandoned (the patrol's orders; this server applies no parent-close
  policy, so any child that outlives its parent) ends after the parent has closed, by
  completing, failing, being cancelled or timing out: the server locks time until the parent
  is told, and a closed parent never is (temporalio/sdk-java#2392). Only termination tells no
  parent. Nor can such a child be left running on `env`: an activity without a
  schedule-to-close timeout (ours retry until they pass) gets the run timeout, ten years, and
  the server never removes the timers it starts for it; whenever a test unlocks time (a
  `result()`, an `env.sleep`) with nothing else due, even for the moment between a workflow's
  end and the lock taken back, virtual time jumps to the next of those timers, a decade at a
  time, until a live child's own run timeout comes up and it times out. The patrol scenario
  therefore runs its patrol with time locked and terminates the order it started, at rest.

After every test on `env` (tests/conftest.py) a child left running after its parent fails the
test that left it, and a lock left behind fails the test in which it was left.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

PROBE = timedelta(minutes=5)
PATIENCE_S = 3.0

_IN_FLIGHT = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
}


async def skips(env: WorkflowEnvironment) -> bool:
    """Whether virtual time passes faster than real time right now."""
    try:
        async with asyncio.timeout(PATIENCE_S):
            await env.sleep(PROBE)
    except (TimeoutError, RPCError):
        return False
    return True


_parents: dict[str, str] = {}
"""The parent's workflow id (or "") of every open run seen, by run id."""


async def orphans(env: WorkflowEnvironment) -> list[tuple[str, str]]:
    """The children still running whose parent has closed, with their parent's workflow id:
    each stops time when it ends, unless terminated."""
    service, namespace = env.client.workflow_service, env.client.namespace
    running = await service.list_open_workflow_executions(
        ListOpenWorkflowExecutionsRequest(namespace=namespace)
    )
    open_ids = {info.execution.workflow_id for info in running.executions}
    found = []
    for info in running.executions:
        run = info.execution.run_id
        if run not in _parents:
            first = await service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=namespace, execution=info.execution, maximum_page_size=1
                )
            )
            started = first.history.events[0].workflow_execution_started_event_attributes
            _parents[run] = started.parent_workflow_execution.workflow_id
        parent = _parents[run]
        if parent and parent not in open_ids:
            found.append((info.execution.workflow_id, parent))
    return found


async def at_rest(handle: WorkflowHandle[Any, Any]) -> bool:
    """Nothing of the workflow scheduled or running: no activity and no workflow task, only
    timers and messages awaited."""
    described = await handle.describe()
    if described.raw_description.pending_activities:
        return False
    history = await handle.fetch_history()
    return bool(history.events) and history.events[-1].event_type not in _IN_FLIGHT


async def terminate_at_rest(
    handle: WorkflowHandle[Any, Any], reason: str, patience: float = 15
) -> None:
    """Terminate the workflow once it is at rest. Call it where it waits for somebody, with
    time locked (no `result()` or `env.sleep` meanwhile), so that no timer wakes it between
    the look and the termination."""
    deadline = asyncio.get_running_loop().time() + patience
    while not await at_rest(handle):
        assert asyncio.get_running_loop().time() < deadline, f"{handle.id} never came to rest"
        await asyncio.sleep(0.05)
    await handle.terminate(reason)

"""Read a workflow's status only once it has no workflow task waiting.

A query that reaches a worker without the workflow in its cache, while a workflow task is
scheduled but not started (its worker died, say), is answered by replaying the history with
the events that task is for, and the worker keeps what that replay did for the task itself. The
events are then taken apart from the messages of the same task (a timer before an update, where
a replay takes the update first), and the next replay of the order can fail for good. With no
task waiting, every event in the history has been handled, and a query changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

SETTLE_WITHIN_S = 10.0
_POLL_S = 0.05


async def settled(handle: WorkflowHandle[Any, Any], within_s: float = SETTLE_WITHIN_S) -> None:
    """Returns when the workflow has ended or has no task scheduled; after `within_s` anyway
    (no worker is running: the query that follows reports that)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while True:
        described = await handle.describe()
        waiting = described.raw_description.HasField("pending_workflow_task")
        if described.status is not WorkflowExecutionStatus.RUNNING or not waiting:
            return
        if loop.time() >= give_up:
            return
        await asyncio.sleep(_POLL_S)

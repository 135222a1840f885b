"""Query or update a workflow only once it has no workflow task waiting.

While a workflow task is scheduled but not started (its worker died, say), the events it is
for are not yet handled. A worker without the workflow in its cache that then takes a query, or
the task itself with an update in it, handles those events apart from the update, and the
next replay of the history takes them together, the update first (temporalio/sdk-python#1591):
the order's history no longer replays and the order is stuck for good. A query answered that
way also applies the events with the previous task's time. With no task waiting, every event
in the history has been handled, and a query or an update has a workflow task to itself.
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

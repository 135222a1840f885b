"""Status reads wait while a workflow task is waiting (starter/settled.py)."""

from __future__ import annotations

import time
import uuid

from temporalio.testing import WorkflowEnvironment

from starter.settled import settled


async def test_a_read_waits_while_a_task_waits_and_not_once_the_workflow_ended(
    dev_server: WorkflowEnvironment,
) -> None:
    # No worker polls this queue: the workflow's first task stays scheduled.
    handle = await dev_server.client.start_workflow(
        "OrderWorkflow", id=f"order-{uuid.uuid4().int % 10**15}", task_queue="nobody-polls"
    )
    began = time.monotonic()
    await settled(handle, within_s=0.5)
    assert time.monotonic() - began >= 0.5

    await handle.terminate("test over")
    began = time.monotonic()
    await settled(handle, within_s=5)
    assert time.monotonic() - began < 2

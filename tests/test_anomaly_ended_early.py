"""An order that ends while its anomaly is still being opened leaves no anomaly record open
(R5.2.4), even when the cancellation lands while a step is finishing: the step's result wins,
and the workflow must still notice it was cancelled."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.anomaly import AnomalyInput, Decision
from schemas.policy import Policy
from schemas.records import Notification
from schemas.review import AnomalyKind
from tests.doubles import Business
from workflows.anomaly import AnomalyWorkflow


@pytest.mark.parametrize("notice", ["sent", "lost"])
async def test_an_anomaly_cancelled_while_opening_closes_its_record(
    dev_server: WorkflowEnvironment, business: Business, notice: str
) -> None:
    """`lost`: the step in flight fails once the cancellation is in (as when its worker dies
    and a cancelled activity is not retried), so the cancellation arrives as a step failure."""
    telling = asyncio.Event()
    told = asyncio.Event()

    @activity.defn(name="notify")
    async def slow_notify(_: Notification) -> None:
        """The manager's notice is on its way when the order ends."""
        telling.set()
        await told.wait()
        if notice == "lost":
            raise ApplicationError("the worker went away", non_retryable=True)

    activities = [a for a in business.activities() if a.__name__ != "notify"] + [slow_notify]
    order_id = str(uuid.uuid4().int % 10**15)
    anomaly_id = f"anomaly-{order_id}-1"
    task_queue = f"anomaly-ended-early-{order_id}"
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[AnomalyWorkflow],
        activities=activities,
    ):
        handle = await dev_server.client.start_workflow(
            AnomalyWorkflow.run,
            AnomalyInput(
                order_id=order_id,
                number=1,
                kind=AnomalyKind.PRICE,
                detail="price far below the catalogue",
                store_code="SH-XH-001",
                customer_id="C-1",
                paused_stage="reviewing",
                deadline=Policy().goods.deadlines.anomaly_decision,
            ),
            id=anomaly_id,
            task_queue=task_queue,
        )
        await asyncio.wait_for(telling.wait(), 10)
        assert business.anomalies[anomaly_id].outcome is None  # opened, not yet closed
        await handle.cancel()
        told.set()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 20)
    record = business.anomalies[anomaly_id]
    assert record.outcome is not None, "the anomaly record was left open"
    assert record.outcome.decision is Decision.CANCEL
    assert record.outcome.decided_by == "system"

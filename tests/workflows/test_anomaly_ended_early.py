"""An order that ends while its anomaly is still being opened leaves no anomaly record open
(R5.2.4), even when the cancellation lands while a step is finishing: the step's result wins,
and the workflow must still notice it was cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.anomaly import AnomalyInput, AnomalyRecord, Decide, Decision
from schemas.notices import Audience, Notification
from schemas.policy import Policy
from schemas.review import AnomalyKind
from starter.settled import settled
from tests.doubles import Business
from tests.orders import task_waiting
from tests.recording import keep
from workflows.anomaly import AnomalyWorkflow


def price_anomaly(order_id: str) -> AnomalyInput:
    return AnomalyInput(
        order_id=order_id,
        number=1,
        kind=AnomalyKind.PRICE,
        detail="price far below the catalogue",
        store_code="SH-XH-001",
        customer_id="C-1",
        paused_stage="reviewing",
        deadline=Policy().goods.deadlines.anomaly_decision,
    )


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
            price_anomaly(order_id),
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


async def test_a_decision_that_lands_with_the_cancellation_is_recorded(
    dev_server: WorkflowEnvironment, business: Business
) -> None:
    """The manager's decision and the order's cancellation reach the anomaly in one workflow
    task (no worker was running while both were sent): the cancellation takes the step that
    records the decision, and the decision is recorded all the same."""
    order_id = str(uuid.uuid4().int % 10**15)
    anomaly_id = f"anomaly-{order_id}-1"
    task_queue = f"anomaly-decided-as-cancelled-{order_id}"

    def worker() -> Worker:
        return Worker(
            dev_server.client,
            task_queue=task_queue,
            workflows=[AnomalyWorkflow],
            activities=business.activities(),
        )

    async with worker():
        handle = await dev_server.client.start_workflow(
            AnomalyWorkflow.run,
            price_anomaly(order_id),
            id=anomaly_id,
            task_queue=task_queue,
        )
        for _ in range(100):
            if business.notices_for(order_id, "manager"):
                break
            await asyncio.sleep(0.1)
        assert business.notices_for(order_id, "manager"), "the manager was never told"
        await settled(handle)  # the worker has taken every task
    decision = Decide(
        by="M-001", decision=Decision.DISMISS, cause="price is right", responsibility="none"
    )
    deciding = asyncio.create_task(handle.execute_update(AnomalyWorkflow.decide, decision))
    await task_waiting(handle)  # the update is at the server, waiting for a worker
    await handle.cancel()
    async with worker():
        await asyncio.wait_for(asyncio.gather(deciding, return_exceptions=True), 20)
        with contextlib.suppress(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 20)
        await keep(handle, "anomaly-decided-with-the-cancellation")
    record = business.anomalies[anomaly_id]
    assert record.outcome is not None, "the anomaly record was left open"
    assert record.outcome.decided_by == "M-001"


async def test_a_decision_whose_recording_meets_the_cancellation_is_recorded(
    dev_server: WorkflowEnvironment, business: Business
) -> None:
    """The decision's remedy finishes and the order's cancellation arrives in one workflow
    task (no workflow worker ran meanwhile): the step that records the decision is cancelled
    before it is even sent, and the decision is recorded all the same."""
    order_id = str(uuid.uuid4().int % 10**15)
    anomaly_id = f"anomaly-{order_id}-1"
    task_queue = f"anomaly-closing-as-cancelled-{order_id}"
    notify = next(a for a in business.activities() if a.__name__ == "notify")
    telling, told = asyncio.Event(), asyncio.Event()

    @activity.defn(name="notify")
    async def customer_told_slowly(notice: Notification) -> None:
        if notice.audience is Audience.CUSTOMER:
            telling.set()
            await told.wait()
        await notify(notice)

    def workflows() -> Worker:
        return Worker(dev_server.client, task_queue=task_queue, workflows=[AnomalyWorkflow])

    activities = [a for a in business.activities() if a.__name__ != "notify"]
    async with Worker(
        dev_server.client, task_queue=task_queue, activities=[*activities, customer_told_slowly]
    ):
        async with workflows():
            handle = await dev_server.client.start_workflow(
                AnomalyWorkflow.run,
                price_anomaly(order_id),
                id=anomaly_id,
                task_queue=task_queue,
            )
            for _ in range(100):  # opened: on record and the manager told
                if business.notices_for(order_id, "manager"):
                    break
                await asyncio.sleep(0.1)
            decision = Decide(
                by="M-001",
                decision=Decision.ADJUST_PRICE,
                cause="old price list",
                responsibility="store",
                new_total=Decimal("58.00"),
            )
            deciding = asyncio.create_task(handle.execute_update(AnomalyWorkflow.decide, decision))
            await asyncio.wait_for(telling.wait(), 10)  # the remedy: the customer is told
            await settled(handle)  # the worker has taken every task
        told.set()  # the remedy finishes while no workflow worker runs
        await task_waiting(handle)
        await handle.cancel()  # and the order's cancellation joins it in one task
        async with workflows():
            await asyncio.wait_for(asyncio.gather(deciding, return_exceptions=True), 20)
            with contextlib.suppress(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), 20)
            await keep(handle, "anomaly-closing-with-the-cancellation")
    record = business.anomalies[anomaly_id]
    assert record.outcome is not None, "the anomaly record was left open"
    assert record.outcome.decision is Decision.ADJUST_PRICE
    assert record.outcome.decided_by == "M-001"


async def test_a_decision_sent_before_the_child_first_ran_is_validated(
    dev_server: WorkflowEnvironment, business: Business
) -> None:
    """The decision is in the child's very first task: its validator already knows the kind."""
    order_id = str(uuid.uuid4().int % 10**15)
    task_queue = f"anomaly-decided-at-once-{order_id}"
    info = price_anomaly(order_id).model_copy(update={"kind": AnomalyKind.INFO})
    handle = await dev_server.client.start_workflow(
        AnomalyWorkflow.run, info, id=f"anomaly-{order_id}-1", task_queue=task_queue
    )
    wrong = Decide(
        by="M-001",
        decision=Decision.ADJUST_PRICE,
        cause="c",
        responsibility="store",
        new_total=Decimal("1.00"),
    )
    refusing = asyncio.create_task(handle.execute_update(AnomalyWorkflow.decide, wrong))
    await asyncio.sleep(0.5)  # admitted at the server, waiting for a worker
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[AnomalyWorkflow],
        activities=business.activities(),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(refusing, 20)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.message == "adjust_price does not apply to info anomalies"
        right = Decide(by="M-001", decision=Decision.DISMISS, cause="c", responsibility="none")
        outcome = await handle.execute_update(AnomalyWorkflow.decide, right)
        assert outcome.decision is Decision.DISMISS
        await asyncio.wait_for(handle.result(), 20)


async def test_a_decision_whose_record_is_on_its_way_when_cancelled_is_recorded(
    dev_server: WorkflowEnvironment, business: Business
) -> None:
    """The step that records the decision is at a worker when the order's cancellation
    arrives, and fails without writing (its worker went away): the decision is recorded all
    the same."""
    order_id = str(uuid.uuid4().int % 10**15)
    anomaly_id = f"anomaly-{order_id}-1"
    task_queue = f"anomaly-recording-as-cancelled-{order_id}"
    record_anomaly = next(a for a in business.activities() if a.__name__ == "record_anomaly")
    recording, cancelled = asyncio.Event(), asyncio.Event()

    @activity.defn(name="record_anomaly")
    async def first_close_lost(record: AnomalyRecord) -> None:
        if record.outcome is not None and not recording.is_set():
            recording.set()
            await cancelled.wait()
            raise ApplicationError("the worker went away", non_retryable=True)
        await record_anomaly(record)

    activities = [a for a in business.activities() if a.__name__ != "record_anomaly"]
    async with Worker(
        dev_server.client,
        task_queue=task_queue,
        workflows=[AnomalyWorkflow],
        activities=[*activities, first_close_lost],
    ):
        handle = await dev_server.client.start_workflow(
            AnomalyWorkflow.run, price_anomaly(order_id), id=anomaly_id, task_queue=task_queue
        )
        decision = Decide(
            by="M-001", decision=Decision.DISMISS, cause="price is right", responsibility="none"
        )
        deciding = asyncio.create_task(handle.execute_update(AnomalyWorkflow.decide, decision))
        await asyncio.wait_for(recording.wait(), 10)
        await handle.cancel()  # on record at the server: the step then fails
        cancelled.set()
        with contextlib.suppress(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 20)
        await asyncio.wait_for(asyncio.gather(deciding, return_exceptions=True), 20)
        await keep(handle, "anomaly-recording-with-the-cancellation")
    record = business.anomalies[anomaly_id]
    assert record.outcome is not None, "the anomaly record was left open"
    assert record.outcome.decided_by == "M-001"

"""Orders whose record is ahead of their history, found and asked to write it again (R4.1.3).

An order with local writes (patch `local-writes`) writes its record from inside a workflow task.
A task that took a person's update, wrote its lines and never completed (Temporal restarted
before it could) leaves those lines: the update is gone with the task, and the fence takes them
back only when the order writes next (`RecordFence`, migration 0023). An order that waits on a
person may not write again, while the person reads the lines and does nothing more. The staff
API asks such an order to write again when an update's outcome is unknown
(`starter/api/temporal_calls.py`); this check finds what it misses (an engineer's update from
the Web UI, an API that died), on the Schedule `order-record-check`.

The newest task that wrote an order's record (`orders.recorded_task`, its start in workflow
time) is held against the history once the record has been quiet a while: a task the history
holds no completion of never completed, and the order is signalled (`RewriteRecord`). Each
order's newest writing task is checked once (`orders.record_checked_task`, migration 0024).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from infra.logging import get_logger
from schemas.contract import order_workflow_id
from schemas.messages import REWRITE_RECORD, RewriteRecord
from schemas.record_check import RecordAhead, RecordCheckReport, RecordCheckRound

log = get_logger(__name__)
PARALLEL = 8
SAME_TASK_US = 2
"""A fence is taken from `workflow.now()`, a float; the event's time may differ by a microsecond."""
BY = "record-check"


async def completed_tasks(client: Client, workflow_id: str) -> list[int]:
    """When each workflow task of the order's run that completed started, in microseconds as
    `RecordFence.task` counts them (the task's `workflow.now()` is its started event's time)."""
    started: dict[int, int] = {}
    done: list[int] = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started[event.event_id] = _micros(event.event_time)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            done.append(started[event.workflow_task_completed_event_attributes.started_event_id])
    return done


def _micros(at: Timestamp) -> int:
    return int(at.ToDatetime(tzinfo=UTC).timestamp() * 1_000_000)


async def check_records(
    client: Client, pool: asyncpg.Pool, inp: RecordCheckRound
) -> RecordCheckReport:
    """One round: each order whose newest writing task is unchecked and quiet for `quiet_s`."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT order_id, recorded_task FROM orders
            WHERE recorded_task > record_checked_task AND updated_at < now() - $1::interval
            ORDER BY updated_at LIMIT $2
            """,
            timedelta(seconds=inp.quiet_s),
            inp.limit,
        )
    gate = asyncio.Semaphore(PARALLEL)

    async def check(order_id: str, task: int) -> RecordAhead | None:
        async with gate:
            ahead = await _check(client, order_id, task)
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE orders SET record_checked_task = greatest(record_checked_task, $2) "
                "WHERE order_id = $1",
                order_id,
                task,
            )
        return ahead

    found = await asyncio.gather(*(check(r["order_id"], r["recorded_task"]) for r in rows))
    return RecordCheckReport(checked=len(rows), ahead=[a for a in found if a is not None])


async def _check(client: Client, order_id: str, task: int) -> RecordAhead | None:
    workflow_id = order_workflow_id(order_id)
    try:
        completed = await completed_tasks(client, workflow_id)
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: the next round checks the order again
        log.info("record_check.no_history", order_id=order_id)  # past its retention
        return None
    if any(abs(task - done) <= SAME_TASK_US for done in completed):
        return None
    handle = client.get_workflow_handle(workflow_id)
    try:
        await handle.signal(REWRITE_RECORD, RewriteRecord(by=BY))
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: the next round checks the order again
        log.error("record_check.ended_ahead", order_id=order_id, task=task)
        return RecordAhead(order_id=order_id, task=task, rewritten=False, error=err.message)
    log.warning("record_check.rewritten", order_id=order_id, task=task)
    return RecordAhead(order_id=order_id, task=task, rewritten=True)


class RecordCheck:
    """The round the Schedule `order-record-check` runs (`workflows.record_check`)."""

    def __init__(self, client: Client, pool: asyncpg.Pool) -> None:
        self._client = client
        self._pool = pool

    @activity.defn
    async def check_records(self, inp: RecordCheckRound) -> RecordCheckReport:
        """Idempotent: a checked task is marked, and a rewrite asked twice writes once more."""
        report = await check_records(self._client, self._pool, inp)
        activity.metric_meter().create_gauge(
            "orderflow_records_ahead", "orders found with lines their history never completed"
        ).set(len(report.ahead))
        return report

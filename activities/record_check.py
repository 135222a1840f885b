"""Orders whose record is ahead of their history, found and asked to write it again (R4.1.3).

An order with local writes (patch `local-writes`) writes its record from inside a workflow task.
A task that took a person's update, wrote its lines and never completed (Temporal restarted
before it could) leaves those lines: the update is gone with the task, and the fence takes them
back only when the order writes next (`RecordFence`, migration 0023). An order that waits on a
person may not write again, while the person reads the lines and does nothing more. The staff
API asks such an order to write again when an update's outcome is unknown
(`starter/api/temporal_calls.py`); this check finds what it misses (an engineer's update from
the Web UI, an API that died), on the Schedule `order-record-check`.

The fence of the newest write to an order's record (`orders.recorded_task`, the workflow's
clock when it wrote) is held against the history once the record has been quiet a while: a
fence no completed task of the history could have written with comes from a task that never
completed, and the order is signalled (`RewriteRecord`). Each
order's newest writing task is checked once (`orders.record_checked_task`, migration 0024).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from infra.heartbeats import beating
from infra.logging import get_logger
from schemas.contract import order_workflow_id
from schemas.messages import REWRITE_RECORD, RewriteRecord
from schemas.record_check import RecordAhead, RecordCheckReport, RecordCheckRound

log = get_logger(__name__)
PARALLEL = 8
SAME_FENCE_US = 2
"""A fence is taken from `workflow.now()`, a float: it may differ from the history's time by a
microsecond."""
LOCAL_ACTIVITY_MARKER = "core_local_activity"
BY = "record-check"


class Waiting(enum.Enum):
    WAITING = "waiting"


WAITING = Waiting.WAITING


async def fences_on_record(client: Client, workflow_id: str) -> list[int]:
    handle = client.get_workflow_handle(workflow_id)
    return fences_in([event async for event in handle.fetch_history_events()])


def fences_in(events: Iterable[HistoryEvent]) -> list[int]:
    """The fences the completed workflow tasks of `events` may have written with
    (`RecordFence`): the workflow's clock when it wrote. That is the task's start (its
    `WorkflowTaskStarted` event), or, after a local activity of the task was done, that
    activity's completion: the workflow's clock moves on to it, as its marker records
    (`complete_time`), so that replay reads the same time. A marker is in the history only
    when its task completed."""
    started = 0  # a task that completes is the last one started: one runs at a time
    fences: list[int] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = _micros(event.event_time)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            fences.append(started)
        elif (marker := local_activity_marker(event)) and (done := marker.get("complete_time")):
            seconds, nanos = int(done.get("seconds", 0)), int(done.get("nanos", 0))
            fences.append(seconds * 1_000_000 + nanos // 1_000)
    return fences


def local_activity_marker(event: HistoryEvent) -> dict[str, Any] | None:
    """A local activity's marker data (its type, attempt, completion), or None for any other
    event: written by the SDK's core as plain JSON, never through the payload codec."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in marker.details:
        return None
    data: dict[str, Any] = json.loads(marker.details["data"].payloads[0].data)
    return data


def _micros(at: Timestamp) -> int:
    return at.seconds * 1_000_000 + at.nanos // 1_000


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

    async def check(order_id: str, task: int) -> RecordAhead | Waiting | None:
        async with gate:
            found = await _check(client, order_id, task)
        if found is WAITING:
            return found  # not marked: looked at again once the task has run
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE orders SET record_checked_task = greatest(record_checked_task, $2) "
                "WHERE order_id = $1",
                order_id,
                task,
            )
        return found

    found = await asyncio.gather(*(check(r["order_id"], r["recorded_task"]) for r in rows))
    return RecordCheckReport(
        checked=len(rows),
        ahead=[a for a in found if isinstance(a, RecordAhead)],
        waiting=sum(1 for a in found if a is WAITING),
    )


async def _check(client: Client, order_id: str, task: int) -> RecordAhead | Waiting | None:
    """None: the write is in the history. WAITING: it is not, but a task of the order is
    pending, which writes again itself (and a signal would only wait behind it)."""
    workflow_id = order_workflow_id(order_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        fences = await fences_on_record(client, workflow_id)
        if any(abs(task - fence) <= SAME_FENCE_US for fence in fences):
            return None
        described = await handle.describe()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: the next round checks the order again
        log.info("record_check.no_history", order_id=order_id)  # past its retention
        return None
    if described.status is not WorkflowExecutionStatus.RUNNING:
        log.error("record_check.ended_ahead", order_id=order_id, task=task)
        ended = described.status.name.lower() if described.status else "ended"
        return RecordAhead(order_id=order_id, task=task, rewritten=False, error=ended)
    if described.raw_description.HasField("pending_workflow_task"):
        return WAITING
    try:
        await handle.signal(REWRITE_RECORD, RewriteRecord(by=BY))
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return None  # ended since: its last write took back whatever an older task wrote
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
        async with beating():
            report = await check_records(self._client, self._pool, inp)
        activity.metric_meter().create_gauge(
            "orderflow_records_ahead", "orders found with lines their history never completed"
        ).set(len(report.ahead))
        return report

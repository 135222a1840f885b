"""A record ahead of its history, on a real Temporal server and PostgreSQL: the line a workflow
task wrote and never completed is found by the record check (`activities/record_check.py`) and
taken back by the order's next write; an update whose outcome the staff API does not learn has
the order write again (`starter/api/temporal_calls.py`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.record_check import SAME_FENCE_US, check_records, fences_in, fences_on_record
from schemas.contract import order_workflow_id
from schemas.messages import REWRITE_RECORD, MarkReady
from schemas.order import Stage
from schemas.record_check import RecordCheckRound
from starter.api.temporal_calls import Session, order_target
from starter.failures import Exit, Failure
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.orders import at_stage
from tests.real_stack import db_worker, one, place, reaches
from tests.real_stack import platform as platform
from workflows.order import OrderWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
EVERY_ORDER = RecordCheckRound(quiet_s=0)
LINES = "SELECT count(*) FROM order_events WHERE order_id = $1"
FENCES = "SELECT DISTINCT task FROM order_events WHERE order_id = $1"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dev_worker(
    dev_server: WorkflowEnvironment, demo_pool: asyncpg.Pool, platform: Any
) -> AsyncIterator[Worker]:
    async with db_worker(dev_server, demo_pool, platform) as worker:
        yield worker


async def test_a_line_no_completed_task_wrote_is_found_and_taken_back(
    dev_server: WorkflowEnvironment, dev_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    client = dev_server.client
    handle = await place(dev_server, platform.sim, "SH-XH-001")
    order_id = handle.id.removeprefix("order-")
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    # An update's task: speculative on a real server, and its lines written from inside it.
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by=current.assignee.staff_id))
    shown = await at_stage(handle, Stage.DELIVERING)
    stage = "SELECT stage FROM orders WHERE order_id = $1"
    assert await reaches(demo_pool, stage, order_id, value="delivering") == "delivering"
    lines = await reaches(demo_pool, LINES, order_id, value=len(shown.timeline))
    assert lines == len(shown.timeline)

    # Every task that wrote the record completed: each line's fence is one the history holds.
    fences = await fences_on_record(client, handle.id)
    written = {r["task"] for r in await demo_pool.fetch(FENCES, order_id)}
    assert written and all(any(abs(w - f) <= SAME_FENCE_US for f in fences) for w in written)
    report = await check_records(client, demo_pool, EVERY_ORDER)
    assert report.checked >= 1
    assert [a.order_id for a in report.ahead] == []
    recorded, checked = await _tasks(demo_pool, order_id)
    assert recorded > 0 and checked == recorded

    # A task that wrote the next line and never completed, as a Temporal restart leaves it.
    dead = recorded + 1_000  # started after the last task that wrote, before any to come
    async with demo_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO order_events (order_id, seq, at, event, stage, actor, details, task) "
            "VALUES ($1, $2, now(), 'delivered_with_proof', 'delivered', 'someone', '{}', $3)",
            order_id,
            lines + 1,
            dead,
        )
        await conn.execute(
            "UPDATE orders SET recorded_task = $2, stage = 'delivered', stage_seq = $3 "
            "WHERE order_id = $1",
            order_id,
            dead,
            lines + 1,
        )

    report = await check_records(client, demo_pool, EVERY_ORDER)
    assert [(a.order_id, a.task, a.rewritten) for a in report.ahead] == [(order_id, dead, True)]
    assert await reaches(demo_pool, LINES, order_id, value=lines) == lines
    assert await one(demo_pool, stage, order_id) == "delivering"
    recorded, _ = await _tasks(demo_pool, order_id)
    assert recorded > dead  # the order's own write, from a task after the dead one

    # The order's rewrite is checked in turn, and holds.
    assert await check_records(client, demo_pool, EVERY_ORDER) == report.model_copy(
        update={"checked": 1, "ahead": []}
    )
    await handle.terminate("checked")


async def test_an_update_with_no_answer_has_the_order_write_again(
    dev_server: WorkflowEnvironment, dev_worker: Worker, platform: Any
) -> None:
    """No worker polls the order's queue, so the update is never taken: the person hears no
    answer, and the order is asked to write its record again all the same."""
    client = dev_server.client
    order_id = str(uuid.uuid4().int % 10**15)
    handle = await client.start_workflow("OrderWorkflow", id=f"order-{order_id}", task_queue="idle")
    session = Session(client, "dev", client.namespace, timedelta(seconds=1))
    with pytest.raises(Failure) as refused:
        await session.update(
            order_target(order_id), "mark_ready", MarkReady(by="s1"), dict, update_id="u1"
        )
    assert refused.value.code is Exit.NO_ANSWER
    assert await _signals(handle) == [REWRITE_RECORD]
    await handle.terminate("checked")


async def test_an_order_with_a_task_pending_is_looked_at_again_not_signalled(
    dev_server: WorkflowEnvironment, dev_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    """A record ahead of a history whose next task is pending (no worker polls its queue): that
    task may yet write, so the order is neither signalled nor marked checked. Once it ended
    without writing, the check says so, and marks it."""
    client = dev_server.client
    source = await place(dev_server, platform.sim, "SH-XH-001")
    await at_stage(source, Stage.IN_PROGRESS)
    twin = str(uuid.uuid4().int % 10**15)
    handle = await client.start_workflow(
        "OrderWorkflow", id=order_workflow_id(twin), task_queue="idle"
    )
    ahead = 1_000  # no task of the twin's history started then
    await demo_pool.execute(
        """
        INSERT INTO orders SELECT * FROM jsonb_populate_record(NULL::orders, (
            SELECT to_jsonb(o) || jsonb_build_object(
                'order_id', $2::text, 'recorded_task', $3::bigint, 'record_checked_task', 0)
            FROM orders o WHERE order_id = $1))
        """,
        source.id.removeprefix("order-"),
        twin,
        ahead,
    )
    await source.terminate("checked")

    report = await check_records(client, demo_pool, EVERY_ORDER)
    assert report.waiting >= 1 and twin not in {a.order_id for a in report.ahead}
    assert await _tasks(demo_pool, twin) == (ahead, 0)
    assert REWRITE_RECORD not in await _signals(handle)

    await handle.terminate("checked")
    report = await check_records(client, demo_pool, EVERY_ORDER)
    ended = [a for a in report.ahead if a.order_id == twin]
    assert [(a.task, a.rewritten, a.error) for a in ended] == [(ahead, False, "terminated")]
    assert await _tasks(demo_pool, twin) == (ahead, ahead)


def test_a_task_writing_after_a_local_activity_is_known_by_its_marker() -> None:
    """A recorded history (tests/histories/goods-8.json, the SDK's own markers): the
    workflow's clock after a local activity is the marker's completion, which no task start
    gives, so the fences hold each one."""
    events = list(
        WorkflowHistory.from_json("goods", (HISTORIES / "goods-8.json").read_text()).events
    )
    done = [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    starts = {
        e.event_time.seconds * 1_000_000 + e.event_time.nanos // 1_000
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    }
    completions = {
        d["complete_time"]["seconds"] * 1_000_000 + d["complete_time"]["nanos"] // 1_000
        for d in done
    }
    fences = set(fences_in(events))
    assert len(done) >= 10 and completions - starts
    assert completions <= fences
    assert starts - fences == set(), "every task of a finished order completed"


async def _signals(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


async def _tasks(pool: asyncpg.Pool, order_id: str) -> tuple[int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT recorded_task, record_checked_task FROM orders WHERE order_id = $1", order_id
        )
    assert row is not None
    return row["recorded_task"], row["record_checked_task"]

"""The order's status and data on record as they change (R1.3), and the reads of them, written
by the activities alone: out-of-order and retried writes, and an order recorded before views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from activities.orders import OrderRecords
from schemas.order import DeliveryMode, OrderType, PlatformOrder, Stage
from schemas.policy import Clause
from schemas.reads import OrderFilter
from schemas.records import (
    CreditEvent,
    CreditEventKind,
    OrderSummary,
    RecordEvent,
    RecordEvents,
    RecordFence,
    RecordOrder,
    RecordView,
    TimelineEntry,
)
from schemas.resources import Assignee, ReleaseAssignment
from schemas.status import Breach, DeadlineState, DeadlineView, OrderStatus
from starter.order_reads import list_orders, order_scope, order_view
from tests.db_fixtures import as_role, assign_recorded, make_order
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

NOW = datetime(2030, 3, 1, 4, 0, tzinfo=UTC)
STAFF = Assignee(staff_id="S-101", name="S", department="XH-KITCHEN", manager_id="M-001")


def _deadline(clause: Clause, due_in: int, state: DeadlineState) -> DeadlineView:
    return DeadlineView(
        key=clause.value,
        clause=clause,
        started_at=NOW,
        due_at=NOW + timedelta(minutes=due_in),
        hard_at=NOW + timedelta(minutes=due_in * 2),
        state=state,
    )


def _view(order: PlatformOrder, stage: Stage, **update: object) -> OrderStatus:
    base = OrderStatus(
        order_id=order.order_id,
        stage=stage,
        order_type=OrderType.GOODS,
        store_code=order.store_code,
        region="shanghai-xuhui",
        delivery_mode=DeliveryMode.SELF_DELIVERY,
        assignee=None,
        booking=None,
        promise=None,
        awaiting_reconfirmation=False,
        ready=False,
        visit_reconfirmed=False,
        delivered=False,
        deadlines=[],
        breaches=[],
        anomalies=[],
        feedback=[],
        refunds=[],
        reminders=[],
        rating=None,
        timeline=[],
    )
    return base.model_copy(update=update)


def _event(
    of: PlatformOrder,
    seq: int,
    stage: Stage,
    view: OrderStatus | None = None,
    order: PlatformOrder | None = None,
) -> RecordEvent:
    entry = TimelineEntry(seq=seq, at=NOW + timedelta(seconds=seq), event=f"e{seq}", stage=stage)
    return RecordEvent(order_id=of.order_id, entry=entry, view=view, view_version=seq, order=order)


async def test_the_newest_view_and_order_data_stay_whatever_lands_last(
    demo_pool: asyncpg.Pool,
) -> None:
    order = make_order()
    records = OrderRecords(demo_pool)
    await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
    moved = order.model_copy(
        update={"customer": order.customer.model_copy(update={"address": "新地址 1号"})}
    )
    cheaper = moved.model_copy(update={"total": Decimal("9.90")})
    assigned = _view(
        order,
        Stage.ASSIGNED,
        assignee=STAFF,
        deadlines=[
            _deadline(Clause.CONFIRM, 20, DeadlineState.MET),
            _deadline(Clause.PREPARE, 30, DeadlineState.BREACHED),  # missed, still open
            _deadline(Clause.DELIVER, 10, DeadlineState.VOID),
        ],
        breaches=[Breach(key="prepare", clause=Clause.PREPARE, at=NOW, hard=False)],
    )
    newest = _event(order, 3, Stage.ASSIGNED, view=assigned, order=cheaper)
    await records.record_event(newest)
    await records.record_event(
        _event(order, 2, Stage.ACCEPTED, view=_view(order, Stage.ACCEPTED), order=moved)
    )
    await records.record_view(
        RecordView(order_id=order.order_id, version=1, view=_view(order, Stage.REVIEWING))
    )
    await records.record_event(newest)  # a retry

    row = await demo_pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order.order_id)
    assert row is not None
    assert (row["view_version"], row["assignee"], row["stage"]) == (3, "S-101", "assigned")
    assert row["next_due_at"] == NOW + timedelta(minutes=30)
    assert row["view"]["stage"] == "assigned" and row["view"]["timeline"] == []
    assert (row["customer_address"], row["total"]) == ("新地址 1号", Decimal("9.90"))
    assert (row["received_at"], row["source"]) == (NOW, "push")  # receipt is kept

    shown = await order_view(demo_pool, order.order_id)
    assert shown is not None and shown.assignee == STAFF
    assert [e.seq for e in shown.timeline] == [2, 3]
    scope = await order_scope(demo_pool, order.order_id)
    assert scope is not None and scope.assignee == "S-101"
    mine = await list_orders(demo_pool, OrderFilter(assignee="S-101"), 10)
    assert [r.order_id for r in mine] == [order.order_id]
    assert mine[0].next_due_at == NOW + timedelta(minutes=30)
    assert mine[0].breached and not mine[0].anomaly_open  # R4.1.1 the breach is in the view
    missed = await list_orders(demo_pool, OrderFilter(assignee="S-101", breached=False), 10)
    assert missed == []


async def test_an_order_recorded_before_views_reads_from_its_columns(
    demo_pool: asyncpg.Pool,
) -> None:
    order = make_order()
    records = OrderRecords(demo_pool)
    await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
    await records.record_event(_event(order, 1, Stage.REVIEWING))  # no view: an older worker
    shown = await order_view(demo_pool, order.order_id)
    assert shown is not None
    assert (shown.stage, shown.order_type, shown.assignee) == (
        Stage.REVIEWING,
        OrderType.GOODS,
        None,
    )
    assert [e.event for e in shown.timeline] == ["e1"]
    scope = await order_scope(demo_pool, order.order_id)
    assert scope is not None and scope.assignee is None
    # Unassigned, it belongs to every department that could take it.
    expected = await demo_pool.fetch(
        "SELECT code FROM departments WHERE order_type = 'goods' AND region = $1 ORDER BY code",
        scope.region,
    )
    assert scope.departments == [r["code"] for r in expected] and scope.departments
    assert await order_view(demo_pool, "no-such-order") is None


async def test_a_burst_goes_on_record_whole_and_once_and_an_older_one_changes_nothing(
    demo_pool: asyncpg.Pool,
) -> None:
    """RECORD_IN_BURSTS: the lines since the last write and the status after them, in one
    transaction; a retried burst writes each line once, and a late one moves nothing back."""
    order = make_order()
    records = OrderRecords(demo_pool)
    await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
    moved = order.model_copy(
        update={"customer": order.customer.model_copy(update={"address": "新地址 2号"})}
    )

    def burst(seqs: range, stage: Stage, version: int, **extra: object) -> RecordEvents:
        entries = [_event(order, seq, stage).entry for seq in seqs]
        view = _view(order, stage, **extra)
        return RecordEvents(
            order_id=order.order_id, entries=entries, view=view, view_version=version
        )

    first = burst(range(1, 4), Stage.ACCEPTED, 1)
    second = burst(range(4, 6), Stage.ASSIGNED, 2, assignee=STAFF).model_copy(
        update={"order": moved}
    )
    await records.record_events(first)
    await records.record_events(second)
    await records.record_events(second)  # a retry
    await records.record_events(first)  # a late retry of the older burst
    await records.record_events(burst(range(0), Stage.ASSIGNED, 3, assignee=STAFF))  # status

    row = await demo_pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order.order_id)
    assert row is not None
    assert (row["view_version"], row["assignee"], row["stage"], row["stage_seq"]) == (
        3,
        "S-101",
        "assigned",
        5,
    )
    assert row["customer_address"] == "新地址 2号"
    shown = await order_view(demo_pool, order.order_id)
    assert shown is not None and [e.seq for e in shown.timeline] == [1, 2, 3, 4, 5]


async def test_a_burst_carries_the_credit_release_and_summary_each_once(
    demo_pool: asyncpg.Pool,
) -> None:
    """ENDING_WITH_THE_RECORD: what the order's ending needs on record goes in the burst's
    transaction; a retried burst (its activity timed out after the commit) writes none of it
    twice."""
    order = make_order()
    records = OrderRecords(demo_pool)
    recorded = await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))
    assignee = await assign_recorded(demo_pool, order, recorded)
    loads = "SELECT active_load FROM staff WHERE staff_id = $1"
    load = await demo_pool.fetchval(loads, assignee.staff_id)
    closing = RecordEvents(
        order_id=order.order_id,
        entries=[_event(order, 1, Stage.CLOSED).entry],
        view=_view(order, Stage.CLOSED),
        view_version=1,
        credit=CreditEvent(
            customer_id=recorded.customer_id,
            order_id=order.order_id,
            kind=CreditEventKind.COMPLETED,
        ),
        release=ReleaseAssignment(order_id=order.order_id, staff_id=assignee.staff_id),
        summary=OrderSummary(
            order_id=order.order_id,
            order_type=OrderType.GOODS,
            outcome=Stage.CLOSED,
            stage_seconds={"accepted": 60.0},
            breaches=[],
            exceptions=[],
            anomalies=[],
            feedback_rounds=0,
            rating=None,
            improvements=[],
        ),
    )
    await records.record_events(closing)
    await records.record_events(closing)  # a retry

    one = "SELECT count(*) FROM {} WHERE order_id = $1"
    for table in ("credit_events", "order_summaries", "order_events"):
        assert await demo_pool.fetchval(one.format(table), order.order_id) == 1, table
    assert await demo_pool.fetchval(loads, assignee.staff_id) == load - 1
    active = "SELECT active FROM assignments WHERE order_id = $1"
    assert await demo_pool.fetchval(active, order.order_id) is False


async def test_lines_of_a_task_that_never_completed_give_way_to_the_task_that_did(
    demo_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    """LOCAL_WRITES: a burst written from inside a workflow task whose worker died; the task's
    next attempt, with a signal that came meanwhile, logged other lines at the same numbers.
    The record ends as the completed task wrote it, even when the dead attempt's write lands
    last; the event log stays append-only for the service's login."""
    order = make_order()
    service = await as_role(demo_pool, pg_dsn, "orderflow_service")
    records = OrderRecords(service)
    await records.record_order(RecordOrder(order=order, received_at=NOW, source="push"))

    def burst(task: int, lines: list[tuple[int, Stage]], version: int) -> RecordEvents:
        return RecordEvents(
            order_id=order.order_id,
            entries=[_event(order, seq, stage).entry for seq, stage in lines],
            view=_view(order, lines[-1][1]),
            view_version=version,
            fence=RecordFence(task=task, from_seq=lines[0][0]),
        )

    await records.record_events(burst(5, [(1, Stage.RECEIVED), (2, Stage.REVIEWING)], 1))
    dead = burst(11, [(3, Stage.ACCEPTED), (4, Stage.ASSIGNED), (5, Stage.CONFIRMED)], 2)
    completed = burst(16, [(3, Stage.CANCELLED)], 2)
    await records.record_events(dead)
    await records.record_events(completed)
    await records.record_events(dead)  # the dead attempt's write, late

    logged = await demo_pool.fetch(
        "SELECT seq, stage, task FROM order_events WHERE order_id = $1 ORDER BY seq",
        order.order_id,
    )
    assert [(r["seq"], r["stage"], r["task"]) for r in logged] == [
        (1, "received", 5),
        (2, "reviewing", 5),
        (3, "cancelled", 16),
    ]
    row = await demo_pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order.order_id)
    assert row is not None
    assert (row["stage"], row["stage_seq"], row["recorded_task"]) == ("cancelled", 3, 16)
    assert row["view"]["stage"] == "cancelled"
    for change in (
        "DELETE FROM order_events WHERE order_id = $1",
        "UPDATE order_events SET event = 'x' WHERE order_id = $1",
    ):
        with pytest.raises(asyncpg.PostgresError):
            await service.execute(change, order.order_id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await demo_pool.execute("DELETE FROM order_events WHERE order_id = $1", order.order_id)
    await service.close()

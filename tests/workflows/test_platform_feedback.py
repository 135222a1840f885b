"""Reminders and refund requests from the platform are feedback cases on record (R4.2.1), every
refund request is on record with the money given back, and the statistics count both (R4.3.1):
first against the activity doubles, then through the real activities, PostgreSQL and the
platform simulator, each figure against a count made another way (the platform's own data and
the workflows' final status)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import analytics as st
from analytics.totals import Histogram
from localstack.simulator.engine import Simulator
from schemas.feedback import FeedbackState
from schemas.messages import (
    CustomerFeedback,
    CustomerReminder,
    DecideRefund,
    MarkDelivered,
    MarkReady,
    PlatformRefund,
    ReplyReminder,
    RespondFeedback,
)
from schemas.order import Stage
from schemas.records import RecordRefund
from schemas.status import OrderStatus, RefundState
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn
from tests.doubles import Business
from tests.orders import (
    Handle,
    at_stage,
    has_event,
    start,
    start_by_reminder,
    status,
    until,
)
from tests.real_stack import place
from tests.real_stack import platform as platform
from tests.real_stack import real_worker as real_worker
from workflows.order import OrderWorkflow

ZONE = "Asia/Shanghai"


def _event(current: OrderStatus, event: str) -> dict[str, Any]:
    return next(e for e in reversed(current.timeline) if e.event == event).details


# --- the workflow, against the doubles ----------------------------------------------------------


async def test_a_reminder_is_a_feedback_case_closed_by_its_reply(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.customer_reminder, CustomerReminder(remind_id="RM-1", text="还要多久")
    )

    current = await has_event(handle, "customer_reminded")
    [case] = current.feedback
    assert (case.case, case.kind.value, case.ref, case.text) == (1, "reminder", "RM-1", "还要多久")
    assert case.owner == "S-101" and case.state is FeedbackState.AWAITING_RESPONSE
    assert _event(current, "customer_reminded") == {"remind_id": "RM-1", "case": 1}
    assert business.feedback[(order_id, 1)].case.state is FeedbackState.AWAITING_RESPONSE
    # R4.2.2 its deadline: the clock starts once the assignee has been told, a step later.
    await until(handle, lambda s: any(d.key == "reminder#RM-1" for d in s.deadlines), "its clock")
    # It is answered on the platform, not as a case.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OrderWorkflow.respond_feedback, RespondFeedback(by="S-101", case=1, response="好")
        )
    assert "answer it with reply_reminder RM-1" in str(refused.value.cause)

    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-102", remind_id="RM-1", text="马上到")
    )
    current = await has_event(handle, "reminder_replied")
    [case] = current.feedback
    assert case.state is FeedbackState.CLOSED and case.responses == ["马上到"]
    assert case.resolutions == ["replied on the platform"] and case.owner == "S-101"
    assert _event(current, "reminder_replied") == {"remind_id": "RM-1", "case": 1}
    assert business.feedback[(order_id, 1)].case == case
    # A complaint after it takes the next number.
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="complaint", text="太慢了")
    )
    current = await until(handle, lambda s: len(s.feedback) == 2, "the complaint's case")
    assert current.feedback[1].case == 2 and current.feedback[1].kind.value == "complaint"
    await handle.cancel()
    await handle.result()


async def _recorded(
    business: Business, order_id: str, refund_id: str, state: RefundState
) -> RecordRefund:
    """Activities run after the status changes: wait for the write."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        record = business.refunds.get((order_id, refund_id))
        if record is not None and record.refund.state is state:
            return record
        assert asyncio.get_running_loop().time() < deadline, f"{refund_id} never {state.value}"
        await asyncio.sleep(0.05)


async def _apply(handle: Handle, refund_id: str, partial: bool, amount: str | None) -> None:
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(
            refund_id=refund_id,
            notify_type="apply",
            reason="少送可乐",
            partial=partial,
            amount=Decimal(amount) if amount else None,
        ),
    )
    await until(handle, lambda s: any(r.refund_id == refund_id for r in s.refunds), refund_id)


async def test_a_reminder_that_starts_the_order_is_taken_once_the_order_runs(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """The order's own push was lost and its reminder came first: the gateway starts the order
    with the reminder (signal-with-start), and the reminder waits for the order's policy. The
    database is slow to take the order, so the reminder is logged before the order is
    recorded."""
    business.failing[order_id].add("record_order")
    handle = await start_by_reminder(env, order_id)
    await has_event(handle, "customer_reminded")
    assert business.event_names(order_id) == []  # nothing on record yet
    business.failing[order_id].discard("record_order")
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert [(c.kind.value, c.ref) for c in current.feedback] == [("reminder", "RM-0")]
    assert business.feedback[(order_id, 1)].case.ref == "RM-0"
    # Logged before the order was recorded, the reminder goes on record once it is: the staff
    # read the record (R4.1.3).
    assert business.event_names(order_id)[:2] == ["customer_reminded", "received"]
    await handle.cancel()


async def test_refund_requests_are_cases_and_their_money_is_on_record(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)

    await _apply(handle, "F-1", partial=True, amount="5.00")
    opened = await _recorded(business, order_id, "F-1", RefundState.AWAITING_DECISION)
    assert opened.refund.refunded is None
    assert opened.case is not None and opened.case.text == "少送可乐"  # R4.2.1 the reason kept
    assert opened.case.kind.value == "refund" and opened.case.ref == "F-1"
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="确认少送"),
    )
    agreed = business.refunds[(order_id, "F-1")]
    assert agreed.refund.state is RefundState.AGREED and agreed.refund.refunded == Decimal("5.00")
    assert agreed.refund.decided_by == "M-001" and agreed.refund.decided_at is not None
    assert agreed.case is not None and agreed.case.state is FeedbackState.CLOSED
    assert agreed.case.responses == ["确认少送"]
    assert agreed.case.resolutions == ["partial refund of 5.00 agreed"]

    # The customer withdraws the next one on the platform: closed, nobody answered it.
    await _apply(handle, "F-2", partial=True, amount="10.00")
    await handle.signal(
        OrderWorkflow.platform_refund, PlatformRefund(refund_id="F-2", notify_type="cancelRefund")
    )
    current = await until(handle, lambda s: s.refunds[1].state != "awaiting_decision", "withdrawn")
    withdrawn = await _recorded(business, order_id, "F-2", RefundState.WITHDRAWN)
    assert withdrawn.refund.refunded is None
    assert withdrawn.case is not None and withdrawn.case.responses == []
    assert withdrawn.case.resolutions == ["refund withdrawn"]
    assert [(c.case, c.ref) for c in current.feedback] == [(1, "F-1"), (2, "F-2")]

    # A full refund agreed gives back the order's total, and ends it.
    await _apply(handle, "F-3", partial=False, amount=None)
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F-3", agree=True, reason="未出餐"),
    )
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED
    full = business.refunds[(order_id, "F-3")]
    assert full.refund.refunded == Decimal(58) and full.refund.partial is False
    assert _event(await status(handle), "refund_decided")["case"] == 3


async def test_a_decision_the_platform_has_no_request_for_closes_it(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """The customer withdrew the request on the platform and that push was lost: the platform
    refuses the answer (808, `AlreadyInState`), and the request is closed as withdrawn rather
    than left waiting for a decision nobody can give (the fault run's staff asked 150 times)."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await _apply(handle, "F-1", partial=True, amount="5.00")
    business.refusing[order_id]["refund/agree"] = "AlreadyInState"
    answered = await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="确认少送"),
    )
    assert answered.message == "no open refund request on the platform: closed"
    closed = await _recorded(business, order_id, "F-1", RefundState.WITHDRAWN)
    assert closed.refund.decided_by == "platform" and closed.refund.refunded is None
    assert closed.case is not None and closed.case.state is FeedbackState.CLOSED
    decided = _event(await status(handle), "refund_decided")
    assert decided["not_open_on_platform"] is True and decided["agree"] is True
    with pytest.raises(WorkflowUpdateFailedError):  # decided: nothing left to answer
        await handle.execute_update(
            OrderWorkflow.decide_refund,
            DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="确认少送"),
        )
    await handle.cancel()


# --- the real stack and the statistics ---------------------------------------------------------


async def _decide_refund(
    handle: Handle, sim: Simulator, order_id: int, *, partial: bool, agree: bool, by: str
) -> Decimal:
    refund = sim.apply_refund(order_id, reason="少送一份米饭", partial=partial)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(
            refund_id=str(refund.refund_id),
            notify_type="apply",
            reason=refund.reason,
            partial=partial,
            amount=refund.money if partial else None,
        ),
    )
    key = f"refund#{refund.refund_id}"
    await until(handle, lambda s: any(d.key == key for d in s.deadlines), "refund clock")
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by=by, refund_id=str(refund.refund_id), agree=agree, reason="核实"),
    )
    return refund.money


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


async def test_refunds_and_platform_feedback_in_the_statistics(
    own_env: WorkflowEnvironment, real_worker: Worker, demo_pool: asyncpg.Pool, platform: Any
) -> None:
    sim: Simulator = platform.sim
    # A: a reminder replied, a partial refund agreed and another rejected, then delivered.
    kept = await place(own_env, sim, "SH-XH-001")
    kept_id = int(kept.id.removeprefix("order-"))
    current = await at_stage(kept, Stage.IN_PROGRESS)
    assert current.assignee is not None
    staff, manager = current.assignee.staff_id, current.assignee.manager_id or "M-001"
    remind_id = str(sim.remind(kept_id)["remind_id"])
    await kept.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id=remind_id))
    await has_event(kept, "customer_reminded")
    await kept.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by=staff, remind_id=remind_id, text="马上好")
    )
    partial = await _decide_refund(kept, sim, kept_id, partial=True, agree=True, by=manager)
    await _decide_refund(kept, sim, kept_id, partial=True, agree=False, by=manager)
    await kept.execute_update(OrderWorkflow.mark_ready, MarkReady(by=staff))
    await at_stage(kept, Stage.DELIVERING)
    await kept.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=staff, proof="photo://door")
    )
    assert (await kept.result()).stage is Stage.CLOSED
    # B: a full refund agreed ends the order.
    refunded = await place(own_env, sim, "SH-XH-001")
    refunded_id = int(refunded.id.removeprefix("order-"))
    await at_stage(refunded, Stage.IN_PROGRESS)
    await _decide_refund(refunded, sim, refunded_id, partial=False, agree=True, by=manager)
    assert (await refunded.result()).stage is Stage.CANCELLED

    # On record: every request, the money of the agreed ones.
    rows = await demo_pool.fetch("SELECT order_id, state, refunded FROM refunds")
    assert sorted((int(r["order_id"]), r["state"], r["refunded"]) for r in rows) == sorted(
        [
            (kept_id, "agreed", partial),
            (kept_id, "rejected", Decimal(0)),
            (refunded_id, "agreed", sim.order(refunded_id).order.total),
        ]
    )

    days = await demo_pool.fetchrow(
        "SELECT min((created_at AT TIME ZONE $1)::date) AS first,"
        " max((created_at AT TIME ZONE $1)::date) AS last FROM orders",
        ZONE,
    )
    assert days is not None
    stats = await st.collect(st.Period(days["first"], days["last"]), "store", pool=demo_pool)

    # Amounts against the platform's own figures: B in full, A's partial refund only.
    paid = sum((sim.order(i).order.total for i in (kept_id, refunded_id)), Decimal(0))
    expected_refund = sim.order(refunded_id).order.total + partial
    assert 0 < partial < sim.order(kept_id).order.total
    amount = stats["amount"]
    assert Decimal(amount["paid"]) == paid
    assert Decimal(amount["refunded"]) == expected_refund
    assert Decimal(amount["net"]) == paid - expected_refund

    # Feedback against the workflows' final status: every case, answered and when.
    finals = [await status(kept), await status(refunded)]
    cases = [c for s in finals for c in s.feedback]
    by_kind = Counter(c.kind.value for c in cases)
    assert by_kind == {"reminder": 1, "refund": 3}
    fb = stats["feedback"]
    assert fb["cases"] == 4 and fb["satisfied"] == 0
    assert {k: v["cases"] for k, v in fb["by_kind"].items()} == dict(by_kind)
    assert {k: v["responded"] for k, v in fb["by_kind"].items()} == dict(by_kind)
    opened = {"customer_reminded", "refund_notice"}
    answered = {"reminder_replied", "refund_decided"}
    waits: list[float] = []
    for s in finals:
        first_at = {
            e.details["case"]: e.at for e in s.timeline if e.event in opened and "case" in e.details
        }
        for e in s.timeline:
            if e.event in answered:
                waits.append((e.at - first_at.pop(e.details["case"])).total_seconds())
    first = fb["first_response_seconds"]
    assert first["n"] == len(waits) == 4
    exact = _nearest_rank(waits, 0.5)
    assert Histogram.bucket_of(exact) == Histogram.bucket_of(first["p50"])
    # Their deadlines are counted under their clauses.
    assert stats["deadlines"]["reminder_reply"]["met"] == 1
    assert stats["deadlines"]["refund_decision"]["met"] == 3

"""Every deadline of the policy: the breach at the deadline, the action at the hard limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import settings
from schemas.messages import (
    ConfirmWithCustomer,
    CustomerFeedback,
    CustomerReminder,
    DecideRefund,
    MarkDelivered,
    MarkReady,
    PlatformRefund,
    ReconfirmVisit,
    ReplyReminder,
    ResolveFeedback,
    RespondFeedback,
)
from schemas.order import Stage
from schemas.status import DeadlineState, OrderStatus
from tests.doubles import Business
from tests.orders import (
    SERVICE_STORE,
    Handle,
    at_stage,
    has_event,
    later,
    start,
    status,
    until,
)
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow


def breaches(current: OrderStatus, key: str) -> list[bool]:
    return [b.hard for b in current.breaches if b.key == key]


async def breached(env: WorkflowEnvironment, handle: Handle, key: str, minutes: float) -> None:
    """Skip time by `minutes` and wait until the breach of `key` is recorded."""
    before = len(breaches(await status(handle), key))
    await env.sleep(timedelta(minutes=minutes))
    await until(handle, lambda s: len(breaches(s, key)) > before, f"breach #{before + 1} of {key}")


async def assert_escalated(
    env: WorkflowEnvironment, handle: Handle, business: Business, order_id: str, key: str,
    soft: float, hard: float,
) -> None:  # fmt: skip
    """The default policy for these clauses: supervisor at the deadline, manager at the limit."""
    await breached(env, handle, key, soft + 0.5)
    current = await status(handle)
    assert breaches(current, key) == [False]
    assert current.deadlines and any(
        d.key == key and d.state is DeadlineState.BREACHED for d in current.deadlines
    )
    assert any(key.split("#")[0] in n.subject for n in business.notices_for(order_id, "supervisor"))
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.SLA_BREACHED) is True
    await breached(env, handle, key, hard - soft)
    current = await status(handle)
    assert breaches(current, key) == [False, True]
    assert [b.action for b in current.breaches if b.key == key][-1] == "escalate"
    assert any("hard limit" in n.subject for n in business.notices_for(order_id, "manager"))


async def test_review_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.failing[order_id].add("review_order")  # R2.2.4: a review that will not finish
    handle = await start(env, order_id)
    await at_stage(handle, Stage.REVIEWING)
    await assert_escalated(env, handle, business, order_id, "review", 5, 15)
    business.failing[order_id].clear()
    await env.sleep(timedelta(minutes=2))
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert [d.state for d in current.deadlines if d.key == "review"] == [DeadlineState.MET_LATE]
    await handle.cancel()


async def test_accept_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.failing[order_id].add("confirm")  # R6.1: the platform unreachable
    handle = await start(env, order_id)
    await at_stage(handle, Stage.ACCEPTED)  # confirming on the platform is its first step
    await until(handle, lambda s: any(d.key == "accept" for d in s.deadlines), "accept clock")
    await assert_escalated(env, handle, business, order_id, "accept", 3, 5)
    await handle.cancel()


async def test_assign_deadline_waits_for_capacity(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.refusing[order_id]["assign_order"] = "NoAssigneeAvailable"
    handle = await start(env, order_id)
    await has_event(handle, "waiting_for_capacity")
    await assert_escalated(env, handle, business, order_id, "assign", 3, 10)
    del business.refusing[order_id]["assign_order"]
    await env.sleep(timedelta(minutes=8))  # looks at 1, 3, 7 and 15 minutes (R2.3.2)
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    await handle.cancel()


async def test_confirm_deadline_reassigns_then_escalates(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id, SERVICE_STORE)
    first = (await at_stage(handle, Stage.ASSIGNED)).assignee
    assert first is not None

    await breached(env, handle, "confirm", 15.5)
    await breached(env, handle, "confirm", 15)
    second = (await has_event(handle, "reassigned")).assignee
    assert second is not None and second.staff_id != first.staff_id
    assert (order_id, first.staff_id) in business.released_assignments
    assert any(n.recipient == second.staff_id for n in business.notices_for(order_id, "staff"))
    # The new assignee gets a fresh clock; after max_reassignments (2) it escalates instead.
    await breached(env, handle, "confirm", 15.5)
    await breached(env, handle, "confirm", 15)
    await breached(env, handle, "confirm", 15.5)
    await breached(env, handle, "confirm", 15)
    current = await status(handle)
    assert [b.action for b in current.breaches if b.hard] == ["reassign", "reassign", "escalate"]
    assert current.assignee is not None
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by=current.assignee.staff_id, promised_delivery_at=later(now, 60)),
    )
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.cancel()


async def test_confirm_hard_limit_can_cancel_with_its_code(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERFLOW_POLICY__goods__auto_confirm", "false")
    settings.cache_clear()
    handle = await start(env, order_id)
    await at_stage(handle, Stage.ASSIGNED)
    await breached(env, handle, "confirm", 10.5)
    await breached(env, handle, "confirm", 10)

    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2012
    assert ("cancel", order_id, {"reason_code": 2012}) in business.calls
    assert order_id in business.released_stock
    assert order_id not in business.assignments


async def test_prepare_deadline_follows_the_promised_ready_time(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    current = await until(handle, lambda s: any(d.key == "prepare" for d in s.deadlines), "prepare")
    assert current.promise is not None and current.promise.ready_at is not None
    prepare = next(d for d in current.deadlines if d.key == "prepare")
    assert prepare.due_at == current.promise.ready_at  # R2.4.3 the promise is the deadline
    await assert_escalated(env, handle, business, order_id, "prepare", 30, 45)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    await handle.cancel()


async def test_deliver_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    # The clock starts a step after the stage: wait for it, not only for the stage.
    current = await until(handle, lambda s: any(d.key == "deliver" for d in s.deadlines), "deliver")
    assert current.promise is not None
    deliver = next(d for d in current.deadlines if d.key == "deliver")
    assert deliver.due_at == current.promise.delivery_at
    soft = (deliver.due_at - await env.get_current_time()).total_seconds() / 60
    await assert_escalated(env, handle, business, order_id, "deliver", soft, soft + 20)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="signed by customer")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.cancel()


async def _service_in_progress(env: WorkflowEnvironment, order_id: str) -> Handle:
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, 24 * 60)),
    )
    await at_stage(handle, Stage.IN_PROGRESS)
    return handle


async def test_schedule_deadline_waits_for_a_slot(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.refusing[order_id]["book_service"] = "NoSlotAvailable"
    handle = await _service_in_progress(env, order_id)
    await has_event(handle, "waiting_for_slot")
    await assert_escalated(env, handle, business, order_id, "schedule", 30, 60)
    del business.refusing[order_id]["book_service"]
    await env.sleep(timedelta(minutes=60))  # the longest between two looks (R3.2.1)
    await has_event(handle, "booked")
    await handle.cancel()


async def test_reconfirm_visit_and_execute_deadlines(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await _service_in_progress(env, order_id)
    await has_event(handle, "booked")
    await assert_escalated(env, handle, business, order_id, "reconfirm_visit", 60, 120)
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    current = await until(handle, lambda s: any(d.key == "execute" for d in s.deadlines), "execute")
    execute = next(d for d in current.deadlines if d.key == "execute")
    assert current.booking is not None
    assert execute.started_at == current.booking.slot_start  # from the slot's start
    soft = (execute.due_at - await env.get_current_time()).total_seconds() / 60
    await assert_escalated(env, handle, business, order_id, "execute", soft, soft + 90)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="service report")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.cancel()


async def test_reminder_reply_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    await has_event(handle, "customer_reminded")
    await assert_escalated(env, handle, business, order_id, "reminder#R1", 5, 10)
    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="R1", text="马上就好")
    )
    assert ("remindReply", order_id, {"text": "马上就好"}) in business.calls
    current = await status(handle)
    assert [d.state for d in current.deadlines if d.key == "reminder#R1"] == ["met_late"]
    await handle.cancel()


async def test_refund_decision_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="F1", notify_type="apply", reason="少送了可乐", partial=True),
    )
    await has_event(handle, "refund_notice")
    await assert_escalated(env, handle, business, order_id, "refund#F1", 30, 60)
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F1", agree=True, reason="确认少送"),
    )
    assert "refund/agree" in business.platform_calls(order_id)
    current = await status(handle)
    assert current.stage is Stage.IN_PROGRESS  # a partial refund does not end the order
    await handle.cancel()


async def test_policy_snapshot_is_taken_when_the_order_starts(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERFLOW_POLICY__goods__deadlines__prepare__minutes", "12")
    settings.cache_clear()
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    monkeypatch.setenv("ORDERFLOW_POLICY__goods__deadlines__prepare__minutes", "2")
    settings.cache_clear()
    current = await status(handle)
    assert current.promise is not None and current.promise.ready_at is not None
    assert current.promise.ready_at - current.promise.confirmed_at == timedelta(minutes=12)
    await handle.cancel()


async def test_feedback_response_and_resolution_deadlines(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="inquiry", text="几点能到?")
    )
    await has_event(handle, "feedback_opened")
    await assert_escalated(env, handle, business, order_id, "feedback_response#1.1", 30, 60)
    await handle.execute_update(
        OrderWorkflow.respond_feedback, RespondFeedback(by="S-101", case=1, response="十分钟")
    )
    # The resolution clock runs from when the case was opened (R4.2.3 "in the set time").
    current = await until(
        handle, lambda s: any(d.key == "feedback_resolution#1.1" for d in s.deadlines), "clock"
    )
    resolution = next(d for d in current.deadlines if d.key == "feedback_resolution#1.1")
    soft = (resolution.due_at - await env.get_current_time()).total_seconds() / 60
    await assert_escalated(
        env, handle, business, order_id, "feedback_resolution#1.1", soft, soft + 240
    )
    await handle.execute_update(
        OrderWorkflow.resolve_feedback,
        ResolveFeedback(by="S-101", case=1, resolution="已送达", satisfied=True),
    )
    await handle.cancel()

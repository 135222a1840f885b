"""Orders that take the lifecycle's other branches, driven to their end for the replay set: a
deadline's hard limit with each action, a person's reports, reassignment and cancellation, a
customer's change, a rejection at review, a cancel from Temporal itself, and an order started by
a signal. `tests/scenarios.py` has the main paths and the waits."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from bench.common import environment
from schemas.messages import (
    CancelOrder,
    CustomerChange,
    MarkDelivered,
    Reassign,
    ReconfirmVisit,
    RecordRating,
    ReplyReminder,
    ReportException,
    ReportProgress,
)
from schemas.order import CustomerChanges, Stage
from schemas.review import Outcome, ReviewVerdict, RuleFailure
from tests.doubles import Business
from tests.orders import (
    SERVICE_STORE,
    at_stage,
    confirm_visit,
    deliver_self,
    has_event,
    later,
    start,
    start_by_reminder,
)
from workflows.order import OrderWorkflow


async def hard_limit_escalates(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """The kitchen is late past the prepare clause's hard limit: escalated, then done."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await env.sleep(timedelta(minutes=46))
    await has_event(handle, "hard_limit_passed")
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def hard_limit_cancels(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """A store that confirms takeout by hand misses the confirm clause's hard limit: the
    policy's action cancels the order on the platform with its code."""
    with environment({"ORDERFLOW_POLICY__goods__auto_confirm": "false"}):
        handle = await start(env, order_id)
        await at_stage(handle, Stage.ASSIGNED)
    await env.sleep(timedelta(minutes=21))
    await handle.result()
    return [handle.id]


async def hard_limit_reassigns_then_cancelled(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """A service not confirmed by the hard limit goes to someone else (the service policy's
    action); a manager then cancels it."""
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    await env.sleep(timedelta(minutes=31))
    await has_event(handle, "reassigned")
    await handle.execute_update(
        OrderWorkflow.cancel_order, CancelOrder(by="M-003", reason_code=2007, reason="客户改期")
    )
    await handle.result()
    return [handle.id]


async def reports_and_reschedule(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """Progress reported, an exception rescheduling the promise, a manager's reassignment."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(
        OrderWorkflow.report_progress, ReportProgress(by="S-101", note="在做了", percent=50)
    )
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(
            by="S-101",
            kind="delay",
            detail="出餐慢",
            remedy="reschedule",
            new_promised_at=later(now, 90),
        ),
    )
    await handle.execute_update(OrderWorkflow.reassign, Reassign(by="M-001", reason="换人"))
    await has_event(handle, "reassigned")
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def visit_rebooked(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """A service's visit moved by an exception: a new slot booked, re-confirmed, done."""
    handle = await start(env, order_id, SERVICE_STORE)
    await confirm_visit(env, handle, 24 * 60)
    await has_event(handle, "booked")
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(
            by="T-301",
            kind="delay",
            detail="师傅生病",
            remedy="reschedule",
            new_promised_at=later(now, 48 * 60),
        ),
    )
    await has_event(handle, "rebooked")
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="service report")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.execute_update(OrderWorkflow.record_rating, RecordRating(by="customer", score=5))
    await handle.result()
    return [handle.id]


async def customer_changed(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """The customer changes the address while the kitchen works: reviewed again (R2.4.2)."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.customer_change,
        CustomerChange(changes=CustomerChanges(address="上海市徐汇区宜山路1号"), note="搬家了"),
    )
    await has_event(handle, "customer_changed")
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def rejected(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    business.verdicts[order_id] = [
        ReviewVerdict(
            outcome=Outcome.REJECT,
            failures=[RuleFailure(rule="address_in_area", message="超出配送范围")],
            cancel_code=2001,
            reason="超出配送范围",
        )
    ]
    handle = await start(env, order_id)
    await handle.result()
    return [handle.id]


async def cancelled_in_temporal(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """An engineer cancels the workflow itself: the order is cancelled and compensated."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.cancel()
    await handle.result()
    return [handle.id]


async def started_by_a_signal(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> list[str]:
    """A reminder pushed before the order's own push starts it (signal-with-start), and is
    logged before the order is recorded (the database slow to take the order)."""
    business.failing[order_id].add("record_order")
    handle = await start_by_reminder(env, order_id)
    await has_event(handle, "customer_reminded")
    business.failing[order_id].discard("record_order")
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="RM-0", text="在做")
    )
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


BRANCHES = {
    "hard_limit_escalates": hard_limit_escalates,
    "hard_limit_reassigns_then_cancelled": hard_limit_reassigns_then_cancelled,
    "hard_limit_cancels": hard_limit_cancels,
    "reports_and_reschedule": reports_and_reschedule,
    "visit_rebooked": visit_rebooked,
    "customer_changed": customer_changed,
    "rejected": rejected,
    "cancelled_in_temporal": cancelled_in_temporal,
    "started_by_a_signal": started_by_a_signal,
}

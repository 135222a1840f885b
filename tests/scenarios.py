"""Representative orders, driven to their end; their histories are kept for replay tests."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from schemas.anomaly import Decide, Decision
from schemas.contract import order_workflow_id
from schemas.messages import (
    CustomerFeedback,
    CustomerReminder,
    DecideRefund,
    DeliveryStatus,
    MarkDelivered,
    MarkReady,
    PlatformCancel,
    PlatformRefund,
    ReconfirmVisit,
    RecordRating,
    ReplyReminder,
    ResolveFeedback,
    RespondFeedback,
    RewriteRecord,
)
from schemas.order import Stage
from schemas.patrol import PatrolInput
from schemas.review import AnomalyKind, Outcome, ReviewVerdict, RuleFailure
from tests.branch_scenarios import BRANCHES
from tests.conftest import TASK_QUEUE
from tests.doubles import Business
from tests.orders import (
    COURIER_STORE,
    GOODS_STORE,
    SERVICE_STORE,
    Handle,
    anomaly_open,
    at_stage,
    confirm_visit,
    deliver_self,
    has_event,
    platform_order,
    start,
    until,
)
from tests.time_skipping import terminate_at_rest
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

Scenario = Callable[[WorkflowEnvironment, Business, str], Awaitable[list[str]]]


async def goods(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    handle = await start(env, order_id)
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def visit_to_rating(
    env: WorkflowEnvironment,
    handle: Handle,
    *,
    promised_in: float,
    score: int,
    late_by: timedelta | None = None,
) -> None:
    """A started service order confirmed, booked, re-confirmed, done and rated; its feedback
    window still open."""
    await confirm_visit(env, handle, promised_in)
    await has_event(handle, "booked")
    if late_by is not None:
        await env.sleep(late_by)
        await has_event(handle, "deadline_breached")
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="service report")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.execute_update(
        OrderWorkflow.record_rating, RecordRating(by="customer", score=score)
    )


async def courier(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    handle = await start(env, order_id, COURIER_STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-201"))
    for code in (10, 10, 20, 40):  # the platform pushes one status twice
        await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=code))
    await handle.result()
    return [handle.id]


async def service(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    return await _visit(env, order_id, promised_in=120, score=4)


async def late_visit(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """The visit is re-confirmed past its deadline (R3.2.2): a breach, decided by its timer."""
    return await _visit(env, order_id, promised_in=240, score=3, late_by=timedelta(minutes=61))


async def _visit(
    env: WorkflowEnvironment,
    order_id: str,
    *,
    promised_in: float,
    score: int,
    late_by: timedelta | None = None,
) -> list[str]:
    """A service order booked, re-confirmed (`late_by` past the booking), done and rated."""
    handle = await start(env, order_id, SERVICE_STORE)
    await visit_to_rating(env, handle, promised_in=promised_in, score=score, late_by=late_by)
    await handle.result()
    return [handle.id]


async def rewrite_record(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """A service order whose record is written again when asked (`rewrite_record`: an update's
    answer never came), while it waits for its visit to be confirmed and once it is done."""
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    await handle.signal(OrderWorkflow.rewrite_record, RewriteRecord(by="staff-api"))
    await visit_to_rating(env, handle, promised_in=120, score=5)
    await handle.signal(OrderWorkflow.rewrite_record, RewriteRecord(by="record-check"))
    await handle.result()
    return [handle.id]


async def refund_not_open(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """A refund request the customer withdrew on the platform, the push saying so lost: the
    platform refuses the manager's answer (808), once; the order is then delivered."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(
            refund_id="F-1", notify_type="apply", reason="少送", partial=True, amount=Decimal(5)
        ),
    )
    await has_event(handle, "refund_notice")
    business.refusing[order_id]["refund/agree"] = "AlreadyInState"
    decide = DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="同意")
    with contextlib.suppress(WorkflowUpdateFailedError):  # refused before REFUND_NOT_OPEN_CLOSES
        await handle.execute_update(OrderWorkflow.decide_refund, decide)
    del business.refusing[order_id]["refund/agree"]
    with contextlib.suppress(WorkflowUpdateFailedError):  # since, closed already
        await handle.execute_update(OrderWorkflow.decide_refund, decide)
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def anomaly(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    business.verdicts[order_id] = [
        ReviewVerdict(
            outcome=Outcome.ANOMALY,
            anomaly_kind=AnomalyKind.PRICE,
            failures=[RuleFailure(rule="price_within_tolerance", message="48 vs 38")],
        )
    ]
    handle = await start(env, order_id)
    await anomaly_open(handle)
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, f"anomaly-{order_id}-1")
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.ADJUST_PRICE,
            cause="old price list",
            responsibility="store",
            new_total=Decimal("58.00"),
        ),
    )
    await deliver_self(handle)
    await handle.result()
    return [handle.id, child.id]


async def cancelled(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.platform_cancel,
        PlatformCancel(reason_code=1101, reason="用户取消", deal_op_type=1),
    )
    await handle.result()
    return [handle.id]


async def feedback(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    handle = await start(env, order_id)
    await deliver_self(handle)
    await at_stage(handle, Stage.DELIVERED)
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="complaint", text="凉了")
    )
    await has_event(handle, "feedback_opened")
    for satisfied in (False, False, True):
        await handle.execute_update(
            OrderWorkflow.respond_feedback, RespondFeedback(by="S-101", case=1, response="抱歉")
        )
        await handle.execute_update(
            OrderWorkflow.resolve_feedback,
            ResolveFeedback(by="S-101", case=1, resolution="补偿券", satisfied=satisfied),
        )
    await handle.result()
    return [handle.id]


async def refund(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="F-1", notify_type="apply", reason="不想要了"),
    )
    await has_event(handle, "refund_notice")
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="未出餐"),
    )
    await handle.result()
    return [handle.id]


async def reminder(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """A reminder becomes a feedback case, closed by its reply (R4.2.1)."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="RM-1"))
    await has_event(handle, "customer_reminded")
    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="RM-1", text="马上好")
    )
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def partial_refund(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """A partial refund agreed (its money on record), another withdrawn on the platform."""
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    for refund_id in ("F-1", "F-2"):
        await handle.signal(
            OrderWorkflow.platform_refund,
            PlatformRefund(
                refund_id=refund_id,
                notify_type="apply",
                reason="少送可乐",
                partial=True,
                amount=Decimal("6.50"),
            ),
        )
    await has_event(handle, "refund_notice")
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F-1", agree=True, reason="确认少送"),
    )
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="F-2", notify_type="cancelRefund"),
    )
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def patrol(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """The order found is a child the patrol abandons: on the test server it may end only by
    termination, and before time skips again (tests/time_skipping.py)."""
    business.on_platform_only = [
        platform_order(order_id, GOODS_STORE, await env.get_current_time())
    ]
    with env.auto_time_skipping_disabled():  # the patrol has no timer to skip
        report = await env.client.execute_workflow(
            PatrolWorkflow.run, PatrolInput(), id=f"patrol-{order_id}", task_queue=TASK_QUEUE
        )
    business.on_platform_only = []
    assert report.found == [order_id]
    found = env.client.get_workflow_handle(order_workflow_id(order_id))
    await until(found, lambda s: any(d.key == "prepare" for d in s.deadlines), "the kitchen")
    await terminate_at_rest(found, "found by the patrol scenario; not driven further")
    return [f"patrol-{order_id}"]


async def capacity_wait(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """Nobody is free for a while (R2.3.2): the order looks again until someone is."""
    business.refusing[order_id]["assign_order"] = "NoAssigneeAvailable"
    handle = await start(env, order_id)
    await has_event(handle, "waiting_for_capacity")
    await env.sleep(timedelta(minutes=5))
    del business.refusing[order_id]["assign_order"]
    await env.sleep(timedelta(minutes=2))  # the next look finds it
    await deliver_self(handle)
    await handle.result()
    return [handle.id]


async def slot_wait(env: WorkflowEnvironment, business: Business, order_id: str) -> list[str]:
    """No slot is free for a while (R3.2.1): the visit is booked once one is."""
    business.refusing[order_id]["book_service"] = "NoSlotAvailable"
    handle = await start(env, order_id, SERVICE_STORE)
    await confirm_visit(env, handle, 24 * 60)
    await has_event(handle, "waiting_for_slot")
    await env.sleep(timedelta(minutes=5))
    del business.refusing[order_id]["book_service"]
    await env.sleep(timedelta(minutes=2))  # the next look finds it
    await has_event(handle, "booked")
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="service report")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.execute_update(OrderWorkflow.record_rating, RecordRating(by="customer", score=5))
    await handle.result()
    return [handle.id]


SCENARIOS: dict[str, Scenario] = {
    "goods": goods,
    "courier": courier,
    "service": service,
    "late_visit": late_visit,
    "anomaly": anomaly,
    "cancelled": cancelled,
    "feedback": feedback,
    "refund": refund,
    "patrol": patrol,
    "reminder": reminder,
    "partial_refund": partial_refund,
    "capacity_wait": capacity_wait,
    "slot_wait": slot_wait,
    "rewrite_record": rewrite_record,
    "refund_not_open": refund_not_open,
    **BRANCHES,
}

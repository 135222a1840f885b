"""Every signal and update of OrderWorkflow: taken at the stages that allow it, with its effect,
and refused (updates) or recorded as ignored (signals) where the stage does not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import settings
from schemas.anomaly import Decide
from schemas.messages import (
    CancelOrder,
    ConfirmWithCustomer,
    CustomerChange,
    CustomerFeedback,
    CustomerReminder,
    DecideRefund,
    DeliveryStatus,
    MarkDelivered,
    MarkReady,
    PlatformCancel,
    PlatformRefund,
    Reassign,
    ReconfirmVisit,
    RecordRating,
    ReplyReminder,
    ReportException,
    ReportProgress,
    ResolveFeedback,
    RespondFeedback,
)
from schemas.notices import Notification
from schemas.order import CustomerChanges, OrderItem, Stage
from schemas.records import TimelineEntry
from schemas.review import ReviewVerdict, RuleFailure
from schemas.status import OrderStatus
from tests.doubles import Business
from tests.orders import (
    COURIER_STORE,
    SERVICE_STORE,
    Handle,
    anomaly_open,
    at_stage,
    eventually,
    has_event,
    later,
    start,
    status,
    until,
)
from workflows import search_attributes as sa
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

Setup = Callable[[WorkflowEnvironment, Business, str], Awaitable[Handle]]


# --- helpers ---------------------------------------------------------------------------------


async def refused(handle: Handle, update: Any, arg: Any, fragment: str) -> ApplicationError:
    """The update fails with an ApplicationError whose message says why."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert fragment in cause.message
    return cause


def last(current: OrderStatus, event: str) -> TimelineEntry:
    return next(e for e in reversed(current.timeline) if e.event == event)


def told(business: Business, order_id: str, audience: str) -> list[tuple[str, str]]:
    """Subject and words, without the heading line that names the order."""
    return [(n.subject, n.text.split("\n", 1)[1]) for n in business.notices_for(order_id, audience)]


def case_notices(business: Business, order_id: str) -> list[Notification]:
    """What the owner of feedback case #1 was told."""
    return [
        n for n in business.notices_for(order_id, "staff") if n.subject.startswith("Feedback #1 ")
    ]


def hhmm(moment: datetime) -> str:
    """As a notification says it: the store's time."""
    return moment.astimezone(settings().business.timezone).strftime("%Y-%m-%d %H:%M")


async def finish(handle: Handle) -> None:
    """Cancel the order in Temporal and let it compensate, so the next test starts clean."""
    await handle.cancel()
    await handle.result()


async def anomaly_waiting(business: Business, order_id: str, number: int = 1) -> None:
    """The anomaly child has told its manager and waits (cancelling it earlier trips the
    time-skipping test server while its first activity is only scheduled)."""
    deadline = asyncio.get_running_loop().time() + 15
    while f"anomaly-{order_id}-{number}:1" not in business.notices:
        assert asyncio.get_running_loop().time() < deadline, "the anomaly never told its manager"
        await asyncio.sleep(0.05)


# --- orders at a stage -----------------------------------------------------------------------


async def goods_in_progress(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    return handle


async def pickup_in_progress(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    business.pickup.add(order_id)
    return await goods_in_progress(env, business, order_id)


async def pickup_ready(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await pickup_in_progress(env, business, order_id)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await until(handle, lambda s: any(d.key == "deliver" for d in s.deadlines), "ready")
    return handle


async def courier_ready(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await start(env, order_id, COURIER_STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-201"))
    await until(handle, lambda s: any(d.key == "deliver" for d in s.deadlines), "ready")
    return handle


async def delivering(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await goods_in_progress(env, business, order_id)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    return handle


async def delivered(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await delivering(env, business, order_id)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo://door")
    )
    await at_stage(handle, Stage.DELIVERED)
    return handle


async def rated(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await delivered(env, business, order_id)
    await handle.execute_update(OrderWorkflow.record_rating, RecordRating(by="C", score=5))
    return handle


async def service_assigned(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    return handle


async def service_booked(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await service_assigned(env, business, order_id)
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, 24 * 60)),
    )
    await has_event(handle, "booked")
    return handle


async def service_reconfirmed(
    env: WorkflowEnvironment, business: Business, order_id: str
) -> Handle:
    handle = await service_booked(env, business, order_id)
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    return handle


async def on_hold(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    """R5.2.1 a price anomaly found in review pauses the order at once."""
    business.verdicts[order_id] = [
        ReviewVerdict(
            outcome="anomaly",
            anomaly_kind="price",
            failures=[RuleFailure(rule="price_within_tolerance", message="总价低于成本")],
        )
    ]
    handle = await start(env, order_id)
    await anomaly_open(handle)
    await anomaly_waiting(business, order_id)
    return handle


async def with_feedback(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="complaint", text="太慢了")
    )
    await has_event(handle, "feedback_opened")
    return handle


async def feedback_answered(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await with_feedback(env, business, order_id)
    await handle.execute_update(
        OrderWorkflow.respond_feedback, RespondFeedback(by="S-101", case=1, response="马上")
    )
    return handle


async def refund_rejected(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="F1", notify_type="apply", reason="不想要了"),
    )
    await until(handle, lambda s: bool(s.refunds), "refund request")
    await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F1", agree=False, reason="已在配送"),
    )
    return handle


async def reminder_answered(env: WorkflowEnvironment, business: Business, order_id: str) -> Handle:
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    await has_event(handle, "customer_reminded")
    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="R1", text="在路上")
    )
    return handle


# --- updates refused where the stage does not allow them --------------------------------------

Arg = Callable[[datetime], Any]
REFUSALS: list[tuple[str, Setup, Any, Arg, str]] = [
    # (case, order at, update, input from "now", expected message fragment)
    (
        "confirm-in-progress", goods_in_progress, OrderWorkflow.confirm_with_customer,
        lambda now: ConfirmWithCustomer(by="S-101", promised_delivery_at=later(now, 60)),
        "confirm_with_customer is for an assigned order or one the customer changed; "
        "this order is in_progress",
    ),
    (
        "confirm-in-the-past", service_assigned, OrderWorkflow.confirm_with_customer,
        lambda now: ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, -1)),
        "promised_delivery_at must be in the future",
    ),
    (
        "progress-assigned", service_assigned, OrderWorkflow.report_progress,
        lambda _: ReportProgress(by="T-301", note="出发了"),
        "report_progress is allowed at confirmed, in_progress, delivering; the order is assigned",
    ),
    (
        "progress-delivered", delivered, OrderWorkflow.report_progress,
        lambda _: ReportProgress(by="S-101", note="到了"),
        "the order is delivered",
    ),
    (
        "exception-assigned", service_assigned, OrderWorkflow.report_exception,
        lambda _: ReportException(by="T-301", kind="delay", detail="堵车", remedy="substitute"),
        "report_exception is allowed at confirmed, in_progress, delivering; "
        "the order is assigned",
    ),
    (
        "reschedule-into-the-past", goods_in_progress, OrderWorkflow.report_exception,
        lambda now: ReportException(
            by="S-101", kind="delay", detail="晚点", remedy="reschedule",
            new_promised_at=later(now, -5),
        ),
        "new_promised_at must be in the future",
    ),
    (
        "ready-delivering", delivering, OrderWorkflow.mark_ready,
        lambda _: MarkReady(by="S-101"),
        "mark_ready is allowed at in_progress; the order is delivering",
    ),
    (
        "ready-twice", courier_ready, OrderWorkflow.mark_ready,
        lambda _: MarkReady(by="S-201"),
        "the order is already marked ready",
    ),
    (
        "ready-service", service_booked, OrderWorkflow.mark_ready,
        lambda _: MarkReady(by="T-301"),
        "mark_ready is for goods; a service is finished with mark_delivered",
    ),
    (
        "delivered-by-courier", courier_ready, OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="S-201", proof="photo://door"),
        "the platform's courier delivers this order; its status arrives by itself",
    ),
    (
        "delivered-not-on-its-way", goods_in_progress, OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="S-101", proof="photo://door"),
        "mark_delivered needs the order on its way; it is in_progress",
    ),
    (
        "delivered-twice", delivered, OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="S-101", proof="photo://door"),
        "mark_delivered needs the order on its way; it is delivered",
    ),
    (
        "pickup-not-ready", pickup_in_progress, OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="S-101", proof="pickup code 1234"),
        "mark_delivered needs the order ready for pickup; it is in_progress",
    ),
    (
        "visit-not-reconfirmed", service_booked, OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="T-301", proof="service report"),
        "mark_delivered needs the order re-confirmed and booked; it is in_progress",
    ),
    (
        "reconfirm-assigned", service_assigned, OrderWorkflow.reconfirm_visit,
        lambda _: ReconfirmVisit(by="T-301"),
        "reconfirm_visit is allowed at in_progress; the order is assigned",
    ),
    (
        "reconfirm-goods", goods_in_progress, OrderWorkflow.reconfirm_visit,
        lambda _: ReconfirmVisit(by="S-101"),
        "reconfirm_visit needs a booked visit; none is booked yet",
    ),
    (
        "reconfirm-twice", service_reconfirmed, OrderWorkflow.reconfirm_visit,
        lambda _: ReconfirmVisit(by="T-301"),
        "the visit is already re-confirmed",
    ),
    (
        "rating-in-progress", goods_in_progress, OrderWorkflow.record_rating,
        lambda _: RecordRating(by="C", score=4),
        "record_rating is allowed at delivered; the order is in_progress",
    ),
    (
        "rating-twice", rated, OrderWorkflow.record_rating,
        lambda _: RecordRating(by="C", score=1),
        "the order is already rated (5)",
    ),
    (
        "reassign-to-the-assignee", goods_in_progress, OrderWorkflow.reassign,
        lambda _: Reassign(by="M-001", to="S-101", reason="换人"),
        "S-101 already has this order",
    ),
    (
        "reassign-delivered", delivered, OrderWorkflow.reassign,
        lambda _: Reassign(by="M-001", reason="换人"),
        "reassign is allowed at assigned, confirmed, in_progress, delivering; "
        "the order is delivered",
    ),
    (
        "respond-unknown-case", with_feedback, OrderWorkflow.respond_feedback,
        lambda _: RespondFeedback(by="S-101", case=9, response="?"),
        "no feedback case #9 on order",
    ),
    (
        "respond-twice", feedback_answered, OrderWorkflow.respond_feedback,
        lambda _: RespondFeedback(by="S-101", case=1, response="again"),
        "respond_feedback: feedback #1 is awaiting_resolution",
    ),
    (
        "resolve-unknown-case", goods_in_progress, OrderWorkflow.resolve_feedback,
        lambda _: ResolveFeedback(by="S-101", case=1, resolution="?", satisfied=True),
        "no feedback case #1 on order",
    ),
    (
        "resolve-before-response", with_feedback, OrderWorkflow.resolve_feedback,
        lambda _: ResolveFeedback(by="S-101", case=1, resolution="done", satisfied=True),
        "resolve_feedback: feedback #1 is awaiting_response",
    ),
    (
        "refund-unknown", goods_in_progress, OrderWorkflow.decide_refund,
        lambda _: DecideRefund(by="M-001", refund_id="F9", agree=True, reason="ok"),
        "no refund request F9 on order",
    ),
    (
        "refund-decided-twice", refund_rejected, OrderWorkflow.decide_refund,
        lambda _: DecideRefund(by="M-001", refund_id="F1", agree=True, reason="改主意"),
        "refund F1 is already rejected",
    ),
    (
        "reminder-unknown", goods_in_progress, OrderWorkflow.reply_reminder,
        lambda _: ReplyReminder(by="S-101", remind_id="R9", text="?"),
        "no reminder R9 on order",
    ),
    (
        "reminder-answered-twice", reminder_answered, OrderWorkflow.reply_reminder,
        lambda _: ReplyReminder(by="S-101", remind_id="R1", text="again"),
        "reminder R1 is already answered",
    ),
    (
        "cancel-delivered", delivered, OrderWorkflow.cancel_order,
        lambda _: CancelOrder(by="M-001", reason_code=2007, reason="太晚了"),
        "an order that is delivered cannot be cancelled",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "update", "arg", "fragment"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
async def test_an_update_the_stage_does_not_allow_is_refused_with_the_reason(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    setup: Setup,
    update: Any,
    arg: Arg,
    fragment: str,
) -> None:
    """The contract: an update the stage does not allow is refused (NotAllowed), saying why."""
    handle = await setup(env, business, order_id)
    before = await status(handle)

    cause = await refused(handle, update, arg(await env.get_current_time()), fragment)

    assert cause.type == "NotAllowed"
    after = await status(handle)
    assert after.stage is before.stage
    await finish(handle)


PROGRESS: dict[str, tuple[Any, Arg]] = {
    "confirm_with_customer": (
        OrderWorkflow.confirm_with_customer,
        lambda now: ConfirmWithCustomer(by="S-101", promised_delivery_at=later(now, 60)),
    ),
    "report_progress": (
        OrderWorkflow.report_progress,
        lambda _: ReportProgress(by="S-101", note="在做"),
    ),
    "report_exception": (
        OrderWorkflow.report_exception,
        lambda _: ReportException(by="S-101", kind="delay", detail="晚点", remedy="substitute"),
    ),
    "mark_ready": (OrderWorkflow.mark_ready, lambda _: MarkReady(by="S-101")),
    "mark_delivered": (
        OrderWorkflow.mark_delivered,
        lambda _: MarkDelivered(by="S-101", proof="photo://x"),
    ),
    "reconfirm_visit": (OrderWorkflow.reconfirm_visit, lambda _: ReconfirmVisit(by="S-101")),
    "record_rating": (OrderWorkflow.record_rating, lambda _: RecordRating(by="C", score=5)),
    "reassign": (OrderWorkflow.reassign, lambda _: Reassign(by="M-001", reason="换人")),
}


@pytest.mark.parametrize("name", list(PROGRESS))
async def test_every_progress_update_is_refused_while_the_order_is_on_hold(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str, name: str
) -> None:
    """R5.2.1 processing pauses at once while an anomaly is open."""
    handle = await on_hold(env, business, order_id)
    update, arg = PROGRESS[name]

    await refused(
        handle,
        update,
        arg(await env.get_current_time()),
        f"{name}: the order is on hold until its anomaly is decided (anomaly-{order_id}-1)",
    )

    assert (await status(handle)).stage is Stage.ON_HOLD
    await finish(handle)


# --- updates taken, with their effect ---------------------------------------------------------


async def test_confirm_with_customer_sets_the_promise_and_tells_the_customer(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.4.1 the assignee confirms; R2.4.3 the customer is told the times and promises."""
    handle = await service_assigned(env, business, order_id)
    visit = later(await env.get_current_time(), 180)

    result = await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(
            by="T-301", channel="phone", promised_delivery_at=visit, promises="自带工具"
        ),
    )

    assert result.message == "confirmed with the customer"
    current = await has_event(handle, "booked")
    assert current.stage is Stage.IN_PROGRESS
    assert current.promise is not None
    assert current.promise.delivery_at == visit and current.promise.confirmed_by == "T-301"
    entry = last(current, "confirmed_with_customer")
    assert entry.actor == "T-301" and entry.details["channel"] == "phone"
    assert "confirmed" in [e.event for e in current.timeline]
    assert ("Your order is confirmed", f"Expected visit: {hhmm(visit)}. 自带工具") in told(
        business, order_id, "customer"
    )
    await finish(handle)


async def test_a_customer_change_is_confirmed_again_before_work_goes_on(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.4.2 after a change, confirm_with_customer is taken at in_progress, and needed."""
    handle = await service_booked(env, business, order_id)
    await handle.signal(
        OrderWorkflow.customer_change,
        CustomerChange(changes=CustomerChanges(address="上海市徐汇区宜山路1号")),
    )
    await until(handle, lambda s: s.awaiting_reconfirmation, "re-confirmation asked")
    await refused(
        handle,
        OrderWorkflow.report_progress,
        ReportProgress(by="T-301", note="出发"),
        "report_progress: the customer changed the order; confirm_with_customer first",
    )

    visit = later(await env.get_current_time(), 26 * 60)
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=visit),
    )

    current = await status(handle)
    assert not current.awaiting_reconfirmation and current.stage is Stage.IN_PROGRESS
    assert current.promise is not None and current.promise.delivery_at == visit
    assert ("Your order is confirmed", f"Expected visit: {hhmm(visit)}.") in told(
        business, order_id, "customer"
    )  # R2.4.3 told again
    await handle.execute_update(
        OrderWorkflow.report_progress, ReportProgress(by="T-301", note="出发")
    )
    await finish(handle)


async def test_a_visit_the_customer_moved_is_booked_at_the_new_time(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.4.2 verified again; R3.2.1 the person is scheduled for the time the customer was told."""
    handle = await service_booked(env, business, order_id)
    moved = later(await env.get_current_time(), 3 * 24 * 60)
    await handle.signal(
        OrderWorkflow.customer_change, CustomerChange(changes=CustomerChanges(expected_at=moved))
    )
    await until(handle, lambda s: s.awaiting_reconfirmation, "re-confirmation asked")

    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=moved),
    )

    try:
        await until(
            handle,
            lambda s: s.booking is not None and s.booking.slot_start == moved,
            "booked at the new time",
            patience=2,
        )
    finally:
        await finish(handle)


@pytest.mark.parametrize(
    "setup", [goods_in_progress, delivering], ids=["in_progress", "delivering"]
)
async def test_report_progress_goes_to_the_customer(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str, setup: Setup
) -> None:
    """R3.3.1 progress is reported to the customer."""
    handle = await setup(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.report_progress,
        ReportProgress(by="S-101", note="已出餐, 骑手路上", percent=80),
    )

    assert result.message == "progress reported"
    entry = last(await status(handle), "progress")
    assert entry.actor == "S-101" and entry.details == {"note": "已出餐, 骑手路上", "percent": 80}
    assert ("Progress on your order", "已出餐, 骑手路上") in told(business, order_id, "customer")
    await finish(handle)


async def test_an_exception_substituted_is_told_and_summarised(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.3.2 every exception has a remedy and the customer is told; R3.3.3 summarised."""
    handle = await goods_in_progress(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(by="S-101", kind="shortage", detail="可乐换雪碧", remedy="substitute"),
    )

    assert result.message == "exception recorded, remedy substitute"
    current = await status(handle)
    assert current.stage is Stage.IN_PROGRESS
    entry = last(current, "exception")
    assert entry.actor == "S-101"
    assert entry.details == {"kind": "shortage", "detail": "可乐换雪碧", "remedy": "substitute"}
    assert ("About your order", "A change to your order: 可乐换雪碧") in told(
        business, order_id, "customer"
    )
    await finish(handle)
    assert business.summaries[order_id].exceptions == ["shortage: substitute"]


@pytest.mark.parametrize(
    ("setup", "key", "grace"),
    [(goods_in_progress, "prepare", 15), (delivering, "deliver", 20)],
    ids=["prepare", "deliver"],
)
async def test_an_exception_rescheduled_moves_the_promise_and_the_open_deadline(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    setup: Setup,
    key: str,
    grace: float,
) -> None:
    """R3.3.2 a new promised time: the customer is told, and the deadline follows it."""
    handle = await setup(env, business, order_id)
    new_time = later(await env.get_current_time(), 150)

    await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(
            by="S-101", kind="delay", detail="暴雨", remedy="reschedule", new_promised_at=new_time
        ),
    )

    current = await status(handle)
    assert current.promise is not None and current.promise.delivery_at == new_time
    # Ready and delivery move together; each open deadline follows its own promised time.
    due = new_time
    if key == "prepare":
        assert current.promise.ready_at is not None and current.promise.ready_at < new_time
        due = current.promise.ready_at
    deadline = next(d for d in current.deadlines if d.key == key)
    assert deadline.due_at == due
    assert deadline.hard_at == due + timedelta(minutes=grace)
    assert ("About your order", f"New expected time: {hhmm(new_time)}. 暴雨") in told(
        business, order_id, "customer"
    )
    await finish(handle)


async def test_an_exception_remedied_by_cancelling_cancels_with_its_code(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.3.2 the order cannot be saved: cancelled on the platform with the merchant code."""
    handle = await goods_in_progress(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(
            by="S-101", kind="shortage", detail="红烧肉卖完了", remedy="cancel", cancel_code=2009
        ),
    )
    outcome = await handle.result()

    assert result.message == "exception recorded, remedy cancel"
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2009
    assert ("cancel", order_id, {"reason_code": 2009}) in business.calls
    assert ("About your order", "We have to cancel your order: 红烧肉卖完了") in told(
        business, order_id, "customer"
    )
    assert order_id in business.released_stock


async def test_an_exception_escalated_opens_an_anomaly_and_holds_the_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.3.2 escalated to a manager: R5.2.1 the order pauses until the anomaly is decided."""
    handle = await goods_in_progress(env, business, order_id)

    await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(by="S-101", kind="other", detail="地址不存在", remedy="escalate"),
    )

    current = await anomaly_open(handle)
    assert current.paused_stage is Stage.IN_PROGRESS
    await anomaly_waiting(business, order_id)
    [anomaly] = current.anomalies
    assert anomaly.anomaly_id == f"anomaly-{order_id}-1" and anomaly.detail == "other: 地址不存在"
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, anomaly.anomaly_id)
    assert (await child.describe()).status is WorkflowExecutionStatus.RUNNING
    assert (await handle.describe()).typed_search_attributes.get(sa.ANOMALY_OPEN) is True
    subjects = [s for s, _ in told(business, order_id, "customer")]
    assert "About your order" in subjects
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(by="M-001", decision="dismiss", cause="地址核实无误", responsibility="none"),
    )
    await at_stage(handle, Stage.IN_PROGRESS)
    await finish(handle)


async def test_mark_ready_hands_the_goods_over(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.1.2 stock committed as goods are taken; R4.1.3 the platform follows."""
    handle = await goods_in_progress(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.mark_ready, MarkReady(by="S-101", note="打包好了")
    )

    assert result.message == "ready"
    current = await at_stage(handle, Stage.DELIVERING)
    entry = last(current, "ready")
    assert entry.actor == "S-101" and entry.details == {"note": "打包好了"}
    assert order_id in business.committed
    assert business.platform_calls(order_id)[-2:] == ["preparationMealComplete", "delivering"]
    await finish(handle)


@pytest.mark.parametrize(
    ("setup", "by", "calls", "subject"),
    [
        (delivering, "S-101", ["delivering", "arrived"], "Delivered"),
        (pickup_ready, "S-101", [], "Delivered"),
        (service_reconfirmed, "T-301", ["arrived"], "Service completed"),  # R3.4.1
    ],
    ids=["self-delivery", "pickup", "on-site-service"],
)
async def test_mark_delivered_keeps_the_proof(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    setup: Setup,
    by: str,
    calls: list[str],
    subject: str,
) -> None:
    """R3.4.1 delivered with proof, the customer notified."""
    handle = await setup(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by=by, proof="photo://signed-1234")
    )

    assert result.message == "delivered"
    current = await at_stage(handle, Stage.DELIVERED)
    entry = last(current, "delivered_with_proof")
    assert entry.actor == by and entry.details["proof"] == "photo://signed-1234"
    platform = [c for c in business.platform_calls(order_id) if c in ("delivering", "arrived")]
    assert platform == calls
    await eventually(
        lambda: subject in [s for s, _ in told(business, order_id, "customer")], subject
    )
    await finish(handle)


async def test_mark_delivered_without_proof_is_refused_by_the_model(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.4.1 proof of delivery is required, in the client and on the wire."""
    with pytest.raises(ValidationError, match="proof"):
        MarkDelivered(by="S-101", proof="")
    handle = await delivering(env, business, order_id)

    await refused(
        handle, "mark_delivered", {"by": "S-101", "proof": ""}, "Failed decoding arguments"
    )

    assert (await status(handle)).stage is Stage.DELIVERING
    await finish(handle)


async def test_reconfirm_visit_starts_the_visit_clock(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.2.2 the service person re-confirms time and place beforehand."""
    handle = await service_booked(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301", note="客户在家")
    )

    assert result.message == "visit re-confirmed"
    current = await until(handle, lambda s: any(d.key == "execute" for d in s.deadlines), "visit")
    assert last(current, "visit_reconfirmed").actor == "T-301"
    assert next(d for d in current.deadlines if d.key == "reconfirm_visit").state == "met"
    await finish(handle)


async def test_a_good_rating_is_recorded(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.4.2 the customer rates the order."""
    handle = await delivered(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.record_rating, RecordRating(by="customer", score=5, comment="好吃")
    )

    assert result.message == "rated 5"
    current = await status(handle)
    assert current.rating == 5 and current.feedback == []
    assert last(current, "rated").details == {"score": 5, "comment": "好吃"}
    await finish(handle)
    assert business.summaries[order_id].rating == 5


async def test_a_low_rating_opens_a_complaint(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.4.2 feedback is acted on: a low rating becomes a complaint case (R4.2.2)."""
    handle = await delivered(env, business, order_id)

    await handle.execute_update(
        OrderWorkflow.record_rating, RecordRating(by="customer", score=1, comment="送错了")
    )

    current = await has_event(handle, "feedback_opened")
    assert current.rating == 1
    [case] = current.feedback
    assert case.kind == "complaint" and case.text == "送错了" and case.owner == "S-101"
    assert last(current, "feedback_opened").details["channel"] == "rating"
    await eventually(lambda: bool(case_notices(business, order_id)), "the owner told")
    await finish(handle)


@pytest.mark.parametrize(
    ("to", "new"), [("S-103", "S-103"), (None, "S-102")], ids=["named", "rules"]
)
async def test_reassign_hands_the_order_over_and_frees_the_old_claim(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    to: str | None,
    new: str,
) -> None:
    """R2.3.2 the old assignee's capacity is released; R2.3.3 the new one is told."""
    handle = await goods_in_progress(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.reassign, Reassign(by="M-001", to=to, reason="S-101 请假")
    )

    assert result.message == f"reassigned to {new}"
    current = await status(handle)
    assert current.assignee is not None and current.assignee.staff_id == new
    entry = last(current, "reassigned")
    assert entry.actor == "M-001"
    assert entry.details == {"reason": "S-101 请假", "from_staff": "S-101", "to_staff": new}
    assert (order_id, "S-101") in business.released_assignments
    assert business.assignments[order_id] == new
    assert any(n.recipient == new for n in business.notices_for(order_id, "staff"))
    assert (await handle.describe()).typed_search_attributes.get(sa.ASSIGNEE_ID) == new
    await finish(handle)


async def test_reassign_fails_when_nobody_else_can_take_the_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.3.2 nobody is overloaded: the order stays with its assignee."""
    handle = await goods_in_progress(env, business, order_id)

    cause = await refused(
        handle,
        OrderWorkflow.reassign,
        Reassign(by="M-001", to="S-999", reason="换人"),
        f"nobody else can take order {order_id} now",
    )

    assert cause.type == "NoAssigneeAvailable"
    current = await status(handle)
    assert current.assignee is not None and current.assignee.staff_id == "S-101"
    assert last(current, "reassign_failed").actor == "M-001"
    assert not [r for r in business.released_assignments if r[0] == order_id]
    await finish(handle)


async def test_feedback_is_answered_then_resolved(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R4.2.2 a response and an owner; R4.2.3 the result goes back, unsatisfied goes again."""
    handle = await with_feedback(env, business, order_id)

    answered = await handle.execute_update(
        OrderWorkflow.respond_feedback, RespondFeedback(by="S-102", case=1, response="马上催")
    )
    assert answered.message == "feedback #1 answered"
    case = (await status(handle)).feedback[0]
    assert case.state == "awaiting_resolution" and case.owner == "S-101"
    assert ("About your feedback", "马上催") in told(business, order_id, "customer")

    unsatisfied = await handle.execute_update(
        OrderWorkflow.resolve_feedback,
        ResolveFeedback(by="S-101", case=1, resolution="已送出", satisfied=False),
    )
    assert unsatisfied.message == "feedback #1 awaiting_response"
    case = (await status(handle)).feedback[0]
    assert case.round == 2 and case.state == "awaiting_response"

    await handle.execute_update(
        OrderWorkflow.respond_feedback, RespondFeedback(by="S-101", case=1, response="送券")
    )
    satisfied = await handle.execute_update(
        OrderWorkflow.resolve_feedback,
        ResolveFeedback(by="S-101", case=1, resolution="已补偿", satisfied=True),
    )

    assert satisfied.message == "feedback #1 satisfied"
    current = await status(handle)
    assert current.feedback[0].state == "satisfied"
    assert last(current, "feedback_resolved").details["satisfied"] is True
    assert ("Resolution of your feedback", "已补偿") in told(business, order_id, "customer")
    await finish(handle)


async def apply_refund(handle: Handle, refund_id: str, partial: bool) -> None:
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id=refund_id, notify_type="apply", reason="少送", partial=partial),
    )
    key = f"refund#{refund_id}"
    await until(handle, lambda s: any(d.key == key for d in s.deadlines), "refund clock")


async def test_a_full_refund_agreed_cancels_the_order_with_compensation(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R6.1 the platform's refund rules: a full refund ends the order."""
    handle = await goods_in_progress(env, business, order_id)
    await apply_refund(handle, "F1", partial=False)

    result = await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F1", agree=True, reason="确认未出餐"),
    )
    outcome = await handle.result()

    assert result.message == "refund agreed"
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2005
    calls = business.platform_calls(order_id)
    assert "refund/agree" in calls and "cancel" not in calls  # refunded: already cancelled
    assert order_id in business.released_stock
    assert (order_id, "S-101") in business.released_assignments
    current = await status(handle)
    assert current.refunds[0].state == "agreed" and current.refunds[0].decided_by == "M-001"
    assert last(current, "refund_decided").actor == "M-001"


@pytest.mark.parametrize(
    ("agree", "call", "state"),
    [(True, "refund/agree", "agreed"), (False, "refund/reject", "rejected")],
    ids=["partial-agreed", "rejected"],
)
async def test_a_partial_or_rejected_refund_lets_the_order_go_on(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    agree: bool,
    call: str,
    state: str,
) -> None:
    """R6.1 the refund is answered on the platform within its clause."""
    handle = await goods_in_progress(env, business, order_id)
    await apply_refund(handle, "F1", partial=True)

    result = await handle.execute_update(
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F1", agree=agree, reason="少送可乐"),
    )

    assert result.message == f"refund {state}"
    current = await status(handle)
    assert current.stage is Stage.IN_PROGRESS
    assert current.refunds[0].state == state
    assert next(d for d in current.deadlines if d.key == "refund#F1").state == "met"
    assert business.platform_calls(order_id)[-1] == call
    assert last(current, "refund_decided").details["agree"] is agree
    await finish(handle)


async def test_reply_reminder_answers_on_the_platform(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R4.2.2 a reminder is answered within its clause."""
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    await has_event(handle, "customer_reminded")

    result = await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="R1", text="马上出餐")
    )

    assert result.message == "reminder answered"
    assert ("remindReply", order_id, {"text": "马上出餐"}) in business.calls
    current = await status(handle)
    assert last(current, "reminder_replied").actor == "S-101"
    assert next(d for d in current.deadlines if d.key == "reminder#R1").state == "met"
    await finish(handle)


async def test_cancel_order_cancels_on_the_platform_with_its_code(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await goods_in_progress(env, business, order_id)

    result = await handle.execute_update(
        OrderWorkflow.cancel_order, CancelOrder(by="M-001", reason_code=2006, reason="顾客来电取消")
    )
    outcome = await handle.result()

    assert result.message == "cancellation under way"
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2006
    assert ("cancel", order_id, {"reason_code": 2006}) in business.calls
    entry = last(await status(handle), "cancel_requested")
    assert entry.actor == "M-001" and entry.details == {"reason_code": 2006}


# --- signals -------------------------------------------------------------------------------


async def test_a_customer_change_of_items_is_reviewed_reserved_and_confirmed_again(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.4.2 changed items go back through review, stock and confirmation (R3.1.2)."""
    handle = await goods_in_progress(env, business, order_id)
    items = [OrderItem(sku="G-YXRS", name="鱼香肉丝", quantity=1, unit_price=32)]

    await handle.signal(
        OrderWorkflow.customer_change,
        CustomerChange(changes=CustomerChanges(items=items), note="换菜"),
    )

    current = await until(
        handle,
        lambda s: sum(e.event == "confirmed_with_customer" for e in s.timeline) == 2,
        "confirmed again",
    )
    changed = last(current, "customer_changed")
    assert changed.actor == "customer" and changed.details == {"fields": ["items"], "note": "换菜"}
    assert [e.details["round"] for e in current.timeline if e.event == "review_pass"] == [1, 2]
    assert business.reserved[order_id] == ["G-YXRS"] and order_id in business.released_stock
    # The customer is told by a step that runs after the timeline entry.
    await eventually(
        lambda: (
            [s for s, _ in told(business, order_id, "customer")].count("Your order is confirmed")
            == 2
        ),
        "the customer told of both confirmations",
    )
    await finish(handle)


async def test_a_customer_change_after_delivery_is_ignored(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await delivered(env, business, order_id)

    await handle.signal(
        OrderWorkflow.customer_change, CustomerChange(changes=CustomerChanges(remarks="不要辣"))
    )

    current = await has_event(handle, "customer_change_ignored")
    assert last(current, "customer_change_ignored").details == {"reason": "order is delivered"}
    assert "customer_changed" not in [e.event for e in current.timeline]
    await finish(handle)


async def test_customer_feedback_opens_a_case_for_the_assignee(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R4.2.1 a feedback channel; R4.2.2 someone is put on it, under its deadline."""
    handle = await goods_in_progress(env, business, order_id)

    await handle.signal(
        OrderWorkflow.customer_feedback,
        CustomerFeedback(kind="inquiry", text="几点到?", channel="phone"),
    )

    current = await has_event(handle, "feedback_opened")
    [case] = current.feedback
    assert case.kind == "inquiry" and case.owner == "S-101" and case.state == "awaiting_response"
    assert last(current, "feedback_opened").details == {
        "case": 1,
        "kind": "inquiry",
        "channel": "phone",
    }
    # The response clock starts once the owner has been told, a step after the entry.
    await eventually(lambda: bool(case_notices(business, order_id)), "the owner told")
    await until(
        handle,
        lambda s: any(d.key == "feedback_response#1.1" for d in s.deadlines),
        "the response deadline",
    )
    assert [n.recipient for n in case_notices(business, order_id)] == ["S-101"]
    await finish(handle)


async def test_signals_to_an_order_that_is_ending_are_recorded_as_ignored(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R4.1.3 nothing that arrives is lost: what an ended order cannot take is on its timeline."""
    business.failing[order_id].add("confirm")  # holds the order in a step while it is cancelled
    handle = await start(env, order_id)
    await until(handle, lambda s: any(d.key == "accept" for d in s.deadlines), "confirming")
    await handle.execute_update(
        OrderWorkflow.cancel_order, CancelOrder(by="M-001", reason_code=2006, reason="顾客取消")
    )

    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="complaint", text="怎么取消了")
    )
    await handle.signal(OrderWorkflow.platform_cancel, PlatformCancel(reason_code=1101))
    await handle.signal(
        OrderWorkflow.customer_change, CustomerChange(changes=CustomerChanges(remarks="多放辣"))
    )
    await handle.signal(
        OrderWorkflow.platform_refund, PlatformRefund(refund_id="F1", notify_type="apply")
    )
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    current = await has_event(handle, "customer_change_ignored")
    business.failing[order_id].clear()
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2006
    assert last(current, "feedback_ignored").details == {
        "kind": "complaint",
        "reason": "order has ended",
    }
    assert last(current, "platform_cancel_ignored").details["reason"].startswith("order is")
    assert last(current, "customer_change_ignored").details["reason"].startswith("order is")
    final = await status(handle)
    assert final.feedback == [] and final.refunds == []
    assert "customer_reminded" not in [e.event for e in final.timeline]


@pytest.mark.parametrize(
    ("notice", "partial", "state", "ends"),
    [
        ("agree", True, "agreed", False),
        ("agree", False, "agreed", True),
        ("reject", False, "rejected", False),
        ("cancelRefund", False, "withdrawn", False),
    ],
    ids=["agreed-partial", "agreed-full", "rejected", "withdrawn"],
)
async def test_a_refund_the_platform_settles_itself(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    notice: str,
    partial: bool,
    state: str,
    ends: bool,
) -> None:
    """R6.1 the platform's refund rules: arbitration or a withdrawal settle the request."""
    handle = await goods_in_progress(env, business, order_id)
    await apply_refund(handle, "F1", partial=partial)
    manager = [s for s, _ in told(business, order_id, "manager")]
    assert "Refund request to decide" in manager

    await handle.signal(
        OrderWorkflow.platform_refund, PlatformRefund(refund_id="F1", notify_type=notice)
    )

    current = await until(handle, lambda s: s.refunds[0].state != "awaiting_decision", state)
    assert current.refunds[0].state == state and current.refunds[0].decided_by == "platform"
    assert last(current, "refund_notice").details["notify_type"] == notice
    assert not [c for c in business.platform_calls(order_id) if c.startswith("refund/")]
    if ends:
        outcome = await handle.result()
        assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2005
        assert "cancel" not in business.platform_calls(order_id)
    else:
        assert current.stage is Stage.IN_PROGRESS
        await finish(handle)


async def test_a_repeated_refund_apply_is_not_doubled(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await goods_in_progress(env, business, order_id)
    await apply_refund(handle, "F1", partial=True)

    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(refund_id="F1", notify_type="apply", reason="少送", partial=True),
    )

    current = await until(
        handle, lambda s: sum(e.event == "refund_notice" for e in s.timeline) == 2, "second push"
    )
    assert [r.refund_id for r in current.refunds] == ["F1"]
    assert len(business.notices_for(order_id, "manager")) == 1
    assert [d.key for d in current.deadlines if d.key.startswith("refund")] == ["refund#F1"]
    await finish(handle)


async def test_delivery_status_on_a_self_delivery_order_is_ignored(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await goods_in_progress(env, business, order_id)

    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=20))

    current = await has_event(handle, "delivery_status_ignored")
    assert last(current, "delivery_status_ignored").details == {
        "status": 20,
        "reason": "not a courier order",
    }
    assert current.stage is Stage.IN_PROGRESS
    await finish(handle)


async def test_delivery_status_drives_a_courier_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.4.1 the platform's courier picks up; a courier cancellation is an anomaly (R5.1)."""
    handle = await courier_ready(env, business, order_id)

    await handle.signal(
        OrderWorkflow.delivery_status, DeliveryStatus(status=20, courier_name="张师傅")
    )
    current = await at_stage(handle, Stage.DELIVERING)
    entry = last(current, "courier_status")
    assert entry.actor == "platform" and entry.details == {"status": 20, "courier": "张师傅"}

    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=100))
    current = await anomaly_open(handle)
    assert current.paused_stage is Stage.DELIVERING
    assert current.anomalies[0].detail == "the platform's courier cancelled the delivery"
    await anomaly_waiting(business, order_id)
    await finish(handle)


async def test_a_repeated_reminder_is_not_doubled(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R4.2.2 one reminder, one reply owed, one person told."""
    handle = await goods_in_progress(env, business, order_id)

    for _ in range(2):
        await handle.signal(
            OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1", text="快点")
        )
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R2"))

    current = await until(
        handle, lambda s: any(d.key == "reminder#R2" for d in s.deadlines), "second reminder"
    )
    reminded = [e.details["remind_id"] for e in current.timeline if e.event == "customer_reminded"]
    assert sorted(reminded) == ["R1", "R2"]  # the two handlers run side by side
    assert last(current, "customer_reminded").actor == "customer"
    waiting = [n for n in business.notices_for(order_id, "staff") if "waiting" in n.subject]
    assert [n.recipient for n in waiting] == ["S-101", "S-101"]
    replies = sorted(d.due_at for d in current.deadlines if d.key.startswith("reminder#"))
    told = sorted(n.due_at for n in waiting if n.due_at is not None)
    # by when: the reply's clause, as it opens just after the notice (to the minute it says)
    gaps = [abs((t - r).total_seconds()) for t, r in zip(told, replies, strict=True)]
    assert len(gaps) == 2 and max(gaps) < 1
    await finish(handle)


# --- the status query ------------------------------------------------------------------------


async def test_the_status_query_has_the_contract_fields(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """The contract: `status` is a JSON object other tools read without our models (R4.1.3)."""
    handle = await goods_in_progress(env, business, order_id)

    raw: dict[str, Any] = await handle.query("status", result_type=dict)

    contract = {"order_id", "stage", "order_type", "assignee", "deadlines", "breaches"}
    assert contract | {"anomalies", "timeline"} <= set(raw)
    assert raw["order_id"] == order_id
    assert raw["stage"] == "in_progress" and raw["order_type"] == "goods"
    assert raw["assignee"]["staff_id"] == "S-101"
    assert isinstance(raw["breaches"], list) and isinstance(raw["anomalies"], list)
    assert {"key", "due_at", "state"} <= set(raw["deadlines"][0])
    for entry in raw["timeline"]:
        assert {"at", "event"} <= set(entry)
        datetime.fromisoformat(entry["at"])
    assert [e["event"] for e in raw["timeline"]][:2] == ["received", "reviewing"]
    await finish(handle)

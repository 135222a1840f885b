"""Cancellation at every stage, and the compensation that matches what the order had claimed.

A platform cancellation (the `platform_cancel` signal) is already done on the platform, so the
order only compensates; a merchant cancellation (the `cancel_order` update) also cancels the
order on the platform with its reason code. Cancellation is cooperative: a step in flight
finishes first, so compensation sees every claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.messages import (
    CancelOrder,
    ConfirmWithCustomer,
    MarkDelivered,
    MarkReady,
    PlatformCancel,
    ReportException,
)
from schemas.notices import Topic
from schemas.order import OrderInput, Stage
from schemas.records import CreditEventKind, TimelineEntry
from schemas.review import ReviewVerdict, RuleFailure
from tests.conftest import TASK_QUEUE
from tests.doubles import Business, Transient
from tests.orders import (
    GOODS_STORE,
    SERVICE_STORE,
    Handle,
    anomaly_open,
    at_stage,
    has_event,
    later,
    platform_order,
    start,
    status,
)
from tests.recording import unpatched
from workflows import search_attributes as sa
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.order.patches import RECORD_IN_BURSTS

USER_CANCEL = PlatformCancel(reason_code=1101, reason="用户取消订单", deal_op_type=1)
SYSTEM_CANCEL = PlatformCancel(reason_code=1001, reason="超时未确认, 系统取消", deal_op_type=5)
MERCHANT_CANCEL = CancelOrder(by="M-001", reason_code=2006, reason="顾客来电要求取消")


@dataclass
class Held:
    """An order held at a stage, with what it has claimed by then."""

    handle: Handle
    stock: bool = False
    assignee: str | None = None
    booking: bool = False
    accepted: bool = False  # confirmed on the platform
    let_go: Callable[[], None] = field(default=lambda: None)  # a held step may finish now


Setup = Callable[[WorkflowEnvironment, Business, str], Awaitable[Held]]


class StallOn(dict[int, TimelineEntry]):
    """An order's event log whose `record_event` fails, and is retried, for the named events."""

    def __init__(self, *events: str) -> None:
        super().__init__()
        self.events = set(events)

    def __setitem__(self, seq: int, entry: TimelineEntry) -> None:
        if entry.event in self.events:
            raise Transient(f"recording {entry.event} is failing")
        super().__setitem__(seq, entry)


async def in_flight(
    handle: Handle, activity: str, business: Business | None = None, patience: float = 15
) -> None:
    """Wait until `activity` is scheduled on the server, or (a local activity, which the server
    does not see) has failed once in `business` and is being retried."""
    deadline = asyncio.get_running_loop().time() + patience
    order_id = handle.id.removeprefix("order-")
    while True:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(a.activity_type.name == activity for a in pending):
            return
        if business is not None and business.failed[order_id, activity]:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{activity} never started"
        await asyncio.sleep(0.05)


async def anomaly_waiting(business: Business, order_id: str, patience: float = 15) -> None:
    """Wait until the anomaly child has told its manager and waits for a decision.

    Cancelling the child while its first activity is only scheduled trips the time-skipping
    test server (ACTIVITY_UNKNOWN on the cancel command), so the tests cancel after this.
    """
    deadline = asyncio.get_running_loop().time() + patience
    while f"anomaly-{order_id}-1:1" not in business.notices:
        assert asyncio.get_running_loop().time() < deadline, "the anomaly never told its manager"
        await asyncio.sleep(0.05)


# --- holding an order at each stage ----------------------------------------------------------


async def received(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    business.failing[order_id].add("record_order")
    handle = await start(env, order_id)
    await in_flight(handle, "record_order", business)
    return Held(handle, let_go=business.failing[order_id].clear)


async def reviewing(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    business.failing[order_id].add("review_order")
    handle = await start(env, order_id)
    await at_stage(handle, Stage.REVIEWING)
    await in_flight(handle, "review_order", business)
    return Held(handle, let_go=business.failing[order_id].clear)


async def accepted(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    business.refusing[order_id]["assign_order"] = "NoAssigneeAvailable"
    handle = await start(env, order_id)
    await has_event(handle, "waiting_for_capacity")
    assert (await status(handle)).stage is Stage.ACCEPTED
    return Held(handle, stock=True, accepted=True)


async def assigned(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    handle = await start(env, order_id, SERVICE_STORE)
    current = await at_stage(handle, Stage.ASSIGNED)
    assert current.assignee is not None
    return Held(handle, assignee=current.assignee.staff_id, accepted=True)


async def confirmed(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    """`confirmed` passes at once; recording its event fails for a while to hold it there.
    Only an order started before RECORD_IN_BURSTS waits for its lines to go on record: since,
    `confirmed` and `in_progress` are entered in one workflow task, and nothing is held
    between them."""
    log = business.events[order_id] = StallOn("confirmed")
    with unpatched(RECORD_IN_BURSTS):
        handle = await start(env, order_id)
        current = await at_stage(handle, Stage.CONFIRMED)
    assert current.assignee is not None
    return Held(
        handle, stock=True, assignee=current.assignee.staff_id, accepted=True,
        let_go=log.events.clear,
    )  # fmt: skip


async def goods_in_progress(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    handle = await start(env, order_id)
    current = await at_stage(handle, Stage.IN_PROGRESS)
    assert current.assignee is not None
    return Held(handle, stock=True, assignee=current.assignee.staff_id, accepted=True)


async def service_in_progress(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, 24 * 60)),
    )
    current = await has_event(handle, "booked")
    assert current.stage is Stage.IN_PROGRESS and current.assignee is not None
    return Held(handle, assignee=current.assignee.staff_id, booking=True, accepted=True)


async def delivering(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    current = await at_stage(handle, Stage.DELIVERING)
    assert current.assignee is not None
    return Held(handle, stock=True, assignee=current.assignee.staff_id, accepted=True)


async def on_hold(env: WorkflowEnvironment, business: Business, order_id: str) -> Held:
    """An anomaly found in review: the order pauses before anything is claimed (R5.2.1)."""
    business.verdicts[order_id] = [
        ReviewVerdict(
            outcome="anomaly",
            anomaly_kind="price",
            failures=[RuleFailure(rule="price_within_tolerance", message="总价偏低")],
        )
    ]
    handle = await start(env, order_id)
    current = await anomaly_open(handle)
    assert current.paused_stage is Stage.REVIEWING
    await anomaly_waiting(business, order_id)
    return Held(handle)


STAGES: dict[str, Setup] = {
    "received": received,
    "reviewing": reviewing,
    "accepted": accepted,
    "assigned": assigned,
    "confirmed": confirmed,
    "in_progress-goods": goods_in_progress,
    "in_progress-service": service_in_progress,
    "delivering": delivering,
    "on_hold": on_hold,
}
KINDS: dict[str, PlatformCancel | CancelOrder] = {
    "user": USER_CANCEL,
    "system": SYSTEM_CANCEL,
    "merchant": MERCHANT_CANCEL,
}


async def cancel(handle: Handle, how: PlatformCancel | CancelOrder) -> None:
    if isinstance(how, PlatformCancel):
        await handle.signal(OrderWorkflow.platform_cancel, how)
    else:
        await handle.execute_update(OrderWorkflow.cancel_order, how)


def staff_told(business: Business, order_id: str, staff_id: str) -> bool:
    return any(
        n.recipient == staff_id and n.topic is Topic.CANCELLED_FOR_STAFF
        for n in business.notices_for(order_id, "staff")
    )


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("stage", list(STAGES))
async def test_cancellation_at_each_stage_compensates_what_was_claimed(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    stage: str,
    kind: str,
) -> None:
    """R6.1 a platform cancellation is not sent back; claims released (R3.1.2, R2.3.2),
    everyone told, the summary recorded (R3.3.3)."""
    how = KINDS[kind]
    held = await STAGES[stage](env, business, order_id)
    handle = held.handle

    await cancel(handle, how)
    held.let_go()
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED
    assert outcome.cancel_code == how.reason_code
    cancels = [p for name, oid, p in business.calls if oid == order_id and name == "cancel"]
    if isinstance(how, CancelOrder):
        assert cancels == [{"reason_code": how.reason_code}]
    else:
        assert cancels == []
    # Compensation releases exactly what was claimed.
    assert (order_id in business.released_stock) == (order_id in business.reserved)
    if held.stock:
        assert order_id in business.released_stock
    if stage != "reviewing":  # see test_a_cancellation_during_review_claims_no_stock
        assert (order_id in business.reserved) == held.stock
    released = [staff for oid, staff in business.released_assignments if oid == order_id]
    assert released == ([held.assignee] if held.assignee else [])
    assert order_id not in business.assignments
    assert (order_id in business.released_bookings) == held.booking
    # Everyone concerned is told.
    if held.assignee:
        assert staff_told(business, order_id, held.assignee)
    told = [n.subject for n in business.notices_for(order_id, "customer")]
    assert "Your order was cancelled" in told
    # A user's cancellation of an accepted order counts against their credit (R5.3.3).
    credit = [c for c in business.credit if c.order_id == order_id]
    cancellation = [c for c in credit if c.kind is CreditEventKind.CANCELLATION]
    if how is USER_CANCEL and held.accepted:
        assert len(cancellation) == 1 and cancellation[0].note == USER_CANCEL.reason
    elif how is not USER_CANCEL:
        assert cancellation == []  # before acceptance: test_a_user_cancellation_before_accept...
    # Recorded: the timeline, the summary, the search attribute.
    final = await status(handle)
    assert final.stage is Stage.CANCELLED
    last = final.timeline[-1]
    assert last.event == "cancelled" and last.details["cancel_code"] == how.reason_code
    assert last.details["by"] == ("M-001" if isinstance(how, CancelOrder) else "platform")
    expected = [
        name
        for name, claimed in (
            ("stock", held.stock),
            ("booking", held.booking),
            ("assignee capacity", held.assignee is not None),
        )
        if claimed
    ]
    if stage != "reviewing":
        assert last.details["released"] == expected
    assert business.event_names(order_id)[-1] == "cancelled"
    assert business.summaries[order_id].outcome is Stage.CANCELLED
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.ORDER_STAGE) == "cancelled"
    if stage == "on_hold":  # R5.2.4 the anomaly ends with the order, its outcome on record
        assert attributes.get(sa.ANOMALY_OPEN) is False
        await anomaly_cancelled(env, business, order_id)


async def anomaly_cancelled(env: WorkflowEnvironment, business: Business, order_id: str) -> None:
    anomaly_id = f"anomaly-{order_id}-1"
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, anomaly_id)
    assert (await child.describe()).status is WorkflowExecutionStatus.CANCELED
    record = business.anomalies[anomaly_id]
    assert record.outcome is not None and record.outcome.decision == "cancel"
    assert record.outcome.cause == "the order ended before a decision"


async def test_the_anomaly_of_a_cancelled_order_is_shown_ended(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R5.2.4 the outcome is recorded for lookup and statistics, on the order too."""
    handle = (await on_hold(env, business, order_id)).handle
    await handle.signal(OrderWorkflow.platform_cancel, SYSTEM_CANCEL)
    await handle.result()

    view = (await status(handle)).anomalies[0]
    assert view.closed_at is not None and view.decision == "cancel"
    assert business.summaries[order_id].anomalies == ["price: cancel"]


async def test_cancelling_while_an_escalated_anomaly_is_open_ends_cancelled(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.3.2 an escalated exception holds the order; a cancellation still ends it cleanly."""
    held = await goods_in_progress(env, business, order_id)
    handle = held.handle
    await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(by="S-101", kind="shortage", detail="红烧肉卖完了", remedy="escalate"),
    )
    await anomaly_open(handle)
    await anomaly_waiting(business, order_id)

    await handle.signal(OrderWorkflow.platform_cancel, USER_CANCEL)
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED
    assert order_id in business.released_stock
    assert [s for o, s in business.released_assignments if o == order_id] == [held.assignee]
    final = await status(handle)
    assert final.stage is Stage.CANCELLED and final.timeline[-1].event == "cancelled"
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.ORDER_STAGE) == "cancelled"
    assert attributes.get(sa.ANOMALY_OPEN) is False
    await anomaly_cancelled(env, business, order_id)


@pytest.mark.parametrize(
    "stage",
    [
        "received",
        "reviewing",
        "on_hold",
    ],
)
async def test_a_user_cancellation_before_acceptance_costs_no_credit(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str, stage: str
) -> None:
    """R5.3.3 the credit profile counts cancellations of orders the store had accepted."""
    held = await STAGES[stage](env, business, order_id)
    await held.handle.signal(OrderWorkflow.platform_cancel, USER_CANCEL)
    held.let_go()
    assert (await held.handle.result()).stage is Stage.CANCELLED

    assert "confirm" not in business.platform_calls(order_id)  # never accepted
    assert [c for c in business.credit if c.order_id == order_id] == []


async def test_a_cancellation_during_review_claims_no_stock(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R3.1.2 no stock is held for an order that is already cancelled."""
    held = await reviewing(env, business, order_id)
    await held.handle.signal(OrderWorkflow.platform_cancel, SYSTEM_CANCEL)
    held.let_go()
    await held.handle.result()

    assert order_id not in business.reserved


async def test_a_cancellation_waits_for_the_step_being_retried(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R6.1 the platform confirm that is being retried finishes, then the order compensates."""
    business.failing[order_id].add("confirm")
    handle = await start(env, order_id)
    await in_flight(handle, "platform_confirm")
    assert order_id in business.reserved

    await handle.execute_update(OrderWorkflow.cancel_order, MERCHANT_CANCEL)
    # Accepted, still waiting for its first step (TOLD_AND_SHOWN_WITH_THE_WORK)
    assert (await status(handle)).stage is Stage.ACCEPTED
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(OrderWorkflow.cancel_order, MERCHANT_CANCEL)
    assert isinstance(again.value.cause, ApplicationError)
    assert "cannot be cancelled" in again.value.cause.message
    business.failing[order_id].clear()
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2006
    assert business.platform_calls(order_id) == ["poi_received", "confirm", "cancel"]
    assert order_id in business.released_stock
    events = business.event_names(order_id)
    # Shown accepted before its confirm (TOLD_AND_SHOWN_WITH_THE_WORK), it went no further.
    assert events[events.index("accepted") :] == ["accepted", "cancel_requested", "cancelled"]


async def test_a_cancel_sent_to_a_closed_order_is_rejected(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo://door")
    )
    assert (await handle.result()).stage is Stage.CLOSED

    with pytest.raises(RPCError) as rejected:
        await handle.signal(OrderWorkflow.platform_cancel, USER_CANCEL)
    assert rejected.value.status is RPCStatusCode.NOT_FOUND  # the workflow is complete
    assert "cancel" not in business.platform_calls(order_id)


async def test_an_order_recorded_before_the_cancel_has_its_cancellation_recorded(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R1.3 recorded, but not yet acknowledged on the platform: its end is recorded too."""
    business.failing[order_id].add("poi_received")
    handle = await start(env, order_id)
    await in_flight(handle, "platform_receive")  # record_order has completed

    await handle.signal(OrderWorkflow.platform_cancel, SYSTEM_CANCEL)
    business.failing[order_id].clear()
    assert (await handle.result()).stage is Stage.CANCELLED

    assert "cancelled" in business.event_names(order_id)
    assert order_id in business.summaries


async def test_an_order_that_starts_cancelled_on_the_platform_is_recorded_and_ends(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R2.1.2 the patrol found it after the platform had cancelled it: on record, ended, and
    nothing asked of the platform (it would refuse with 808), as its cancellation push would."""
    order = platform_order(order_id, GOODS_STORE, await env.get_current_time())
    handle = await env.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order, source="patrol", platform_cancel=SYSTEM_CANCEL),
        id=f"order-{order_id}",
        task_queue=TASK_QUEUE,
    )

    assert (await handle.result()).stage is Stage.CANCELLED
    timeline = [e.event for e in (await status(handle)).timeline]
    assert timeline[-2:] == ["platform_cancelled", "cancelled"]
    assert "cancelled" in business.event_names(order_id)
    assert business.platform_calls(order_id) == []
    assert order_id in business.summaries

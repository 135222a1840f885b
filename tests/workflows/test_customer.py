"""The customer's side: changes after confirmation (R2.4.2) and feedback until satisfied (R4.2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.messages import (
    ConfirmWithCustomer,
    CustomerChange,
    CustomerFeedback,
    MarkDelivered,
    MarkReady,
    ReconfirmVisit,
    ResolveFeedback,
    RespondFeedback,
)
from schemas.order import CustomerChanges, OrderItem, Stage
from schemas.review import Outcome, ReviewVerdict, RuleFailure
from schemas.status import FeedbackState
from tests.doubles import Business
from tests.orders import (
    SERVICE_STORE,
    Handle,
    at_stage,
    eventually,
    has_event,
    later,
    start,
    status,
    until,
)
from workflows.order import OrderWorkflow


async def confirmed_service(env: WorkflowEnvironment, order_id: str) -> Handle:
    handle = await start(env, order_id, SERVICE_STORE)
    await at_stage(handle, Stage.ASSIGNED)
    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, 24 * 60)),
    )
    await has_event(handle, "booked")
    return handle


async def test_a_change_after_confirmation_is_reviewed_and_confirmed_again(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await confirmed_service(env, order_id)

    await handle.signal(
        OrderWorkflow.customer_change,
        CustomerChange(changes=CustomerChanges(address="上海市徐汇区宜山路1号"), note="搬家了"),
    )
    changed = await until(handle, lambda s: s.awaiting_reconfirmation, "re-confirmation asked")
    reviews = [e for e in changed.timeline if e.event == "review_pass"]
    assert [e.details["round"] for e in reviews] == [1, 2]  # back through review
    await eventually(  # the assignee is told a step after the status shows it
        lambda: any(
            "confirm with the customer again" in n.text.lower()
            for n in business.notices_for(order_id, "staff")
        ),
        "the assignee told to confirm again",
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    assert "confirm_with_customer first" in str(refused.value.cause)

    now = await env.get_current_time()
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(by="T-301", promised_delivery_at=later(now, 26 * 60)),
    )
    again = await until(handle, lambda s: not s.awaiting_reconfirmation, "re-confirmed")
    assert [d.state for d in again.deadlines if d.key.startswith("confirm#")] == ["met"]
    # The visit is booked again for the new time, a step after the confirmation.
    await has_event(handle, "rebooked")
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="report")
    )
    assert (await handle.result()).stage is Stage.CLOSED


async def test_a_goods_change_of_items_reserves_stock_again_and_reconfirms_itself(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    items = [OrderItem(sku="G-XLB", name="小笼包", quantity=2, unit_price=Decimal(22))]
    await handle.signal(
        OrderWorkflow.customer_change, CustomerChange(changes=CustomerChanges(items=items))
    )
    await until(handle, lambda s: business.reserved.get(order_id) == ["G-XLB"], "re-reserved")
    assert order_id in business.released_stock
    current = await until(
        handle,
        lambda s: sum(e.event == "confirmed_with_customer" for e in s.timeline) == 2,
        "automatic re-confirmation",
    )
    assert not current.awaiting_reconfirmation
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    await handle.cancel()


async def test_a_change_the_review_rejects_cancels_the_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await confirmed_service(env, order_id)
    business.verdicts[order_id] = [
        ReviewVerdict(
            outcome=Outcome.REJECT,
            reason="address outside the service area",
            cancel_code=2010,
            failures=[RuleFailure(rule="within_delivery_radius", message="31 km away")],
        )
    ]
    await handle.signal(
        OrderWorkflow.customer_change,
        CustomerChange(
            changes=CustomerChanges(address="江苏省苏州市", latitude=31.3, longitude=120.6)
        ),
    )
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2010
    assert order_id in business.released_bookings


async def feedback_round(handle: Handle, case: int, satisfied: bool) -> None:
    await handle.execute_update(
        OrderWorkflow.respond_feedback,
        RespondFeedback(by="S-101", case=case, response="非常抱歉, 我们马上处理"),
    )
    await handle.execute_update(
        OrderWorkflow.resolve_feedback,
        ResolveFeedback(by="S-101", case=case, resolution="补送一份", satisfied=satisfied),
    )


async def delivered_goods(env: WorkflowEnvironment, order_id: str) -> Handle:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo")
    )
    await at_stage(handle, Stage.DELIVERED)
    return handle


async def test_a_complaint_loops_three_rounds_until_the_customer_is_satisfied(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await delivered_goods(env, order_id)
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="complaint", text="汤洒了")
    )
    await has_event(handle, "feedback_opened")

    await feedback_round(handle, 1, satisfied=False)
    await feedback_round(handle, 1, satisfied=False)
    middle = await status(handle)
    assert (
        middle.feedback[0].round == 3
        and middle.feedback[0].state is FeedbackState.AWAITING_RESPONSE
    )
    await feedback_round(handle, 1, satisfied=True)

    outcome = await handle.result()  # the window passes and the order closes
    assert outcome.stage is Stage.CLOSED
    case = (await handle.query(OrderWorkflow.status)).feedback[0]
    assert case.state is FeedbackState.SATISFIED
    assert len(case.responses) == len(case.resolutions) == 3
    told = [n.subject for n in business.notices_for(order_id, "customer")]
    assert told.count("About your feedback") == 3 and told.count("Resolution of your feedback") == 3
    keys = [d.key for d in (await handle.query(OrderWorkflow.status)).deadlines]
    assert {f"feedback_response#1.{n}" for n in (1, 2, 3)} <= set(keys)  # a clock per round
    on_record = business.feedback[(order_id, 1)]  # the last state is the one on record
    assert on_record.satisfied is True and on_record.case.state is FeedbackState.SATISFIED
    summary = business.summaries[order_id]
    assert summary.feedback_rounds == 3
    assert summary.improvements == ["feedback rounds: #1 (complaint) took 3"]


async def test_an_unsatisfied_customer_after_the_last_round_brings_in_a_manager(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await delivered_goods(env, order_id)
    await handle.signal(
        OrderWorkflow.customer_feedback, CustomerFeedback(kind="dispute", text="没收到饮料")
    )
    await has_event(handle, "feedback_opened")
    for _ in range(3):
        await feedback_round(handle, 1, satisfied=False)
    case = (await status(handle)).feedback[0]
    assert case.state is FeedbackState.ESCALATED and case.owner == "M-001"
    assert any("still unsatisfied" in n.subject for n in business.notices_for(order_id, "manager"))
    with pytest.raises(WorkflowUpdateFailedError):
        await feedback_round(handle, 1, satisfied=True)
    assert (await handle.result()).stage is Stage.CLOSED

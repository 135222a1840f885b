"""A matter a person answers is answered once: two answers at the same time, one is refused.

Each answer's handler awaits the platform (or the customer's notice) before the matter changes.
The tests hold that step failing, so the first answer is in flight, send two answers at once,
and then let the step through: exactly one is carried out, to the platform once.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.feedback import FeedbackState
from schemas.messages import (
    CustomerReminder,
    DecideRefund,
    PlatformRefund,
    ReplyReminder,
    ResolveFeedback,
    UpdateResult,
)
from schemas.status import RefundState
from tests.doubles import Business
from tests.orders import Handle, has_event, status, until
from tests.workflows.test_messages import feedback_answered, goods_in_progress
from workflows.order import OrderWorkflow


async def _both(
    handle: Handle, business: Business, held: set[str], update: Any, first: Any, second: Any
) -> list[str]:
    """Sends both at once while `held` steps fail; once one is answered, lets them through.
    What each caller got: the handler's result, or the refusal's message."""
    order_id = handle.id.removeprefix("order-")
    business.failing[order_id] |= held

    async def send(arg: Any) -> str:
        try:
            result: UpdateResult = await handle.execute_update(update, arg)
            return result.message
        except WorkflowUpdateFailedError as err:
            assert isinstance(err.cause, ApplicationError)
            return f"refused: {err.cause.message}"

    calls = [asyncio.create_task(send(first)), asyncio.create_task(send(second))]
    done, _ = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED, timeout=30)
    assert done, "neither answer came back while the first was held"
    business.failing[order_id] -= held
    return sorted(await asyncio.gather(*calls), key=lambda a: a.startswith("refused"))


async def test_a_refund_is_agreed_or_rejected_never_both(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(
        OrderWorkflow.platform_refund,
        PlatformRefund(
            refund_id="F1", notify_type="apply", reason="少送可乐", partial=True, amount=Decimal(5)
        ),
    )
    await until(handle, lambda s: bool(s.refunds), "the refund request")
    answers = await _both(
        handle,
        business,
        {"refund/agree", "refund/reject"},
        OrderWorkflow.decide_refund,
        DecideRefund(by="M-001", refund_id="F1", agree=True, reason="少送"),
        DecideRefund(by="M-002", refund_id="F1", agree=False, reason="已送达"),
    )

    assert answers[1] == "refused: refund F1 is being answered already"
    decided = [c for c in business.platform_calls(order_id) if c.startswith("refund/")]
    assert len(decided) == 1
    state = "agreed" if decided == ["refund/agree"] else "rejected"
    assert answers[0] == f"refund {state}"
    current = await status(handle)
    assert current.refunds[0].state is RefundState(state)
    await handle.cancel()


async def test_a_reminder_is_replied_to_once(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    await has_event(handle, "customer_reminded")
    answers = await _both(
        handle,
        business,
        {"remindReply"},
        OrderWorkflow.reply_reminder,
        ReplyReminder(by="S-101", remind_id="R1", text="在路上"),
        ReplyReminder(by="S-102", remind_id="R1", text="五分钟"),
    )

    assert answers == ["reminder answered", "refused: reminder R1 is being answered already"]
    await has_event(handle, "reminder_replied")
    assert business.platform_calls(order_id).count("remindReply") == 1
    await handle.cancel()


async def test_a_feedback_round_is_resolved_once(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await feedback_answered(env, business, order_id)
    answers = await _both(
        handle,
        business,
        {"notify"},
        OrderWorkflow.resolve_feedback,
        ResolveFeedback(by="S-101", case=1, resolution="补送一份", satisfied=True),
        ResolveFeedback(by="S-102", case=1, resolution="退五元", satisfied=False),
    )

    assert answers[1] == "refused: feedback #1 is being answered already"
    current = await has_event(handle, "feedback_resolved")
    [case] = current.feedback
    assert answers[0] == f"feedback #1 {case.state.value}"
    if case.state is FeedbackState.SATISFIED:
        assert (case.resolutions, case.round) == (["补送一份"], 1)
    else:  # the unsatisfied answer won: the case is worked in a second round (R4.2.3)
        assert (case.resolutions, case.round) == (["退五元"], 2)
    await handle.cancel()


async def test_a_failed_answer_frees_the_matter_for_the_next(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """The platform refuses the reply for good: the reminder can be answered again."""
    handle = await goods_in_progress(env, business, order_id)
    await handle.signal(OrderWorkflow.customer_reminder, CustomerReminder(remind_id="R1"))
    await has_event(handle, "customer_reminded")
    business.refusing[order_id]["remindReply"] = "PlatformRefused"
    try:
        await handle.execute_update(
            OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="R1", text="稍等")
        )
    except WorkflowUpdateFailedError:
        pass
    else:
        raise AssertionError("the refused reply was taken")
    del business.refusing[order_id]["remindReply"]
    await handle.execute_update(
        OrderWorkflow.reply_reminder, ReplyReminder(by="S-101", remind_id="R1", text="在路上")
    )
    await has_event(handle, "reminder_replied")
    await handle.cancel()

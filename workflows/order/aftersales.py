"""After-sales (R4.2, R4.3.1): feedback cases, reminders, refunds and the rating.

Every matter is a numbered feedback case on record (R4.2.1). A customer's feedback is worked
in rounds until they are satisfied or a manager owns it; a reminder (催单) or a refund request
comes from the platform and is answered there, in one round. Each waits under its own clause,
and a delivered order closes only once none is open.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.order import cases
from workflows.order.cases import Cases
from workflows.order.deadlines import Deadlines
from workflows.order.entity import Order, not_allowed
from workflows.order.patches import REFUND_NOT_OPEN_CLOSES
from workflows.order.state import CancelRequest

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderRecords
    from activities.platform_calls import PlatformCalls
    from meituan.client import AlreadyInState
    from schemas.contract import Event, deadline_key
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.messages import (
        CustomerFeedback,
        CustomerReminder,
        DecideRefund,
        FeedbackKind,
        PlatformRefund,
        RecordRating,
        RefundNotice,
        ReplyReminder,
        ResolveFeedback,
        RespondFeedback,
        UpdateResult,
    )
    from schemas.notices import Audience, Topic
    from schemas.order import Stage
    from schemas.platform_calls import PlatformRefundAnswer, PlatformReminderReply
    from schemas.policy import Clause
    from schemas.records import RecordRefund
    from schemas.status import RefundRequest, RefundState

NOT_OPEN = AlreadyInState.__name__
"""The refusal of a call on a state the order is no longer in (808), as the activity names it."""

REFUND_AGREED = 2005  # merchant cancel code: after-sales


class AfterSales:
    """Each matter's messages and waits in one place; the cases they open are in `Cases`."""

    def __init__(self, order: Order, deadlines: Deadlines) -> None:
        self._order = order
        self._state = order.state
        self._deadlines = deadlines
        self._cases = Cases(order)

    def _due(self, clause: Clause) -> datetime:
        """By when the person told must act: the clause's deadline from now, as it opens."""
        return workflow.now() + self._deadlines.deadline(clause).soft

    # --- the customer's feedback: R4.2 -----------------------------------------------------

    async def feedback(self, msg: CustomerFeedback) -> None:
        """R4.2 a case: answered, resolved, and repeated until the customer is satisfied."""
        if self._state.finished:
            await self._order.log(
                Event.FEEDBACK_IGNORED, kind=msg.kind.value, reason="order has ended"
            )
            return
        await self._open_case(msg.kind, msg.text, channel=msg.channel)

    async def respond(self, msg: RespondFeedback) -> UpdateResult:
        """R4.2.2 a response, and someone put on it."""
        case = self._cases[msg.case]
        case.responses.append(msg.response)
        case.owner = case.owner or msg.by
        case.state = FeedbackState.AWAITING_RESOLUTION
        await self._cases.save(case)
        await self._order.log(
            Event.FEEDBACK_RESPONDED, actor=msg.by, case=msg.case, round=case.round
        )
        await self._order.steps.tell(
            Audience.CUSTOMER, Topic.FEEDBACK_ANSWER, {"response": msg.response}
        )
        return self._order.result(f"feedback #{msg.case} answered")

    def check_respond(self, msg: RespondFeedback) -> None:
        self._cases.require(msg.case, FeedbackState.AWAITING_RESPONSE, "respond_feedback")

    async def resolve(self, msg: ResolveFeedback) -> UpdateResult:
        """R4.2.3 the result goes back; an unsatisfied customer's case is handled again."""
        with self._order.answering(_case(msg.case)):
            return await self._resolve(msg)

    async def _resolve(self, msg: ResolveFeedback) -> UpdateResult:
        state = self._state
        case = self._cases[msg.case]
        case.resolutions.append(msg.resolution)
        await self._order.steps.tell(
            Audience.CUSTOMER, Topic.FEEDBACK_RESOLUTION, {"resolution": msg.resolution}
        )
        if msg.satisfied:
            case.state = FeedbackState.SATISFIED
        elif case.round >= state.policy.max_feedback_rounds:
            case.state = FeedbackState.ESCALATED
            case.owner = state.manager_id
            await self._order.steps.tell(
                Audience.MANAGER,
                Topic.FEEDBACK_ESCALATED,
                {"case": str(case.case), "round": str(case.round), "text": case.text},
                recipient=case.owner,
            )
        else:
            case.round += 1
            case.state = FeedbackState.AWAITING_RESPONSE
        await self._cases.save(case, satisfied=msg.satisfied)
        await self._order.log(
            Event.FEEDBACK_RESOLVED,
            actor=msg.by,
            case=msg.case,
            satisfied=msg.satisfied,
            state=case.state.value,
        )
        return self._order.result(f"feedback #{msg.case} {case.state.value}")

    def check_resolve(self, msg: ResolveFeedback) -> None:
        self._cases.require(msg.case, FeedbackState.AWAITING_RESOLUTION, "resolve_feedback")
        self._order.require_unclaimed(_case(msg.case), f"feedback #{msg.case}")

    async def _open_case(self, kind: FeedbackKind, text: str, channel: str) -> None:
        case = self._cases.from_customer(kind, text, channel)
        await self._cases.save(case)
        await self._order.log(
            Event.FEEDBACK_OPENED,
            actor="customer",
            case=case.case,
            kind=kind.value,
            channel=channel,
        )
        await self._work_case(case)

    async def _work_case(self, case: FeedbackCase) -> None:
        """Rounds of response and resolution, each under its clause, until the case settles."""
        state = self._state
        while not state.finished:
            await self._order.steps.tell(
                Audience.STAFF if case.owner else Audience.SUPERVISOR,
                Topic.FEEDBACK_OPENED,
                {
                    "case": str(case.case),
                    "kind": case.kind.value,
                    "round": str(case.round),
                    "text": case.text,
                },
                recipient=case.owner,
                due_at=self._due(Clause.FEEDBACK_RESPONSE),
            )
            await self._deadlines.within(
                Clause.FEEDBACK_RESPONSE,
                workflow.wait_condition(
                    lambda: case.state is not FeedbackState.AWAITING_RESPONSE or state.finished
                ),
                key=deadline_key(Clause.FEEDBACK_RESPONSE, f"{case.case}.{case.round}"),
                pausable=False,
            )
            await self._deadlines.within(
                Clause.FEEDBACK_RESOLUTION,
                workflow.wait_condition(
                    lambda: case.state is not FeedbackState.AWAITING_RESOLUTION or state.finished
                ),
                key=deadline_key(Clause.FEEDBACK_RESOLUTION, f"{case.case}.{case.round}"),
                since=case.opened_at,
                pausable=False,
            )
            if case.state is not FeedbackState.AWAITING_RESPONSE:
                return  # satisfied, or escalated to a manager
            # Unsatisfied: the loop repeats (R4.2.3).

    # --- the rating: R3.4.2 ----------------------------------------------------------------

    async def rate(self, msg: RecordRating) -> UpdateResult:
        """R3.4.2 a low rating is acted on: it opens a complaint."""
        self._state.rating = msg.score
        await self._order.log(Event.RATED, actor=msg.by, score=msg.score, comment=msg.comment)
        if msg.score <= self._state.policy.low_rating:
            text = msg.comment or f"rated {msg.score} of 5"
            self._order.spawn(self._open_case(FeedbackKind.COMPLAINT, text, "rating"))
        return self._order.result(f"rated {msg.score}")

    def check_rating(self, msg: RecordRating) -> None:
        self._order.require_stage("record_rating", Stage.DELIVERED)
        if self._state.rating is not None:
            raise not_allowed(f"the order is already rated ({self._state.rating})")

    # --- reminders from the platform -------------------------------------------------------

    async def reminder(self, msg: CustomerReminder) -> None:
        """A reminder (催单) gets a reply within the reminder_reply clause."""
        state = self._state
        if msg.remind_id in state.reminders:
            return  # the same reminder pushed again
        if state.finished:
            await self._order.log(
                Event.REMINDER_IGNORED, remind_id=msg.remind_id, reason=state.standing
            )
            return
        state.reminders[msg.remind_id] = None
        case = self._cases.from_platform(
            FeedbackKind.REMINDER, msg.text, msg.remind_id, owner=state.staff_id
        )
        if case is not None:
            await self._cases.save(case)
        await self._order.log(
            Event.CUSTOMER_REMINDED,
            actor="customer",
            remind_id=msg.remind_id,
            **cases.detail(case),
        )
        await self._order.steps.tell(
            Audience.STAFF if state.assignee else Audience.SUPERVISOR,
            Topic.REMINDER,
            {"stage": state.stage.value, "remind_id": str(msg.remind_id)},
            recipient=state.staff_id,
            due_at=self._due(Clause.REMINDER_REPLY),
        )
        await self._deadlines.within(
            Clause.REMINDER_REPLY,
            workflow.wait_condition(
                lambda: state.reminders[msg.remind_id] is not None or state.finished
            ),
            key=deadline_key(Clause.REMINDER_REPLY, msg.remind_id),
            pausable=False,
        )

    async def reply(self, msg: ReplyReminder) -> UpdateResult:
        with self._order.answering(_reminder(msg.remind_id)):
            return await self._reply(msg)

    async def _reply(self, msg: ReplyReminder) -> UpdateResult:
        state = self._state
        await self._order.steps.act(
            PlatformCalls.platform_reply_reminder,
            PlatformReminderReply(order_id=state.order_id, remind_id=msg.remind_id, text=msg.text),
        )
        state.reminders[msg.remind_id] = msg.text
        case = self._cases.of(FeedbackKind.REMINDER, msg.remind_id)
        if case is not None:
            case.owner = case.owner or msg.by
            cases.close(case, "replied on the platform", response=msg.text)
            await self._cases.save(case)
        await self._order.log(
            Event.REMINDER_REPLIED,
            actor=msg.by,
            remind_id=msg.remind_id,
            **cases.detail(case),
        )
        return self._order.result("reminder answered")

    def check_reply(self, msg: ReplyReminder) -> None:
        reminders = self._state.reminders
        if msg.remind_id not in reminders:
            raise not_allowed(f"no reminder {msg.remind_id} on order {self._state.order_id}")
        if reminders[msg.remind_id] is not None:
            raise not_allowed(f"reminder {msg.remind_id} is already answered")
        self._order.require_unclaimed(_reminder(msg.remind_id), f"reminder {msg.remind_id}")

    # --- refunds from the platform: R4.3.1 -------------------------------------------------

    async def refund_notice(self, msg: PlatformRefund) -> None:
        """A refund request waits for a human decision under the refund_decision clause.

        The request is on the order before anything is awaited, so a decision can follow at once.
        """
        state = self._state
        request = state.refunds.get(msg.refund_id)
        opened = msg.notify_type is RefundNotice.APPLY and request is None and not state.finished
        if opened:
            request, case = self._open_refund(msg)
        else:
            case = self._cases.of(FeedbackKind.REFUND, msg.refund_id)
        settled = (
            msg.notify_type is not RefundNotice.APPLY
            and request is not None
            and request.state is RefundState.AWAITING_DECISION
        )
        if settled:
            assert request is not None
            self._settled_by_platform(request, msg.notify_type, case)
        await self._order.log(
            Event.REFUND_NOTICE,
            actor="platform",
            refund_id=msg.refund_id,
            notify_type=msg.notify_type.value,
            reason=msg.reason,
            **cases.detail(case if opened else None),
        )
        if (opened or settled) and request is not None:
            await self._save_refund(request, case)  # as it stands now: it may be decided already
        if not opened:
            if msg.notify_type is RefundNotice.APPLY and request is None:
                await self._order.log(
                    Event.REFUND_IGNORED, refund_id=msg.refund_id, reason=state.standing
                )
            return  # a repeated push, a settlement, or nothing left to refund against
        assert request is not None
        await self._await_decision(request, msg)

    async def decide(self, msg: DecideRefund) -> UpdateResult:
        with self._order.answering(_refund(msg.refund_id)):
            return await self._decide(msg)

    async def _decide(self, msg: DecideRefund) -> UpdateResult:
        state = self._state
        request = state.refunds[msg.refund_id]
        if open_on_platform := await self._answer_platform(msg):
            settlement = RefundState.AGREED if msg.agree else RefundState.REJECTED
            self._settle_refund(request, settlement, msg.by)
        else:
            self._settle_refund(request, RefundState.WITHDRAWN, "platform")
        case = self._cases.of(FeedbackKind.REFUND, msg.refund_id)
        if case is not None:
            case.owner = case.owner or msg.by
            cases.close(case, _refund_result(request), response=msg.reason)
        await self._save_refund(request, case)
        await self._order.log(
            Event.REFUND_DECIDED,
            actor=msg.by,
            refund_id=msg.refund_id,
            agree=msg.agree,
            **({} if open_on_platform else {"not_open_on_platform": True}),
            **cases.detail(case),
        )
        self._end_if_refunded(request)
        return self._order.result(
            f"refund {request.state.value}"
            if open_on_platform
            else "no open refund request on the platform: closed"
        )

    async def _answer_platform(self, msg: DecideRefund) -> bool:
        """False when the platform has no open request to answer (808, REFUND_NOT_OPEN_CLOSES):
        withdrawn by the customer or settled there, and the push saying so was lost."""
        answer = PlatformRefundAnswer(
            order_id=self._state.order_id,
            refund_id=msg.refund_id,
            agree=msg.agree,
            reason=msg.reason,
        )
        try:
            await self._order.steps.act(PlatformCalls.platform_answer_refund, answer)
        except ActivityError as err:
            not_open = isinstance(err.cause, ApplicationError) and err.cause.type == NOT_OPEN
            if not (not_open and self._order.patches.patched(REFUND_NOT_OPEN_CLOSES)):
                raise
            return False
        return True

    def check_decide(self, msg: DecideRefund) -> None:
        request = self._state.refunds.get(msg.refund_id)
        if request is None:
            raise not_allowed(f"no refund request {msg.refund_id} on order {self._state.order_id}")
        if request.state is not RefundState.AWAITING_DECISION:
            raise not_allowed(f"refund {msg.refund_id} is already {request.state.value}")
        self._order.require_unclaimed(_refund(msg.refund_id), f"refund {msg.refund_id}")

    def _open_refund(self, msg: PlatformRefund) -> tuple[RefundRequest, FeedbackCase | None]:
        request = RefundRequest(
            refund_id=msg.refund_id,
            reason=msg.reason,
            partial=msg.partial,
            amount=msg.amount,
            requested_at=workflow.now(),
        )
        self._state.refunds[msg.refund_id] = request
        case = self._cases.from_platform(
            FeedbackKind.REFUND,
            msg.reason,  # R4.2.1 the customer's reason is the case's text
            msg.refund_id,
            owner=self._state.manager_id,
        )
        return request, case

    def _settled_by_platform(
        self, request: RefundRequest, notice: RefundNotice, case: FeedbackCase | None
    ) -> None:
        """The platform settled it itself (arbitration, or the customer withdrew)."""
        settlement = {
            RefundNotice.AGREE: RefundState.AGREED,
            RefundNotice.REJECT: RefundState.REJECTED,
        }.get(notice, RefundState.WITHDRAWN)
        self._settle_refund(request, settlement, "platform")
        if case is not None:
            cases.close(case, _refund_result(request))
        self._end_if_refunded(request)

    async def _await_decision(self, request: RefundRequest, msg: PlatformRefund) -> None:
        state = self._state
        await self._order.steps.tell(
            Audience.MANAGER,
            Topic.REFUND_REQUEST,
            {"extent": "partial" if msg.partial else "full", "reason": msg.reason},
            recipient=state.manager_id,
            due_at=self._due(Clause.REFUND_DECISION),
        )
        await self._deadlines.within(
            Clause.REFUND_DECISION,
            workflow.wait_condition(
                lambda: request.state is not RefundState.AWAITING_DECISION or state.finished
            ),
            key=deadline_key(Clause.REFUND_DECISION, msg.refund_id),
            pausable=False,
        )

    def _settle_refund(self, request: RefundRequest, settlement: RefundState, by: str) -> None:
        request.state = settlement
        request.decided_by = by
        request.decided_at = workflow.now()
        if settlement is RefundState.AGREED:
            # R4.3.1 a partial refund gives back its amount, a full one the order's total.
            request.refunded = request.amount if request.partial else self._state.order.total

    def _end_if_refunded(self, request: RefundRequest) -> None:
        """A full refund agreed ends the order: it is cancelled, at the customer's cost."""
        if request.state is RefundState.AGREED and not request.partial:
            self._order.request_cancel(
                CancelRequest(
                    REFUND_AGREED, f"full refund agreed: {request.reason}", "refund", True
                )
            )

    async def _save_refund(self, request: RefundRequest, case: FeedbackCase | None) -> None:
        """R4.3.1 the request and the money given back on record, with its case (R4.2.1)."""
        if case is None:
            return  # an order started before PLATFORM_FEEDBACK
        await self._order.steps.act(
            OrderRecords.record_refund,
            RecordRefund(
                order_id=self._state.order_id,
                refund=request.model_copy(deep=True),
                case=case.model_copy(deep=True),
            ),
        )


# The matters a person answers, as `Order.answering` claims them.
def _case(number: int) -> str:
    return f"case:{number}"


def _reminder(remind_id: str) -> str:
    return f"reminder:{remind_id}"


def _refund(refund_id: str) -> str:
    return f"refund:{refund_id}"


def _refund_result(request: RefundRequest) -> str:
    by = " by the platform" if request.decided_by == "platform" else ""
    if request.state is RefundState.AGREED:
        amount = "" if request.refunded is None else f" of {request.refunded}"
        return f"{'partial' if request.partial else 'full'} refund{amount} agreed{by}"
    if request.state is RefundState.REJECTED:
        return f"refund rejected{by}"
    return "refund withdrawn"

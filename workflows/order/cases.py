"""The order's feedback cases (R4.2): one numbered list for every after-sales matter, so a
complaint, a reminder and a refund request are counted, owned and answered alike."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.order.entity import Order, not_allowed
from workflows.order.patches import FEEDBACK_RECORDS, PLATFORM_FEEDBACK

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderRecords
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.messages import PLATFORM_KINDS, FeedbackKind
    from schemas.records import RecordFeedback


class Cases:
    """Numbered in the order they open, 1 upwards: people name a case by its number."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = order.state

    def __getitem__(self, number: int) -> FeedbackCase:
        return self._state.feedback[number - 1]

    def from_customer(self, kind: FeedbackKind, text: str, channel: str) -> FeedbackCase:
        """R4.2 a customer's feedback, put to the person on the order when there is one."""
        case = FeedbackCase(
            case=len(self._state.feedback) + 1,
            kind=kind,
            text=text,
            channel=channel,
            opened_at=workflow.now(),
            owner=self._state.staff_id,
        )
        self._state.feedback.append(case)
        return case

    def from_platform(
        self, kind: FeedbackKind, text: str, ref: str, owner: str | None
    ) -> FeedbackCase | None:
        """R4.2.1 a reminder or refund request opens a feedback case, numbered with the others.

        Called before the handler awaits anything, so an answer that follows at once finds it.
        Orders started before PLATFORM_FEEDBACK keep their reminders and refunds off the list.
        """
        if not self._order.patches.patched(PLATFORM_FEEDBACK):
            return None
        case = FeedbackCase(
            case=len(self._state.feedback) + 1,
            kind=kind,
            text=text,
            opened_at=workflow.now(),
            owner=owner,
            ref=ref,
        )
        self._state.feedback.append(case)
        return case

    def of(self, kind: FeedbackKind, ref: str) -> FeedbackCase | None:
        """The case a reminder or refund request opened, if it opened one."""
        return next((c for c in self._state.feedback if c.kind is kind and c.ref == ref), None)

    async def save(self, case: FeedbackCase, satisfied: bool | None = None) -> None:
        """R4.2 the case on record, so statistics and people outside the order can see it.

        A reminder or refund case exists only where PLATFORM_FEEDBACK was patched in, so it is
        always written."""
        if case.kind in PLATFORM_KINDS or self._order.patches.patched(FEEDBACK_RECORDS):
            snapshot = case.model_copy(deep=True)  # the case may move on while this is written
            await self._order.steps.act(
                OrderRecords.record_feedback,
                RecordFeedback(order_id=self._state.order_id, case=snapshot, satisfied=satisfied),
            )

    def require(self, number: int, state: FeedbackState, name: str) -> None:
        """A customer's case, in the state the update answers; a platform's is answered there."""
        feedback = self._state.feedback
        if not 1 <= number <= len(feedback):
            raise not_allowed(f"no feedback case #{number} on order {self._state.order_id}")
        case = feedback[number - 1]
        if case.kind in PLATFORM_KINDS:
            answer = "reply_reminder" if case.kind is FeedbackKind.REMINDER else "decide_refund"
            raise not_allowed(
                f"{name}: feedback #{number} is a {case.kind.value} from the platform; "
                f"answer it with {answer} {case.ref}"
            )
        if case.state is not state:
            raise not_allowed(f"{name}: feedback #{number} is {case.state.value}")


def close(case: FeedbackCase, resolution: str, response: str | None = None) -> None:
    """Answered on the platform: no rounds, no satisfaction asked (R4.2.2)."""
    if response is not None:
        case.responses.append(response)
    case.resolutions.append(resolution)
    case.state = FeedbackState.CLOSED


def detail(case: FeedbackCase | None) -> dict[str, Any]:
    """The case number on the event, so statistics pair its opening with its answer."""
    return {} if case is None else {"case": case.case}

"""Review (R2.2, R5.1): each round's verdict on the order, and what follows from it."""

from __future__ import annotations

from temporalio import workflow

from workflows.order.entity import Order

with workflow.unsafe.imports_passed_through():
    from activities.platform_calls import PlatformCalls
    from activities.review import Review
    from schemas.contract import Event
    from schemas.notices import Audience, Topic
    from schemas.order import Stage
    from schemas.platform_calls import PlatformCancelOrder
    from schemas.review import ReviewInput, ReviewVerdict


class Reviewer:
    """The review stage and a customer's change take a verdict the same way."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = order.state

    async def verdict(self) -> ReviewVerdict:
        """A round of review of the order as it stands now."""
        state = self._state
        state.review_round += 1
        return await self._order.step(
            Review.review_order,
            ReviewInput(
                order=state.order,
                order_type=state.order_type,
                customer_id=state.recorded.customer_id,
                round=state.review_round,
            ),
        )

    async def note(self, verdict: ReviewVerdict) -> None:
        """The verdict on the timeline, with the rules that failed."""
        await self._order.log(
            Event.review(verdict.outcome.value),
            on_record=False,
            round=self._state.review_round,
            failures=[f.model_dump() for f in verdict.failures],
        )

    async def hold(self, verdict: ReviewVerdict) -> None:
        """R5.1 an anomaly verdict holds the order for a manager."""
        assert verdict.anomaly_kind is not None
        await self._order.holds.open(
            verdict.anomaly_kind,
            "; ".join(f"{f.rule}: {f.message}" for f in verdict.failures) or verdict.reason,
            verdict.failures,
        )

    async def reject(self, verdict: ReviewVerdict) -> None:
        """R2.2.4 a rejected order carries its reason back to the platform and the customer."""
        assert verdict.cancel_code is not None
        await self._order.step(
            PlatformCalls.platform_cancel_order,
            PlatformCancelOrder(
                order_id=self._state.order_id,
                reason_code=verdict.cancel_code,
                reason=verdict.reason,
            ),
        )
        await self._order.steps.tell(Audience.CUSTOMER, Topic.REJECTED, {"reason": verdict.reason})
        await self._order.finish(Stage.REJECTED, verdict.reason, verdict.cancel_code)

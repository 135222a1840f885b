"""Cancellation with compensation: whoever asks (the platform, a person, Temporal itself), the
lifecycle stops at its next wait and every claim the order holds is given back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.order.entity import Order, not_allowed
from workflows.order.state import MERCHANT_OTHER, CancelRequest

with workflow.unsafe.imports_passed_through():
    from activities.assignment import Assignment
    from activities.booking import Bookings
    from activities.credit import Credit
    from activities.orders import OrderRecords
    from activities.platform_calls import PlatformCalls
    from activities.stock import Stock
    from schemas.contract import Event
    from schemas.messages import CancelOrder, PlatformCancel, UpdateResult
    from schemas.notices import Audience, Topic
    from schemas.order import Stage
    from schemas.platform_calls import PlatformCancelOrder
    from schemas.records import CreditEvent, CreditEventKind, RecordOrder
    from schemas.resources import OrderRef, ReleaseAssignment

USER = 1  # the platform's deal_op_type for a cancellation by the customer


class Cancellation:
    """A request only marks the order; `run` compensates once the lifecycle has halted, so
    compensation sees every claim as the last step in flight left it."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = order.state

    # --- requests --------------------------------------------------------------------------

    async def by_platform(self, msg: PlatformCancel) -> None:
        state = self._state
        if state.finished:
            await self._order.log(
                Event.PLATFORM_CANCEL_IGNORED, reason=f"order is {state.standing}"
            )
            return
        await self._order.log(
            Event.PLATFORM_CANCELLED,
            actor="platform",
            reason_code=msg.reason_code,
            reason=msg.reason,
        )
        self._order.request_cancel(
            CancelRequest(
                msg.reason_code,
                msg.reason or f"cancelled on the platform ({msg.reason_code})",
                "platform",
                on_platform_already=True,
                # R5.3.3 only a cancellation after the store accepted costs the customer credit
                customer_caused=msg.deal_op_type == USER and state.accepted,
            )
        )

    async def by_person(self, msg: CancelOrder) -> UpdateResult:
        await self._order.log(Event.CANCEL_REQUESTED, actor=msg.by, reason_code=msg.reason_code)
        self._order.request_cancel(CancelRequest(msg.reason_code, msg.reason, msg.by, False))
        return self._order.result("cancellation under way")

    def check_person(self, msg: CancelOrder) -> None:
        state = self._state
        if state.finished or state.stage in (Stage.DELIVERED, Stage.CLOSED):
            raise not_allowed(f"an order that is {state.standing} cannot be cancelled")

    def by_temporal(self) -> None:
        """Cancelled from Temporal itself: the order is cancelled like any other."""
        self._order.request_cancel(
            CancelRequest(MERCHANT_OTHER, "cancelled in Temporal", "operator", False)
        )

    # --- compensation ----------------------------------------------------------------------

    async def compensate(self, request: CancelRequest) -> None:
        """The platform told, claims released, everyone told, all recorded.

        A step of it that fails for good does not stop the rest: it is a system fault for the
        manager, told what is left to release by hand (R5.1 (5)), and the order still ends."""
        state, steps = self._state, self._order.steps
        if state.record is None:  # R1.3 an order cancelled on arrival is still on record
            state.record = await steps.act(
                OrderRecords.record_order,
                RecordOrder(order=state.order, received_at=workflow.now(), source=state.source),
            )
            await self._order.record_backlog()
        if not request.on_platform_already:
            try:
                await steps.act(
                    PlatformCalls.platform_cancel_order,
                    PlatformCancelOrder(
                        order_id=state.order_id, reason_code=request.code, reason=request.reason
                    ),
                )
            except ActivityError as err:
                await self._order.log(Event.PLATFORM_CANCEL_REFUSED, error=str(err.cause or err))
        released, failed = await self._release(request)
        if request.customer_caused and state.record is not None:
            credit = CreditEvent(
                customer_id=state.record.customer_id,
                order_id=state.order_id,
                kind=CreditEventKind.CANCELLATION,
                note=request.reason,
            )
            if not await self._despite_failure(
                "credit", lambda: steps.act(Credit.record_credit_event, credit)
            ):
                failed.append("credit")
        if state.record is not None:
            await steps.tell(Audience.CUSTOMER, Topic.CANCELLED, {"reason": request.reason})
        details = {"not_released": failed} if failed else {}
        await self._order.finish(
            Stage.CANCELLED,
            request.reason,
            request.code,
            by=request.by,
            released=released,
            **details,
        )

    async def _release(self, request: CancelRequest) -> tuple[list[str], list[str]]:
        """Every claim the order holds, given back; the assignee told. What was released, and
        what could not be."""
        state, steps = self._state, self._order.steps
        ref = OrderRef(order_id=state.order_id)
        claims: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if state.stock_reserved:
            claims.append(("stock", lambda: steps.act(Stock.release_stock, ref)))
        if state.booking is not None:
            claims.append(("booking", lambda: steps.act(Bookings.release_booking, ref)))
        if (assignee := state.assignee) is not None:
            release = ReleaseAssignment(order_id=state.order_id, staff_id=assignee.staff_id)
            claims.append(
                ("assignee capacity", lambda: steps.act(Assignment.release_assignment, release))
            )
        released: list[str] = []
        failed: list[str] = []
        for what, release_it in claims:
            if await self._despite_failure(what, release_it):
                released.append(what)
            else:
                failed.append(what)
        if state.assignee is not None:
            await steps.tell(
                Audience.STAFF,
                Topic.CANCELLED_FOR_STAFF,
                {"reason": request.reason},
                recipient=state.assignee.staff_id,
            )
        return released, failed

    async def _despite_failure(self, what: str, step: Callable[[], Awaitable[None]]) -> bool:
        """A compensation step; False when it failed for good (refused, or gave up), which is
        recorded and told to the manager instead of failing the workflow halfway."""
        try:
            await step()
            return True
        except ActivityError as err:
            state = self._state
            error = str(err.cause or err)
            await self._order.log(Event.COMPENSATION_FAILED, step=what, error=error)
            await self._order.steps.tell(
                Audience.MANAGER,
                Topic.NOT_RELEASED,
                {"what": what, "error": error},
                recipient=state.manager_id,
            )
            return False

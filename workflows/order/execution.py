"""The work as it is done (R3.3.1, R3.3.2, R3.4.1): what staff report, and the platform
courier's progress.

Each report moves the lifecycle on (ready, delivered, visit re-confirmed) or tells the
customer; an exception carries its remedy (R3.3.2).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.order.deadlines import Deadlines
from workflows.order.entity import Order, not_allowed
from workflows.order.fulfilment import Fulfilment
from workflows.order.patches import COURIER_STATUS_ONCE
from workflows.order.state import CancelRequest

with workflow.unsafe.imports_passed_through():
    from schemas.contract import Event
    from schemas.messages import (
        DeliveryStatus,
        MarkDelivered,
        MarkReady,
        ReconfirmVisit,
        Remedy,
        ReportException,
        ReportProgress,
        UpdateResult,
    )
    from schemas.notices import Audience, Topic
    from schemas.order import DeliveryMode, OrderType, Stage
    from schemas.review import AnomalyKind

COURIER_PICKED_UP, COURIER_DELIVERED, COURIER_CANCELLED = 20, 40, 100
_UNDER_WAY = (Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING)


EXCEPTION_TOPICS = {
    Remedy.SUBSTITUTE: Topic.EXCEPTION_SUBSTITUTED,
    Remedy.RESCHEDULE: Topic.EXCEPTION_RESCHEDULED,
    Remedy.CANCEL: Topic.EXCEPTION_CANCELLED,
    Remedy.ESCALATE: Topic.EXCEPTION_ESCALATED,
}
"""R3.3.2 what the customer is told of each remedy."""


class Execution:
    """Staff reports are updates, refused with a reason when the order is not ready for them;
    the courier's statuses are signals, taken as they come."""

    def __init__(self, order: Order, deadlines: Deadlines, fulfilment: Fulfilment) -> None:
        self._order = order
        self._state = order.state
        self._deadlines = deadlines
        self._fulfilment = fulfilment

    # --- progress and exceptions -----------------------------------------------------------

    async def progress(self, msg: ReportProgress) -> UpdateResult:
        """R3.3.1 progress goes to the customer."""
        await self._order.log(Event.PROGRESS, actor=msg.by, note=msg.note, percent=msg.percent)
        await self._order.steps.tell(Audience.CUSTOMER, Topic.PROGRESS, {"note": msg.note})
        return self._order.result("progress reported")

    def check_progress(self, msg: ReportProgress) -> None:
        self._order.require_stage("report_progress", *_UNDER_WAY)

    async def exception(self, msg: ReportException) -> UpdateResult:
        """R3.3.2 each exception has a remedy, and the customer is told."""
        state = self._state
        state.exceptions.append(f"{msg.kind.value}: {msg.remedy.value}")
        await self._order.log(
            Event.EXCEPTION,
            actor=msg.by,
            kind=msg.kind.value,
            detail=msg.detail,
            remedy=msg.remedy.value,
        )
        facts = {"detail": msg.detail}
        if msg.remedy is Remedy.RESCHEDULE:
            assert msg.new_promised_at is not None and state.promise is not None
            self._reschedule(msg.new_promised_at)
            facts["promised_at"] = msg.new_promised_at.isoformat()
        elif msg.remedy is Remedy.CANCEL:
            assert msg.cancel_code is not None
            self._order.request_cancel(CancelRequest(msg.cancel_code, msg.detail, msg.by, False))
        elif msg.remedy is Remedy.ESCALATE:
            self._order.holds.open_later(AnomalyKind.OTHER, f"{msg.kind.value}: {msg.detail}")
        await self._order.steps.tell(Audience.CUSTOMER, EXCEPTION_TOPICS[msg.remedy], facts)
        return self._order.result(f"exception recorded, remedy {msg.remedy.value}")

    def check_exception(self, msg: ReportException) -> None:
        self._order.require_stage("report_exception", *_UNDER_WAY)
        late = msg.new_promised_at is not None and msg.new_promised_at <= workflow.now()
        if msg.remedy is Remedy.RESCHEDULE and late:
            raise not_allowed("new_promised_at must be in the future")

    def _reschedule(self, delivery_at: datetime) -> None:
        """R3.3.2 a new promise: ready and delivery move together, and so do their deadlines."""
        promise = self._state.promise
        assert promise is not None
        shift = delivery_at - promise.delivery_at
        promise.delivery_at = delivery_at
        if promise.ready_at is not None:
            promise.ready_at += shift
        self._deadlines.follow_promise(promise.ready_at, shift)
        if self._state.booking is not None:
            # the visit's execution clock follows its new slot
            self._order.spawn(self._fulfilment.rebook())

    # --- goods ready, the visit re-confirmed, delivered ------------------------------------

    async def ready(self, msg: MarkReady) -> UpdateResult:
        self._state.ready = True
        await self._order.log(Event.READY, actor=msg.by, note=msg.note)
        return self._order.result("ready")

    def check_ready(self, msg: MarkReady) -> None:
        self._order.require_stage("mark_ready", Stage.IN_PROGRESS)
        if self._state.order_type is not OrderType.GOODS:
            raise not_allowed("mark_ready is for goods; a service is finished with mark_delivered")
        if self._state.ready:
            raise not_allowed("the order is already marked ready")

    async def visit_reconfirmed(self, msg: ReconfirmVisit) -> UpdateResult:
        self._state.visit_reconfirmed = True
        await self._order.log(Event.VISIT_RECONFIRMED, actor=msg.by, note=msg.note)
        return self._order.result("visit re-confirmed")

    def check_reconfirm(self, msg: ReconfirmVisit) -> None:
        self._order.require_stage("reconfirm_visit", Stage.IN_PROGRESS)
        if self._state.booking is None:
            raise not_allowed("reconfirm_visit needs a booked visit; none is booked yet")
        if self._state.visit_reconfirmed:
            raise not_allowed("the visit is already re-confirmed")

    async def delivered(self, msg: MarkDelivered) -> UpdateResult:
        """R3.4.1 delivered with proof."""
        self._state.delivered = True
        await self._order.log(
            Event.DELIVERED_WITH_PROOF, actor=msg.by, proof=msg.proof, note=msg.note
        )
        return self._order.result("delivered")

    def check_delivered(self, msg: MarkDelivered) -> None:
        state = self._state
        self._order.require_active("mark_delivered")
        mode = state.recorded.delivery_mode if state.record else None
        if mode is DeliveryMode.PLATFORM_COURIER:
            raise not_allowed(
                "the platform's courier delivers this order; its status arrives by itself"
            )
        expected = {
            DeliveryMode.SELF_DELIVERY: (Stage.DELIVERING, "on its way"),
            DeliveryMode.PICKUP: (Stage.IN_PROGRESS, "ready for pickup"),
            DeliveryMode.ON_SITE: (Stage.IN_PROGRESS, "re-confirmed and booked"),
        }
        stage, standing = expected[mode] if mode else (Stage.DELIVERING, "")
        ready = (
            {
                DeliveryMode.PICKUP: state.ready,
                DeliveryMode.ON_SITE: state.visit_reconfirmed,
            }.get(mode, True)
            if mode
            else False
        )
        if state.stage is not stage or not ready or state.delivered:
            raise not_allowed(
                f"mark_delivered needs the order {standing}; it is {state.stage.value}"
            )

    # --- the platform's courier ------------------------------------------------------------

    async def courier(self, msg: DeliveryStatus) -> None:
        """A platform courier's progress drives delivery for courier orders (R3.4.1)."""
        state = self._state
        if state.record is None or state.record.delivery_mode is not DeliveryMode.PLATFORM_COURIER:
            await self._order.log(
                Event.DELIVERY_STATUS_IGNORED, status=msg.status, reason="not a courier order"
            )
            return
        repeated, state.courier_status = msg.status == state.courier_status, msg.status
        if repeated and self._order.patches.patched(COURIER_STATUS_ONCE):
            return
        await self._order.log(
            Event.COURIER_STATUS, actor="platform", status=msg.status, courier=msg.courier_name
        )
        if msg.status == COURIER_PICKED_UP:
            state.courier_picked_up = True
        elif msg.status == COURIER_DELIVERED:
            state.delivered = True
        elif msg.status == COURIER_CANCELLED and not state.finished and not state.delivered:
            # R5.1 (5) a delivery problem: a manager agrees the way forward with the platform.
            self._order.holds.open_later(
                AnomalyKind.OTHER, "the platform's courier cancelled the delivery"
            )

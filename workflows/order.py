"""OrderWorkflow: one Meituan order from receipt to close, on time and on record.

The lifecycle runs as one task, a method per stage, each stage under the deadline its policy
clause sets. Signals and updates carry what happens around it; a platform cancellation or a
policy's hard limit stops the lifecycle wherever it is and compensates. An anomalous order
pauses (`on_hold`) while an AnomalyWorkflow child waits for a manager's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.assignment import Assignment
    from activities.booking import Bookings
    from activities.credit import Credit
    from activities.notify import Notifier
    from activities.orders import OrderRecords
    from activities.platform_calls import PlatformCalls
    from activities.policy import load_policy
    from activities.review import Review
    from activities.stock import Stock
    from schemas.anomaly import AnomalyInput, AnomalyOutcome
    from schemas.contract import Event, anomaly_workflow_id, deadline_key
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.messages import (
        PLATFORM_KINDS,
        CancelOrder,
        ConfirmWithCustomer,
        CustomerChange,
        CustomerFeedback,
        CustomerReminder,
        DecideRefund,
        DeliveryStatus,
        FeedbackKind,
        MarkDelivered,
        MarkReady,
        PlatformCancel,
        PlatformRefund,
        Reassign,
        ReconfirmVisit,
        RecordRating,
        RefundNotice,
        Remedy,
        ReplyReminder,
        ReportException,
        ReportProgress,
        ResolveFeedback,
        RespondFeedback,
        UpdateResult,
    )
    from schemas.order import DeliveryMode, OrderInput, OrderType, Stage
    from schemas.platform_calls import (
        PlatformCancelOrder,
        PlatformOrderCall,
        PlatformRefundAnswer,
        PlatformReminderReply,
    )
    from schemas.policy import Clause, Deadline, HardAction, OrderPolicy, Policy
    from schemas.records import (
        Audience,
        CreditEvent,
        CreditEventKind,
        Notification,
        OrderRecord,
        RecordEvent,
        RecordFeedback,
        RecordOrder,
        RecordRefund,
        TimelineEntry,
    )
    from schemas.resources import (
        Assignee,
        AssignInput,
        Booking,
        BookService,
        OrderRef,
        ReleaseAssignment,
        ReserveStock,
        StockLine,
    )
    from schemas.review import AnomalyKind, Outcome, ReviewInput, ReviewVerdict, RuleFailure
    from schemas.status import (
        AnomalyView,
        DeadlineView,
        OrderOutcome,
        OrderStatus,
        Promise,
        RefundRequest,
        RefundState,
        Reminder,
    )
    from workflows import search_attributes as sa
    from workflows.activity_options import CANCELLATION, RETRY, TIMEOUT, task_queue_for
    from workflows.anomaly import AnomalyWorkflow
    from workflows.deadlines import FIRE_BY_TIMER, DeadlineClock
    from workflows.summary import summarise

A = TypeVar("A")
R = TypeVar("R")

MERCHANT_OTHER = 2007  # merchant cancel code "other"
MERCHANT_CHANGED = 2002  # order changed, not the customer's fault
REFUND_AGREED = 2005  # after-sales
COURIER_PICKED_UP, COURIER_DELIVERED, COURIER_CANCELLED = 20, 40, 100
USER = 1  # the platform's deal_op_type for a cancellation by the customer

# workflow.patched() ids: each changed the commands of orders already in flight.
FEEDBACK_RECORDS = "feedback-records"  # feedback cases written to the system of record
# Reminders and refund requests as feedback cases on record, and refunds with their money.
PLATFORM_FEEDBACK = "platform-feedback"
# The record is known as soon as it is written, so a refusal of the platform's receipt (an order
# the platform cancelled before its workflow started) opens an anomaly instead of failing.
RECORD_KNOWN_WHEN_RECEIVING = "record-known-when-receiving"
# A courier status pushed again (the platform retries) changes nothing: a repeated cancellation
# opened a second anomaly.
COURIER_STATUS_ONCE = "courier-status-once"


@dataclass
class CancelRequest:
    code: int
    reason: str
    by: str
    on_platform_already: bool  # the platform cancelled it: don't call order/cancel
    customer_caused: bool = False


class _Halt(Exception):
    """Stops the lifecycle at its next wait once a cancellation is requested.

    Cancellation is cooperative: a step in flight finishes, so compensation always sees the
    final state of every claim, and `run` then finishes the order by the recorded request.
    """


def _refusal(err: ActivityError) -> ApplicationError | None:
    """The business refusal behind an activity failure, if that is what it was."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


def _not_allowed(message: str) -> ApplicationError:
    return ApplicationError(message, type="NotAllowed", non_retryable=True)


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderInput) -> None:
        # Known before anything runs: a signal can start the order (signal-with-start, when a
        # later push of an order arrives before its own), and its handler needs the order.
        self._order = inp.order
        self._source = inp.source
        self._policy_loaded = False
        self._stage = Stage.RECEIVED
        self._stages: list[tuple[Stage, datetime]] = []
        self._paused_stage: Stage | None = None
        self._timeline: list[TimelineEntry] = []
        self._clock = DeadlineClock(fire_by_timer=workflow.patched(FIRE_BY_TIMER))
        self._record: OrderRecord | None = None
        self._policy: OrderPolicy | None = None
        self._assignee: Assignee | None = None
        self._assignment_lock = asyncio.Lock()
        self._reassignments = 0
        self._accepted = False  # confirmed on the platform
        self._stock_reserved = False
        self._stock_round = 1
        self._booking: Booking | None = None
        self._promise: Promise | None = None
        self._awaiting_reconfirmation = False
        self._reviewed = False
        self._review_round = 0
        self._changes = 0
        self._change_lock = asyncio.Lock()
        self._ready = False
        self._visit_reconfirmed = False
        self._delivered = False
        self._courier_picked_up = False
        self._courier_status: int | None = None
        self._rating: int | None = None
        self._feedback: list[FeedbackCase] = []
        self._refunds: dict[str, RefundRequest] = {}
        self._reminders: dict[str, str | None] = {}
        self._anomalies: list[AnomalyView] = []
        self._anomaly_lock = asyncio.Lock()
        self._held_by = ""  # the anomaly the order is on hold for
        self._exceptions: list[str] = []
        self._cancel: CancelRequest | None = None
        self._outcome: OrderOutcome | None = None
        self._notices = 0
        self._background: list[asyncio.Task[Any]] = []

    # ============================================================================================
    # The process
    # ============================================================================================

    @workflow.run
    async def run(self, inp: OrderInput) -> OrderOutcome:
        self._order = inp.order
        self._source = inp.source
        self._policy_snapshot: Policy = await workflow.execute_local_activity(
            load_policy, start_to_close_timeout=timedelta(seconds=10)
        )
        self._policy_loaded = True
        self._set_stage(Stage.RECEIVED)
        if inp.platform_cancel is not None:
            # R2.1.2 found by the patrol after the platform cancelled it: recorded, then ended,
            # as a cancellation push starts an order Temporal does not know. No patch: only
            # inputs made by the current patrol carry it.
            await self.platform_cancel(inp.platform_cancel)
        lifecycle = asyncio.create_task(self._lifecycle())
        while not lifecycle.done():
            try:
                await workflow.wait_condition(lifecycle.done)
            except asyncio.CancelledError:
                # Cancelled from Temporal itself: the order is cancelled like any other.
                self._request_cancel(
                    CancelRequest(MERCHANT_OTHER, "cancelled in Temporal", "operator", False)
                )
        with contextlib.suppress(_Halt):
            await lifecycle
        if self._cancel is not None and not self._stage.terminal:
            await self._cancelled(self._cancel)
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and all(t.done() for t in self._background)
        )
        assert self._outcome is not None
        return self._outcome

    async def _lifecycle(self) -> None:
        await self._receive()
        if not await self._review():
            return
        await self._accept()
        await self._assign()
        await self._confirm()
        if self._type is OrderType.GOODS:
            await self._prepare()
            await self._deliver()
        else:
            await self._schedule()
            await self._visit()
        await self._follow_up()
        await self._close()

    # --- 1 received: R2.1.1, R2.1.3 ------------------------------------------------------------

    async def _receive(self) -> None:
        async def receive() -> OrderRecord:
            record = await self._step(
                OrderRecords.record_order,
                RecordOrder(order=self._order, received_at=workflow.now(), source=self._source),
            )
            if workflow.patched(RECORD_KNOWN_WHEN_RECEIVING):
                # A refusal of the next call opens an anomaly, which needs the record.
                self._record = record
                self._policy = self._policy_snapshot.for_type(record.order_type)
            await self._step(PlatformCalls.platform_receive, self._call())
            return record

        self._record = await self._within(
            Clause.RECEIVE, receive(), since=self._order.created_at, pausable=False
        )
        self._policy = self._policy_snapshot.for_type(self._record.order_type)
        workflow.upsert_search_attributes(
            [
                sa.ORDER_TYPE.value_set(self._record.order_type.value),
                sa.REGION.value_set(self._record.region),
            ]
        )
        await self._log(
            Event.RECEIVED,
            source=self._source,
            order_type=self._record.order_type.value,
            delivery_mode=self._record.delivery_mode.value,
        )

    # --- 2 reviewing: R2.2.1-R2.2.4, R5.1 ------------------------------------------------------

    async def _review(self) -> bool:
        """One verdict: pass, reject (the platform and customer told) or an anomaly."""
        await self._enter(Stage.REVIEWING)
        while True:
            changes_seen = self._changes
            verdict = await self._within(Clause.REVIEW, self._verdict())
            if changes_seen == self._changes:
                break  # a customer change during review is reviewed again (R2.4.2)
        self._reviewed = True
        return await self._settle(verdict)

    async def _verdict(self) -> ReviewVerdict:
        self._review_round += 1
        return await self._step(
            Review.review_order,
            ReviewInput(
                order=self._order,
                order_type=self._type,
                customer_id=self._rec.customer_id,
                round=self._review_round,
            ),
        )

    async def _settle(self, verdict: ReviewVerdict) -> bool:
        """Act on a verdict; False when the order ends with it."""
        await self._log(
            Event.review(verdict.outcome.value),
            round=self._review_round,
            failures=[f.model_dump() for f in verdict.failures],
        )
        if verdict.outcome is Outcome.REJECT:
            await self._reject(verdict)
            return False
        if verdict.outcome is Outcome.ANOMALY:
            assert verdict.anomaly_kind is not None
            await self._anomaly(verdict.anomaly_kind, self._describe(verdict), verdict.failures)
        return True

    async def _reject(self, verdict: ReviewVerdict) -> None:
        """R2.2.4 a rejected order carries its reason back to the platform and the customer."""
        assert verdict.cancel_code is not None
        await self._step(
            PlatformCalls.platform_cancel_order,
            PlatformCancelOrder(
                order_id=self._id, reason_code=verdict.cancel_code, reason=verdict.reason
            ),
        )
        await self._tell(Audience.CUSTOMER, "Your order could not be accepted", verdict.reason)
        await self._finish(Stage.REJECTED, verdict.reason, verdict.cancel_code)

    # --- 3 accepted: R3.1.2, R6.1 --------------------------------------------------------------

    async def _accept(self) -> None:
        """Goods are reserved first, so nothing is accepted that cannot be supplied."""
        if self._type is OrderType.GOODS:
            await self._reserve_stock()
        await self._within(
            Clause.ACCEPT,
            self._step(PlatformCalls.platform_confirm, self._call()),
            since=self._order.created_at,
        )
        self._accepted = True
        await self._enter(Stage.ACCEPTED)

    async def _reserve_stock(self) -> None:
        while True:
            if self._cancel is not None:
                raise _Halt  # nothing is claimed for an order that is being cancelled
            try:
                reservation = await self._act(
                    Stock.reserve_stock,
                    ReserveStock(
                        order_id=self._id,
                        store_code=self._order.store_code,
                        lines=[
                            StockLine(sku=i.sku, quantity=i.quantity) for i in self._order.items
                        ],
                        round=self._stock_round,
                    ),
                )
            except ActivityError as err:
                refusal = _refusal(err)
                if refusal is None or refusal.type != "OutOfStock":
                    raise
                # R3.3.2 a shortage is an exception for a manager to remedy.
                await self._anomaly(AnomalyKind.OTHER, f"shortage: {refusal.message}")
                continue
            self._stock_reserved = True
            if reservation.low_stock:
                await self._tell(
                    Audience.SUPERVISOR,
                    "Low stock",
                    f"At or under the low-water mark: {', '.join(reservation.low_stock)}",
                )
            return

    # --- 4 assigned: R2.3.1-R2.3.3 -------------------------------------------------------------

    async def _assign(self) -> None:
        assignee = await self._within(Clause.ASSIGN, self._first_assignee())
        await self._take(assignee, Event.ASSIGNED)
        await self._enter(Stage.ASSIGNED, assignee=assignee.staff_id)

    async def _first_assignee(self) -> Assignee:
        """Waits for capacity to free up rather than overloading anyone (R2.3.2)."""
        waiting_logged = False
        while True:
            found = await self._find_assignee(exclude=[], preferred=None)
            if found is not None:
                return found
            if not waiting_logged:
                await self._log(Event.WAITING_FOR_CAPACITY)
                waiting_logged = True
            await self._until(lambda: False, timedelta(minutes=self._pol.assign_retry_minutes))

    async def _find_assignee(self, exclude: list[str], preferred: str | None) -> Assignee | None:
        try:
            return await self._act(
                Assignment.assign_order,
                AssignInput(
                    order_id=self._id,
                    order_type=self._type,
                    store_code=self._order.store_code,
                    region=self._rec.region,
                    skills=self._rec.skills,
                    exclude=exclude,
                    preferred=preferred,
                    round=self._reassignments + 1,
                ),
            )
        except ActivityError as err:
            refusal = _refusal(err)
            if refusal is None or refusal.type != "NoAssigneeAvailable":
                raise
            return None

    async def _take(self, assignee: Assignee, event: Event) -> None:
        self._assignee = assignee
        workflow.upsert_search_attributes([sa.ASSIGNEE_ID.value_set(assignee.staff_id)])
        await self._tell(
            Audience.STAFF,
            f"Order {self._order.view_id or self._id} is yours",
            self._brief(),
            recipient=assignee.staff_id,
        )

    # --- 5 confirmed: R2.4.1-R2.4.3 ------------------------------------------------------------

    async def _confirm(self) -> None:
        if self._pol.auto_confirm:
            await self._auto_confirm()
        else:
            await self._within(Clause.CONFIRM, self._until(lambda: self._promise is not None))
        assert self._promise is not None
        await self._enter(Stage.CONFIRMED)

    async def _auto_confirm(self) -> None:
        """Takeout rarely needs a call: the promise follows from the policy's times."""
        now = workflow.now()
        ready = now + self._pol.deadlines.prepare.soft
        delivery = self._order.expected_at or ready + self._pol.deadlines.deliver.soft
        await self._promise_customer(
            ConfirmWithCustomer(
                by="system",
                channel="automatic",
                promised_ready_at=min(ready, delivery),
                promised_delivery_at=delivery,
            )
        )

    async def _promise_customer(self, msg: ConfirmWithCustomer) -> None:
        """R2.4.3 the customer is told the expected times and the promises."""
        moved = self._promise is not None and self._promise.delivery_at != msg.promised_delivery_at
        self._promise = Promise(
            ready_at=msg.promised_ready_at,
            delivery_at=msg.promised_delivery_at,
            promises=msg.promises,
            confirmed_by=msg.by,
            confirmed_at=workflow.now(),
        )
        self._awaiting_reconfirmation = False
        if moved and self._booking is not None:
            self._spawn(self._rebook())
        await self._log(
            Event.CONFIRMED_WITH_CUSTOMER,
            actor=msg.by,
            channel=msg.channel,
            promised_delivery_at=msg.promised_delivery_at.isoformat(),
        )
        when = "visit" if self._type is OrderType.SERVICE else "delivery"
        await self._tell(
            Audience.CUSTOMER,
            "Your order is confirmed",
            f"Expected {when}: {_at(msg.promised_delivery_at)}. {msg.promises}".strip(),
        )

    # --- 6 in_progress (goods): R3.1 -----------------------------------------------------------

    async def _prepare(self) -> None:
        await self._enter(Stage.IN_PROGRESS)
        assert self._promise is not None
        await self._within(
            Clause.PREPARE,
            self._until(lambda: self._ready),
            due=self._promise.ready_at,
        )
        await self._step(Stock.commit_stock, OrderRef(order_id=self._id))
        await self._step(PlatformCalls.platform_meal_ready, self._call())

    # --- 7 delivering / delivered (goods): R3.4.1 ----------------------------------------------

    async def _deliver(self) -> None:
        assert self._promise is not None
        mode = self._rec.delivery_mode
        if mode is DeliveryMode.SELF_DELIVERY:
            await self._step(PlatformCalls.platform_delivering, self._call())
            await self._enter(Stage.DELIVERING)
        await self._within(Clause.DELIVER, self._handover(mode), due=self._promise.delivery_at)
        if mode is DeliveryMode.SELF_DELIVERY:
            await self._step(PlatformCalls.platform_arrived, self._call())
        await self._enter(Stage.DELIVERED)
        await self._tell(Audience.CUSTOMER, "Delivered", "Your order was delivered. Enjoy!")

    async def _handover(self, mode: DeliveryMode) -> None:
        if mode is DeliveryMode.PLATFORM_COURIER:
            await self._until(lambda: self._courier_picked_up or self._delivered)
            await self._enter(Stage.DELIVERING)
        await self._until(lambda: self._delivered)

    # --- 6 in_progress (service): R3.2 ---------------------------------------------------------

    async def _schedule(self) -> None:
        await self._enter(Stage.IN_PROGRESS)
        self._booking = await self._within(Clause.SCHEDULE, self._book())
        await self._log(
            Event.BOOKED,
            staff_id=self._booking.staff_id,
            slot_start=self._booking.slot_start.isoformat(),
        )
        # R3.2.2 the service person is briefed before the visit.
        await self._tell(
            Audience.STAFF,
            f"Visit {_at(self._booking.slot_start)}",
            f"{self._brief()} Re-confirm time and place with the customer beforehand.",
            recipient=self._booking.staff_id,
        )

    async def _book(self) -> Booking:
        assert self._promise is not None
        waiting_logged = False
        while True:
            try:
                return await self._step(
                    Bookings.book_service,
                    BookService(
                        order_id=self._id,
                        store_code=self._order.store_code,
                        region=self._rec.region,
                        skills=self._rec.skills,
                        earliest=self._promise.delivery_at,
                        preferred_staff=self._assignee.staff_id if self._assignee else None,
                    ),
                    refusals={"NoSlotAvailable"},
                )
            except ActivityError:
                if not waiting_logged:
                    await self._log(Event.WAITING_FOR_SLOT)
                    waiting_logged = True
                await self._until(lambda: False, timedelta(minutes=self._pol.assign_retry_minutes))

    async def _rebook(self) -> None:
        """R3.2.1 the visit moved: a slot at the new time, and the person re-confirms it."""
        old = self._booking
        assert old is not None
        self._booking = None
        self._visit_reconfirmed = False
        await self._act(Bookings.release_booking, OrderRef(order_id=self._id))
        new = await self._book()
        self._booking = new
        deadline = self._deadline(Clause.EXECUTE)
        for view in self._clock.views.values():
            if view.clause is Clause.EXECUTE:
                self._clock.move(view, new.slot_start + deadline.soft, deadline)
        await self._log(
            Event.REBOOKED,
            staff_id=new.staff_id,
            slot_start=new.slot_start.isoformat(),
            previous=old.slot_start.isoformat(),
        )
        await self._tell(
            Audience.STAFF,
            f"Visit moved to {_at(new.slot_start)}",
            f"{self._brief()} Re-confirm the new time with the customer.",
            recipient=new.staff_id,
        )

    async def _visit(self) -> None:
        """R3.2.2 re-confirmed with the customer, R3.2.3 / R3.3.1 executed on time."""
        assert self._booking is not None
        await self._within(Clause.RECONFIRM_VISIT, self._until(lambda: self._visit_reconfirmed))
        await self._within(
            Clause.EXECUTE,
            self._until(lambda: self._delivered),
            since=self._booking.slot_start,
        )
        await self._step(Bookings.release_booking, OrderRef(order_id=self._id))
        await self._enter(Stage.DELIVERED)
        await self._tell(Audience.CUSTOMER, "Service completed", "Please rate the service (1-5).")

    # --- 8 closed: R3.3.3, R4.2 ----------------------------------------------------------------

    async def _follow_up(self) -> None:
        """The feedback window: open cases and refunds are settled before the order closes."""
        await self._act(
            Credit.record_credit_event,
            CreditEvent(
                customer_id=self._rec.customer_id,
                order_id=self._id,
                kind=CreditEventKind.COMPLETED,
            ),
        )
        await self._until(lambda: False, timedelta(minutes=self._pol.feedback_window_minutes))
        await self._until(lambda: not self._open_matters())

    async def _close(self) -> None:
        if self._assignee is not None:
            await self._step(
                Assignment.release_assignment,
                ReleaseAssignment(order_id=self._id, staff_id=self._assignee.staff_id),
            )
        await self._finish(Stage.CLOSED, "completed")

    # ============================================================================================
    # Ending: rejection, cancellation, close
    # ============================================================================================

    def _request_cancel(self, request: CancelRequest) -> None:
        if self._cancel is None and not self._stage.terminal:
            self._cancel = request

    async def _cancelled(self, request: CancelRequest) -> None:
        """Compensation: the platform told, claims released, everyone told, all recorded."""
        if self._record is None:  # R1.3 an order cancelled on arrival is still on record
            self._record = await self._act(
                OrderRecords.record_order,
                RecordOrder(order=self._order, received_at=workflow.now(), source=self._source),
            )
        if not request.on_platform_already:
            try:
                await self._act(
                    PlatformCalls.platform_cancel_order,
                    PlatformCancelOrder(
                        order_id=self._id, reason_code=request.code, reason=request.reason
                    ),
                )
            except ActivityError as err:
                await self._log(Event.PLATFORM_CANCEL_REFUSED, error=str(err.cause or err))
        released: list[str] = []
        if self._stock_reserved:
            await self._act(Stock.release_stock, OrderRef(order_id=self._id))
            released.append("stock")
        if self._booking is not None:
            await self._act(Bookings.release_booking, OrderRef(order_id=self._id))
            released.append("booking")
        if self._assignee is not None:
            await self._act(
                Assignment.release_assignment,
                ReleaseAssignment(order_id=self._id, staff_id=self._assignee.staff_id),
            )
            released.append("assignee capacity")
            await self._tell(
                Audience.STAFF,
                f"Order {self._id} cancelled",
                request.reason,
                recipient=self._assignee.staff_id,
            )
        if request.customer_caused and self._record is not None:
            await self._act(
                Credit.record_credit_event,
                CreditEvent(
                    customer_id=self._record.customer_id,
                    order_id=self._id,
                    kind=CreditEventKind.CANCELLATION,
                    note=request.reason,
                ),
            )
        if self._record is not None:
            await self._tell(Audience.CUSTOMER, "Your order was cancelled", request.reason)
        await self._finish(
            Stage.CANCELLED, request.reason, request.code, by=request.by, released=released
        )

    async def _finish(
        self, stage: Stage, reason: str, code: int | None = None, **details: Any
    ) -> None:
        ended_at = workflow.now()
        for view in self._clock.views.values():
            self._clock.close(view, void=True)
        self._set_stage(stage)
        self._outcome = OrderOutcome(
            order_id=self._id,
            stage=stage,
            reason=reason,
            cancel_code=code,
            breaches=len(self._clock.breaches),
            anomalies=len(self._anomalies),
        )
        await self._log(Event.stage(stage), reason=reason, cancel_code=code, **details)
        if self._record is not None:
            await self._act(
                OrderRecords.record_summary,
                summarise(
                    order_id=self._id,
                    order_type=self._record.order_type,
                    outcome=stage,
                    stages=self._stages,
                    ended_at=ended_at,
                    breaches=self._clock.breaches,
                    exceptions=self._exceptions,
                    anomalies=[f"{a.kind.value}: {a.decision}" for a in self._anomalies],
                    feedback=self._feedback,
                    rating=self._rating,
                    low_rating=self._pol.low_rating,
                ),
            )

    # ============================================================================================
    # Anomalies: R5.2
    # ============================================================================================

    async def _anomaly(
        self, kind: AnomalyKind, detail: str, failures: list[RuleFailure] | None = None
    ) -> AnomalyOutcome:
        """Pause at once, wait for the child's decision, then resume or end (R5.2.1, R5.2.4)."""
        async with self._anomaly_lock:
            number = len(self._anomalies) + 1
            view = AnomalyView(
                anomaly_id=anomaly_workflow_id(self._id, number),
                kind=kind,
                detail=detail,
                opened_at=workflow.now(),
                paused_stage=self._stage,
            )
            self._held_by = view.anomaly_id
            self._hold(True)
            await self._log(Event.ANOMALY_OPENED, anomaly_id=view.anomaly_id, kind=kind.value)
            child = await workflow.start_child_workflow(
                AnomalyWorkflow.run,
                AnomalyInput(
                    order_id=self._id,
                    number=number,
                    kind=kind,
                    detail=detail,
                    failures=failures or [],
                    store_code=self._order.store_code,
                    customer_id=self._rec.customer_id,
                    manager_id=self._assignee.manager_id if self._assignee else None,
                    paused_stage=view.paused_stage.value,
                    deadline=self._pol.deadlines.anomaly_decision,
                    platform_task_queue=self._policy_snapshot.platform_task_queue,
                ),
                id=view.anomaly_id,
            )
            # Shown once the child exists, so whoever sees it can decide it straight away.
            self._anomalies.append(view)
            await workflow.wait_condition(lambda: child.done() or self._cancel is not None)
            if not child.done():
                child.cancel()
                with contextlib.suppress(ChildWorkflowError, asyncio.CancelledError):
                    await child
                view.decision = "cancel"  # as the child records it: ended with the order
                view.resumed = False
                view.closed_at = workflow.now()
                self._hold(False)
                raise _Halt
            outcome = child.result()
            view.decision = outcome.decision.value
            view.resumed = outcome.resume
            view.closed_at = workflow.now()
            await self._apply_decision(outcome)
            self._hold(False)
        if not outcome.resume:
            self._request_cancel(
                CancelRequest(
                    outcome.cancel_code or MERCHANT_OTHER,
                    f"anomaly {outcome.kind.value}: {outcome.decision.value} ({outcome.cause})",
                    outcome.decided_by,
                    False,
                )
            )
            raise _Halt
        return outcome

    async def _apply_decision(self, outcome: AnomalyOutcome) -> None:
        if outcome.corrections is not None:
            self._order = outcome.corrections.apply(self._order)
        if outcome.new_total is not None:
            self._order = self._order.model_copy(update={"total": outcome.new_total})
        await self._log(
            Event.ANOMALY_CLOSED,
            actor=outcome.decided_by,
            anomaly_id=outcome.anomaly_id,
            decision=outcome.decision.value,
            resume=outcome.resume,
            cause=outcome.cause,
            responsibility=outcome.responsibility,
        )

    async def _save_case(self, case: FeedbackCase, satisfied: bool | None = None) -> None:
        """R4.2 the case on record, so statistics and people outside the order can see it.

        A reminder or refund case exists only where PLATFORM_FEEDBACK was patched in, so it is
        always written."""
        if case.kind in PLATFORM_KINDS or workflow.patched(FEEDBACK_RECORDS):
            snapshot = case.model_copy(deep=True)  # the case may move on while this is written
            await self._act(
                OrderRecords.record_feedback,
                RecordFeedback(order_id=self._id, case=snapshot, satisfied=satisfied),
            )

    def _platform_case(
        self, kind: FeedbackKind, text: str, ref: str, owner: str | None
    ) -> FeedbackCase | None:
        """R4.2.1 a reminder or refund request opens a feedback case, numbered with the others.

        Called before the handler awaits anything, so an answer that follows at once finds it.
        Orders started before PLATFORM_FEEDBACK keep their reminders and refunds off the list.
        """
        if not workflow.patched(PLATFORM_FEEDBACK):
            return None
        case = FeedbackCase(
            case=len(self._feedback) + 1,
            kind=kind,
            text=text,
            opened_at=workflow.now(),
            owner=owner,
            ref=ref,
        )
        self._feedback.append(case)
        return case

    def _case_of(self, kind: FeedbackKind, ref: str) -> FeedbackCase | None:
        return next((c for c in self._feedback if c.kind is kind and c.ref == ref), None)

    @staticmethod
    def _close_case(case: FeedbackCase, resolution: str, response: str | None = None) -> None:
        """Answered on the platform: no rounds, no satisfaction asked (R4.2.2)."""
        if response is not None:
            case.responses.append(response)
        case.resolutions.append(resolution)
        case.state = FeedbackState.CLOSED

    async def _save_refund(self, request: RefundRequest, case: FeedbackCase | None) -> None:
        """R4.3.1 the request and the money given back on record, with its case (R4.2.1)."""
        if case is None:
            return  # an order started before PLATFORM_FEEDBACK
        await self._act(
            OrderRecords.record_refund,
            RecordRefund(
                order_id=self._id,
                refund=request.model_copy(deep=True),
                case=case.model_copy(deep=True),
            ),
        )

    def _settle_refund(self, request: RefundRequest, state: RefundState, by: str) -> None:
        request.state = state
        request.decided_by = by
        request.decided_at = workflow.now()
        if state is RefundState.AGREED:
            # R4.3.1 a partial refund gives back its amount, a full one the order's total.
            request.refunded = request.amount if request.partial else self._order.total

    def _spawn_anomaly(self, kind: AnomalyKind, detail: str) -> None:
        """From a message handler: the handler answers now; the order pauses until decided."""
        self._spawn(self._anomaly(kind, detail))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work a message handler starts but does not wait for; `run` waits for it at the end."""

        async def run() -> None:
            with contextlib.suppress(_Halt):
                await work

        self._background.append(asyncio.create_task(run()))

    def _hold(self, on: bool) -> None:
        self._on_hold = on
        if on:
            self._paused_stage = self._stage
            self._set_stage(Stage.ON_HOLD)
        elif self._paused_stage is not None:
            if not self._stage.terminal:
                self._set_stage(self._paused_stage)
            self._paused_stage = None
        workflow.upsert_search_attributes([sa.ANOMALY_OPEN.value_set(on)])

    # ============================================================================================
    # Deadlines: every [X] minutes of the measures
    # ============================================================================================

    async def _within(
        self,
        clause: Clause,
        work: Coroutine[Any, Any, R],
        *,
        since: datetime | None = None,
        due: datetime | None = None,
        key: str | None = None,
        pausable: bool = True,
    ) -> R:
        """Run a stage's work under its deadline; the watch never interrupts the work itself."""
        view = self._clock.open(
            key or deadline_key(clause),
            clause,
            self._deadline(clause),
            since or workflow.now(),
            due,
        )
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(
            self._clock.watch(
                view,
                task.done,
                on_breach=self._on_breach,
                on_hard_limit=self._on_hard_limit,
                paused=(lambda: self._on_hold) if pausable else (lambda: False),
            )
        )
        try:
            result = await task
        except (Exception, asyncio.CancelledError):
            self._clock.close(view, void=True)
            await watch
            raise
        self._clock.close(view)
        await watch
        return result

    def _deadline(self, clause: Clause) -> Deadline:
        if clause is Clause.RECEIVE:
            return self._policy_snapshot.receive
        return self._pol.deadlines.of(clause)

    async def _on_breach(self, view: DeadlineView) -> None:
        """Recorded, flagged for search, and the supervisor told."""
        workflow.upsert_search_attributes([sa.SLA_BREACHED.value_set(True)])
        await self._log(Event.DEADLINE_BREACHED, key=view.key, due_at=view.due_at.isoformat())
        await self._tell(
            Audience.SUPERVISOR,
            f"Order {self._id}: {view.clause.value} deadline missed",
            f"Due {_at(view.due_at)}; hard limit {_at(view.hard_at)}. Stage: {self._stage.value}.",
        )

    async def _on_hard_limit(self, view: DeadlineView) -> bool:
        """The policy's action; True when the clock starts over for a new assignee."""
        deadline = self._deadline(view.clause)
        action = deadline.action
        if action is HardAction.REASSIGN and self._reassignments >= self._pol.max_reassignments:
            action = HardAction.ESCALATE
        self._clock.breaches[-1].action = action
        await self._log(Event.HARD_LIMIT_PASSED, key=view.key, action=action.value)
        if action is HardAction.CANCEL:
            assert deadline.cancel_code is not None
            self._request_cancel(
                CancelRequest(
                    deadline.cancel_code,
                    f"{view.clause.value} past its hard limit",
                    "policy",
                    False,
                )
            )
            return False
        if action is HardAction.REASSIGN and await self._reassign(
            f"{view.clause.value} past its hard limit", by="policy"
        ):
            self._clock.restart(view, deadline)
            return True
        await self._tell(
            Audience.MANAGER,
            f"Order {self._id}: {view.clause.value} past its hard limit",
            f"Escalated to you. Stage: {self._stage.value}. {self._brief()}",
            recipient=self._assignee.manager_id if self._assignee else None,
        )
        return False

    async def _reassign(self, reason: str, by: str, to: str | None = None) -> bool:
        """Claim the new person before freeing the old one; False when nobody else is free."""
        async with self._assignment_lock:
            old = self._assignee
            new = await self._find_assignee(exclude=[old.staff_id] if old else [], preferred=to)
            if new is None:
                await self._log(Event.REASSIGN_FAILED, actor=by, reason=reason)
                return False
            self._reassignments += 1
            if old is not None:
                await self._act(
                    Assignment.release_assignment,
                    ReleaseAssignment(order_id=self._id, staff_id=old.staff_id),
                )
            await self._take(new, Event.REASSIGNED)
            await self._log(
                Event.REASSIGNED,
                actor=by,
                reason=reason,
                from_staff=old.staff_id if old else None,
                to_staff=new.staff_id,
            )
            return True

    # ============================================================================================
    # Signals: what happens to the order from outside
    # ============================================================================================

    @workflow.signal
    async def customer_change(self, msg: CustomerChange) -> None:
        """R2.4.2 changed fields go back through review and re-confirmation."""
        if self._finished or self._stage in (Stage.DELIVERED, Stage.CLOSED):
            await self._log(Event.CUSTOMER_CHANGE_IGNORED, reason=f"order is {self._state}")
            return
        fields = msg.changes.changed_fields()
        self._order = msg.changes.apply(self._order)
        self._changes += 1
        await self._log(Event.CUSTOMER_CHANGED, actor="customer", fields=fields, note=msg.note)
        await workflow.wait_condition(lambda: self._reviewed or self._finished)
        if self._finished:
            return
        async with self._change_lock:
            with contextlib.suppress(_Halt):
                await self._recheck(fields)

    async def _recheck(self, fields: list[str]) -> None:
        verdict = await self._verdict()
        await self._log(
            Event.review(verdict.outcome.value),
            round=self._review_round,
            failures=[f.model_dump() for f in verdict.failures],
        )
        if verdict.outcome is Outcome.REJECT:
            self._request_cancel(
                CancelRequest(
                    verdict.cancel_code or MERCHANT_CHANGED, verdict.reason, "review", False
                )
            )
            return
        if verdict.outcome is Outcome.ANOMALY:
            assert verdict.anomaly_kind is not None
            await self._anomaly(verdict.anomaly_kind, self._describe(verdict), verdict.failures)
        if "items" in fields and self._stock_reserved:
            await self._act(Stock.release_stock, OrderRef(order_id=self._id))
            self._stock_reserved = False
            self._stock_round += 1
            await self._reserve_stock()
        if self._promise is None:
            return  # not confirmed yet: the confirm stage covers the change
        self._awaiting_reconfirmation = True
        if self._pol.auto_confirm:
            await self._auto_confirm()
            return
        assert self._assignee is not None
        await self._tell(
            Audience.STAFF,
            f"Order {self._id} changed: confirm again",
            f"The customer changed {', '.join(fields)}. Confirm with the customer again.",
            recipient=self._assignee.staff_id,
        )
        await self._within(
            Clause.CONFIRM,
            workflow.wait_condition(lambda: not self._awaiting_reconfirmation or self._finished),
            key=deadline_key(Clause.CONFIRM, self._changes + 1),
        )

    @workflow.signal
    async def customer_feedback(self, msg: CustomerFeedback) -> None:
        """R4.2 a case: answered, resolved, and repeated until the customer is satisfied."""
        if self._finished:
            await self._log(Event.FEEDBACK_IGNORED, kind=msg.kind.value, reason="order has ended")
            return
        await self._open_case(msg.kind, msg.text, channel=msg.channel)

    async def _open_case(self, kind: FeedbackKind, text: str, channel: str) -> None:
        case = FeedbackCase(
            case=len(self._feedback) + 1,
            kind=kind,
            text=text,
            channel=channel,
            opened_at=workflow.now(),
            owner=self._assignee.staff_id if self._assignee else None,
        )
        self._feedback.append(case)
        await self._save_case(case)
        await self._log(
            Event.FEEDBACK_OPENED,
            actor="customer",
            case=case.case,
            kind=kind.value,
            channel=channel,
        )
        await self._work_case(case)

    async def _work_case(self, case: FeedbackCase) -> None:
        while not self._finished:
            await self._tell(
                Audience.STAFF if case.owner else Audience.SUPERVISOR,
                f"Feedback #{case.case} on {self._id} ({case.kind.value}, round {case.round})",
                case.text,
                recipient=case.owner,
            )
            await self._within(
                Clause.FEEDBACK_RESPONSE,
                workflow.wait_condition(
                    lambda: case.state is not FeedbackState.AWAITING_RESPONSE or self._finished
                ),
                key=deadline_key(Clause.FEEDBACK_RESPONSE, f"{case.case}.{case.round}"),
                pausable=False,
            )
            await self._within(
                Clause.FEEDBACK_RESOLUTION,
                workflow.wait_condition(
                    lambda: case.state is not FeedbackState.AWAITING_RESOLUTION or self._finished
                ),
                key=deadline_key(Clause.FEEDBACK_RESOLUTION, f"{case.case}.{case.round}"),
                since=case.opened_at,
                pausable=False,
            )
            if case.state is not FeedbackState.AWAITING_RESPONSE:
                return  # satisfied, or escalated to a manager
            # Unsatisfied: the loop repeats (R4.2.3).

    @workflow.signal
    async def platform_cancel(self, msg: PlatformCancel) -> None:
        if self._finished:
            await self._log(Event.PLATFORM_CANCEL_IGNORED, reason=f"order is {self._state}")
            return
        await self._log(
            Event.PLATFORM_CANCELLED,
            actor="platform",
            reason_code=msg.reason_code,
            reason=msg.reason,
        )
        self._request_cancel(
            CancelRequest(
                msg.reason_code,
                msg.reason or f"cancelled on the platform ({msg.reason_code})",
                "platform",
                on_platform_already=True,
                # R5.3.3 only a cancellation after the store accepted costs the customer credit
                customer_caused=msg.deal_op_type == USER and self._accepted,
            )
        )

    @workflow.signal
    async def platform_refund(self, msg: PlatformRefund) -> None:
        """A refund request waits for a human decision under the refund_decision clause.

        The request is on the order before anything is awaited, so a decision can follow at once.
        """
        request = self._refunds.get(msg.refund_id)
        opened = msg.notify_type is RefundNotice.APPLY and request is None and not self._finished
        if opened:
            request = RefundRequest(
                refund_id=msg.refund_id,
                reason=msg.reason,
                partial=msg.partial,
                amount=msg.amount,
                requested_at=workflow.now(),
            )
            self._refunds[msg.refund_id] = request
            case = self._platform_case(
                FeedbackKind.REFUND,
                msg.reason,  # R4.2.1 the customer's reason is the case's text
                msg.refund_id,
                owner=self._assignee.manager_id if self._assignee else None,
            )
        else:
            case = self._case_of(FeedbackKind.REFUND, msg.refund_id)
        settled = (
            msg.notify_type is not RefundNotice.APPLY
            and request is not None
            and request.state is RefundState.AWAITING_DECISION
        )
        if settled:
            # The platform settled it itself (arbitration, or the customer withdrew).
            assert request is not None
            state = {
                RefundNotice.AGREE: RefundState.AGREED,
                RefundNotice.REJECT: RefundState.REJECTED,
            }.get(msg.notify_type, RefundState.WITHDRAWN)
            self._settle_refund(request, state, "platform")
            if case is not None:
                self._close_case(case, self._refund_result(request))
            self._end_if_refunded(request)
        await self._log(
            Event.REFUND_NOTICE,
            actor="platform",
            refund_id=msg.refund_id,
            notify_type=msg.notify_type.value,
            reason=msg.reason,
            **self._case_detail(case if opened else None),
        )
        if (opened or settled) and request is not None:
            await self._save_refund(request, case)  # as it stands now: it may be decided already
        if not opened:
            if msg.notify_type is RefundNotice.APPLY and request is None:
                await self._log(Event.REFUND_IGNORED, refund_id=msg.refund_id, reason=self._state)
            return  # a repeated push, a settlement, or nothing left to refund against
        assert request is not None
        await self._tell(
            Audience.MANAGER,
            f"Refund request on order {self._id}",
            f"{'Partial' if msg.partial else 'Full'} refund: {msg.reason}. Decide it.",
            recipient=self._assignee.manager_id if self._assignee else None,
        )
        await self._within(
            Clause.REFUND_DECISION,
            workflow.wait_condition(
                lambda: request.state is not RefundState.AWAITING_DECISION or self._finished
            ),
            key=deadline_key(Clause.REFUND_DECISION, msg.refund_id),
            pausable=False,
        )

    @staticmethod
    def _refund_result(request: RefundRequest) -> str:
        by = " by the platform" if request.decided_by == "platform" else ""
        if request.state is RefundState.AGREED:
            amount = "" if request.refunded is None else f" of {request.refunded}"
            return f"{'partial' if request.partial else 'full'} refund{amount} agreed{by}"
        if request.state is RefundState.REJECTED:
            return f"refund rejected{by}"
        return "refund withdrawn"

    @staticmethod
    def _case_detail(case: FeedbackCase | None) -> dict[str, Any]:
        """The case number on the event, so statistics pair its opening with its answer."""
        return {} if case is None else {"case": case.case}

    def _end_if_refunded(self, request: RefundRequest) -> None:
        if request.state is RefundState.AGREED and not request.partial:
            self._request_cancel(
                CancelRequest(
                    REFUND_AGREED, f"full refund agreed: {request.reason}", "refund", True
                )
            )

    @workflow.signal
    async def delivery_status(self, msg: DeliveryStatus) -> None:
        """A platform courier's progress drives delivery for courier orders (R3.4.1)."""
        if self._record is None or self._rec.delivery_mode is not DeliveryMode.PLATFORM_COURIER:
            await self._log(
                Event.DELIVERY_STATUS_IGNORED, status=msg.status, reason="not a courier order"
            )
            return
        repeated, self._courier_status = msg.status == self._courier_status, msg.status
        if repeated and workflow.patched(COURIER_STATUS_ONCE):
            return
        await self._log(
            Event.COURIER_STATUS, actor="platform", status=msg.status, courier=msg.courier_name
        )
        if msg.status == COURIER_PICKED_UP:
            self._courier_picked_up = True
        elif msg.status == COURIER_DELIVERED:
            self._delivered = True
        elif msg.status == COURIER_CANCELLED and not self._finished and not self._delivered:
            # R5.1 (5) a delivery problem: a manager agrees the way forward with the platform.
            self._spawn_anomaly(AnomalyKind.OTHER, "the platform's courier cancelled the delivery")

    @workflow.signal
    async def customer_reminder(self, msg: CustomerReminder) -> None:
        """A reminder (催单) gets a reply within the reminder_reply clause."""
        if msg.remind_id in self._reminders:
            return  # the same reminder pushed again
        if self._finished:
            await self._log(Event.REMINDER_IGNORED, remind_id=msg.remind_id, reason=self._state)
            return
        self._reminders[msg.remind_id] = None
        case = self._platform_case(
            FeedbackKind.REMINDER,
            msg.text,
            msg.remind_id,
            owner=self._assignee.staff_id if self._assignee else None,
        )
        if case is not None:
            await self._save_case(case)
        await self._log(
            Event.CUSTOMER_REMINDED,
            actor="customer",
            remind_id=msg.remind_id,
            **self._case_detail(case),
        )
        await self._tell(
            Audience.STAFF if self._assignee else Audience.SUPERVISOR,
            f"The customer of order {self._id} is waiting",
            f"Stage {self._stage.value}. Reply with reply_reminder {msg.remind_id}.",
            recipient=self._assignee.staff_id if self._assignee else None,
        )
        await self._within(
            Clause.REMINDER_REPLY,
            workflow.wait_condition(
                lambda: self._reminders[msg.remind_id] is not None or self._finished
            ),
            key=deadline_key(Clause.REMINDER_REPLY, msg.remind_id),
            pausable=False,
        )

    # ============================================================================================
    # Updates: human actions that need an answer
    # ============================================================================================

    @workflow.update
    async def confirm_with_customer(self, msg: ConfirmWithCustomer) -> UpdateResult:
        await self._promise_customer(msg)
        return self._result("confirmed with the customer")

    @confirm_with_customer.validator
    def _check_confirm(self, msg: ConfirmWithCustomer) -> None:
        self._require_active("confirm_with_customer")
        if not (self._awaiting_reconfirmation or self._stage is Stage.ASSIGNED):
            raise _not_allowed(
                f"confirm_with_customer is for an assigned order or one the customer changed; "
                f"this order is {self._stage.value}"
            )
        if msg.promised_delivery_at <= workflow.now():
            raise _not_allowed("promised_delivery_at must be in the future")

    @workflow.update
    async def report_progress(self, msg: ReportProgress) -> UpdateResult:
        """R3.3.1 progress goes to the customer."""
        await self._log(Event.PROGRESS, actor=msg.by, note=msg.note, percent=msg.percent)
        await self._tell(Audience.CUSTOMER, "Progress on your order", msg.note)
        return self._result("progress reported")

    @report_progress.validator
    def _check_progress(self, msg: ReportProgress) -> None:
        self._require_stage("report_progress", Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING)

    @workflow.update
    async def report_exception(self, msg: ReportException) -> UpdateResult:
        """R3.3.2 each exception has a remedy, and the customer is told."""
        self._exceptions.append(f"{msg.kind.value}: {msg.remedy.value}")
        await self._log(
            Event.EXCEPTION,
            actor=msg.by,
            kind=msg.kind.value,
            detail=msg.detail,
            remedy=msg.remedy.value,
        )
        if msg.remedy is Remedy.RESCHEDULE:
            assert msg.new_promised_at is not None and self._promise is not None
            self._reschedule(msg.new_promised_at)
            told = f"New expected time: {_at(msg.new_promised_at)}. {msg.detail}"
        elif msg.remedy is Remedy.CANCEL:
            assert msg.cancel_code is not None
            self._request_cancel(CancelRequest(msg.cancel_code, msg.detail, msg.by, False))
            told = f"We have to cancel your order: {msg.detail}"
        elif msg.remedy is Remedy.ESCALATE:
            self._spawn_anomaly(AnomalyKind.OTHER, f"{msg.kind.value}: {msg.detail}")
            told = f"We are sorting out a problem with your order: {msg.detail}"
        else:
            told = f"A change to your order: {msg.detail}"
        await self._tell(Audience.CUSTOMER, "About your order", told)
        return self._result(f"exception recorded, remedy {msg.remedy.value}")

    def _reschedule(self, delivery_at: datetime) -> None:
        """R3.3.2 a new promise: ready and delivery move together, and so do their deadlines."""
        assert self._promise is not None
        shift = delivery_at - self._promise.delivery_at
        self._promise.delivery_at = delivery_at
        if self._promise.ready_at is not None:
            self._promise.ready_at += shift
        for view in self._clock.views.values():
            if view.clause is Clause.PREPARE and self._promise.ready_at is not None:
                self._clock.move(view, self._promise.ready_at, self._deadline(view.clause))
            elif view.clause is Clause.DELIVER:
                self._clock.move(view, view.due_at + shift, self._deadline(view.clause))
        if self._booking is not None:
            self._spawn(self._rebook())  # the visit's execution clock follows its new slot

    @report_exception.validator
    def _check_exception(self, msg: ReportException) -> None:
        self._require_stage(
            "report_exception", Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING
        )
        late = msg.new_promised_at is not None and msg.new_promised_at <= workflow.now()
        if msg.remedy is Remedy.RESCHEDULE and late:
            raise _not_allowed("new_promised_at must be in the future")

    @workflow.update
    async def mark_ready(self, msg: MarkReady) -> UpdateResult:
        self._ready = True
        await self._log(Event.READY, actor=msg.by, note=msg.note)
        return self._result("ready")

    @mark_ready.validator
    def _check_ready(self, msg: MarkReady) -> None:
        self._require_stage("mark_ready", Stage.IN_PROGRESS)
        if self._type is not OrderType.GOODS:
            raise _not_allowed("mark_ready is for goods; a service is finished with mark_delivered")
        if self._ready:
            raise _not_allowed("the order is already marked ready")

    @workflow.update
    async def mark_delivered(self, msg: MarkDelivered) -> UpdateResult:
        """R3.4.1 delivered with proof."""
        self._delivered = True
        await self._log(Event.DELIVERED_WITH_PROOF, actor=msg.by, proof=msg.proof, note=msg.note)
        return self._result("delivered")

    @mark_delivered.validator
    def _check_delivered(self, msg: MarkDelivered) -> None:
        self._require_active("mark_delivered")
        mode = self._rec.delivery_mode if self._record else None
        if mode is DeliveryMode.PLATFORM_COURIER:
            raise _not_allowed(
                "the platform's courier delivers this order; its status arrives by itself"
            )
        expected = {
            DeliveryMode.SELF_DELIVERY: (Stage.DELIVERING, "on its way"),
            DeliveryMode.PICKUP: (Stage.IN_PROGRESS, "ready for pickup"),
            DeliveryMode.ON_SITE: (Stage.IN_PROGRESS, "re-confirmed and booked"),
        }
        stage, state = expected[mode] if mode else (Stage.DELIVERING, "")
        ready = (
            {
                DeliveryMode.PICKUP: self._ready,
                DeliveryMode.ON_SITE: self._visit_reconfirmed,
            }.get(mode, True)
            if mode
            else False
        )
        if self._stage is not stage or not ready or self._delivered:
            raise _not_allowed(f"mark_delivered needs the order {state}; it is {self._stage.value}")

    @workflow.update
    async def reconfirm_visit(self, msg: ReconfirmVisit) -> UpdateResult:
        self._visit_reconfirmed = True
        await self._log(Event.VISIT_RECONFIRMED, actor=msg.by, note=msg.note)
        return self._result("visit re-confirmed")

    @reconfirm_visit.validator
    def _check_reconfirm(self, msg: ReconfirmVisit) -> None:
        self._require_stage("reconfirm_visit", Stage.IN_PROGRESS)
        if self._booking is None:
            raise _not_allowed("reconfirm_visit needs a booked visit; none is booked yet")
        if self._visit_reconfirmed:
            raise _not_allowed("the visit is already re-confirmed")

    @workflow.update
    async def record_rating(self, msg: RecordRating) -> UpdateResult:
        """R3.4.2 a low rating is acted on: it opens a complaint."""
        self._rating = msg.score
        await self._log(Event.RATED, actor=msg.by, score=msg.score, comment=msg.comment)
        if msg.score <= self._pol.low_rating:
            text = msg.comment or f"rated {msg.score} of 5"
            self._spawn(self._open_case(FeedbackKind.COMPLAINT, text, "rating"))
        return self._result(f"rated {msg.score}")

    @record_rating.validator
    def _check_rating(self, msg: RecordRating) -> None:
        self._require_stage("record_rating", Stage.DELIVERED)
        if self._rating is not None:
            raise _not_allowed(f"the order is already rated ({self._rating})")

    @workflow.update
    async def reassign(self, msg: Reassign) -> UpdateResult:
        if not await self._reassign(msg.reason, by=msg.by, to=msg.to):
            raise ApplicationError(
                f"nobody else can take order {self._id} now", type="NoAssigneeAvailable"
            )
        assert self._assignee is not None
        return self._result(f"reassigned to {self._assignee.staff_id}")

    @reassign.validator
    def _check_reassign(self, msg: Reassign) -> None:
        self._require_stage(
            "reassign", Stage.ASSIGNED, Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING
        )
        if self._assignee and msg.to == self._assignee.staff_id:
            raise _not_allowed(f"{msg.to} already has this order")

    @workflow.update
    async def respond_feedback(self, msg: RespondFeedback) -> UpdateResult:
        """R4.2.2 a response, and someone put on it."""
        case = self._feedback[msg.case - 1]
        case.responses.append(msg.response)
        case.owner = case.owner or msg.by
        case.state = FeedbackState.AWAITING_RESOLUTION
        await self._save_case(case)
        await self._log(Event.FEEDBACK_RESPONDED, actor=msg.by, case=msg.case, round=case.round)
        await self._tell(Audience.CUSTOMER, "About your feedback", msg.response)
        return self._result(f"feedback #{msg.case} answered")

    @respond_feedback.validator
    def _check_respond(self, msg: RespondFeedback) -> None:
        self._require_case(msg.case, FeedbackState.AWAITING_RESPONSE, "respond_feedback")

    @workflow.update
    async def resolve_feedback(self, msg: ResolveFeedback) -> UpdateResult:
        """R4.2.3 the result goes back; an unsatisfied customer's case is handled again."""
        case = self._feedback[msg.case - 1]
        case.resolutions.append(msg.resolution)
        await self._tell(Audience.CUSTOMER, "Resolution of your feedback", msg.resolution)
        if msg.satisfied:
            case.state = FeedbackState.SATISFIED
        elif case.round >= self._pol.max_feedback_rounds:
            case.state = FeedbackState.ESCALATED
            case.owner = self._assignee.manager_id if self._assignee else None
            await self._tell(
                Audience.MANAGER,
                f"Feedback #{case.case} on order {self._id} still unsatisfied",
                f"After {case.round} rounds: {case.text}. It is yours now.",
                recipient=case.owner,
            )
        else:
            case.round += 1
            case.state = FeedbackState.AWAITING_RESPONSE
        await self._save_case(case, satisfied=msg.satisfied)
        await self._log(
            Event.FEEDBACK_RESOLVED,
            actor=msg.by,
            case=msg.case,
            satisfied=msg.satisfied,
            state=case.state.value,
        )
        return self._result(f"feedback #{msg.case} {case.state.value}")

    @resolve_feedback.validator
    def _check_resolve(self, msg: ResolveFeedback) -> None:
        self._require_case(msg.case, FeedbackState.AWAITING_RESOLUTION, "resolve_feedback")

    @workflow.update
    async def decide_refund(self, msg: DecideRefund) -> UpdateResult:
        request = self._refunds[msg.refund_id]
        await self._act(
            PlatformCalls.platform_answer_refund,
            PlatformRefundAnswer(
                order_id=self._id, refund_id=msg.refund_id, agree=msg.agree, reason=msg.reason
            ),
        )
        self._settle_refund(
            request, RefundState.AGREED if msg.agree else RefundState.REJECTED, msg.by
        )
        case = self._case_of(FeedbackKind.REFUND, msg.refund_id)
        if case is not None:
            case.owner = case.owner or msg.by
            self._close_case(case, self._refund_result(request), response=msg.reason)
        await self._save_refund(request, case)
        await self._log(
            Event.REFUND_DECIDED,
            actor=msg.by,
            refund_id=msg.refund_id,
            agree=msg.agree,
            **self._case_detail(case),
        )
        self._end_if_refunded(request)
        return self._result(f"refund {request.state.value}")

    @decide_refund.validator
    def _check_refund(self, msg: DecideRefund) -> None:
        request = self._refunds.get(msg.refund_id)
        if request is None:
            raise _not_allowed(f"no refund request {msg.refund_id} on order {self._id}")
        if request.state is not RefundState.AWAITING_DECISION:
            raise _not_allowed(f"refund {msg.refund_id} is already {request.state.value}")

    @workflow.update
    async def reply_reminder(self, msg: ReplyReminder) -> UpdateResult:
        await self._act(
            PlatformCalls.platform_reply_reminder,
            PlatformReminderReply(order_id=self._id, remind_id=msg.remind_id, text=msg.text),
        )
        self._reminders[msg.remind_id] = msg.text
        case = self._case_of(FeedbackKind.REMINDER, msg.remind_id)
        if case is not None:
            case.owner = case.owner or msg.by
            self._close_case(case, "replied on the platform", response=msg.text)
            await self._save_case(case)
        await self._log(
            Event.REMINDER_REPLIED,
            actor=msg.by,
            remind_id=msg.remind_id,
            **self._case_detail(case),
        )
        return self._result("reminder answered")

    @reply_reminder.validator
    def _check_reply(self, msg: ReplyReminder) -> None:
        if msg.remind_id not in self._reminders:
            raise _not_allowed(f"no reminder {msg.remind_id} on order {self._id}")
        if self._reminders[msg.remind_id] is not None:
            raise _not_allowed(f"reminder {msg.remind_id} is already answered")

    @workflow.update
    async def cancel_order(self, msg: CancelOrder) -> UpdateResult:
        await self._log(Event.CANCEL_REQUESTED, actor=msg.by, reason_code=msg.reason_code)
        self._request_cancel(CancelRequest(msg.reason_code, msg.reason, msg.by, False))
        return self._result("cancellation under way")

    @cancel_order.validator
    def _check_cancel(self, msg: CancelOrder) -> None:
        if self._finished or self._stage in (Stage.DELIVERED, Stage.CLOSED):
            raise _not_allowed(f"an order that is {self._state} cannot be cancelled")

    # ============================================================================================
    # Query
    # ============================================================================================

    @workflow.query
    def status(self) -> OrderStatus:
        return OrderStatus(
            order_id=self._id,
            stage=self._stage,
            paused_stage=self._paused_stage,
            order_type=self._record.order_type if self._record else None,
            store_code=self._order.store_code,
            region=self._record.region if self._record else None,
            delivery_mode=self._record.delivery_mode if self._record else None,
            assignee=self._assignee,
            booking=self._booking,
            promise=self._promise,
            awaiting_reconfirmation=self._awaiting_reconfirmation,
            ready=self._ready,
            visit_reconfirmed=self._visit_reconfirmed,
            delivered=self._delivered,
            deadlines=list(self._clock.views.values()),
            breaches=self._clock.breaches,
            anomalies=self._anomalies,
            feedback=self._feedback,
            refunds=list(self._refunds.values()),
            reminders=[Reminder(remind_id=i, reply=r) for i, r in self._reminders.items()],
            rating=self._rating,
            timeline=self._timeline,
        )

    # ============================================================================================
    # Plumbing
    # ============================================================================================

    @property
    def _id(self) -> str:
        return self._order.order_id

    @property
    def _rec(self) -> OrderRecord:
        assert self._record is not None, "the order is not recorded yet"
        return self._record

    @property
    def _type(self) -> OrderType:
        return self._rec.order_type

    @property
    def _pol(self) -> OrderPolicy:
        if self._policy is None:
            return self._policy_snapshot.goods
        return self._policy

    @property
    def _finished(self) -> bool:
        return self._cancel is not None or self._stage.terminal

    @property
    def _state(self) -> str:
        """The stage, as a person should read it in a refusal or an ignored message."""
        return "being cancelled" if self._cancel and not self._stage.terminal else self._stage.value

    def _open_matters(self) -> bool:
        return (
            any(
                c.state in (FeedbackState.AWAITING_RESPONSE, FeedbackState.AWAITING_RESOLUTION)
                for c in self._feedback
            )
            or any(r.state is RefundState.AWAITING_DECISION for r in self._refunds.values())
            or any(reply is None for reply in self._reminders.values())
            or self._on_hold
        )

    _on_hold = False

    def _set_stage(self, stage: Stage) -> None:
        self._stage = stage
        self._stages.append((stage, workflow.now()))
        workflow.upsert_search_attributes(
            [
                sa.ORDER_STAGE.value_set(stage.value),
                sa.STORE_CODE.value_set(self._order.store_code),
            ]
        )

    async def _enter(self, stage: Stage, **details: Any) -> None:
        """A stage change waits while the order is on hold: processing pauses at once (R5.2.1)."""
        await self._until(lambda: not self._on_hold)
        self._set_stage(stage)
        await self._log(Event.stage(stage), **details)

    async def _until(self, condition: Callable[[], bool], at_most: timedelta | None = None) -> None:
        """A lifecycle wait: returns when `condition()` holds or `at_most` passes, and halts
        the lifecycle when the order is being cancelled."""
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: condition() or self._cancel is not None, timeout=at_most
            )
        if self._cancel is not None:
            raise _Halt

    async def _log(self, event: Event, actor: str = "system", **details: Any) -> None:
        """R4.1.3 every stage change, breach and human action: who, when, what."""
        entry = TimelineEntry(
            seq=len(self._timeline) + 1,
            at=workflow.now(),
            event=event.value,
            stage=self._stage,
            actor=actor,
            details=details,
        )
        self._timeline.append(entry)
        if self._record is not None:
            await self._act(OrderRecords.record_event, RecordEvent(order_id=self._id, entry=entry))

    async def _tell(
        self, audience: Audience, subject: str, text: str, recipient: str | None = None
    ) -> None:
        self._notices += 1
        await self._act(
            Notifier.notify,
            Notification(
                key=f"{self._id}:{self._notices}",
                order_id=self._id,
                audience=audience,
                recipient=recipient,
                store_code=self._order.store_code,
                subject=subject,
                text=text,
            ),
        )

    async def _act(self, fn: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        if not self._policy_loaded:
            # A signal that started the order acts once the order has its policy snapshot.
            await workflow.wait_condition(lambda: self._policy_loaded)
        return await workflow.execute_activity_method(
            fn,
            arg,
            task_queue=task_queue_for(fn, self._policy_snapshot.platform_task_queue),
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
            cancellation_type=CANCELLATION,
        )

    async def _step(
        self,
        fn: Callable[[Any, A], Awaitable[R]],
        arg: A,
        *,
        refusals: set[str] | frozenset[str] = frozenset(),
    ) -> R:
        """A lifecycle step. A refusal the caller expects is raised to it; any other is a
        system fault (R5.1 (5)) for a manager, and the step is tried again if they resume."""
        while True:
            if self._cancel is not None:
                raise _Halt
            try:
                return await self._act(fn, arg)
            except ActivityError as err:
                refusal = _refusal(err)
                if refusal is None or refusal.type in refusals:
                    raise
                name = getattr(fn, "__name__", "step")
                await self._anomaly(AnomalyKind.OTHER, f"system fault in {name}: {refusal.message}")

    def _call(self) -> PlatformOrderCall:
        return PlatformOrderCall(order_id=self._id)

    def _result(self, message: str) -> UpdateResult:
        return UpdateResult(stage=self._stage, message=message)

    def _brief(self) -> str:
        items = ", ".join(f"{i.name} x{i.quantity}" for i in self._order.items)
        customer = self._order.customer
        remarks = f" Remarks: {self._order.remarks}." if self._order.remarks else ""
        return f"{items}. For {customer.name}, {customer.address}.{remarks}"

    @staticmethod
    def _describe(verdict: ReviewVerdict) -> str:
        return "; ".join(f"{f.rule}: {f.message}" for f in verdict.failures) or verdict.reason

    def _require_active(self, name: str) -> None:
        if self._finished:
            raise _not_allowed(f"{name}: the order is {self._state}")
        if self._on_hold:
            raise _not_allowed(
                f"{name}: the order is on hold until its anomaly is decided ({self._held_by})"
            )

    def _require_stage(self, name: str, *stages: Stage) -> None:
        self._require_active(name)
        if self._stage not in stages:
            allowed = ", ".join(s.value for s in stages)
            raise _not_allowed(f"{name} is allowed at {allowed}; the order is {self._stage.value}")
        if self._awaiting_reconfirmation and name != "reassign":
            raise _not_allowed(
                f"{name}: the customer changed the order; confirm_with_customer first"
            )

    def _require_case(self, number: int, state: FeedbackState, name: str) -> None:
        if not 1 <= number <= len(self._feedback):
            raise _not_allowed(f"no feedback case #{number} on order {self._id}")
        case = self._feedback[number - 1]
        if case.kind in PLATFORM_KINDS:
            answer = "reply_reminder" if case.kind is FeedbackKind.REMINDER else "decide_refund"
            raise _not_allowed(
                f"{name}: feedback #{number} is a {case.kind.value} from the platform; "
                f"answer it with {answer} {case.ref}"
            )
        if case.state is not state:
            raise _not_allowed(f"{name}: feedback #{number} is {case.state.value}")

"""OrderWorkflow: one Meituan order from receipt to close, on time and on record.

The lifecycle runs as one task, a method per stage, each stage under the deadline its policy
clause sets. Signals and updates carry what happens around it; each hands its work to the part
of the order it concerns. A platform cancellation or a policy's hard limit stops the lifecycle
wherever it is and compensates. An anomalous order pauses (`on_hold`) while an AnomalyWorkflow
child waits for a manager's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

from workflows.order.aftersales import AfterSales
from workflows.order.cancellation import Cancellation
from workflows.order.customer import Customer
from workflows.order.deadlines import Deadlines
from workflows.order.entity import Order
from workflows.order.execution import Execution
from workflows.order.fulfilment import Fulfilment
from workflows.order.patches import (
    ENDING_WITH_THE_RECORD,
    LOCAL_WRITES,
    RECORD_IN_BURSTS,
    RECORD_KNOWN_WHEN_RECEIVING,
    SERVICE_COMPLETED_ON_PLATFORM,
    Patches,
)
from workflows.order.review import Reviewer
from workflows.order.staffing import Staffing
from workflows.order.state import Halt, OrderState

with workflow.unsafe.imports_passed_through():
    from activities.booking import Bookings
    from activities.orders import OrderRecords
    from activities.platform_calls import PlatformCalls
    from activities.policy import load_policy
    from activities.stock import Stock
    from schemas.contract import Event
    from schemas.messages import (
        REWRITE_RECORD,
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
        RewriteRecord,
        UpdateResult,
    )
    from schemas.notices import Audience, Topic
    from schemas.order import DeliveryMode, OrderInput, OrderType, Stage
    from schemas.policy import Clause, OrderPolicy, with_store_terms
    from schemas.records import CreditEvent, CreditEventKind, OrderRecord, RecordOrder
    from schemas.resources import OrderRef, ReleaseAssignment
    from schemas.review import Outcome
    from schemas.status import OrderOutcome, OrderStatus
    from workflows import search_attributes as sa
    from workflows import story
    from workflows.deadlines import FIRE_BY_TIMER, DeadlineClock
    from workflows.steps import Steps


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderInput) -> None:
        # Known before anything runs: a signal can start the order (signal-with-start, when a
        # later push of an order arrives before its own), and its handler needs the order.
        patches = Patches()  # first: see Patches
        self._state = state = OrderState(
            order=inp.order,
            source=inp.source,
            clock=DeadlineClock(fire_by_timer=patches.patched(FIRE_BY_TIMER)),
            in_bursts=patches.patched(RECORD_IN_BURSTS),
        )
        state.ending_on_record = state.in_bursts and patches.patched(ENDING_WITH_THE_RECORD)
        steps = Steps(
            order_id=inp.order.order_id,
            store_code=inp.order.store_code,
            notice_key=inp.order.order_id,
            local_writes=state.ending_on_record and patches.patched(LOCAL_WRITES),
        )
        self._order = order = Order(state, steps, patches)
        self._staffing = Staffing(order)
        self._deadlines = Deadlines(order, self._staffing)
        self._reviewer = Reviewer(order)
        self._fulfilment = Fulfilment(order, self._deadlines)
        self._customer = Customer(order, self._deadlines, self._reviewer, self._fulfilment)
        self._execution = Execution(order, self._deadlines, self._fulfilment)
        self._aftersales = AfterSales(order, self._deadlines)
        self._cancellation = Cancellation(order)

    # ============================================================================================
    # The process
    # ============================================================================================

    @workflow.run
    async def run(self, inp: OrderInput) -> OrderOutcome:
        state = self._state
        state.order = inp.order
        state.source = inp.source
        snapshot = await workflow.execute_local_activity(
            load_policy,
            start_to_close_timeout=timedelta(seconds=10),
            summary=story.STEPS["load_policy"],
        )
        state.policy_snapshot = snapshot
        self._order.steps.route(snapshot.platform_task_queue)
        recorder = asyncio.create_task(self._order.record_in_bursts()) if state.in_bursts else None
        visibility = self._order.visibility
        merged = self._order.steps.local_writes
        shown = asyncio.create_task(visibility.upsert_as_tasks_end()) if merged else None
        self._order.set_stage(Stage.RECEIVED)
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
                self._cancellation.by_temporal()
        with contextlib.suppress(Halt):
            await lifecycle
        if state.cancel is not None and not state.stage.terminal:
            await self._cancellation.compensate(state.cancel)
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and self._order.background_done()
        )
        if recorder is not None:
            state.recording_ends = True  # the order's last lines on record, then the end
            await recorder
        if shown is not None:
            shown.cancel()
            visibility.upsert()
        assert state.outcome is not None
        return state.outcome

    async def _lifecycle(self) -> None:
        await self._receive()
        if not await self._review():
            return
        await self._accept()
        await self._assign()
        await self._confirm()
        if self._state.order_type is OrderType.GOODS:
            await self._prepare()
            await self._deliver()
        else:
            await self._schedule()
            await self._visit()
        await self._follow_up()
        await self._close()

    # --- 1 received: R2.1.1, R2.1.3 ------------------------------------------------------------

    async def _receive(self) -> None:
        state, order = self._state, self._order

        async def receive() -> OrderRecord:
            record = await order.step(
                OrderRecords.record_order,
                RecordOrder(order=state.order, received_at=workflow.now(), source=state.source),
            )
            if order.patches.patched(RECORD_KNOWN_WHEN_RECEIVING):
                # A refusal of the next call opens an anomaly, which needs the record.
                state.record = record
                state.order_policy = self._terms(record)
                await order.record_backlog()
            await order.step(PlatformCalls.platform_receive, order.call())
            return record

        state.record = record = await self._deadlines.within(
            Clause.RECEIVE, receive(), since=state.order.created_at, pausable=False
        )
        state.order_policy = self._terms(record)
        await order.record_backlog()
        order.visibility.show(
            sa.ORDER_TYPE.value_set(record.order_type.value), sa.REGION.value_set(record.region)
        )
        await order.log(
            Event.RECEIVED,
            on_record=False,
            source=state.source,
            order_type=record.order_type.value,
            delivery_mode=record.delivery_mode.value,
        )

    # --- 2 reviewing: R2.2.1-R2.2.4, R5.1 ------------------------------------------------------

    async def _review(self) -> bool:
        """One verdict: pass, reject (the platform and customer told) or an anomaly. False
        when the order ends with it."""
        state, reviewer = self._state, self._reviewer
        await self._order.enter(Stage.REVIEWING)
        while True:
            changes_seen = state.changes
            verdict = await self._deadlines.within(Clause.REVIEW, reviewer.verdict())
            if changes_seen == state.changes:
                break  # a customer change during review is reviewed again (R2.4.2)
        state.reviewed = True
        await reviewer.note(verdict)
        if verdict.outcome is Outcome.REJECT:
            await reviewer.reject(verdict)
            return False
        if verdict.outcome is Outcome.ANOMALY:
            await reviewer.hold(verdict)
        return True

    # --- 3 accepted: R3.1.2, R6.1 --------------------------------------------------------------

    async def _accept(self) -> None:
        """Goods are reserved first, so nothing is accepted that cannot be supplied. Accepted,
        the order is confirmed on the platform (shown accepted while it is, where
        TOLD_AND_SHOWN_WITH_THE_WORK is patched in)."""
        order = self._order
        if self._state.order_type is OrderType.GOODS:
            await self._fulfilment.reserve_stock()
        shown_first = order.patches.with_the_work
        if shown_first:
            await order.enter(Stage.ACCEPTED)
        await self._deadlines.within(
            Clause.ACCEPT,
            order.step(PlatformCalls.platform_confirm, order.call()),
            since=self._state.order.created_at,
        )
        self._state.accepted = True
        if not shown_first:
            await order.enter(Stage.ACCEPTED)

    # --- 4 assigned: R2.3.1-R2.3.3 -------------------------------------------------------------

    async def _assign(self) -> None:
        assignee = await self._deadlines.within(Clause.ASSIGN, self._staffing.first_assignee())
        await self._staffing.take(assignee)
        await self._order.enter(Stage.ASSIGNED, assignee=assignee.staff_id)

    # --- 5 confirmed: R2.4.1-R2.4.3 ------------------------------------------------------------

    async def _confirm(self) -> None:
        state = self._state
        if state.policy.auto_confirm:
            await self._customer.auto_confirm()
        else:
            await self._deadlines.within(
                Clause.CONFIRM, self._order.until(lambda: state.promise is not None)
            )
        assert state.promise is not None
        await self._order.enter(Stage.CONFIRMED)

    # --- 6 in_progress (goods): R3.1 -----------------------------------------------------------

    def _terms(self, record: OrderRecord) -> OrderPolicy:
        """The snapshot's terms for the order's type, with its store's own on top."""
        terms = self._state.snapshot.for_type(record.order_type)
        chosen = with_store_terms(terms, record.store_terms)
        if record.store_terms and chosen is terms:
            workflow.logger.warning("the store's own terms do not fit the policy: not taken")
        return chosen

    async def _prepare(self) -> None:
        state, order = self._state, self._order
        await order.enter(Stage.IN_PROGRESS)
        assert state.promise is not None
        await self._deadlines.within(
            Clause.PREPARE, order.until(lambda: state.ready), due=state.promise.ready_at
        )
        await order.step(Stock.commit_stock, OrderRef(order_id=state.order_id))
        await order.step(PlatformCalls.platform_meal_ready, order.call())

    # --- 7 delivering / delivered (goods): R3.4.1 ----------------------------------------------

    async def _deliver(self) -> None:
        state, order = self._state, self._order
        assert state.promise is not None
        mode = state.recorded.delivery_mode
        if mode is DeliveryMode.SELF_DELIVERY:
            await order.step(PlatformCalls.platform_delivering, order.call())
            await order.enter(Stage.DELIVERING)
        await self._deadlines.within(
            Clause.DELIVER, self._fulfilment.handover(mode), due=state.promise.delivery_at
        )
        if mode is DeliveryMode.SELF_DELIVERY:
            await order.step(PlatformCalls.platform_arrived, order.call())
        await order.enter(Stage.DELIVERED)
        await order.steps.tell(Audience.CUSTOMER, Topic.DELIVERED)

    # --- 6 in_progress (service): R3.2 ---------------------------------------------------------

    async def _schedule(self) -> None:
        state, order = self._state, self._order
        await order.enter(Stage.IN_PROGRESS)
        state.booking = await self._deadlines.within(
            Clause.SCHEDULE, self._fulfilment.book(briefed=True)
        )
        await order.log(
            Event.BOOKED,
            on_record=False,
            staff_id=state.booking.staff_id,
            slot_start=state.booking.slot_start.isoformat(),
        )
        if order.patches.with_the_work:
            return  # briefed by the booking
        # R3.2.2 the service person is briefed before the visit.
        await order.steps.tell(
            Audience.STAFF,
            Topic.VISIT,
            {"slot_at": state.booking.slot_start.isoformat(), "brief": state.brief()},
            recipient=state.booking.staff_id,
        )

    async def _visit(self) -> None:
        """R3.2.2 re-confirmed with the customer, R3.2.3 / R3.3.1 executed on time."""
        state, order = self._state, self._order
        assert state.booking is not None
        await self._deadlines.within(
            Clause.RECONFIRM_VISIT, order.until(lambda: state.visit_reconfirmed)
        )
        await self._deadlines.within(
            Clause.EXECUTE, order.until(lambda: state.delivered), since=state.booking.slot_start
        )
        await order.step(Bookings.release_booking, OrderRef(order_id=state.order_id))
        if order.patches.patched(SERVICE_COMPLETED_ON_PLATFORM):
            await order.step(PlatformCalls.platform_arrived, order.call())
        await order.enter(Stage.DELIVERED)
        await order.steps.tell(Audience.CUSTOMER, Topic.SERVICE_COMPLETED)

    # --- 8 closed: R3.3.3, R4.2 ----------------------------------------------------------------

    async def _follow_up(self) -> None:
        """The feedback window: open cases and refunds are settled before the order closes."""
        state, order = self._state, self._order
        await order.count_credit(
            CreditEvent(
                customer_id=state.recorded.customer_id,
                order_id=state.order_id,
                kind=CreditEventKind.COMPLETED,
            ),
        )
        await order.until(lambda: False, timedelta(minutes=state.policy.feedback_window_minutes))
        await order.until(lambda: not state.open_matters())

    async def _close(self) -> None:
        state = self._state
        if state.assignee is not None:
            await self._order.release_assignee(
                ReleaseAssignment(order_id=state.order_id, staff_id=state.assignee.staff_id)
            )
        await self._order.finish(Stage.CLOSED, "completed")

    # ============================================================================================
    # Messages: what happens around the lifecycle, by the part of the order it concerns. Signals
    # come from the platform and the customer; updates are people's actions, each answered or
    # refused by its validator.
    # ============================================================================================

    # --- the customer ------------------------------------------------------------------------

    @workflow.signal
    async def customer_change(self, msg: CustomerChange) -> None:
        await self._customer.change(msg)

    @workflow.update
    async def confirm_with_customer(self, msg: ConfirmWithCustomer) -> UpdateResult:
        return await self._customer.confirm(msg)

    @confirm_with_customer.validator
    def _check_confirm(self, msg: ConfirmWithCustomer) -> None:
        self._customer.check_confirm(msg)

    # --- the work ----------------------------------------------------------------------------

    @workflow.update
    async def report_progress(self, msg: ReportProgress) -> UpdateResult:
        return await self._execution.progress(msg)

    @report_progress.validator
    def _check_progress(self, msg: ReportProgress) -> None:
        self._execution.check_progress(msg)

    @workflow.update
    async def report_exception(self, msg: ReportException) -> UpdateResult:
        return await self._execution.exception(msg)

    @report_exception.validator
    def _check_exception(self, msg: ReportException) -> None:
        self._execution.check_exception(msg)

    @workflow.update
    async def mark_ready(self, msg: MarkReady) -> UpdateResult:
        return await self._execution.ready(msg)

    @mark_ready.validator
    def _check_ready(self, msg: MarkReady) -> None:
        self._execution.check_ready(msg)

    @workflow.update
    async def reconfirm_visit(self, msg: ReconfirmVisit) -> UpdateResult:
        return await self._execution.visit_reconfirmed(msg)

    @reconfirm_visit.validator
    def _check_reconfirm(self, msg: ReconfirmVisit) -> None:
        self._execution.check_reconfirm(msg)

    @workflow.update
    async def mark_delivered(self, msg: MarkDelivered) -> UpdateResult:
        return await self._execution.delivered(msg)

    @mark_delivered.validator
    def _check_delivered(self, msg: MarkDelivered) -> None:
        self._execution.check_delivered(msg)

    @workflow.signal
    async def delivery_status(self, msg: DeliveryStatus) -> None:
        await self._execution.courier(msg)

    @workflow.update
    async def reassign(self, msg: Reassign) -> UpdateResult:
        return await self._staffing.reassign_on_request(msg)

    @reassign.validator
    def _check_reassign(self, msg: Reassign) -> None:
        self._staffing.check_reassign(msg)

    # --- after-sales -------------------------------------------------------------------------

    @workflow.signal
    async def customer_feedback(self, msg: CustomerFeedback) -> None:
        await self._aftersales.feedback(msg)

    @workflow.update
    async def respond_feedback(self, msg: RespondFeedback) -> UpdateResult:
        return await self._aftersales.respond(msg)

    @respond_feedback.validator
    def _check_respond(self, msg: RespondFeedback) -> None:
        self._aftersales.check_respond(msg)

    @workflow.update
    async def resolve_feedback(self, msg: ResolveFeedback) -> UpdateResult:
        return await self._aftersales.resolve(msg)

    @resolve_feedback.validator
    def _check_resolve(self, msg: ResolveFeedback) -> None:
        self._aftersales.check_resolve(msg)

    @workflow.signal
    async def customer_reminder(self, msg: CustomerReminder) -> None:
        await self._aftersales.reminder(msg)

    @workflow.update
    async def reply_reminder(self, msg: ReplyReminder) -> UpdateResult:
        return await self._aftersales.reply(msg)

    @reply_reminder.validator
    def _check_reply(self, msg: ReplyReminder) -> None:
        self._aftersales.check_reply(msg)

    @workflow.signal
    async def platform_refund(self, msg: PlatformRefund) -> None:
        await self._aftersales.refund_notice(msg)

    @workflow.update
    async def decide_refund(self, msg: DecideRefund) -> UpdateResult:
        return await self._aftersales.decide(msg)

    @decide_refund.validator
    def _check_refund(self, msg: DecideRefund) -> None:
        self._aftersales.check_decide(msg)

    @workflow.update
    async def record_rating(self, msg: RecordRating) -> UpdateResult:
        return await self._aftersales.rate(msg)

    @record_rating.validator
    def _check_rating(self, msg: RecordRating) -> None:
        self._aftersales.check_rating(msg)

    # --- cancellation ------------------------------------------------------------------------

    @workflow.signal
    async def platform_cancel(self, msg: PlatformCancel) -> None:
        await self._cancellation.by_platform(msg)

    @workflow.update
    async def cancel_order(self, msg: CancelOrder) -> UpdateResult:
        return await self._cancellation.by_person(msg)

    @cancel_order.validator
    def _check_cancel(self, msg: CancelOrder) -> None:
        self._cancellation.check_person(msg)

    # --- where the order stands --------------------------------------------------------------

    @workflow.signal(name=REWRITE_RECORD)
    def rewrite_record(self, msg: RewriteRecord) -> None:
        self._order.rewrite_record()

    @workflow.query
    def status(self) -> OrderStatus:
        return self._state.status()

"""In-memory stand-ins for the activities, registered under the same names.

They keep every call so tests can assert what the order did, and let a test make a step
refuse or fail for one order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.notice_texts import Heading, render
from activities.notify import addressed
from schemas.anomaly import AnomalyRecord
from schemas.notices import Language, Notification
from schemas.order import DeliveryMode, OrderType, PlatformOrder
from schemas.patrol import PatrolReport, PatrolStore, StorePatrol
from schemas.platform_calls import (
    PlatformCancelOrder,
    PlatformOrderCall,
    PlatformRefundAnswer,
    PlatformReminderReply,
    PlatformReport,
)
from schemas.records import (
    CreditEvent,
    OrderRecord,
    OrderSummary,
    RecordEvent,
    RecordEvents,
    RecordFeedback,
    RecordOrder,
    RecordRefund,
    RecordView,
    TimelineEntry,
)
from schemas.refund import RefundState
from schemas.resources import (
    Assignee,
    AssignInput,
    Booking,
    BookService,
    OrderRef,
    ReleaseAssignment,
    ReserveStock,
    StockReservation,
)
from schemas.review import ReviewInput, ReviewVerdict
from schemas.status import OrderStatus

STORES = {
    "SH-XH-001": (OrderType.GOODS, "shanghai-xuhui", DeliveryMode.SELF_DELIVERY),
    "SH-PD-002": (OrderType.GOODS, "shanghai-pudong", DeliveryMode.PLATFORM_COURIER),
    "SH-HS-100": (OrderType.SERVICE, "shanghai-xuhui", DeliveryMode.ON_SITE),
}
STAFF = {
    "SH-XH-001": ["S-101", "S-102", "S-103"],
    "SH-PD-002": ["S-201", "S-202"],
    "SH-HS-100": ["T-301", "T-302", "T-303"],
}
MANAGER = {"SH-XH-001": "M-001", "SH-PD-002": "M-002", "SH-HS-100": "M-003"}


class Transient(Exception):
    """A fault Temporal retries, like a database that is briefly down."""


@dataclass
class Business:
    """The whole outside world of an order, in memory."""

    events: dict[str, dict[int, TimelineEntry]] = field(default_factory=lambda: defaultdict(dict))
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    notices: dict[str, Notification] = field(default_factory=dict)
    summaries: dict[str, OrderSummary] = field(default_factory=dict)
    feedback: dict[tuple[str, int], RecordFeedback] = field(default_factory=dict)
    refunds: dict[tuple[str, str], RecordRefund] = field(default_factory=dict)
    anomalies: dict[str, AnomalyRecord] = field(default_factory=dict)
    credit: list[CreditEvent] = field(default_factory=list)
    views: dict[str, tuple[int, OrderStatus]] = field(default_factory=dict)  # the newest
    reserved: dict[str, list[str]] = field(default_factory=dict)  # order -> skus
    committed: set[str] = field(default_factory=set)
    released_stock: set[str] = field(default_factory=set)
    assignments: dict[str, str] = field(default_factory=dict)  # order -> staff, while active
    released_assignments: list[tuple[str, str]] = field(default_factory=list)
    bookings: dict[str, Booking] = field(default_factory=dict)
    released_bookings: set[str] = field(default_factory=set)
    # Behaviour a test sets for one order:
    verdicts: dict[str, list[ReviewVerdict]] = field(default_factory=lambda: defaultdict(list))
    failing: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # order -> steps
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (order, step) -> attempts
    # order -> {step: ApplicationError type}, refused until the test removes it
    refusing: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    pickup: set[str] = field(default_factory=set)
    on_platform_only: list[PlatformOrder] = field(default_factory=list)  # the patrol finds them
    patrols: list[PatrolReport] = field(default_factory=list)

    # --- helpers for tests ---------------------------------------------------------------------

    def platform_calls(self, order_id: str) -> list[str]:
        return [name for name, oid, _ in self.calls if oid == order_id]

    def notices_for(self, order_id: str, audience: str | None = None) -> list[Notification]:
        return [
            n
            for n in self.notices.values()
            if n.order_id == order_id and (audience is None or n.audience.value == audience)
        ]

    def event_names(self, order_id: str) -> list[str]:
        return [e.event for _, e in sorted(self.events[order_id].items())]

    def _gate(self, order_id: str, step: str) -> None:
        if step in self.failing[order_id]:
            self.failed[order_id, step] += 1
            raise Transient(f"{step} is failing for {order_id}")
        refusal = self.refusing[order_id].get(step)
        if refusal is not None:
            quiet = refusal in ("NoAssigneeAvailable", "NoSlotAvailable")  # as the real ones
            raise ApplicationError(
                f"{step} refused",
                type=refusal,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN
                if quiet
                else ApplicationErrorCategory.UNSPECIFIED,
            )

    def _call(self, name: str, order_id: str, **params: Any) -> None:
        self._gate(order_id, name)
        self.calls.append((name, order_id, params))

    # --- system of record ----------------------------------------------------------------------

    @activity.defn
    async def record_order(self, inp: RecordOrder) -> OrderRecord:
        order = inp.order
        self._gate(order.order_id, "record_order")
        order_type, region, mode = STORES[order.store_code]
        if order.order_id in self.pickup:
            mode = DeliveryMode.PICKUP
        return OrderRecord(
            order_type=order_type,
            region=region,
            delivery_mode=mode,
            customer_id="C-" + order.customer.phone[:11],
            skills=sorted({i.sku for i in order.items}),
        )

    @activity.defn
    async def record_event(self, inp: RecordEvent) -> None:
        existing = self.events[inp.order_id].get(inp.entry.seq)
        assert existing is None or existing == inp.entry, "one seq, one event"
        self.events[inp.order_id][inp.entry.seq] = inp.entry
        if inp.view is not None:
            self._keep_view(inp.order_id, inp.view_version, inp.view)

    @activity.defn
    async def record_events(self, inp: RecordEvents) -> None:
        for entry in inp.entries:
            await self.record_event(RecordEvent(order_id=inp.order_id, entry=entry))
        self._keep_view(inp.order_id, inp.view_version, inp.view)
        if inp.credit is not None:
            await self.record_credit_event(inp.credit)
        if inp.release is not None:
            await self.release_assignment(inp.release)
        if inp.summary is not None:
            await self.record_summary(inp.summary)

    @activity.defn
    async def record_view(self, inp: RecordView) -> None:
        self._keep_view(inp.order_id, inp.version, inp.view)

    def _keep_view(self, order_id: str, version: int, view: OrderStatus) -> None:
        """As the database keeps it: the newest version wins, whichever lands last."""
        kept = self.views.get(order_id)
        if kept is None or kept[0] < version:
            self.views[order_id] = (version, view)

    @activity.defn
    async def record_feedback(self, inp: RecordFeedback) -> None:
        self._keep_case(inp)

    @activity.defn
    async def record_refund(self, inp: RecordRefund) -> None:
        """As the database keeps it: a decided request stays decided, whichever of two writes
        in flight lands last (activities.orders.record_refund)."""
        key = (inp.order_id, inp.refund.refund_id)
        kept = self.refunds.get(key)
        awaiting = RefundState.AWAITING_DECISION
        if kept is None or (kept.refund.state is awaiting and inp.refund.state is not awaiting):
            self.refunds[key] = inp
        if inp.case is not None:
            self._keep_case(RecordFeedback(order_id=inp.order_id, case=inp.case))

    def _keep_case(self, inp: RecordFeedback) -> None:
        """As the database keeps it: an older round never overwrites a newer one."""
        key = (inp.order_id, inp.case.case)
        kept = self.feedback.get(key)
        if kept is None or _progress(kept) <= _progress(inp):
            self.feedback[key] = inp

    @activity.defn
    async def record_summary(self, inp: OrderSummary) -> None:
        self.summaries[inp.order_id] = inp

    @activity.defn
    async def record_anomaly(self, inp: AnomalyRecord) -> None:
        self.anomalies[inp.anomaly_id] = inp

    # --- rules and resources -------------------------------------------------------------------

    @activity.defn
    async def review_order(self, inp: ReviewInput) -> ReviewVerdict:
        self._gate(inp.order.order_id, "review_order")
        queue = self.verdicts[inp.order.order_id]
        return queue.pop(0) if queue else ReviewVerdict(outcome="pass")

    @activity.defn
    async def assign_order(self, inp: AssignInput) -> Assignee:
        self._gate(inp.order_id, "assign_order")
        candidates = [s for s in STAFF[inp.store_code] if s not in inp.exclude]
        if inp.preferred:
            candidates = [s for s in candidates if s == inp.preferred]
        if not candidates:
            raise ApplicationError("nobody free", type="NoAssigneeAvailable", non_retryable=True)
        staff = self.assignments.get(inp.order_id)
        if staff not in candidates:
            staff = candidates[0]
        self.assignments[inp.order_id] = staff
        self._carried(inp.notice, staff)
        return Assignee(
            staff_id=staff,
            name=staff,
            department="D-" + inp.store_code,
            manager_id=MANAGER[inp.store_code],
        )

    @activity.defn
    async def release_assignment(self, inp: ReleaseAssignment) -> None:
        if self.assignments.get(inp.order_id) == inp.staff_id:
            del self.assignments[inp.order_id]
        self.released_assignments.append((inp.order_id, inp.staff_id))

    @activity.defn
    async def reserve_stock(self, inp: ReserveStock) -> StockReservation:
        self._gate(inp.order_id, "reserve_stock")
        self.reserved[inp.order_id] = [line.sku for line in inp.lines]
        return StockReservation(order_id=inp.order_id, lines=inp.lines, low_stock=[])

    @activity.defn
    async def commit_stock(self, inp: OrderRef) -> None:
        self.committed.add(inp.order_id)

    @activity.defn
    async def release_stock(self, inp: OrderRef) -> None:
        self._gate(inp.order_id, "release_stock")
        self.released_stock.add(inp.order_id)

    @activity.defn
    async def book_service(self, inp: BookService) -> Booking:
        self._gate(inp.order_id, "book_service")
        staff = inp.preferred_staff or "T-301"
        booking = self.bookings.get(inp.order_id) or Booking(
            staff_id=staff,
            staff_name=staff,
            slot_start=inp.earliest,
            slot_end=inp.earliest + timedelta(hours=2),
        )
        self.bookings[inp.order_id] = booking
        self._carried(inp.notice, booking.staff_id, slot_at=booking.slot_start.isoformat())
        return booking

    @activity.defn
    async def release_booking(self, inp: OrderRef) -> None:
        self.bookings.pop(inp.order_id, None)
        self.released_bookings.add(inp.order_id)

    @activity.defn
    async def record_credit_event(self, inp: CreditEvent) -> None:
        if inp not in self.credit:
            self.credit.append(inp)

    @activity.defn
    async def notify(self, inp: Notification) -> None:
        self._gate(inp.order_id, "notify")
        self._write(inp)

    def _carried(self, notice: Notification | None, recipient: str, **facts: str) -> None:
        """A notice a claim carries, written with it (activities.notify.write_to)."""
        if notice is not None:
            self._write(addressed(notice, recipient, **facts))

    def _write(self, inp: Notification) -> None:
        if inp.topic is not None:  # in English words, as the notifier would write them
            heading = Heading(inp.order_id, None, None)
            subject, text = render(inp.topic, Language.EN, inp.facts, heading, inp.due_at)
            inp = inp.model_copy(update={"subject": subject, "text": text})
        self.notices[inp.key] = inp

    # --- the platform --------------------------------------------------------------------------

    @activity.defn
    async def platform_receive(self, inp: PlatformOrderCall) -> None:
        self._call("poi_received", inp.order_id)

    @activity.defn
    async def platform_confirm(self, inp: PlatformOrderCall) -> None:
        self._call("confirm", inp.order_id)

    @activity.defn
    async def platform_cancel_order(self, inp: PlatformCancelOrder) -> None:
        self._call("cancel", inp.order_id, reason_code=inp.reason_code)

    @activity.defn
    async def platform_meal_ready(self, inp: PlatformOrderCall) -> None:
        self._call("preparationMealComplete", inp.order_id)

    @activity.defn
    async def platform_delivering(self, inp: PlatformOrderCall) -> None:
        self._call("delivering", inp.order_id)

    @activity.defn
    async def platform_arrived(self, inp: PlatformOrderCall) -> None:
        self._call("arrived", inp.order_id)

    @activity.defn
    async def platform_answer_refund(self, inp: PlatformRefundAnswer) -> None:
        self._call("refund/agree" if inp.agree else "refund/reject", inp.order_id)

    @activity.defn
    async def platform_reply_reminder(self, inp: PlatformReminderReply) -> None:
        self._call("remindReply", inp.order_id, text=inp.text)

    @activity.defn
    async def report_to_platform(self, inp: PlatformReport) -> None:
        self._call("report", inp.order_id, kind=inp.kind)

    # --- the patrol ----------------------------------------------------------------------------

    @activity.defn
    async def patrol_stores(self) -> list[str]:
        return sorted(STORES)

    @activity.defn
    async def patrol_store(self, inp: PatrolStore) -> StorePatrol:
        missing = [o for o in self.on_platform_only if o.store_code == inp.store_code]
        return StorePatrol(
            store_code=inp.store_code, platform_date="20261127", walked=3, missing=missing
        )

    @activity.defn
    async def record_patrol(self, inp: PatrolReport) -> None:
        self.patrols.append(inp)

    def activities(self) -> list[Any]:
        names = [
            "record_order", "record_event", "record_events", "record_view", "record_feedback",
            "record_refund",
            "record_summary", "record_anomaly",
            "review_order",
            "assign_order", "release_assignment", "reserve_stock", "commit_stock",
            "release_stock", "book_service", "release_booking", "record_credit_event", "notify",
            "platform_receive", "platform_confirm", "platform_cancel_order",
            "platform_meal_ready", "platform_delivering", "platform_arrived",
            "platform_answer_refund", "platform_reply_reminder", "report_to_platform",
            "patrol_stores", "patrol_store", "record_patrol",
        ]  # fmt: skip
        return [getattr(self, name) for name in names]


def _progress(record: RecordFeedback) -> int:
    return len(record.case.responses) + len(record.case.resolutions)

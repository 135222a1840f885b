"""Everything an order knows, in one dataclass: the parts of the order change it, the status
query reads it, and nothing else holds a fact about the order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.order import OrderType, PlatformOrder, Stage
    from schemas.policy import OrderPolicy, Policy
    from schemas.records import CreditEvent, OrderRecord, OrderSummary, TimelineEntry
    from schemas.resources import Assignee, Booking, ReleaseAssignment
    from schemas.status import (
        AnomalyView,
        OrderOutcome,
        OrderStatus,
        Promise,
        RefundRequest,
        RefundState,
        Reminder,
    )
    from workflows.deadlines import DeadlineClock

MERCHANT_OTHER = 2007  # merchant cancel code "other"


@dataclass
class CancelRequest:
    code: int
    reason: str
    by: str
    on_platform_already: bool  # the platform cancelled it: don't call order/cancel
    customer_caused: bool = False


class Halt(Exception):
    """Stops the lifecycle at its next wait once a cancellation is requested.

    Cancellation is cooperative: a step in flight finishes, so compensation always sees the
    final state of every claim, and `run` then finishes the order by the recorded request.
    """


@dataclass
class OrderState:
    order: PlatformOrder
    source: str
    clock: DeadlineClock  # every deadline opened, and the breaches
    policy_snapshot: Policy | None = None  # loaded once, when the order starts
    order_policy: OrderPolicy | None = None  # the snapshot's terms for this order's type
    record: OrderRecord | None = None
    # progress
    stage: Stage = Stage.RECEIVED
    stages: list[tuple[Stage, datetime]] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    review_round: int = 0
    reviewed: bool = False
    changes: int = 0  # customer changes so far (R2.4.2)
    # the system of record (R1.3): people read the order there
    views_recorded: int = 0  # the version of the last status sent to the record
    order_version: int = 0  # changes of the order's data: customer, corrections, price
    order_recorded: int = 0  # the order_version last sent to the record
    backlog_recorded: bool = False  # entries logged before the record existed, sent to it
    in_bursts: bool = False  # RECORD_IN_BURSTS: a recorder writes what was logged since it last did
    entries_recorded: int = 0  # in bursts: the timeline's lines on record (in order)
    view_changed: bool = False  # in bursts: a status to record that no line carries
    record_waiters: int = 0  # in bursts: lines whose loggers wait to see them on record
    recording_ends: bool = False  # in bursts: the recorder writes what is left, then stops
    ending_on_record: bool = False  # ENDING_WITH_THE_RECORD: the recorder writes the ending
    credit: CreditEvent | None = None  # with the record: for the next burst
    release: ReleaseAssignment | None = None  # with the record: for the last burst
    summary: OrderSummary | None = None  # with the record: for the last burst
    accepted: bool = False  # confirmed on the platform
    stock_reserved: bool = False
    stock_round: int = 1
    assignee: Assignee | None = None
    reassignments: int = 0
    promise: Promise | None = None
    awaiting_reconfirmation: bool = False
    booking: Booking | None = None
    visit_reconfirmed: bool = False
    ready: bool = False
    courier_status: int | None = None
    courier_picked_up: bool = False
    delivered: bool = False
    exceptions: list[str] = field(default_factory=list)
    # holds
    on_hold: bool = False
    paused_stage: Stage | None = None
    held_by: str = ""  # the anomaly the order is on hold for
    anomalies: list[AnomalyView] = field(default_factory=list)
    # after-sales
    rating: int | None = None
    feedback: list[FeedbackCase] = field(default_factory=list)
    refunds: dict[str, RefundRequest] = field(default_factory=dict)
    reminders: dict[str, str | None] = field(default_factory=dict)
    # matters a person's answer is being carried out for: a second answer is refused meanwhile
    answering: set[str] = field(default_factory=set)
    # the end
    cancel: CancelRequest | None = None
    outcome: OrderOutcome | None = None

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def recorded(self) -> OrderRecord:
        assert self.record is not None, "the order is not recorded yet"
        return self.record

    @property
    def order_type(self) -> OrderType:
        return self.recorded.order_type

    @property
    def snapshot(self) -> Policy:
        assert self.policy_snapshot is not None, "the policy is not loaded yet"
        return self.policy_snapshot

    @property
    def policy(self) -> OrderPolicy:
        """The terms for the order's type; the goods terms until the type is known."""
        if self.order_policy is None:
            return self.snapshot.goods
        return self.order_policy

    @property
    def staff_id(self) -> str | None:
        return self.assignee.staff_id if self.assignee else None

    @property
    def manager_id(self) -> str | None:
        return self.assignee.manager_id if self.assignee else None

    @property
    def finished(self) -> bool:
        return self.cancel is not None or self.stage.terminal

    @property
    def standing(self) -> str:
        """The stage, as a person should read it in a refusal or an ignored message."""
        return "being cancelled" if self.cancel and not self.stage.terminal else self.stage.value

    def open_matters(self) -> bool:
        """What keeps a delivered order from closing: after-sales still open, or a hold."""
        return (
            any(
                c.state in (FeedbackState.AWAITING_RESPONSE, FeedbackState.AWAITING_RESOLUTION)
                for c in self.feedback
            )
            or any(r.state is RefundState.AWAITING_DECISION for r in self.refunds.values())
            or any(reply is None for reply in self.reminders.values())
            or self.on_hold
        )

    def brief(self) -> str:
        """What the people on the order need to know of it, in no language: the items, the
        customer, the address, the customer's notes."""
        items = ", ".join(f"{i.name} x{i.quantity}" for i in self.order.items)
        customer = self.order.customer
        parts = (items, customer.name, customer.address, self.order.remarks)
        return " · ".join(part for part in parts if part)

    def status(self, *, with_timeline: bool = True) -> OrderStatus:
        """Without the timeline for the record, whose event log is the timeline."""
        return OrderStatus(
            order_id=self.order_id,
            stage=self.stage,
            paused_stage=self.paused_stage,
            order_type=self.record.order_type if self.record else None,
            store_code=self.order.store_code,
            region=self.record.region if self.record else None,
            delivery_mode=self.record.delivery_mode if self.record else None,
            assignee=self.assignee,
            booking=self.booking,
            promise=self.promise,
            awaiting_reconfirmation=self.awaiting_reconfirmation,
            ready=self.ready,
            visit_reconfirmed=self.visit_reconfirmed,
            delivered=self.delivered,
            deadlines=list(self.clock.views.values()),
            breaches=self.clock.breaches,
            anomalies=self.anomalies,
            feedback=self.feedback,
            refunds=list(self.refunds.values()),
            reminders=[Reminder(remind_id=i, reply=r) for i, r in self.reminders.items()],
            rating=self.rating,
            timeline=self.timeline if with_timeline else [],
        )

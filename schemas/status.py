"""The `status` query: everything a person or tool needs to see where an order stands."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from schemas.base import Model

# Re-exported: the status carries the feedback cases and the refund requests.
from schemas.feedback import FeedbackCase as FeedbackCase
from schemas.feedback import FeedbackState as FeedbackState
from schemas.order import DeliveryMode, OrderType, Stage
from schemas.policy import Clause, HardAction
from schemas.refund import RefundRequest as RefundRequest
from schemas.refund import RefundState as RefundState
from schemas.resources import Assignee, Booking
from schemas.review import AnomalyKind
from schemas.timeline import TimelineEntry


class DeadlineState(StrEnum):
    OPEN = "open"
    MET = "met"
    BREACHED = "breached"  # past the deadline, still open
    HARD_BREACHED = "hard_breached"  # past the hard limit too; the policy's action was taken
    MET_LATE = "met_late"
    VOID = "void"  # the order ended before it mattered


class DeadlineView(Model):
    key: str  # clause, or clause#n where a clause runs more than once (feedback cases, reminders)
    clause: Clause
    started_at: datetime
    due_at: datetime
    hard_at: datetime
    state: DeadlineState
    ended_at: datetime | None = None


class Breach(Model):
    key: str
    clause: Clause
    at: datetime
    hard: bool
    action: HardAction | None = None  # the action taken at the hard limit


class AnomalyView(Model):
    anomaly_id: str
    kind: AnomalyKind
    detail: str
    opened_at: datetime
    paused_stage: Stage
    decision: str | None = None
    resumed: bool | None = None
    closed_at: datetime | None = None


class Reminder(Model):
    """A customer's reminder (催单) and whether it was answered."""

    remind_id: str
    reply: str | None


class Promise(Model):
    """R2.4.3 what the customer was told at confirmation."""

    ready_at: datetime | None
    delivery_at: datetime
    promises: str
    confirmed_by: str
    confirmed_at: datetime


class OrderStatus(Model):
    order_id: str
    stage: Stage
    paused_stage: Stage | None = None
    order_type: OrderType | None
    store_code: str
    region: str | None
    delivery_mode: DeliveryMode | None
    assignee: Assignee | None
    booking: Booking | None
    promise: Promise | None
    awaiting_reconfirmation: bool
    ready: bool  # goods marked ready
    visit_reconfirmed: bool  # a service visit re-confirmed with the customer (R3.2.2)
    delivered: bool
    deadlines: list[DeadlineView]
    breaches: list[Breach]
    anomalies: list[AnomalyView]
    feedback: list[FeedbackCase]
    refunds: list[RefundRequest]
    reminders: list[Reminder]
    rating: int | None
    timeline: list[TimelineEntry]


class OrderOutcome(Model):
    """What the workflow returns: how the order ended."""

    order_id: str
    stage: Stage
    reason: str = ""
    cancel_code: int | None = None
    breaches: int = 0
    anomalies: int = 0

"""What the workflows write to the system of record and tell people."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.base import Model
from schemas.feedback import FeedbackCase
from schemas.order import DeliveryMode, OrderType, PlatformOrder, Stage
from schemas.refund import RefundRequest
from schemas.resources import ReleaseAssignment
from schemas.status import OrderStatus

# Re-exported: the event log's line, written by RecordEvent.
from schemas.timeline import TimelineEntry as TimelineEntry


class RecordOrder(Model):
    order: PlatformOrder
    received_at: datetime
    source: str


class OrderRecord(Model):
    """What the system of record knows about the order once it is in (R2.1.1)."""

    order_type: OrderType
    region: str
    delivery_mode: DeliveryMode
    customer_id: str
    skills: list[str]  # what the items call for, in assignment and booking
    store_terms: dict[str, Any] = {}  # the store's own policy terms (`store_policies`)


class RecordEvent(Model):
    """One line of the append-only event log (R4.1.3); (order_id, seq) makes it idempotent.

    People read orders from the record, not from the workflow, so the line carries the order's
    status as it stands after it (`view`, numbered by `OrderStatus`-writes of the workflow, its
    timeline left out: that is the log itself) and the order's data when a change, correction
    or price adjustment made it differ from what is on record (R1.3).
    """

    order_id: str
    entry: TimelineEntry
    view: OrderStatus | None = None
    view_version: int = 0
    order: PlatformOrder | None = None


class RecordFence(Model):
    """The workflow task a write comes from, for an order whose record's writes are local
    activities (LOCAL_WRITES): an attempt of a task that never completed may have written lines
    the next attempt, with the events that came meanwhile, logs otherwise. A write from an
    older task than the record's newest changes nothing; a newer one replaces an older task's
    lines from its own first line on (migration 0023)."""

    task: int
    """The workflow's clock when it wrote, in microseconds: the task's start, or the completion
    of a local activity earlier in the task, which the clock moves on to (the record check
    finds both in the history, `activities/record_check.py`). Later for every later attempt.
    Not the history's length: a task an update brought is speculative, and when it fails the
    server takes its events back, so the next attempt starts at the same length."""
    from_seq: int
    """The first line of the write, or where the next would go when it has none."""


class RecordEvents(Model):
    """The lines an order logged since its last write, in one transaction, with its status as
    it stands after them (R4.1.3, R1.3): one write per burst of the workflow instead of one per
    line. No lines: the status alone changed (`RecordView`'s case). Each line is idempotent by
    (order_id, seq) as in `RecordEvent`, so a retried burst writes each line once."""

    order_id: str
    entries: list[TimelineEntry]
    view: OrderStatus
    view_version: int
    order: PlatformOrder | None = None
    # What the order's ending needs on record, in the same transaction (ENDING_WITH_THE_RECORD):
    credit: CreditEvent | None = None
    """The customer's credit for the order done (R5.3.3)."""
    release: ReleaseAssignment | None = None
    """The assignee's capacity given back as the order closes."""
    summary: OrderSummary | None = None
    """The order's summary (R3.3.3), with its last line."""
    fence: RecordFence | None = None
    """Set by orders with local writes; None: a server activity, which only runs for a task
    that completed."""


class RecordView(Model):
    """The order's status at a moment no event marks: a deadline that waits for a person has
    just opened. `version` orders it among the views that come with events."""

    order_id: str
    version: int
    view: OrderStatus


class RecordFeedback(Model):
    """R4.2 a feedback case as it stands now; later states replace earlier ones."""

    order_id: str
    case: FeedbackCase
    satisfied: bool | None = None


class RecordRefund(Model):
    """A refund request as it stands now, with its feedback case when it has one (R4.2.1);
    written together, so statistics never see the one without the other."""

    order_id: str
    refund: RefundRequest
    case: FeedbackCase | None = None


class CreditEventKind(StrEnum):
    FRAUD = "fraud"
    NO_SHOW = "no_show"
    CANCELLATION = "cancellation"
    COMPLAINT = "complaint"
    COMPLETED = "completed"


class CreditEvent(Model):
    """R5.3.3 an outcome that moves the customer's credit score."""

    customer_id: str
    order_id: str
    kind: CreditEventKind
    note: str = ""


class OrderSummary(Model):
    """R3.3.3 the post-execution summary: how it went and what to improve."""

    order_id: str
    order_type: OrderType
    outcome: Stage
    stage_seconds: dict[str, float]
    breaches: list[str]
    exceptions: list[str]
    anomalies: list[str]
    feedback_rounds: int
    rating: int | None
    improvements: list[str]

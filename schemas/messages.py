"""One model per signal and update of OrderWorkflow (the contract's message names)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from schemas.base import Model
from schemas.order import CustomerChanges, Stage
from schemas.order import PlatformCancel as PlatformCancel  # the platform_cancel signal

# --- signals: what happens to the order from outside -------------------------------------------


class CustomerChange(Model):
    """R2.4.2 the customer changed something; it goes back through review and confirmation."""

    changes: CustomerChanges
    note: str = ""

    @model_validator(mode="after")
    def _not_empty(self) -> CustomerChange:
        if not self.changes.changed_fields():
            raise ValueError("a customer change names at least one changed field")
        return self


class FeedbackKind(StrEnum):
    INQUIRY = "inquiry"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    DISPUTE = "dispute"  # R3.4.3 the customer disputes the delivery
    # R4.2.1 what the platform pushes is feedback too; each has its own way to be answered.
    REMINDER = "reminder"  # 催单: reply_reminder
    REFUND = "refund"  # 退款申请: decide_refund


PLATFORM_KINDS = frozenset({FeedbackKind.REMINDER, FeedbackKind.REFUND})
"""Feedback that arrives as a platform push and is answered on the platform, not case by case."""


class CustomerFeedback(Model):
    """R4.2.1 an inquiry, complaint or suggestion."""

    kind: FeedbackKind
    text: str = Field(min_length=1)
    channel: str = "platform"

    @model_validator(mode="after")
    def _not_a_platform_push(self) -> CustomerFeedback:
        if self.kind in PLATFORM_KINDS:
            raise ValueError(f"a {self.kind.value} arrives from the platform, not as feedback")
        return self


class RefundNotice(StrEnum):
    APPLY = "apply"
    AGREE = "agree"
    REJECT = "reject"
    CANCEL_REFUND = "cancelRefund"
    CANCEL_REFUND_COMPLAINT = "cancelRefundComplaint"


class PlatformRefund(Model):
    refund_id: str
    notify_type: RefundNotice
    reason: str = ""
    partial: bool = False
    amount: Decimal | None = None


class DeliveryStatus(Model):
    """A platform courier's progress (logistics_status)."""

    status: (
        int  # 0 sent, 5 queued, 10 accepted, 15 at store, 20 picked up, 40 delivered, 100 cancelled
    )
    at: datetime | None = None
    courier_name: str = ""
    courier_phone: str = ""


class CustomerReminder(Model):
    remind_id: str
    text: str = ""


REWRITE_RECORD = "rewrite_record"
"""The signal of `RewriteRecord`, named once for the senders outside the workflow's package."""


class RewriteRecord(Model):
    """The order's record written again as the workflow knows it: a workflow task that wrote
    lines and never completed (its update lost with a Temporal restart) leaves them until the
    order writes next (`RecordFence`); this write is that next one. Sent by the staff API when
    an update's outcome is unknown, and by the record check when the record is ahead of the
    history.
    Changes nothing in the order's course."""

    by: str = Field(min_length=1)  # who asked: "staff-api", "record-check"


# --- updates: human actions that need an answer -----------------------------------------------


class Action(Model):
    by: str = Field(min_length=1)  # who did it, for the event log


class ConfirmWithCustomer(Action):
    """R2.4.1 confirmed with the customer; R2.4.3 what they were promised."""

    channel: str = "phone"
    promised_ready_at: datetime | None = None
    promised_delivery_at: datetime  # goods: delivery; service: the visit
    promises: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ConfirmWithCustomer:
        if self.promised_ready_at and self.promised_ready_at > self.promised_delivery_at:
            raise ValueError("promised_ready_at is after promised_delivery_at")
        return self


class ReportProgress(Action):
    """R3.3.1 progress the customer is told about."""

    note: str = Field(min_length=1)
    percent: int | None = Field(default=None, ge=0, le=100)


class ExceptionKind(StrEnum):
    SHORTAGE = "shortage"
    DELAY = "delay"
    CUSTOMER_CHANGE = "customer_change"
    OTHER = "other"


class Remedy(StrEnum):
    SUBSTITUTE = "substitute"  # replaced with the customer's agreement
    RESCHEDULE = "reschedule"  # a new promised time
    CANCEL = "cancel"  # the order cannot be saved
    ESCALATE = "escalate"  # an anomaly for a manager to decide


class ReportException(Action):
    """R3.3.2 every exception has a remedy and the customer is told."""

    kind: ExceptionKind
    detail: str = Field(min_length=1)
    remedy: Remedy
    new_promised_at: datetime | None = None
    cancel_code: int | None = None

    @model_validator(mode="after")
    def _remedy_complete(self) -> ReportException:
        if self.remedy is Remedy.RESCHEDULE and self.new_promised_at is None:
            raise ValueError("a reschedule remedy needs new_promised_at")
        if self.remedy is Remedy.CANCEL and self.cancel_code is None:
            raise ValueError("a cancel remedy needs a merchant cancel_code")
        return self


class MarkReady(Action):
    note: str = ""


class MarkDelivered(Action):
    """R3.4.1 proof of delivery is required: a photo reference, signature or pickup code."""

    proof: str = Field(min_length=1)
    note: str = ""


class ReconfirmVisit(Action):
    """R3.2.2 the service person re-confirmed time and place with the customer."""

    note: str = ""


class RecordRating(Action):
    """R3.4.2 the customer's rating of the service."""

    score: int = Field(ge=1, le=5)
    comment: str = ""


class Reassign(Action):
    to: str | None = None  # None: let the rules choose someone else
    reason: str = Field(min_length=1)


class RespondFeedback(Action):
    case: int = Field(ge=1)
    response: str = Field(min_length=1)


class ResolveFeedback(Action):
    """R4.2.3 the result went back to the customer; were they satisfied?"""

    case: int = Field(ge=1)
    resolution: str = Field(min_length=1)
    satisfied: bool


class DecideRefund(Action):
    refund_id: str
    agree: bool
    reason: str = Field(min_length=1)


class ReplyReminder(Action):
    remind_id: str
    text: str = Field(min_length=1)


class CancelOrder(Action):
    """A merchant-side cancellation, e.g. the customer asked by phone (2006)."""

    reason_code: int = Field(ge=2001, le=2016)
    reason: str = Field(min_length=1)


class UpdateResult(Model):
    stage: Stage
    message: str

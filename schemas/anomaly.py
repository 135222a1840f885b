"""The anomaly child: its input, the manager's decision and the outcome (R5.2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from schemas.base import Model
from schemas.messages import Action
from schemas.order import CustomerChanges
from schemas.policy import Deadline
from schemas.review import AnomalyKind, RuleFailure


class AnomalyInput(Model):
    order_id: str
    number: int  # the n of anomaly-<order_id>-<n>
    kind: AnomalyKind
    detail: str
    failures: list[RuleFailure] = []
    store_code: str
    customer_id: str
    manager_id: str | None = None
    paused_stage: str
    deadline: Deadline  # the order's anomaly_decision clause, from its policy snapshot
    platform_task_queue: str | None = None  # where the order's merchant API calls run


class Decision(StrEnum):
    """R5.2.3 remedies by cause."""

    CORRECT_INFO = "correct_info"  # wrong info corrected with the customer or platform
    ADJUST_PRICE = "adjust_price"  # abnormal price adjusted
    CANCEL = "cancel"  # abnormal price or prohibited content: cancel
    CONFIRM_FRAUD = "confirm_fraud"  # contain the risk, report to the platform
    AGREED_WITH_PLATFORM = "agreed_with_platform"  # system fault or force majeure
    DISMISS = "dismiss"  # investigated: nothing wrong after all


class Decide(Action):
    """The manager's decision, with the investigation behind it (R5.2.2)."""

    decision: Decision
    cause: str = Field(min_length=1)
    responsibility: str = Field(min_length=1)  # customer, store, platform, courier, system, ...
    note: str = ""
    corrections: CustomerChanges | None = None
    new_total: Decimal | None = None
    cancel_code: int | None = Field(default=None, ge=2001, le=2016)
    resume: bool = True  # only read for agreed_with_platform

    @model_validator(mode="after")
    def _complete(self) -> Decide:
        if self.decision is Decision.CORRECT_INFO and not (
            self.corrections and self.corrections.changed_fields()
        ):
            raise ValueError("correct_info needs the corrected fields")
        if self.decision is Decision.ADJUST_PRICE and self.new_total is None:
            raise ValueError("adjust_price needs new_total")
        if self.decision is Decision.CANCEL and self.cancel_code is None:
            raise ValueError("cancel needs a merchant cancel_code")
        return self

    @property
    def resumes(self) -> bool:
        if self.decision is Decision.AGREED_WITH_PLATFORM:
            return self.resume
        return self.decision in (Decision.CORRECT_INFO, Decision.ADJUST_PRICE, Decision.DISMISS)


class AnomalyOutcome(Model):
    """R5.2.4 recorded for lookup and statistics; the order resumes or ends by it."""

    anomaly_id: str
    kind: AnomalyKind
    decision: Decision
    resume: bool
    cause: str
    responsibility: str
    decided_by: str
    decided_at: datetime
    note: str = ""
    corrections: CustomerChanges | None = None
    new_total: Decimal | None = None
    cancel_code: int | None = None
    escalations: int = 0


class AnomalyRecord(Model):
    """A row of the anomalies table: opened, then closed with its outcome."""

    anomaly_id: str
    order_id: str
    kind: AnomalyKind
    detail: str
    opened_at: datetime
    outcome: AnomalyOutcome | None = None


class AnomalyStatus(Model):
    anomaly_id: str
    order_id: str
    kind: AnomalyKind
    detail: str
    state: str  # open | escalated | decided
    opened_at: datetime
    due_at: datetime
    hard_at: datetime
    escalations: int
    outcome: AnomalyOutcome | None

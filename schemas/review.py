"""The review verdict: one outcome with the rules that decided it (R2.2, R5.1)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import model_validator

from schemas.base import Model
from schemas.order import OrderType, PlatformOrder


class AnomalyKind(StrEnum):
    """The five kinds of anomalous order of R5.1."""

    INFO = "info"  # (1) wrong or incomplete info: bad phone, unclear address
    PRICE = "price"  # (2) price abnormal against our pricing
    PROHIBITED = "prohibited"  # (3) prohibited content
    FRAUD = "fraud"  # (4) malicious or fraudulent customer
    OTHER = "other"  # (5) system fault, delivery delay, shortage, ...


class Outcome(StrEnum):
    PASS = "pass"
    REJECT = "reject"
    ANOMALY = "anomaly"


class RuleFailure(Model):
    rule: str  # e.g. "phone_valid", "price_within_tolerance"
    message: str
    anomaly: AnomalyKind | None = None  # None: the rule rejects outright


class ReviewInput(Model):
    order: PlatformOrder
    order_type: OrderType
    customer_id: str
    round: int = 1  # a customer change is reviewed again as round 2, 3, ...


class ReviewVerdict(Model):
    outcome: Outcome
    failures: list[RuleFailure] = []
    anomaly_kind: AnomalyKind | None = None
    cancel_code: int | None = None  # merchant cancel reason code for a rejection
    reason: str = ""

    @model_validator(mode="after")
    def _complete(self) -> ReviewVerdict:
        if self.outcome is Outcome.REJECT and (self.cancel_code is None or not self.reason):
            raise ValueError("a rejection carries a reason and a merchant cancel code (R2.2.4)")
        if self.outcome is Outcome.ANOMALY and self.anomaly_kind is None:
            raise ValueError("an anomaly verdict names its kind (R5.1)")
        return self

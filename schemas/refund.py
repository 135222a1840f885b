"""A refund request the platform pushed, and what became of it (R6.1, R4.3.1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from schemas.base import Model


class RefundState(StrEnum):
    AWAITING_DECISION = "awaiting_decision"
    AGREED = "agreed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class RefundRequest(Model):
    refund_id: str
    reason: str
    partial: bool
    amount: Decimal | None  # what a partial refund asks for; a full one asks for the order
    requested_at: datetime
    state: RefundState = RefundState.AWAITING_DECISION
    decided_by: str | None = None
    decided_at: datetime | None = None
    # R4.3.1 the money given back once agreed: a partial refund's amount, or the order's total.
    refunded: Decimal | None = None

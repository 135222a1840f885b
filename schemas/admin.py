"""What an admin sees and changes outside an order: a customer's credit profile, a ban and its
lifting (R5.3.3), each change on record with who, when, before, after and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.base import Model


class CreditLine(Model):
    order_id: str
    kind: str
    delta: int
    score_after: int
    at: datetime


class CustomerProfile(Model):
    """The customer's standing; never their name or number."""

    customer_id: str
    credit_score: int
    status: str  # good | restricted | banned
    first_seen_at: datetime
    last_order_at: datetime | None
    credit: list[CreditLine]  # newest first
    audit: list[AuditEntry]  # bans and lifts, newest first


class Standing(Model):
    """A ban or its lifting: the reason is required, it goes on record."""

    reason: str = Field(min_length=1, max_length=500)


class AuditEntry(Model):
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str


CustomerProfile.model_rebuild()

"""A feedback case (R4.2): an inquiry, complaint, suggestion or dispute, round by round."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from schemas.base import Model
from schemas.messages import FeedbackKind


class FeedbackState(StrEnum):
    AWAITING_RESPONSE = "awaiting_response"
    AWAITING_RESOLUTION = "awaiting_resolution"
    SATISFIED = "satisfied"
    ESCALATED = "escalated"  # R4.2.3 a manager was brought in
    # A reminder or refund request settled on the platform: replied, decided or withdrawn.
    # No satisfaction is asked; the customer answers a refund decision on the platform.
    CLOSED = "closed"


class FeedbackCase(Model):
    case: int
    kind: FeedbackKind
    text: str
    channel: str = "platform"
    opened_at: datetime
    owner: str | None
    round: int = 1
    state: FeedbackState = FeedbackState.AWAITING_RESPONSE
    responses: list[str] = []
    resolutions: list[str] = []
    ref: str | None = None  # the platform's remind_id or refund_id of a reminder or refund case

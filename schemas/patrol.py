"""The patrol (R2.1.2): what it walked, found and could not reconcile."""

from __future__ import annotations

from datetime import datetime

from schemas.base import Model
from schemas.order import PlatformCancel, PlatformOrder


class PatrolInput(Model):
    stores: list[str] = []  # empty: every store


class PatrolStore(Model):
    store_code: str


class StatusMismatch(Model):
    """The platform and our record disagree about an order still open on our side."""

    order_id: str
    platform_status: int
    our_stage: str


class CancelledOrder(Model):
    """Missed, and cancelled on the platform before anyone saw it: started cancelled, so the
    order is on record and counted like any other (R2.1.2, R4.3)."""

    order: PlatformOrder
    cancel: PlatformCancel


class StorePatrol(Model):
    store_code: str
    platform_date: str  # today, platform time
    walked: int  # day sequence numbers resolved, today's and the previous day's
    missing: list[PlatformOrder] = []  # on the platform, not with us
    missed_and_closed: list[str] = []  # missed, and already cancelled or done on the platform
    mismatches: list[StatusMismatch] = []
    cancelled: list[CancelledOrder] = []  # the missed ones the platform had cancelled
    unresolved: int = 0  # numbers or orders the platform failed to answer for: asked next run
    previous_date: str | None = None  # the day before, walked until it is settled


class PatrolReport(Model):
    patrol_id: str
    at: datetime
    stores: list[str]
    walked: int
    found: list[str]  # started by the patrol: the push feed missed them (R6.3.2)
    raced: list[str]  # started by a push while the patrol looked
    missed_and_closed: list[str]
    mismatches: list[StatusMismatch]
    unresolved: int = 0

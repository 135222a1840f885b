"""What an order claims while it runs: a person's capacity, stock, a service slot."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Model
from schemas.notices import Notification
from schemas.order import OrderType


class AssignInput(Model):
    """R2.3.1 by order type and region; R2.3.2 weighing load, skill and capacity."""

    order_id: str
    order_type: OrderType
    store_code: str
    region: str
    skills: list[str]
    exclude: list[str] = []  # people the order is being taken away from
    preferred: str | None = None  # a supervisor's explicit choice
    round: int = 1
    notice: Notification | None = None
    """R2.3.3 the assignee's notice, written in the claim's transaction to whoever is claimed."""


class Assignee(Model):
    staff_id: str
    name: str
    department: str
    manager_id: str


class ReleaseAssignment(Model):
    order_id: str
    staff_id: str


class StockLine(Model):
    sku: str
    quantity: int = Field(ge=1)


class ReserveStock(Model):
    order_id: str
    store_code: str
    lines: list[StockLine]
    round: int = Field(default=1, ge=1)  # a change of items reserves again as round 2, 3, ...


class StockReservation(Model):
    order_id: str
    lines: list[StockLine]
    low_stock: list[str] = []  # SKUs at or under their low-water mark after this reservation


class OrderRef(Model):
    """Addresses every per-order claim at once, so commit and release are idempotent."""

    order_id: str


class BookService(Model):
    """R3.2.1 a qualified person and a free slot."""

    order_id: str
    store_code: str
    region: str
    skills: list[str]
    earliest: datetime
    preferred_staff: str | None = None
    notice: Notification | None = None
    """R3.2.2 the briefing, written in the booking's transaction to the person booked, with the
    slot (fact `slot_at`)."""


class Booking(Model):
    staff_id: str
    staff_name: str
    slot_start: datetime
    slot_end: datetime

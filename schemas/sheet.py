"""The order as the people working on it need it: what to make or do, for whom, where, by when.

The kitchen ticket (`orderctl ticket`) and `orderctl show` print it. The customer's contact
number is given to the assignee and the managers of the order only, and each time it is given
is recorded (who, when: `contact_reveals`, migration 0016)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from schemas.base import Model
from schemas.order import DeliveryMode, OrderType, Stage


class SheetLine(Model):
    name: str
    spec: str
    quantity: int
    boxes: int
    unit_price: Decimal


class Told(Model):
    """A notification about the order: to whom (a role, and the person unless a customer)."""

    audience: str
    recipient: str | None
    subject: str
    text: str
    created_at: datetime
    delivered: bool | None  # None: nowhere to send it but the record


class OrderSheet(Model):
    order_id: str
    view_id: str
    day_seq: int | None
    store_code: str
    store_name: str | None
    order_type: OrderType
    delivery_mode: DeliveryMode
    stage: Stage
    items: list[SheetLine]
    caution: str  # the customer's notes (remarks)
    address: str
    expected_at: datetime | None  # what the platform promised the customer
    promised_at: datetime | None  # what the store confirmed (R2.4.3), when it has
    total: Decimal
    contact: str | None = None  # the privacy number: to the assignee and managers, recorded
    told: list[Told] = []  # oldest first

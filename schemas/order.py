"""The order as the workflow holds it, and the vocabulary of its lifecycle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from schemas.base import Model


class OrderType(StrEnum):
    GOODS = "goods"
    SERVICE = "service"


class Stage(StrEnum):
    """Stages of the contract; `on_hold` while an anomaly is open."""

    RECEIVED = "received"
    REVIEWING = "reviewing"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"

    @property
    def terminal(self) -> bool:
        return self in (Stage.CLOSED, Stage.REJECTED, Stage.CANCELLED)


class DeliveryMode(StrEnum):
    SELF_DELIVERY = "self_delivery"  # our own rider; the platform is told delivering/arrived
    PLATFORM_COURIER = "platform_courier"  # Meituan's courier; driven by delivery_status pushes
    PICKUP = "pickup"  # the customer collects at the store
    ON_SITE = "on_site"  # a service performed at the customer's address


class OrderItem(Model):
    sku: str
    name: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    box_num: int = 0
    box_price: Decimal = Decimal("0")
    spec: str = ""


class Discount(Model):
    kind: int  # the platform's activity type (1 first order, 2 spend-X-save-Y, ...)
    amount: Decimal
    merchant_share: Decimal = Decimal("0")
    remark: str = ""


class Customer(Model):
    name: str
    phone: str
    address: str
    latitude: float | None = None
    longitude: float | None = None


class PlatformOrder(Model):
    """One Meituan order, decoded from its push or from getOrderDetail."""

    order_id: str
    view_id: str = ""
    store_code: str
    customer: Customer
    items: list[OrderItem]
    discounts: list[Discount] = []
    shipping_fee: Decimal = Decimal("0")
    package_fee: Decimal = Decimal("0")
    total: Decimal
    original_price: Decimal | None = None
    remarks: str = ""
    created_at: datetime
    expected_at: datetime | None = None  # delivery_time; None means "as soon as possible"
    pickup: bool = False
    platform_delivery: bool = False
    day_seq: int | None = None


class PlatformCancel(Model):
    """The platform cancelled the order: its `platform_cancel` signal, or known at the start."""

    reason_code: int  # the platform's reason, e.g. 1001 not confirmed in time
    reason: str = ""
    # Who cancelled: 1 user, 2 merchant, 3 support, 4 BD, 5 system, 6 open platform.
    deal_op_type: int | None = None


class OrderInput(Model):
    """What starts an OrderWorkflow: the order and where it came from."""

    order: PlatformOrder
    source: str = "push"  # push | patrol | cli
    # R2.1.2 the patrol found the order only after the platform had cancelled it: the order
    # starts cancelled, so it is on record, as a cancellation push of an unknown order does.
    platform_cancel: PlatformCancel | None = None


class CustomerChanges(Model):
    """Fields a customer changed after ordering; `None` means unchanged."""

    name: str | None = None
    phone: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    expected_at: datetime | None = None
    remarks: str | None = None
    items: list[OrderItem] | None = None

    def apply(self, order: PlatformOrder) -> PlatformOrder:
        customer = order.customer.model_copy(
            update={
                k: v
                for k, v in {
                    "name": self.name,
                    "phone": self.phone,
                    "address": self.address,
                    "latitude": self.latitude,
                    "longitude": self.longitude,
                }.items()
                if v is not None
            }
        )
        update: dict[str, object] = {"customer": customer}
        if self.expected_at is not None:
            update["expected_at"] = self.expected_at
        if self.remarks is not None:
            update["remarks"] = self.remarks
        if self.items is not None:
            update["items"] = self.items
        return order.model_copy(update=update)

    def changed_fields(self) -> list[str]:
        return [name for name, value in self if value is not None]

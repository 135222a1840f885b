"""The platform's order (`OrderPush` / `getOrderDetail`) as the workflow's `PlatformOrder`.

Shared by everything that starts an order from the platform's data (the push gateway, its
signal-with-start for an order first seen through another push, and the patrol), so every
path starts it with the same input. Money stays `Decimal` end to end (R1.3).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from meituan.models import Discount as PushDiscount
from meituan.models import OrderItem as PushItem
from meituan.models import OrderPush
from schemas.order import Customer, Discount, OrderInput, OrderItem, PlatformOrder

SELF_DELIVERY_CODES = frozenset({"", "0000", "00009002", "00009003"})
"""`logistics_code`s of an order the store delivers itself, so no courier pushes come: 0000
merchant delivery, 00009002 merchant delivery (Haikui), 00009003 merchant delivery (open
platform); blank when the merchant did not subscribe to the field."""
PICKUP = 1
"""`pick_type` of a self-pickup order."""
THIRD_PARTY_SHIPPING = 1
"""`is_third_shipping`: a third-party carrier the store engaged, not the platform's courier."""


def _moment(unix_seconds: int | None) -> datetime | None:
    if not unix_seconds:
        return None
    return datetime.fromtimestamp(unix_seconds, UTC)


def platform_delivery(push: OrderPush) -> bool:
    """Whether the platform's courier delivers, so `delivery_status` pushes will drive delivery.

    Reading of the platform fields: `logistics_code` names the delivery service, the
    `SELF_DELIVERY_CODES` being the store's own delivery and any other code one of the
    platform's (e.g. 1001 dedicated, 1003 crowd-sourced), as the simulator also models;
    `is_third_shipping = 1` is a third-party carrier the store arranged, which sends no
    platform courier pushes, so it counts as the store's delivery. A pickup order has no
    delivery at all.
    """
    if push.pick_type == PICKUP or push.is_third_shipping == THIRD_PARTY_SHIPPING:
        return False
    return push.logistics_code.strip() not in SELF_DELIVERY_CODES


def _item(line: PushItem) -> OrderItem:
    box_num, box_price = line.box_num, line.box_price
    if box_num != box_num.to_integral_value():
        # The platform allows fractional boxes (two dishes sharing one); the order schema
        # counts whole boxes, so the line's box money is kept exact as one box.
        box_num, box_price = Decimal(1), box_num * box_price
    return OrderItem(
        sku=line.app_food_code or line.sku_id,
        name=line.food_name,
        quantity=line.quantity,
        unit_price=line.price,
        box_num=int(box_num),
        box_price=box_price,
        spec=line.spec,
    )


def _discount(entry: PushDiscount) -> Discount:
    return Discount(
        kind=entry.type or 0,
        amount=entry.reduce_fee,
        merchant_share=entry.poi_charge,
        remark=entry.remark,
    )


def to_platform_order(push: OrderPush, *, received_at: datetime | None = None) -> PlatformOrder:
    """Map the platform's order; `received_at` stands in for a missing `ctime`.

    Raises `pydantic.ValidationError` when the platform's data cannot make an order (for
    instance a line with quantity 0): the caller treats the push as malformed.
    """
    created_at = _moment(push.ctime) or _moment(push.utime) or received_at or datetime.now(UTC)
    return PlatformOrder(
        order_id=str(push.order_id),
        view_id=str(push.wm_order_id_view) if push.wm_order_id_view is not None else "",
        store_code=push.app_poi_code,
        customer=Customer(
            name=push.recipient_name,
            phone=push.recipient_phone,
            # The customer's own text; the platform's geocoded text only when that is empty.
            address=push.address_text or push.address_geocoded or "",
            latitude=push.latitude,
            longitude=push.longitude,
        ),
        items=[_item(line) for line in push.detail],
        discounts=[_discount(entry) for entry in push.extras],
        shipping_fee=push.shipping_fee,
        package_fee=push.bag_fee,
        total=push.total,
        original_price=push.original_price,
        remarks=push.caution,
        created_at=created_at,
        expected_at=_moment(push.delivery_time),  # 0: as soon as possible
        pickup=push.pick_type == PICKUP,
        platform_delivery=platform_delivery(push),
        day_seq=push.day_seq,
    )


def order_input(
    push: OrderPush, *, source: str = "push", received_at: datetime | None = None
) -> OrderInput:
    """The OrderWorkflow input for a platform order (R2.1.1)."""
    return OrderInput(order=to_platform_order(push, received_at=received_at), source=source)

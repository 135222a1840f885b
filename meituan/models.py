"""Pydantic models of what the platform sends: pushes and merchant API responses.

Lenient where the platform varies (unknown fields are kept, blank values mean absent, JSON
may arrive as text), exact where the business relies on it: money is `Decimal`, phone
numbers stay strings (privacy numbers like `13812345678_1234`), ids are 64-bit integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CENT = Decimal("0.01")
ZERO = Decimal(0)
ADDRESS_SEPARATOR = "@#"


def loads_json(text: str) -> Any:
    """JSON with decimals kept exact (money must never pass through float). JSON nested
    deeper than the interpreter's recursion allows is malformed, not an internal error."""
    try:
        return json.loads(text, parse_float=Decimal)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_if_text(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return loads_json(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc}): {text[:60]!r}") from exc
    return value


class PlatformModel(BaseModel):
    """Base of everything the platform sends.

    Unknown fields are kept (R1.3 data accuracy: nothing the platform says is lost), and an
    empty string for a non-text field counts as absent, as the platform sends unsubscribed
    or unset fields either way.
    """

    # Errors name the field, never the value: pushes carry the customer's data (R6.3.2).
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        fields = cls.model_fields
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            field = fields.get(key)
            if field is not None and (
                value is None or (value == "" and field.annotation is not str)
            ):
                continue
            cleaned[key] = value
        return cleaned


class OrderItem(PlatformModel):
    """One line of `detail`."""

    app_food_code: str = ""
    food_name: str = ""
    sku_id: str = ""
    quantity: int = 1
    price: Decimal
    """Unit price after the item's own discount."""
    box_num: Decimal = ZERO
    box_price: Decimal = ZERO
    unit: str = ""
    spec: str = ""
    food_discount: Decimal = Decimal(1)
    food_property: str = ""
    cart_id: int = 0

    @property
    def amount(self) -> Decimal:
        return self.price * self.quantity

    @property
    def box_amount(self) -> Decimal:
        return self.box_num * self.box_price


class Discount(PlatformModel):
    """One entry of `extras`; `mt_charge` is what the platform pays, `poi_charge` what we pay."""

    act_detail_id: int | None = None
    reduce_fee: Decimal = ZERO
    mt_charge: Decimal = ZERO
    poi_charge: Decimal = ZERO
    remark: str = ""
    type: int | None = None


class OrderPush(PlatformModel):
    """A paid (or confirmed/completed) order, as pushed and as returned by `getOrderDetail`.

    `address_text` and `address_geocoded` split `recipient_address` at `@#` (the customer's
    text, then the platform's geocoded text); they are derived and not serialised.
    """

    order_id: int
    wm_order_id_view: int | None = None
    app_poi_code: str
    wm_poi_name: str = ""
    wm_poi_address: str = ""
    wm_poi_phone: str = ""
    recipient_name: str = ""
    recipient_phone: str = ""
    backup_recipient_phone: list[str] = Field(default_factory=list)
    recipient_address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    shipping_fee: Decimal = ZERO
    total: Decimal
    original_price: Decimal | None = None
    caution: str = ""
    status: int | None = None
    ctime: int | None = None
    utime: int | None = None
    delivery_time: int = 0
    """Unix seconds the customer wants it (a service appointment); 0 means now."""
    day_seq: int | None = None
    pay_type: int | None = None
    pick_type: int = 0
    is_third_shipping: int = 0
    logistics_code: str = ""
    has_invoiced: int = 0
    invoice_title: str = ""
    taxpayer_id: str = ""
    dinners_number: int | None = None
    is_pre_sale_order: bool = False
    """Sent as `true`/`false`."""
    city_id: int | None = None
    package_bag_money: int | None = None
    """The bag fee in fen (cents), unlike the order's other money."""
    package_bag_money_yuan: Decimal | None = None
    """The same fee in yuan, where the push carries it."""
    poi_receive_detail: dict[str, Any] | None = None
    app_id: str | None = None
    timestamp: int | None = None
    detail: list[OrderItem]
    extras: list[Discount] = Field(default_factory=list)

    address_text: str = Field(default="", exclude=True)
    address_geocoded: str | None = Field(default=None, exclude=True)

    @field_validator("detail", "backup_recipient_phone", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        value = _json_if_text(value)
        return [] if value is None else value

    @field_validator("poi_receive_detail", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        return _json_if_text(value)

    @field_validator("extras", mode="before")
    @classmethod
    def _json_discounts(cls, value: Any) -> Any:
        value = _json_if_text(value)
        if value is None:
            return []
        # Raw pushes may carry `{}` in the list: it is not a discount.
        if isinstance(value, list):
            return [entry for entry in value if entry != {}]
        return value

    @model_validator(mode="after")
    def _split_address(self) -> OrderPush:
        text, _, geocoded = self.recipient_address.partition(ADDRESS_SEPARATOR)
        self.address_text = text.strip()
        self.address_geocoded = geocoded.strip() or None
        return self

    @property
    def items_amount(self) -> Decimal:
        return sum((item.amount for item in self.detail), ZERO)

    @property
    def box_amount(self) -> Decimal:
        return sum((item.box_amount for item in self.detail), ZERO)

    @property
    def discount_amount(self) -> Decimal:
        return sum((entry.reduce_fee for entry in self.extras), ZERO)

    @property
    def merchant_discount_amount(self) -> Decimal:
        return sum((entry.poi_charge for entry in self.extras), ZERO)

    @property
    def bag_fee(self) -> Decimal:
        """The bag fee in yuan: `package_bag_money_yuan`, else `package_bag_money` (fen)."""
        if self.package_bag_money_yuan is not None:
            return self.package_bag_money_yuan
        return (Decimal(self.package_bag_money or 0) * CENT).quantize(CENT)

    @property
    def expected_original_price(self) -> Decimal:
        """Items + boxes + shipping (+ bag fee): what the customer owes before discounts."""
        return (self.items_amount + self.box_amount + self.shipping_fee + self.bag_fee).quantize(
            CENT
        )

    @property
    def expected_total(self) -> Decimal:
        """What `total` should be from the lines; the basis of the price review (R2.2.3)."""
        return (self.expected_original_price - self.discount_amount).quantize(CENT)

    @property
    def total_consistent(self) -> bool:
        return abs(self.total - self.expected_total) < CENT

    @property
    def is_self_pickup(self) -> bool:
        return self.pick_type == 1


OrderDetail = OrderPush
"""`getOrderDetail` returns the same fields as the order push."""


class CancelPush(PlatformModel):
    """The customer, support or the platform itself cancelled the order."""

    order_id: int
    reason_code: int
    reason: str = ""
    deal_op_type: int | None = None
    app_id: str | None = None
    timestamp: int | None = None


def _pictures(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return _json_if_text(text)
        return [part for part in text.split(",") if part]
    return value


class RefundPush(PlatformModel):
    """A step of a full refund request (`notify_type`: apply, agree, reject, cancelRefund...).

    A store on the return-and-refund flow gets neither `notify_type` nor `res_type`: `status`
    says where its after-sales request is (1 applied ... 30 cancelled).
    """

    order_id: int
    refund_id: int
    notify_type: str = ""
    status: int | None = None
    service_type: int | None = None
    """0 refund or appeal flow; 1 refund only, 2 return and refund (return-and-refund stores)."""
    res_type: int | None = None
    is_appeal: int | None = None
    reason: str = ""
    pictures: list[str] = Field(default_factory=list)
    ctime: int | None = None
    app_id: str | None = None
    timestamp: int | None = None

    @field_validator("pictures", mode="before")
    @classmethod
    def _parse_pictures(cls, value: Any) -> Any:
        value = _pictures(value)
        return [] if value is None else value


class RefundFood(PlatformModel):
    """One refunded line of a partial refund (`food` of the push, `food_data` of the call)."""

    app_food_code: str = ""
    food_name: str = ""
    sku_id: str = ""
    count: int = 1
    refund_price: Decimal = ZERO
    box_num: Decimal = ZERO
    box_price: Decimal = ZERO
    origin_food_price: Decimal | None = None


class PartialRefundPush(RefundPush):
    """A partial refund request: which lines and how much."""

    food: list[RefundFood] = Field(default_factory=list)
    money: Decimal

    @field_validator("food", mode="before")
    @classmethod
    def _json_food(cls, value: Any) -> Any:
        value = _json_if_text(value)
        return [] if value is None else value


class RefundStatusPush(PlatformModel):
    """The money of a refund moved (3/4 full succeeded/failed, 13/14 partial)."""

    refund_id: int
    refund_status: int
    money: Decimal
    order_id: int | None = None
    app_id: str | None = None
    timestamp: int | None = None


class LogisticsPush(PlatformModel):
    """A platform courier's progress on an order."""

    order_id: int
    logistics_status: int
    time: int | None = None
    dispatcher_name: str = ""
    dispatcher_mobile: str = ""
    app_id: str | None = None
    timestamp: int | None = None


class OrderRefPush(PlatformModel):
    """The confirmed-order and completed-order pushes: only which order (the rest is fetched
    with `getOrderDetail`); a full order in the body is kept as extra fields."""

    order_id: int
    app_id: str | None = None
    timestamp: int | None = None


class PrivacyDowngradePush(PlatformModel):
    """The platform downgraded privacy numbers (隐私号降级): customers' real numbers are to be
    used for a while. Its fields are not documented in public material: all are kept."""

    order_id: int | None = None
    app_poi_code: str = ""
    app_id: str | None = None
    timestamp: int | None = None


class RemindPush(PlatformModel):
    """The customer asked where the order is (催单); field names are unverified."""

    order_id: int
    remind_id: int
    remind_time: int | None = None
    app_id: str | None = None
    timestamp: int | None = None


PushModel = (
    OrderPush
    | CancelPush
    | RefundPush
    | PartialRefundPush
    | RefundStatusPush
    | LogisticsPush
    | RemindPush
    | OrderRefPush
    | PrivacyDowngradePush
)


class ApiError(BaseModel):
    """`error` of a failed call."""

    code: int
    msg: str = ""


class ApiResponse(BaseModel):
    """Envelope of every merchant API answer."""

    model_config = ConfigDict(extra="allow")

    data: Any = None
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.data != "ng"


class OrderStatusView(PlatformModel):
    """`order/viewstatus` payload."""

    status: int


class DaySeqView(PlatformModel):
    """`order/getOrderDaySeq` payload: the store's latest sequence number today."""

    day_seq: int


class OrderIdView(PlatformModel):
    """`order/getOrderIdByDaySeq` payload."""

    order_id: int

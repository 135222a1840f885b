"""The review rules as pure functions (R2.2.1-R2.2.3, R5.1, R5.3.1-R5.3.3).

`activities.review.Review` reads the data and calls `review()`; everything here is testable
without a database. Each rule has a stable name that appears in the verdict's failures.

Thresholds (environment variable, default):

- `ORDERFLOW_PRICE_TOLERANCE` (0.10): share of the list price a pushed unit price may differ by;
  a per-SKU `prices.tolerance` overrides it. Box prices must match within 0.01.
- `ORDERFLOW_DISCOUNT_MAX_SHARE` (0.50): all discounts together, as a share of the item total.
- `ORDERFLOW_MERCHANT_DISCOUNT_MAX_SHARE` (0.30): the merchant-funded part, same base.
- `ORDERFLOW_TOTAL_TOLERANCE` (0.01): yuan the paid total may differ from
  items + boxes + shipping + package fee - discounts.
- `ORDERFLOW_DUPLICATE_WINDOW_MINUTES` (10): an earlier order of the same customer (`customer_key`:
  a privacy number with its extension) with the same items within this window makes this one a
  duplicate.
- `ORDERFLOW_CREDIT_WATCH_BELOW` (70): a credit score below this raises a fraud anomaly, as do
  the `restricted` and `banned` statuses.
- `ORDERFLOW_MAX_LINE_QUANTITY` (50): more of one item than this is checked with the customer.

They are read through `infra.settings.ReviewSettings`.

Outcomes: a rejecting failure rejects the order with its merchant cancel code (R2.2.4); else an
anomalous failure opens an anomaly of the most severe kind found (fraud > prohibited > price >
info > other); else the order passes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from infra.settings import settings
from schemas.order import DeliveryMode, OrderType, PlatformOrder
from schemas.review import AnomalyKind, Outcome, ReviewVerdict, RuleFailure

# Merchant cancel reason codes of the platform (R2.2.4).
CANCEL_OTHER = 2007
CANCEL_ADDRESS_NOT_DELIVERABLE = 2010
CANCEL_DUPLICATE = 2013

# R5.1 the most severe kind names the anomaly.
SEVERITY: tuple[AnomalyKind, ...] = (
    AnomalyKind.FRAUD,
    AnomalyKind.PROHIBITED,
    AnomalyKind.PRICE,
    AnomalyKind.INFO,
    AnomalyKind.OTHER,
)

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_PRIVACY = re.compile(r"^(1[3-9]\d{9})_\d{4}$")
_LANDLINE = re.compile(r"^0[1-9]\d{1,2}-?[2-9]\d{6,7}(-\d{1,6})?$")  # no 0 after the trunk 0
_CENT = Decimal("0.01")


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """The configured thresholds (`settings().review`) unless a field is given."""

    price_tolerance: Decimal = field(default_factory=lambda: settings().review.price_tolerance)
    discount_max_share: Decimal = field(
        default_factory=lambda: settings().review.discount_max_share
    )
    merchant_discount_max_share: Decimal = field(
        default_factory=lambda: settings().review.merchant_discount_max_share
    )
    total_tolerance: Decimal = field(default_factory=lambda: settings().review.total_tolerance)
    duplicate_window: timedelta = field(default_factory=lambda: settings().review.duplicate_window)
    credit_watch_below: int = field(default_factory=lambda: settings().review.credit_watch_below)
    max_line_quantity: int = field(default_factory=lambda: settings().review.max_line_quantity)


@dataclass(frozen=True)
class StoreInfo:
    code: str
    order_type: OrderType
    region: str
    latitude: float | None
    longitude: float | None
    delivery_radius_km: float
    self_delivery: bool
    scopes: frozenset[str]
    hours: tuple[tuple[int, time, time], ...] = ()  # (ISO weekday, opens, closes); none: always


@dataclass(frozen=True)
class CatalogueEntry:
    sku: str
    name: str
    kind: OrderType
    scope: str
    prohibited: bool
    skill: str | None = None
    duration_minutes: int | None = None
    unit_price: Decimal | None = None  # None: no list price
    box_price: Decimal | None = None
    tolerance: Decimal | None = None  # None: Thresholds.price_tolerance


@dataclass(frozen=True)
class CustomerStanding:
    status: str  # good | restricted | banned
    credit_score: int


@dataclass(frozen=True)
class PriorOrder:
    """An earlier order of the customer, for the duplicate rule."""

    order_id: str
    created_at: datetime
    items: Mapping[str, int]  # sku -> total quantity
    customer_id: str


@dataclass(frozen=True)
class ReviewContext:
    store: StoreInfo
    catalogue: Mapping[str, CatalogueEntry]
    customer_id: str  # whose order this is (`customer_id_for`)
    customer: CustomerStanding | None = None  # None: a customer never seen before
    recent_orders: Sequence[PriorOrder] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class Finding:
    """A rule's failure, with the cancel code it rejects with (None when it raises an anomaly)."""

    failure: RuleFailure
    cancel_code: int | None = None


def _anomaly(rule: str, kind: AnomalyKind, message: str) -> Finding:
    return Finding(RuleFailure(rule=rule, message=message, anomaly=kind))


def _reject(rule: str, code: int, message: str) -> Finding:
    return Finding(RuleFailure(rule=rule, message=message, anomaly=None), cancel_code=code)


# --- shared pieces ------------------------------------------------------------------------------


def _normalised(phone: str) -> str:
    """The number without spaces, brackets or the country code, as the platform's vary."""
    cleaned = re.sub(r"[\s()]", "", phone or "")
    if cleaned.startswith("+86"):
        return cleaned[3:]
    if cleaned.startswith("0086"):
        return cleaned[4:]
    return cleaned


def real_phone(phone: str) -> str:
    """The number behind a privacy number (`13812345678_1234` -> `13812345678`), normalised:
    what a person dials. It is the platform's relay number, shared by many customers."""
    cleaned = _normalised(phone)
    privacy = _PRIVACY.match(cleaned)
    return privacy.group(1) if privacy else re.sub(r"\D", "", cleaned)


def phone_valid(phone: str) -> bool:
    """Mainland mobile, a privacy number, or a landline with its area code."""
    cleaned = re.sub(r"[\s()]", "", phone or "")
    if cleaned.startswith("+86"):
        cleaned = cleaned[3:]
    return bool(_MOBILE.match(cleaned) or _PRIVACY.match(cleaned) or _LANDLINE.match(cleaned))


def customer_key(phone: str) -> str:
    """Whom the platform identifies: a privacy number with its extension
    (`13812345678_1234`), else the number's digits; normalised as `real_phone`.

    R5.3.3, R5.1(4) the extension stays: the relay number alone is many customers, and keying
    on it merged their credit profiles and made their identical baskets duplicates."""
    cleaned = _normalised(phone)
    return cleaned if _PRIVACY.match(cleaned) else re.sub(r"\D", "", cleaned)


def customer_id_for(phone: str, key: str) -> str:
    """Stable across a customer's orders; an HMAC under a secret key, so the id neither reveals
    the phone nor can be computed from it without the key (R1.3).

    Migration 0020 computes this in SQL (`orderflow_customer_id`) to re-key the customers, and
    a test holds the two together: a change here needs a migration too."""
    digest = hmac.new(key.encode(), customer_key(phone).encode(), hashlib.sha256).hexdigest()
    return "c-" + digest[:24]


def delivery_mode(order: PlatformOrder, order_type: OrderType, self_delivery: bool) -> DeliveryMode:
    if order_type is OrderType.SERVICE:
        return DeliveryMode.ON_SITE
    if order.pickup:
        return DeliveryMode.PICKUP
    if order.platform_delivery:
        return DeliveryMode.PLATFORM_COURIER
    return DeliveryMode.SELF_DELIVERY if self_delivery else DeliveryMode.PLATFORM_COURIER


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def item_quantities(pairs: Sequence[tuple[str, int]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for sku, quantity in pairs:
        counts[sku] += quantity
    return dict(counts)


def items_total(order: PlatformOrder) -> Decimal:
    return sum((i.unit_price * i.quantity for i in order.items), Decimal("0"))


def box_total(order: PlatformOrder) -> Decimal:
    """`box_num` is the number of boxes on the line, each at `box_price`."""
    return sum((i.box_price * i.box_num for i in order.items), Decimal("0"))


def discount_total(order: PlatformOrder) -> Decimal:
    return sum((d.amount for d in order.discounts), Decimal("0"))


def expected_total(order: PlatformOrder) -> Decimal:
    return (
        items_total(order)
        + box_total(order)
        + order.shipping_fee
        + order.package_fee
        - discount_total(order)
    )


def _located(lat: float | None, lon: float | None) -> bool:
    return lat is not None and lon is not None and not (lat == 0 and lon == 0)


# --- the rules ----------------------------------------------------------------------------------

Rule = Callable[[PlatformOrder, ReviewContext], list[Finding]]


def check_customer(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R5.3.3 a banned, restricted or low-credit customer's order is a fraud anomaly: the
    platform has taken the order, so a manager, not a rule, refuses it (and may report it)."""
    c = ctx.customer
    if c is None:
        return []
    if c.status == "banned":
        return [_anomaly("customer_not_banned", AnomalyKind.FRAUD, "the customer is banned")]
    if c.status == "restricted" or c.credit_score < ctx.thresholds.credit_watch_below:
        return [
            _anomaly(
                "customer_credit",
                AnomalyKind.FRAUD,
                f"customer is {c.status} with credit score {c.credit_score}",
            )
        ]
    return []


def check_duplicate(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R5.1(4) the same basket from the same customer moments earlier is a duplicate.

    The same customer is the same customer id: another extension behind the same relay number
    is another customer, and the same basket from them is no duplicate."""
    mine = item_quantities([(i.sku, i.quantity) for i in order.items])
    if not mine:
        return []
    since = order.created_at - ctx.thresholds.duplicate_window
    for prior in ctx.recent_orders:
        earlier = prior.created_at < order.created_at or (
            prior.created_at == order.created_at and prior.order_id < order.order_id
        )
        if (
            prior.customer_id == ctx.customer_id
            and prior.order_id != order.order_id
            and earlier
            and prior.created_at >= since
            and dict(prior.items) == mine
        ):
            return [
                _reject(
                    "not_duplicate",
                    CANCEL_DUPLICATE,
                    f"same items as order {prior.order_id} placed {prior.created_at.isoformat()}",
                )
            ]
    return []


def check_name(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.1 the customer's name."""
    if order.customer.name.strip():
        return []
    return [_anomaly("name_present", AnomalyKind.INFO, "customer name is missing")]


def check_phone(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.1, R5.1(1) a contact number we can call."""
    if phone_valid(order.customer.phone):
        return []
    return [
        _anomaly(
            "phone_valid", AnomalyKind.INFO, f"contact number {order.customer.phone!r} is invalid"
        )
    ]


def check_address(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.1, R5.1(1) an address we can reach, inside the store's delivery radius."""
    store = ctx.store
    mode = delivery_mode(order, store.order_type, store.self_delivery)
    if mode is DeliveryMode.PICKUP:
        return []  # the customer comes to the store
    customer = order.customer
    if not customer.address.strip():
        return [_anomaly("address_present", AnomalyKind.INFO, "delivery address is missing")]
    if not _located(customer.latitude, customer.longitude):
        return [
            _anomaly(
                "address_located",
                AnomalyKind.INFO,
                "the address has no coordinates; the distance cannot be checked",
            )
        ]
    if not _located(store.latitude, store.longitude):
        return [
            _anomaly(
                "address_located",
                AnomalyKind.INFO,
                f"store {store.code} has no coordinates; the distance cannot be checked",
            )
        ]
    assert customer.latitude is not None and customer.longitude is not None
    assert store.latitude is not None and store.longitude is not None
    distance = haversine_km(store.latitude, store.longitude, customer.latitude, customer.longitude)
    if distance > store.delivery_radius_km:
        return [
            _reject(
                "within_delivery_radius",
                CANCEL_ADDRESS_NOT_DELIVERABLE,
                f"address is {distance:.1f} km away; the store serves "
                f"{store.delivery_radius_km:g} km",
            )
        ]
    return []


def check_items(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.1 content present; R2.2.2 known, in the store's scope, nothing prohibited."""
    if not order.items:
        return [_reject("items_present", CANCEL_OTHER, "the order has no items")]
    found: list[Finding] = []
    for item in order.items:
        entry = ctx.catalogue.get(item.sku)
        if entry is None:
            found.append(
                _reject("item_known", CANCEL_OTHER, f"{item.sku} ({item.name}) is not sold by us")
            )
            continue
        if entry.scope not in ctx.store.scopes or entry.kind is not ctx.store.order_type:
            found.append(
                _reject(
                    "item_in_scope",
                    CANCEL_OTHER,
                    f"{item.sku} ({entry.name}) is outside store {ctx.store.code}'s business scope",
                )
            )
        if entry.prohibited:
            found.append(
                _anomaly(
                    "item_not_prohibited",
                    AnomalyKind.PROHIBITED,
                    f"{item.sku} ({entry.name}) may not be sold through the platform",
                )
            )
        if item.quantity > ctx.thresholds.max_line_quantity:
            found.append(
                _anomaly(
                    "quantity_reasonable",
                    AnomalyKind.INFO,
                    f"{item.quantity} x {item.sku} is more than "
                    f"{ctx.thresholds.max_line_quantity}; check with the customer",
                )
            )
    return found


def check_prices(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.3, R5.3.2 unit and box prices against our price list."""
    found: list[Finding] = []
    for item in order.items:
        entry = ctx.catalogue.get(item.sku)
        if entry is None:
            continue  # item_known already refuses it
        if entry.unit_price is None:
            found.append(
                _anomaly(
                    "price_within_tolerance",
                    AnomalyKind.PRICE,
                    f"{item.sku} has no list price",
                )
            )
            continue
        tolerance = (
            entry.tolerance if entry.tolerance is not None else ctx.thresholds.price_tolerance
        )
        allowed = max(entry.unit_price * tolerance, _CENT)
        if abs(item.unit_price - entry.unit_price) > allowed:
            found.append(
                _anomaly(
                    "price_within_tolerance",
                    AnomalyKind.PRICE,
                    f"{item.sku} at {item.unit_price}, list price {entry.unit_price} "
                    f"(tolerance {tolerance:%})",
                )
            )
        list_box = entry.box_price or Decimal("0")
        if item.box_num and abs(item.box_price - list_box) > _CENT:
            found.append(
                _anomaly(
                    "box_price_matches",
                    AnomalyKind.PRICE,
                    f"{item.sku} box at {item.box_price}, list box price {list_box}",
                )
            )
    return found


def check_discounts(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R2.2.3 an unreasonable discount is raised, not absorbed."""
    base = items_total(order)
    t = ctx.thresholds
    problems: list[str] = []
    for d in order.discounts:
        if d.amount < 0 or d.merchant_share < 0:
            problems.append(f"discount type {d.kind} has a negative amount")
        elif d.merchant_share > d.amount + _CENT:
            problems.append(
                f"discount type {d.kind}: merchant share {d.merchant_share} exceeds {d.amount}"
            )
    total = discount_total(order)
    merchant = sum((d.merchant_share for d in order.discounts), Decimal("0"))
    if total > base * t.discount_max_share:
        problems.append(f"discounts {total} exceed {t.discount_max_share:%} of items {base}")
    if merchant > base * t.merchant_discount_max_share:
        problems.append(
            f"merchant-funded discounts {merchant} exceed "
            f"{t.merchant_discount_max_share:%} of items {base}"
        )
    return [_anomaly("discount_reasonable", AnomalyKind.PRICE, p) for p in problems]


def check_total(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """R1.3, R2.2.3 the paid total adds up."""
    expected = expected_total(order)
    if abs(order.total - expected) <= ctx.thresholds.total_tolerance:
        return []
    return [
        _anomaly(
            "total_consistent",
            AnomalyKind.PRICE,
            f"total {order.total} but items + boxes + shipping + package - discounts = {expected}",
        )
    ]


def check_open(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    """An order due while the store is closed (by its hours, set by an admin) is looked at by a
    manager: taken anyway, or cancelled with the customer told. Due: the time the customer asked
    for, or when it was placed for one wanted as soon as possible."""
    if not ctx.store.hours:
        return []
    due = (order.expected_at or order.created_at).astimezone(settings().business.timezone)
    weekday, clock = due.isoweekday(), due.time().replace(tzinfo=None)
    if any(day == weekday and opens <= clock < closes for day, opens, closes in ctx.store.hours):
        return []
    when = due.strftime("%a %H:%M")
    return [_anomaly("store_open", AnomalyKind.OTHER, f"due {when}, outside the store's hours")]


RULES: tuple[Rule, ...] = (
    check_open,
    check_customer,
    check_duplicate,
    check_name,
    check_phone,
    check_address,
    check_items,
    check_prices,
    check_discounts,
    check_total,
)


def evaluate(order: PlatformOrder, ctx: ReviewContext) -> list[Finding]:
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(order, ctx))
    return findings


def verdict(findings: Sequence[Finding]) -> ReviewVerdict:
    failures = [f.failure for f in findings]
    rejections = [f for f in findings if f.failure.anomaly is None]
    if rejections:
        first = rejections[0]
        assert first.cancel_code is not None
        return ReviewVerdict(
            outcome=Outcome.REJECT,
            failures=failures,
            cancel_code=first.cancel_code,
            reason="; ".join(f.failure.message for f in rejections),
        )
    kinds = {f.failure.anomaly for f in findings}
    for kind in SEVERITY:
        if kind in kinds:
            detail = "; ".join(f.failure.message for f in findings if f.failure.anomaly is kind)
            return ReviewVerdict(
                outcome=Outcome.ANOMALY, failures=failures, anomaly_kind=kind, reason=detail
            )
    return ReviewVerdict(outcome=Outcome.PASS)


def review(order: PlatformOrder, ctx: ReviewContext) -> ReviewVerdict:
    return verdict(evaluate(order, ctx))

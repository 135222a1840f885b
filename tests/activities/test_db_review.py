"""The review rules, one by one (pure), and the review activity on the demo company."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import asyncpg
import pytest

from activities import rules
from activities.orders import OrderRecords
from activities.review import Review
from activities.rules import (
    CatalogueEntry,
    CustomerStanding,
    PriorOrder,
    ReviewContext,
    StoreInfo,
    Thresholds,
)
from infra.settings import settings
from schemas.order import Discount, OrderType, PlatformOrder
from schemas.records import RecordOrder
from schemas.review import AnomalyKind, Outcome, ReviewInput
from tests.db_fixtures import NEAR_XUHUI, make_order
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

XUHUI = StoreInfo(
    code="SH-XH-001",
    order_type=OrderType.GOODS,
    region="shanghai-xuhui",
    latitude=31.19132,
    longitude=121.43712,
    delivery_radius_km=5.0,
    self_delivery=True,
    scopes=frozenset({"hot_dishes", "dim_sum", "staples", "soups", "drinks", "alcohol"}),
)


def _entry(sku: str, scope: str, price: str, box: str, prohibited: bool = False) -> CatalogueEntry:
    return CatalogueEntry(
        sku=sku,
        name=sku,
        kind=OrderType.GOODS,
        scope=scope,
        prohibited=prohibited,
        unit_price=Decimal(price),
        box_price=Decimal(box),
    )


CATALOGUE = {
    "G-HSR": _entry("G-HSR", "hot_dishes", "48.00", "1.00"),
    "G-CKW": _entry("G-CKW", "drinks", "5.00", "0.00"),
    "G-BJW": _entry("G-BJW", "alcohol", "128.00", "0.00", prohibited=True),
    "S-PLM": CatalogueEntry(
        sku="S-PLM",
        name="S-PLM",
        kind=OrderType.SERVICE,
        scope="plumbing",
        prohibited=False,
        unit_price=Decimal("150.00"),
        box_price=Decimal("0"),
    ),
}


# The customer of `make_order()`'s orders: a privacy number, relay number and extension.
KEY = settings().business.customer_key
CUSTOMER = rules.customer_id_for("13812345678_1234", KEY)


def ctx(**changes: object) -> ReviewContext:
    base: dict[str, object] = {"store": XUHUI, "catalogue": CATALOGUE, "customer_id": CUSTOMER}
    base.update(changes)
    return ReviewContext(**base)  # type: ignore[arg-type]


def names(order: PlatformOrder, context: ReviewContext | None = None) -> list[str]:
    return [f.failure.rule for f in rules.evaluate(order, context or ctx())]


# --- each rule, passing and failing -------------------------------------------------------------


def test_a_complete_correct_order_passes() -> None:
    verdict = rules.review(make_order(), ctx())
    assert verdict.outcome is Outcome.PASS and verdict.failures == []


def test_name_present() -> None:
    assert "name_present" in names(make_order(name="  "))
    assert "name_present" not in names(make_order(name="陆(先生)"))


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("13812345678", True),
        ("13812345678_1234", True),
        ("+86 138 1234 5678", True),
        ("021-64281234", True),
        ("02164281234", True),
        ("0571-8888888", True),
        ("12812345678", False),  # 12x is no mainland mobile prefix
        ("1381234567", False),
        ("13812345678_12", False),
        ("64281234", False),  # a landline needs its area code
        ("00000000000", False),  # an area code and a number start with 1-9 after the trunk 0
        ("", False),
    ],
)
def test_phone_valid(phone: str, valid: bool) -> None:
    assert rules.phone_valid(phone) is valid
    failed = "phone_valid" in names(make_order(phone=phone))
    assert failed is not valid


def test_bad_phone_is_an_info_anomaly() -> None:
    verdict = rules.review(make_order(phone="123"), ctx())
    assert verdict.outcome is Outcome.ANOMALY and verdict.anomaly_kind is AnomalyKind.INFO


def test_address_present_and_located() -> None:
    assert "address_present" in names(make_order(address=" "))
    assert "address_located" in names(make_order(at=None))
    assert "address_located" in names(make_order(at=(0.0, 0.0)))
    # Pickup needs neither.
    assert names(make_order(address="", at=None, pickup=True)) == []


def test_within_delivery_radius() -> None:
    far = make_order(at=(31.30, 121.60))  # ~20 km away
    findings = rules.evaluate(far, ctx())
    assert [f.failure.rule for f in findings] == ["within_delivery_radius"]
    verdict = rules.verdict(findings)
    assert verdict.outcome is Outcome.REJECT and verdict.cancel_code == 2010
    assert "km away" in verdict.reason
    assert names(make_order(at=NEAR_XUHUI)) == []
    assert names(make_order(at=(31.30, 121.60), pickup=True)) == []


def test_haversine() -> None:
    assert rules.haversine_km(31.0, 121.0, 31.0, 121.0) == 0
    assert 110 < rules.haversine_km(31.0, 121.0, 32.0, 121.0) < 112


def test_items_present_known_and_in_scope() -> None:
    empty = make_order(items=())
    assert names(empty.model_copy(update={"items": []})) == ["items_present"]
    unknown = make_order(items=(("G-XXX", 1),))
    verdict = rules.review(unknown, ctx())
    assert verdict.outcome is Outcome.REJECT and verdict.cancel_code == 2007
    assert [f.rule for f in verdict.failures] == ["item_known"]
    out_of_scope = make_order(items=(("S-PLM", 1),))
    assert names(out_of_scope) == ["item_in_scope"]
    narrow = ctx(store=StoreInfo(**{**XUHUI.__dict__, "scopes": frozenset({"drinks"})}))
    assert names(make_order(items=(("G-HSR", 1),)), narrow) == ["item_in_scope"]


def test_prohibited_item_is_a_prohibited_anomaly() -> None:
    verdict = rules.review(make_order(items=(("G-BJW", 1),)), ctx())
    assert verdict.outcome is Outcome.ANOMALY
    assert verdict.anomaly_kind is AnomalyKind.PROHIBITED
    assert [f.rule for f in verdict.failures] == ["item_not_prohibited"]


def test_quantity_reasonable() -> None:
    assert names(make_order(items=(("G-CKW", 51),))) == ["quantity_reasonable"]
    assert names(make_order(items=(("G-CKW", 50),))) == []


def test_price_within_tolerance() -> None:
    within = make_order(price_overrides={"G-HSR": "44.00"})  # -8.3%, under 10%
    assert names(within) == []
    cheap = make_order(price_overrides={"G-HSR": "9.90"})
    verdict = rules.review(cheap, ctx())
    assert verdict.outcome is Outcome.ANOMALY and verdict.anomaly_kind is AnomalyKind.PRICE
    assert [f.rule for f in verdict.failures] == ["price_within_tolerance"]
    # A per-SKU tolerance overrides the default.
    tight = dict(CATALOGUE)
    tight["G-HSR"] = CatalogueEntry(**{**CATALOGUE["G-HSR"].__dict__, "tolerance": Decimal("0")})
    assert names(within, ctx(catalogue=tight)) == ["price_within_tolerance"]
    # And the default comes from the thresholds.
    loose = ctx(thresholds=Thresholds(price_tolerance=Decimal("0.9")))
    assert names(cheap, loose) == []


def test_box_price_matches() -> None:
    order = make_order(items=(("G-HSR", 1),))
    order.items[0].box_price = Decimal("3.00")
    order.total = rules.expected_total(order)
    assert names(order) == ["box_price_matches"]


def test_discount_reasonable() -> None:
    fine = make_order(
        discounts=[Discount(kind=2, amount=Decimal("10"), merchant_share=Decimal("5"))]
    )
    assert names(fine) == []
    huge = make_order(
        discounts=[Discount(kind=9, amount=Decimal("40"), merchant_share=Decimal("0"))]
    )
    assert names(huge) == ["discount_reasonable"]  # over half of the 58 yuan of items
    merchant = make_order(
        discounts=[Discount(kind=2, amount=Decimal("20"), merchant_share=Decimal("20"))]
    )
    assert names(merchant) == ["discount_reasonable"]  # merchant-funded over 30%
    odd = make_order(discounts=[Discount(kind=2, amount=Decimal("5"), merchant_share=Decimal("9"))])
    assert names(odd) == ["discount_reasonable"]
    assert rules.review(huge, ctx()).anomaly_kind is AnomalyKind.PRICE


def test_total_consistent() -> None:
    order = make_order()
    assert names(order.model_copy(update={"total": order.total + Decimal("0.01")})) == []
    wrong = order.model_copy(update={"total": order.total + Decimal("0.02")})
    assert names(wrong) == ["total_consistent"]
    assert rules.review(wrong, ctx()).anomaly_kind is AnomalyKind.PRICE


def test_customer_standing() -> None:
    order = make_order()
    banned = rules.review(order, ctx(customer=CustomerStanding("banned", 10)))
    assert banned.outcome is Outcome.ANOMALY and banned.anomaly_kind is AnomalyKind.FRAUD
    assert [f.rule for f in banned.failures] == ["customer_not_banned"]
    for standing in (CustomerStanding("restricted", 80), CustomerStanding("good", 65)):
        v = rules.review(order, ctx(customer=standing))
        assert v.outcome is Outcome.ANOMALY and v.anomaly_kind is AnomalyKind.FRAUD
    assert rules.review(order, ctx(customer=CustomerStanding("good", 100))).outcome is Outcome.PASS
    assert rules.review(order, ctx(customer=None)).outcome is Outcome.PASS


def test_duplicate_order() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    order = make_order(items=(("G-HSR", 1), ("G-CKW", 2)), oid="200", created_at=now)
    same = {"G-HSR": 1, "G-CKW": 2}
    earlier = PriorOrder("100", now - timedelta(minutes=3), same, CUSTOMER)
    verdict = rules.review(order, ctx(recent_orders=[earlier]))
    assert verdict.outcome is Outcome.REJECT and verdict.cancel_code == 2013
    assert "100" in verdict.reason
    # Not a duplicate: other items, too long ago, itself, placed after this one, or another
    # customer behind the same relay number (another extension).
    other = PriorOrder("100", now - timedelta(minutes=3), {"G-HSR": 1}, CUSTOMER)
    old = PriorOrder("100", now - timedelta(minutes=30), same, CUSTOMER)
    itself = PriorOrder("200", now, same, CUSTOMER)
    after = PriorOrder("300", now + timedelta(minutes=1), same, CUSTOMER)
    neighbour = rules.customer_id_for("13812345678_9999", KEY)
    next_door = PriorOrder("100", now - timedelta(minutes=3), same, neighbour)
    for prior in (other, old, itself, after, next_door):
        assert rules.review(order, ctx(recent_orders=[prior])).outcome is Outcome.PASS
    # Lines split differently are still the same basket.
    split = PriorOrder("100", now - timedelta(minutes=1), {"G-HSR": 1, "G-CKW": 2}, CUSTOMER)
    order2 = make_order(items=(("G-CKW", 1), ("G-HSR", 1), ("G-CKW", 1)), oid="201", created_at=now)
    assert rules.review(order2, ctx(recent_orders=[split])).cancel_code == 2013


def test_outcome_rejection_beats_anomaly_and_severity_orders_anomalies() -> None:
    messy = make_order(items=(("G-BJW", 1),), phone="1", price_overrides={"G-BJW": "1.00"})
    v = rules.review(messy, ctx(customer=CustomerStanding("restricted", 50)))
    assert v.outcome is Outcome.ANOMALY and v.anomaly_kind is AnomalyKind.FRAUD
    assert {f.rule for f in v.failures} == {
        "customer_credit",
        "phone_valid",
        "item_not_prohibited",
        "price_within_tolerance",
    }
    v = rules.review(messy, ctx())
    assert v.anomaly_kind is AnomalyKind.PROHIBITED
    banned = rules.review(messy, ctx(customer=CustomerStanding("banned", 0)))
    assert banned.anomaly_kind is AnomalyKind.FRAUD and len(banned.failures) == 4


def test_customer_id_is_stable_and_not_the_phone() -> None:
    a = rules.customer_id_for("13812345678", KEY)
    assert (
        a
        == rules.customer_id_for("+86 138 1234 5678", KEY)
        == rules.customer_id_for("(138)12345678", KEY)
    )
    assert (
        a
        == rules.customer_id_for("0086 13812345678", KEY)
        == rules.customer_id_for("138-1234-5678", KEY)
    )
    assert "13812345678" not in a
    assert a != rules.customer_id_for("13912345678", KEY)
    assert rules.customer_id_for("021-64281234", KEY) == rules.customer_id_for("02164281234", KEY)
    assert rules.customer_id_for("13812345678", "another key") != a


def test_a_privacy_number_is_a_customer_with_its_extension() -> None:
    """R5.3.3 the relay number alone is shared by many customers; the extension tells them
    apart, while the number a person dials stays the relay number."""
    mine = rules.customer_id_for("13812345678_1234", KEY)
    assert mine == rules.customer_id_for("+86 138 1234 5678_1234", KEY)
    assert mine == rules.customer_id_for(" (13812345678_1234) ", KEY)
    assert mine != rules.customer_id_for("13812345678_9999", KEY)
    assert mine != rules.customer_id_for("13812345678", KEY)  # the relay number is nobody
    assert rules.customer_key("+86 138 1234 5678_1234") == "13812345678_1234"
    assert rules.customer_key("13812345678_12") == "1381234567812"  # no privacy number
    assert rules.real_phone("+86 138 1234 5678_1234") == "13812345678"


# --- the activity on real data ------------------------------------------------------------------


async def _record_and_review(pool: asyncpg.Pool, order: PlatformOrder) -> ReviewInput:
    record = await OrderRecords(pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    return ReviewInput(order=order, order_type=record.order_type, customer_id=record.customer_id)


async def test_review_activity_passes_a_good_order(demo_pool: asyncpg.Pool) -> None:
    order = make_order(phone="13700000001")
    verdict = await Review(demo_pool).review_order(await _record_and_review(demo_pool, order))
    assert verdict.outcome is Outcome.PASS, verdict


async def test_review_activity_flags_prohibited_and_price(demo_pool: asyncpg.Pool) -> None:
    order = make_order(items=(("G-BJW", 1),), phone="13700000002")
    verdict = await Review(demo_pool).review_order(await _record_and_review(demo_pool, order))
    assert verdict.anomaly_kind is AnomalyKind.PROHIBITED
    cheap = make_order(price_overrides={"G-HSR": "1.00"}, phone="13700000003")
    verdict = await Review(demo_pool).review_order(await _record_and_review(demo_pool, cheap))
    assert verdict.anomaly_kind is AnomalyKind.PRICE


async def test_review_activity_rejects_out_of_scope_and_far(demo_pool: asyncpg.Pool) -> None:
    service_item = make_order(items=(("S-PLM", 1),), phone="13700000004")
    verdict = await Review(demo_pool).review_order(
        await _record_and_review(demo_pool, service_item)
    )
    assert verdict.outcome is Outcome.REJECT
    assert [f.rule for f in verdict.failures] == ["item_in_scope"]
    far = make_order(store="SH-PD-002", phone="13700000005")  # Xuhui customer, Pudong store
    verdict = await Review(demo_pool).review_order(await _record_and_review(demo_pool, far))
    assert verdict.outcome is Outcome.REJECT and verdict.cancel_code == 2010


async def test_review_activity_finds_duplicates(demo_pool: asyncpg.Pool) -> None:
    """R5.1(4) the same privacy number, relay and extension, with the same basket again."""
    first = make_order(
        phone="13700000006_1111", created_at=datetime.now(UTC) - timedelta(minutes=2)
    )
    second = make_order(phone="+86 137 0000 0006_1111")
    await _record_and_review(demo_pool, first)
    inp = await _record_and_review(demo_pool, second)
    verdict = await Review(demo_pool).review_order(inp)
    assert verdict.outcome is Outcome.REJECT and verdict.cancel_code == 2013
    # The first one is not a duplicate of the second.
    verdict = await Review(demo_pool).review_order(
        ReviewInput(order=first, order_type=OrderType.GOODS, customer_id=inp.customer_id)
    )
    assert verdict.outcome is Outcome.PASS
    # A cancelled earlier order does not count.
    await demo_pool.execute(
        "UPDATE orders SET stage = 'cancelled' WHERE order_id = $1", first.order_id
    )
    assert (await Review(demo_pool).review_order(inp)).outcome is Outcome.PASS


async def test_customers_behind_one_relay_number_are_not_duplicates(
    demo_pool: asyncpg.Pool,
) -> None:
    """R5.1(4), R5.3.3 two extensions of one relay number are two customers: the same basket
    from each, minutes apart, is two orders, and neither is refused."""
    first = make_order(
        phone="13700000009_1111", created_at=datetime.now(UTC) - timedelta(minutes=2)
    )
    second = make_order(phone="13700000009_2222")
    inputs = [await _record_and_review(demo_pool, o) for o in (first, second)]
    for inp in inputs:
        verdict = await Review(demo_pool).review_order(inp)
        assert verdict.outcome is Outcome.PASS, verdict
    assert inputs[0].customer_id != inputs[1].customer_id
    profiles = await demo_pool.fetchval(
        "SELECT count(*) FROM customers WHERE customer_id = ANY($1::text[])",
        [i.customer_id for i in inputs],
    )
    assert profiles == 2


async def test_review_activity_reads_customer_credit(demo_pool: asyncpg.Pool) -> None:
    order = make_order(phone="13700000007")
    inp = await _record_and_review(demo_pool, order)
    review = Review(demo_pool)
    await demo_pool.execute(
        "UPDATE customers SET status = 'restricted', credit_score = 50 WHERE customer_id = $1",
        inp.customer_id,
    )
    assert (await review.review_order(inp)).anomaly_kind is AnomalyKind.FRAUD
    await demo_pool.execute(
        "UPDATE customers SET status = 'banned' WHERE customer_id = $1", inp.customer_id
    )
    verdict = await review.review_order(inp)
    assert verdict.outcome is Outcome.ANOMALY and verdict.anomaly_kind is AnomalyKind.FRAUD


async def test_review_of_a_service_order(demo_pool: asyncpg.Pool) -> None:
    order = make_order(items=(("S-PLM", 1),), store="SH-HS-100", phone="13700000008", shipping="0")
    verdict = await Review(demo_pool).review_order(await _record_and_review(demo_pool, order))
    assert verdict.outcome is Outcome.PASS, verdict


def test_an_order_due_while_the_store_is_closed_is_looked_at() -> None:
    """Hours in the business's zone; due: the time asked for, else when it was placed."""
    weekdays = StoreInfo(**{**XUHUI.__dict__, "hours": ((1, time(10), time(22)),)})  # Mondays
    monday_9am = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    early = make_order().model_copy(update={"created_at": monday_9am})
    assert names(early, ctx(store=weekdays)) == ["store_open"]
    asked_later = early.model_copy(update={"expected_at": monday_9am + timedelta(hours=2)})
    assert names(asked_later, ctx(store=weekdays)) == []
    assert names(early, ctx()) == []  # no hours set: always open
    verdict = rules.review(early, ctx(store=weekdays))
    assert verdict.anomaly_kind is AnomalyKind.OTHER
    assert "Mon 09:00" in verdict.failures[0].message

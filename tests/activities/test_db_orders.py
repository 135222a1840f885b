"""The order record, its event log, summaries, anomalies and customer credit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.credit import Credit
from activities.orders import OrderRecords
from activities.rules import customer_id_for
from infra.settings import settings
from schemas.anomaly import AnomalyOutcome, AnomalyRecord, Decision
from schemas.order import DeliveryMode, OrderType, PlatformOrder, Stage
from schemas.records import (
    CreditEvent,
    CreditEventKind,
    OrderSummary,
    RecordEvent,
    RecordOrder,
    TimelineEntry,
)
from schemas.review import AnomalyKind
from tests.db_fixtures import NEAR_PUDONG, make_order
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

NOW = datetime(2030, 3, 1, 4, 0, tzinfo=UTC)


def _rec(order: PlatformOrder, source: str = "push") -> RecordOrder:
    return RecordOrder(order=order, received_at=NOW, source=source)


@pytest.mark.parametrize(
    ("kwargs", "order_type", "mode", "skills"),
    [
        ({}, OrderType.GOODS, DeliveryMode.SELF_DELIVERY, ["hot_dishes", "drinks"]),
        ({"pickup": True}, OrderType.GOODS, DeliveryMode.PICKUP, ["hot_dishes", "drinks"]),
        (
            {"platform_delivery": True},
            OrderType.GOODS,
            DeliveryMode.PLATFORM_COURIER,
            ["hot_dishes", "drinks"],
        ),
        (
            {"store": "SH-PD-002", "at": NEAR_PUDONG, "items": (("G-XLB", 1), ("G-SLT", 1))},
            OrderType.GOODS,
            DeliveryMode.PLATFORM_COURIER,  # the Pudong kitchen does not deliver itself
            ["dim_sum", "soups"],
        ),
        (
            {"store": "SH-HS-100", "items": (("S-ACW", 1), ("S-PLM", 1))},
            OrderType.SERVICE,
            DeliveryMode.ON_SITE,
            ["appliance", "plumbing"],
        ),
    ],
)
async def test_record_order_classifies(
    demo_pool: asyncpg.Pool,
    kwargs: dict[str, object],
    order_type: OrderType,
    mode: DeliveryMode,
    skills: list[str],
) -> None:
    order = make_order(**kwargs)  # type: ignore[arg-type]
    record = await OrderRecords(demo_pool).record_order(_rec(order))
    assert record.order_type is order_type
    assert record.delivery_mode is mode
    assert record.skills == skills
    expected_region = "shanghai-pudong" if order.store_code == "SH-PD-002" else "shanghai-xuhui"
    assert record.region == expected_region
    assert record.customer_id == customer_id_for(
        "13812345678_1234", settings().business.customer_key
    )


async def test_record_order_twice_leaves_one_order(demo_pool: asyncpg.Pool) -> None:
    order = make_order(items=(("G-HSR", 2), ("G-SLT", 1)), shipping="3.00")
    records = OrderRecords(demo_pool)
    first = await records.record_order(_rec(order))
    second = await records.record_order(_rec(order, source="patrol"))
    assert first == second
    row = await demo_pool.fetchrow("SELECT * FROM orders WHERE order_id = $1", order.order_id)
    assert row["source"] == "push"  # the first arrival is kept
    assert row["items_total"] == Decimal("108.00") and row["box_total"] == Decimal("2.50")
    assert row["total"] == order.total and row["stage"] == "received"
    items = await demo_pool.fetchval(
        "SELECT count(*) FROM order_items WHERE order_id = $1", order.order_id
    )
    assert items == 2
    customers = await demo_pool.fetchval(
        "SELECT count(*) FROM customers WHERE customer_id = $1", first.customer_id
    )
    assert customers == 1
    # After a customer change the items are replaced, not added to.
    changed = order.model_copy(update={"items": order.items[:1]})
    await records.record_order(_rec(changed))
    items = await demo_pool.fetchval(
        "SELECT count(*) FROM order_items WHERE order_id = $1", order.order_id
    )
    assert items == 1


async def test_record_order_refuses_an_unknown_store(demo_pool: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as caught:
        await OrderRecords(demo_pool).record_order(_rec(make_order(store="NOPE")))
    assert caught.value.type == "UnknownStore" and caught.value.non_retryable


async def test_events_append_once_and_move_the_stage_forward_only(
    demo_pool: asyncpg.Pool,
) -> None:
    order = make_order()
    records = OrderRecords(demo_pool)
    await records.record_order(_rec(order))

    def event(seq: int, stage: Stage) -> RecordEvent:
        entry = TimelineEntry(
            seq=seq,
            at=NOW + timedelta(seconds=seq),
            event=f"e{seq}",
            stage=stage,
            details={"n": seq},
        )
        return RecordEvent(order_id=order.order_id, entry=entry)

    await records.record_event(event(1, Stage.REVIEWING))
    await records.record_event(event(2, Stage.ACCEPTED))
    await records.record_event(event(2, Stage.ACCEPTED))  # a retry
    await records.record_event(event(1, Stage.REVIEWING))  # a late retry of an older event
    rows = await demo_pool.fetch(
        "SELECT seq, stage, details FROM order_events WHERE order_id = $1 ORDER BY seq",
        order.order_id,
    )
    assert [(r["seq"], r["stage"], r["details"]) for r in rows] == [
        (1, "reviewing", {"n": 1}),
        (2, "accepted", {"n": 2}),
    ]
    stage = await demo_pool.fetchval("SELECT stage FROM orders WHERE order_id = $1", order.order_id)
    assert stage == "accepted"


async def test_summary_twice_is_one_row(demo_pool: asyncpg.Pool) -> None:
    summary = OrderSummary(
        order_id="sum-1",
        order_type=OrderType.GOODS,
        outcome=Stage.CLOSED,
        stage_seconds={"received": 1.5},
        breaches=["confirm"],
        exceptions=[],
        anomalies=[],
        feedback_rounds=0,
        rating=5,
        improvements=["confirm faster"],
    )
    records = OrderRecords(demo_pool)
    await records.record_summary(summary)
    await records.record_summary(summary)
    rows = await demo_pool.fetch("SELECT * FROM order_summaries WHERE order_id = 'sum-1'")
    assert len(rows) == 1 and rows[0]["stage_seconds"] == {"received": 1.5}


async def test_anomaly_opens_then_closes_once(demo_pool: asyncpg.Pool) -> None:
    opened = AnomalyRecord(
        anomaly_id="anomaly-x-1",
        order_id="x",
        kind=AnomalyKind.PRICE,
        detail="cheap",
        opened_at=NOW,
    )
    records = OrderRecords(demo_pool)
    await records.record_anomaly(opened)
    await records.record_anomaly(opened)
    row = await demo_pool.fetchrow("SELECT * FROM anomalies WHERE anomaly_id = 'anomaly-x-1'")
    assert row["closed_at"] is None and row["outcome"] is None

    def closed(decision: Decision) -> AnomalyRecord:
        outcome = AnomalyOutcome(
            anomaly_id="anomaly-x-1",
            kind=AnomalyKind.PRICE,
            decision=decision,
            resume=True,
            cause="typo",
            responsibility="store",
            decided_by="M-001",
            decided_at=NOW + timedelta(minutes=5),
            new_total=Decimal("10.50"),
        )
        return opened.model_copy(update={"outcome": outcome})

    await records.record_anomaly(closed(Decision.ADJUST_PRICE))
    await records.record_anomaly(closed(Decision.DISMISS))  # a retry cannot rewrite history
    await records.record_anomaly(opened)  # nor reopen it
    row = await demo_pool.fetchrow("SELECT * FROM anomalies WHERE anomaly_id = 'anomaly-x-1'")
    assert row["closed_at"] == NOW + timedelta(minutes=5)
    assert row["decision"] == "adjust_price"
    assert row["outcome"]["new_total"] == "10.50"
    assert await demo_pool.fetchval("SELECT count(*) FROM anomalies") == 1


async def test_credit_moves_once_per_order_and_kind(demo_pool: asyncpg.Pool) -> None:
    credit = Credit(demo_pool)
    cid = "c-credit-test"

    async def standing() -> tuple[int, str]:
        row = await demo_pool.fetchrow(
            "SELECT credit_score, status FROM customers WHERE customer_id = $1", cid
        )
        return row["credit_score"], row["status"]

    await credit.record_credit_event(
        CreditEvent(customer_id=cid, order_id="o1", kind=CreditEventKind.COMPLETED)
    )
    assert await standing() == (100, "good")  # capped at the maximum
    for _ in range(2):
        await credit.record_credit_event(
            CreditEvent(customer_id=cid, order_id="o2", kind=CreditEventKind.FRAUD)
        )
    assert await standing() == (50, "restricted")
    await credit.record_credit_event(
        CreditEvent(customer_id=cid, order_id="o3", kind=CreditEventKind.NO_SHOW)
    )
    assert await standing() == (30, "restricted")
    await credit.record_credit_event(
        CreditEvent(customer_id=cid, order_id="o3", kind=CreditEventKind.CANCELLATION)
    )
    assert await standing() == (25, "banned")
    for n in range(10):  # good orders do not lift a ban
        await credit.record_credit_event(
            CreditEvent(customer_id=cid, order_id=f"ok{n}", kind=CreditEventKind.COMPLETED)
        )
    assert await standing() == (45, "banned")
    events = await demo_pool.fetchval(
        "SELECT count(*) FROM credit_events WHERE customer_id = $1", cid
    )
    assert events == 14


async def test_activities_run_inside_an_activity_context(demo_pool: asyncpg.Pool) -> None:
    order = make_order()
    env = ActivityEnvironment()
    record = await env.run(OrderRecords(demo_pool).record_order, _rec(order))
    assert record.order_type is OrderType.GOODS

"""Stock reservations: never oversold, every step once (R3.1.2)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.stock import Stock, low_stock
from schemas.resources import OrderRef, ReserveStock, StockLine
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import order_id
from tests.db_fixtures import pg_dsn as pg_dsn

STORE = "SH-PD-002"


async def _level(pool: asyncpg.Pool, sku: str, store: str = STORE) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT on_hand, reserved FROM stock WHERE store_code = $1 AND sku = $2", store, sku
    )
    return row["on_hand"], row["reserved"]


async def _set(pool: asyncpg.Pool, sku: str, on_hand: int, low_water: int = 0) -> None:
    await pool.execute(
        """
        UPDATE stock SET on_hand = $3, reserved = 0, low_water = $4
        WHERE store_code = $1 AND sku = $2
        """,
        STORE,
        sku,
        on_hand,
        low_water,
    )


def _reserve(oid: str, *lines: tuple[str, int]) -> ReserveStock:
    return ReserveStock(
        order_id=oid,
        store_code=STORE,
        lines=[StockLine(sku=s, quantity=q) for s, q in lines],
    )


async def test_reserve_commit_release_each_once(demo_pool: asyncpg.Pool) -> None:
    stock = Stock(demo_pool)
    await _set(demo_pool, "G-HSR", 50, low_water=10)
    oid = order_id()
    res = await stock.reserve_stock(_reserve(oid, ("G-HSR", 3), ("G-HSR", 1)))
    again = await stock.reserve_stock(_reserve(oid, ("G-HSR", 3), ("G-HSR", 1)))
    assert res == again and res.lines == [StockLine(sku="G-HSR", quantity=4)]
    assert await _level(demo_pool, "G-HSR") == (50, 4)
    await stock.commit_stock(OrderRef(order_id=oid))
    await stock.commit_stock(OrderRef(order_id=oid))
    assert await _level(demo_pool, "G-HSR") == (46, 0)
    # A release after commit returns nothing: the goods left with the order.
    await stock.release_stock(OrderRef(order_id=oid))
    assert await _level(demo_pool, "G-HSR") == (46, 0)
    kinds = await demo_pool.fetch(
        "SELECT kind, quantity FROM stock_ledger WHERE order_id = $1 ORDER BY entry_id", oid
    )
    assert [(r["kind"], r["quantity"]) for r in kinds] == [("reserve", 4), ("commit", 4)]


async def test_release_before_commit_returns_the_goods(demo_pool: asyncpg.Pool) -> None:
    stock = Stock(demo_pool)
    await _set(demo_pool, "G-CFR", 20)
    oid = order_id()
    await stock.reserve_stock(_reserve(oid, ("G-CFR", 5)))
    assert await _level(demo_pool, "G-CFR") == (20, 5)
    await stock.release_stock(OrderRef(order_id=oid))
    await stock.release_stock(OrderRef(order_id=oid))
    await stock.commit_stock(OrderRef(order_id=oid))  # nothing left to commit
    assert await _level(demo_pool, "G-CFR") == (20, 0)


async def test_out_of_stock_undoes_the_whole_order(demo_pool: asyncpg.Pool) -> None:
    stock = Stock(demo_pool)
    await _set(demo_pool, "G-SLT", 10)
    await _set(demo_pool, "G-XLB", 1)
    oid = order_id()
    with pytest.raises(ApplicationError) as caught:
        await stock.reserve_stock(_reserve(oid, ("G-SLT", 2), ("G-XLB", 2)))
    assert caught.value.type == "OutOfStock" and caught.value.non_retryable
    assert "G-XLB" in str(caught.value)
    assert await _level(demo_pool, "G-SLT") == (10, 0)
    assert await _level(demo_pool, "G-XLB") == (1, 0)
    assert await demo_pool.fetchval("SELECT count(*) FROM stock_ledger WHERE order_id=$1", oid) == 0


async def test_untracked_skus_are_not_limited(demo_pool: asyncpg.Pool) -> None:
    res = await Stock(demo_pool).reserve_stock(_reserve(order_id(), ("S-PLM", 1)))
    assert res.lines == [StockLine(sku="S-PLM", quantity=1)] and res.low_stock == []


async def test_low_stock(demo_pool: asyncpg.Pool) -> None:
    stock = Stock(demo_pool)
    await _set(demo_pool, "G-CKW", 30, low_water=24)
    res = await stock.reserve_stock(_reserve(order_id(), ("G-CKW", 5)))
    assert res.low_stock == []
    res = await stock.reserve_stock(_reserve(order_id(), ("G-CKW", 1)))
    assert res.low_stock == ["G-CKW"]  # 24 left, at the mark
    assert "G-CKW" in await low_stock(demo_pool, STORE)


async def test_200_concurrent_reservations_never_oversell(demo_pool: asyncpg.Pool) -> None:
    stock = Stock(demo_pool)
    await _set(demo_pool, "G-HSR", 120)
    await demo_pool.execute("DELETE FROM stock_ledger WHERE store_code = $1", STORE)
    orders = [order_id() for _ in range(200)]

    async def one(oid: str) -> bool:
        try:
            await stock.reserve_stock(_reserve(oid, ("G-HSR", 1)))
            return True
        except ApplicationError as exc:
            assert exc.type == "OutOfStock"
            return False

    results = await asyncio.gather(*(one(o) for o in orders))
    assert sum(results) == 120
    assert await _level(demo_pool, "G-HSR") == (120, 120)

    # Half commit, a quarter release; the ledger explains the counters exactly.
    winners = [o for o, ok in zip(orders, results, strict=True) if ok]
    await asyncio.gather(*(stock.commit_stock(OrderRef(order_id=o)) for o in winners[:60]))
    await asyncio.gather(*(stock.release_stock(OrderRef(order_id=o)) for o in winners[60:90]))
    on_hand, reserved = await _level(demo_pool, "G-HSR")
    sums = {
        r["kind"]: r["total"]
        for r in await demo_pool.fetch(
            """
            SELECT kind, SUM(quantity) AS total FROM stock_ledger
            WHERE store_code = $1 AND sku = 'G-HSR' GROUP BY kind
            """,
            STORE,
        )
    }
    assert sums == {"reserve": 120, "commit": 60, "release": 30}
    assert on_hand == 120 - sums["commit"] == 60
    assert reserved == sums["reserve"] - sums["commit"] - sums["release"] == 30


async def test_an_order_whose_items_change_reserves_again_in_a_new_round(
    demo_pool: asyncpg.Pool,
) -> None:
    """R3.1.2 released, then reserved again for the changed items; each round retry-safe."""
    stock = Stock(demo_pool)
    order = "round-" + uuid.uuid4().hex[:8]
    first = ReserveStock(
        order_id=order, store_code="SH-XH-001", lines=[StockLine(sku="G-HSR", quantity=2)]
    )
    second = first.model_copy(update={"round": 2, "lines": [StockLine(sku="G-HSR", quantity=3)]})
    before = await _reserved(demo_pool, "G-HSR")
    await stock.reserve_stock(first)
    await stock.release_stock(OrderRef(order_id=order))
    await stock.reserve_stock(second)
    await stock.reserve_stock(second)  # a retry of round 2 changes nothing
    assert await _reserved(demo_pool, "G-HSR") == before + 3
    await stock.commit_stock(OrderRef(order_id=order))
    assert await _reserved(demo_pool, "G-HSR") == before


async def _reserved(pool: asyncpg.Pool, sku: str) -> int:
    async with pool.acquire() as conn:
        value = await conn.fetchval(
            "SELECT reserved FROM stock WHERE store_code = 'SH-XH-001' AND sku = $1", sku
        )
    return int(value)

"""Stock through the staff API (R2.2.1): a store's stock, a delivery restocked, a count
adjusted. Admins only; each change goes in the stock ledger (as orders' reservations do) and is
audited."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from infra.database import Conn
from schemas.admin import Restock, StockCount, StockLine
from schemas.people import Person
from starter.api.admin import audit, require_admin
from starter.failures import Exit, Failure

RESTOCK, ADJUST = "stock.restock", "stock.adjust"


async def lines(
    conn: Conn | asyncpg.Pool, store_code: str, sku: str | None = None
) -> list[StockLine]:
    rows = await conn.fetch(
        """
        SELECT s.store_code, s.sku, c.name, s.on_hand, s.reserved, s.low_water
        FROM stock s JOIN catalogue c USING (sku)
        WHERE s.store_code = $1 AND ($2::text IS NULL OR s.sku = $2) ORDER BY s.sku
        """,
        store_code,
        sku,
    )
    return [StockLine(**dict(r)) for r in rows]


async def restock(
    pool: asyncpg.Pool, person: Person, store_code: str, sku: str, body: Mapping[str, Any]
) -> StockLine:
    require_admin(person, "restock")
    given = Restock.model_validate(body)
    return await _move(pool, person, store_code, sku, RESTOCK, given.quantity, None, given.reason)


async def adjust(
    pool: asyncpg.Pool, person: Person, store_code: str, sku: str, body: Mapping[str, Any]
) -> StockLine:
    require_admin(person, "adjust stock")
    counted = StockCount.model_validate(body)
    return await _move(pool, person, store_code, sku, ADJUST, None, counted.on_hand, counted.reason)


async def _move(
    pool: asyncpg.Pool,
    person: Person,
    store_code: str,
    sku: str,
    action: str,
    add: int | None,
    counted: int | None,
    why: str,
) -> StockLine:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT on_hand, reserved FROM stock WHERE store_code = $1 AND sku = $2 FOR UPDATE",
            store_code,
            sku,
        )
        if row is None:
            raise Failure(f"{store_code} keeps no stock of {sku}", Exit.NOT_FOUND)
        after = row["on_hand"] + add if add is not None else counted
        assert after is not None
        if after < row["reserved"]:
            raise Failure(
                f"{row['reserved']} of {sku} are held for open orders: on hand cannot be {after}",
                Exit.NOT_ALLOWED,
            )
        await conn.execute(
            "UPDATE stock SET on_hand = $3, updated_at = now() WHERE store_code = $1 AND sku = $2",
            store_code,
            sku,
            after,
        )
        if after != row["on_hand"]:
            await conn.execute(
                """
                INSERT INTO stock_ledger (order_id, store_code, sku, kind, quantity)
                VALUES ($1, $2, $3, $4, $5)
                """,
                f"admin:{uuid.uuid4().hex}",
                store_code,
                sku,
                "restock" if after > row["on_hand"] else "writeoff",
                abs(after - row["on_hand"]),
            )
        target = f"stock:{store_code}:{sku}"
        await audit(
            conn, person, action, target, {"on_hand": row["on_hand"]}, {"on_hand": after}, why
        )
        [line] = await lines(conn, store_code, sku)
        return line

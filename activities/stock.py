"""Stock with a ledger; never oversold (R3.1.2).

Available stock is `on_hand - reserved`. Reserving is a conditional update that only succeeds
while enough is available, so concurrent orders can never oversell. The ledger holds one row
per (order, round, sku, kind) — an order whose items change reserves again in a new round —;
each step writes its row first and moves the counters only when the
row is new, so a retried step changes nothing. Commit consumes the goods (on_hand and reserved
both drop); release gives back what is still reserved. A release after commit returns nothing:
the goods left with the order, so cancelling after commit does not restock them.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rules import item_quantities
from infra.database import Conn
from schemas.resources import OrderRef, ReserveStock, StockLine, StockReservation


class Stock:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def reserve_stock(self, inp: ReserveStock) -> StockReservation:
        """`ApplicationError(type="OutOfStock")` when any line cannot be covered.

        All lines are reserved in one transaction, so a line that cannot be covered undoes the
        lines before it. SKUs the store does not track (no stock row) are not limited.
        """
        wanted = item_quantities([(line.sku, line.quantity) for line in inp.lines])
        async with self._pool.acquire() as conn, conn.transaction():
            short: list[str] = []
            for sku, quantity in sorted(wanted.items()):  # sorted: a fixed lock order
                tracked = await conn.fetchval(
                    "SELECT 1 FROM stock WHERE store_code = $1 AND sku = $2", inp.store_code, sku
                )
                if tracked is None:
                    continue
                new = await conn.fetchval(
                    """
                    INSERT INTO stock_ledger (order_id, round, store_code, sku, kind, quantity)
                    VALUES ($1, $2, $3, $4, 'reserve', $5)
                    ON CONFLICT (order_id, round, sku, kind) DO NOTHING
                    RETURNING entry_id
                    """,
                    inp.order_id,
                    inp.round,
                    inp.store_code,
                    sku,
                    quantity,
                )
                if new is None:
                    continue  # reserved by an earlier attempt
                moved = await conn.fetchval(
                    """
                    UPDATE stock SET reserved = reserved + $3, updated_at = now()
                    WHERE store_code = $1 AND sku = $2 AND on_hand - reserved >= $3
                    RETURNING sku
                    """,
                    inp.store_code,
                    sku,
                    quantity,
                )
                if moved is None:
                    short.append(sku)
            if short:
                # Raising inside the transaction rolls back every line of this order.
                raise ApplicationError(
                    f"not enough stock at {inp.store_code} for {', '.join(short)}",
                    {"skus": short},
                    type="OutOfStock",
                    non_retryable=True,
                )
            low = await _low_stock(conn, inp.store_code, list(wanted))
        return StockReservation(
            order_id=inp.order_id,
            lines=[StockLine(sku=s, quantity=q) for s, q in wanted.items()],
            low_stock=low,
        )

    @activity.defn
    async def commit_stock(self, inp: OrderRef) -> None:
        """The goods were taken for the order (R3.1.2 stock updated as goods are taken)."""
        await self._settle(inp.order_id, "commit")

    @activity.defn
    async def release_stock(self, inp: OrderRef) -> None:
        """Give back what the order still holds; nothing after commit."""
        await self._settle(inp.order_id, "release")

    async def _settle(self, order_id: str, kind: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Lock the order's reserve rows, so commit and release of one order never interleave.
            open_lines = await conn.fetch(
                """
                SELECT r.round, r.store_code, r.sku, r.quantity
                FROM stock_ledger r
                WHERE r.order_id = $1 AND r.kind = 'reserve'
                  AND NOT EXISTS (SELECT 1 FROM stock_ledger s
                                  WHERE s.order_id = r.order_id AND s.round = r.round
                                    AND s.sku = r.sku AND s.kind IN ('commit', 'release'))
                ORDER BY r.sku
                FOR UPDATE OF r
                """,
                order_id,
            )
            for line in open_lines:
                new = await conn.fetchval(
                    """
                    INSERT INTO stock_ledger (order_id, round, store_code, sku, kind, quantity)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (order_id, round, sku, kind) DO NOTHING
                    RETURNING entry_id
                    """,
                    order_id,
                    line["round"],
                    line["store_code"],
                    line["sku"],
                    kind,
                    line["quantity"],
                )
                if new is None:
                    continue
                await conn.execute(
                    """
                    UPDATE stock SET reserved = reserved - $3,
                                     on_hand = on_hand - CASE WHEN $4 THEN $3 ELSE 0 END,
                                     updated_at = now()
                    WHERE store_code = $1 AND sku = $2
                    """,
                    line["store_code"],
                    line["sku"],
                    line["quantity"],
                    kind == "commit",
                )


async def _low_stock(conn: Conn, store_code: str, skus: list[str]) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT sku FROM stock
        WHERE store_code = $1 AND sku = ANY($2::text[]) AND on_hand - reserved <= low_water
        ORDER BY sku
        """,
        store_code,
        skus,
    )
    return [r["sku"] for r in rows]


async def low_stock(pool: asyncpg.Pool, store_code: str) -> list[str]:
    """Every SKU of the store at or below its low-water mark (available stock)."""
    rows = await pool.fetch(
        """
        SELECT sku FROM stock WHERE store_code = $1 AND on_hand - reserved <= low_water
        ORDER BY sku
        """,
        store_code,
    )
    return [r["sku"] for r in rows]

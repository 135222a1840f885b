"""The review rules (R2.2.1-R2.2.3, R5.1, R5.3.1-R5.3.3).

This activity only gathers what the rules need; the rules and their thresholds are in
`activities.rules`.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rules import (
    CatalogueEntry,
    CustomerStanding,
    PriorOrder,
    ReviewContext,
    StoreInfo,
    Thresholds,
    item_quantities,
    review,
)
from infra.database import Conn
from schemas.order import OrderType, PlatformOrder
from schemas.review import ReviewInput, ReviewVerdict


async def load_context(conn: Conn, inp: ReviewInput, thresholds: Thresholds) -> ReviewContext:
    order = inp.order
    store = await _store(conn, order.store_code)
    # The customer the order's record names now: an order in flight carries the id it was
    # recorded with, and the profiles may have been re-keyed since (migration 0010).
    recorded = await conn.fetchval(
        "SELECT customer_id FROM orders WHERE order_id = $1", order.order_id
    )
    customer_id: str = recorded or inp.customer_id
    return ReviewContext(
        customer_id=customer_id,
        store=store,
        catalogue=await _catalogue(conn, [i.sku for i in order.items]),
        customer=await _standing(conn, customer_id),
        recent_orders=await _recent_orders(conn, customer_id, order, thresholds),
        thresholds=thresholds,
    )


async def _store(conn: Conn, code: str) -> StoreInfo:
    store = await conn.fetchrow(
        """
        SELECT s.*, COALESCE(array_agg(sc.scope) FILTER (WHERE sc.scope IS NOT NULL), '{}')
               AS scopes
        FROM stores s LEFT JOIN store_scopes sc ON sc.store_code = s.code
        WHERE s.code = $1
        GROUP BY s.code
        """,
        code,
    )
    if store is None:
        raise ApplicationError(
            f"store {code!r} is not one of ours", type="UnknownStore", non_retryable=True
        )
    return StoreInfo(
        code=store["code"],
        order_type=OrderType(store["order_type"]),
        region=store["region"],
        latitude=store["latitude"],
        longitude=store["longitude"],
        delivery_radius_km=float(store["delivery_radius_km"]),
        self_delivery=store["self_delivery"],
        scopes=frozenset(store["scopes"]),
        hours=tuple(
            (r["weekday"], r["opens"], r["closes"])
            for r in await conn.fetch(
                "SELECT weekday, opens, closes FROM store_hours WHERE store_code = $1", code
            )
        ),
    )


async def _catalogue(conn: Conn, skus: list[str]) -> dict[str, CatalogueEntry]:
    rows = await conn.fetch(
        """
        SELECT c.sku, c.name, c.kind, c.scope, c.prohibited, c.skill, c.duration_minutes,
               p.unit_price, p.box_price, p.tolerance
        FROM catalogue c LEFT JOIN prices p ON p.sku = c.sku
        WHERE c.sku = ANY($1::text[])
        """,
        skus,
    )
    return {
        r["sku"]: CatalogueEntry(
            sku=r["sku"],
            name=r["name"],
            kind=OrderType(r["kind"]),
            scope=r["scope"],
            prohibited=r["prohibited"],
            skill=r["skill"],
            duration_minutes=r["duration_minutes"],
            unit_price=r["unit_price"],
            box_price=r["box_price"],
            tolerance=r["tolerance"],
        )
        for r in rows
    }


async def _standing(conn: Conn, customer_id: str) -> CustomerStanding | None:
    """R5.3.3 the customer's credit; None for a customer never seen before."""
    row = await conn.fetchrow(
        "SELECT status, credit_score FROM customers WHERE customer_id = $1", customer_id
    )
    return CustomerStanding(status=row["status"], credit_score=row["credit_score"]) if row else None


async def _recent_orders(
    conn: Conn, customer_id: str, order: PlatformOrder, thresholds: Thresholds
) -> list[PriorOrder]:
    """R5.1(4) the customer's own live orders within the duplicate window before this one."""
    rows = await conn.fetch(
        """
        SELECT o.order_id, o.created_at, o.customer_id,
               array_agg(i.sku ORDER BY i.line_no) AS skus,
               array_agg(i.quantity ORDER BY i.line_no) AS quantities
        FROM orders o JOIN order_items i ON i.order_id = o.order_id
        WHERE o.customer_id = $1 AND o.order_id <> $2
          AND o.created_at BETWEEN $3::timestamptz - $4::interval AND $3::timestamptz
          AND o.stage NOT IN ('rejected', 'cancelled')
        GROUP BY o.order_id
        """,
        customer_id,
        order.order_id,
        order.created_at,
        thresholds.duplicate_window,
    )
    return [
        PriorOrder(
            order_id=r["order_id"],
            created_at=r["created_at"],
            items=item_quantities(list(zip(r["skus"], r["quantities"], strict=True))),
            customer_id=r["customer_id"],
        )
        for r in rows
    ]


class Review:
    def __init__(self, pool: asyncpg.Pool, thresholds: Thresholds | None = None) -> None:
        self._pool = pool
        self._thresholds = thresholds or Thresholds()

    @activity.defn
    async def review_order(self, inp: ReviewInput) -> ReviewVerdict:
        """Read-only, so a retry simply reviews again."""
        async with self._pool.acquire() as conn:
            ctx = await load_context(conn, inp, self._thresholds)
        return review(inp.order, ctx)

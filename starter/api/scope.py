"""Whose an order is, from the system of record: what the permission table is checked against."""

from __future__ import annotations

import asyncpg

from schemas.order import OrderType
from schemas.people import OrderScope
from starter.failures import Exit, Failure


async def order_scope(pool: asyncpg.Pool, order_id: str) -> OrderScope:
    """The last person assigned stays the order's assignee after their claim is released, so
    they answer its feedback and reminders after delivery too."""
    row = await pool.fetchrow(
        """
        SELECT o.order_type, o.region, a.staff_id, a.department,
            array(SELECT code FROM departments d
                  WHERE d.order_type = o.order_type AND d.region = o.region) AS candidates
        FROM orders o
        LEFT JOIN LATERAL (
            SELECT staff_id, department FROM assignments
            WHERE order_id = o.order_id ORDER BY assignment_id DESC LIMIT 1
        ) a ON true
        WHERE o.order_id = $1
        """,
        order_id,
    )
    if row is None:
        raise Failure(f"order {order_id} not found", Exit.NOT_FOUND)
    departments = (row["department"],) if row["department"] else tuple(row["candidates"])
    return OrderScope(
        order_id=order_id,
        order_type=OrderType(row["order_type"]),
        region=row["region"],
        assignee=row["staff_id"],
        departments=departments,
    )

"""What reaches an order after it ended: never a second run, always a person (R4.2, R6.3.2).

An order runs once, ever. While Temporal keeps its closed workflow, the workflow id refuses a
second start; once the namespace's retention has deleted it, only the system of record knows
the order was there. The gateway asks here before it starts an order, and a refund request
for an ended order becomes a refund case for the store's manager, on record, instead of a
run that would receive and confirm a finished order again.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import asyncpg

from activities.notify import Notifier, manager_of
from schemas.feedback import FeedbackState
from schemas.messages import FeedbackKind
from schemas.notices import Audience, Notification

log = logging.getLogger("orderflow.ended_orders")


async def stage_on_record(pool: asyncpg.Pool, order_id: str) -> str | None:
    """The order's stage in the system of record; None when it was never recorded."""
    value = await pool.fetchval("SELECT stage FROM orders WHERE order_id = $1", order_id)
    return None if value is None else str(value)


async def refund_case_after_close(
    pool: asyncpg.Pool,
    order_id: str,
    refund_id: str,
    *,
    partial: bool,
    amount: Decimal | None,
    reason: str,
) -> bool:
    """A refund request for an ended order: on record, with a case for the manager to answer
    on the platform. False when the order is not on record (the caller decides what then);
    a repeated push of the same request changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        store = await conn.fetchval(
            "SELECT store_code FROM orders WHERE order_id = $1 FOR UPDATE", order_id
        )
        if store is None:
            return False
        new = await conn.fetchval(
            """
            INSERT INTO refunds (order_id, refund_id, partial, amount, reason, requested_at)
            VALUES ($1, $2, $3, $4, $5, now())
            ON CONFLICT (order_id, refund_id) DO NOTHING
            RETURNING refund_id
            """,
            order_id,
            refund_id,
            partial,
            amount,
            reason,
        )
        if new is None:
            return True
        manager = await manager_of(conn, store)
        await conn.execute(
            """
            INSERT INTO feedback (order_id, case_no, kind, text, owner, state, opened_at, ref)
            SELECT $1, coalesce(max(case_no), 0) + 1, $2, $3, $4, $5, now(), $6
            FROM feedback WHERE order_id = $1
            """,
            order_id,
            FeedbackKind.REFUND.value,
            reason,
            manager,
            FeedbackState.AWAITING_RESPONSE.value,
            refund_id,
        )
    await _tell_manager(pool, order_id, store, manager, refund_id, partial, reason)
    return True


async def _tell_manager(
    pool: asyncpg.Pool,
    order_id: str,
    store: str,
    manager: str | None,
    refund_id: str,
    partial: bool,
    reason: str,
) -> None:
    """Stored before it is sent: a channel that fails now leaves the row for a retry."""
    notice = Notification(
        key=f"refund-after-close:{order_id}:{refund_id}",
        order_id=order_id,
        audience=Audience.MANAGER,
        recipient=manager,
        store_code=store,
        subject=f"Refund request on ended order {order_id}",
        text=(
            f"{'Partial' if partial else 'Full'} refund {refund_id}: {reason}. The order has "
            "ended: answer it on the platform; the case is on record."
        ),
    )
    try:
        await Notifier(pool).notify(notice)
    except Exception:
        log.exception("the manager of %s was not told of refund %s", order_id, refund_id)

"""Customer credit profiles (R5.3.3).

Each outcome moves the score once per (order, kind). The status follows the score: below
`ORDERFLOW_CREDIT_RESTRICTED_BELOW` (60) restricted, below `ORDERFLOW_CREDIT_BANNED_BELOW` (30)
banned. A ban is lifted only by a person, never by good orders that follow. Scores start at
`ORDERFLOW_CREDIT_INITIAL` (100) and never exceed `ORDERFLOW_CREDIT_MAX` (100).

Score changes (environment variable `ORDERFLOW_CREDIT_<KIND>`, default): fraud -50,
no_show -20, cancellation -5, complaint -3, completed +2. All of them are
`infra.settings.CreditSettings`.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity

from infra.database import Conn
from infra.settings import settings
from schemas.records import CreditEvent


def status_for(score: int, current: str = "good") -> str:
    rules = settings().credit
    if current == "banned" or score < rules.banned_below:
        return "banned"
    if score < rules.restricted_below:
        return "restricted"
    return "good"


class Credit:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_credit_event(self, inp: CreditEvent) -> None:
        """Count the outcome once against the customer the order's record names now.

        An order in flight carries the customer id it was recorded with; when the profiles were
        re-keyed since (migration 0010), the record has the new one (R5.3.3)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await count(conn, inp)


async def count(conn: Conn, inp: CreditEvent) -> None:
    """`Credit.record_credit_event` in the caller's transaction."""
    rules = settings().credit
    delta = rules.deltas[inp.kind]
    recorded = await conn.fetchval(
        "SELECT customer_id FROM orders WHERE order_id = $1", inp.order_id
    )
    customer_id: str = recorded or inp.customer_id
    await conn.execute(
        """
        INSERT INTO customers (customer_id, credit_score) VALUES ($1, $2)
        ON CONFLICT (customer_id) DO NOTHING
        """,
        customer_id,
        rules.initial,
    )
    customer = await conn.fetchrow(
        "SELECT credit_score, status FROM customers WHERE customer_id = $1 FOR UPDATE",
        customer_id,
    )
    assert customer is not None
    score = max(0, min(rules.maximum, customer["credit_score"] + delta))
    new = await conn.fetchval(
        """
        INSERT INTO credit_events (order_id, kind, customer_id, delta, score_after, note)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (order_id, kind) DO NOTHING
        RETURNING order_id
        """,
        inp.order_id,
        inp.kind.value,
        customer_id,
        score - customer["credit_score"],
        score,
        inp.note,
    )
    if new is None:
        return  # this outcome already counted
    await conn.execute(
        """
        UPDATE customers SET credit_score = $2, status = $3, updated_at = now()
        WHERE customer_id = $1
        """,
        customer_id,
        score,
        status_for(score, customer["status"]),
    )

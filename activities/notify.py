"""Notifications to staff, managers, customers and the platform liaison.

Every notification is stored in the notifications table under its key, then delivered through
the channel (`activities.channels`) at most once per key: the row is locked while it is sent
and marked sent in the same transaction. A failed delivery is recorded (attempts, last error)
and raised, so Temporal retries it.

A notification without a recipient goes to whoever holds the role for the order: staff, the
order's active assignee; supervisor and manager, the manager of the department serving the
store; customer, the order's customer; platform liaison, `ORDERFLOW_PLATFORM_LIAISON` (R6.2).
"""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.channels import Channel, channel_from_env
from infra.database import Conn
from infra.settings import settings
from schemas.records import Audience, Notification


class Notifier:
    def __init__(self, pool: asyncpg.Pool, channel: Channel | None = None) -> None:
        self._pool = pool
        self._channel = channel or channel_from_env()

    @activity.defn
    async def notify(self, inp: Notification) -> None:
        """Deliver once per `key`."""
        async with self._pool.acquire() as conn:
            recipient = inp.recipient or await _holder(conn, inp)
            await conn.execute(
                """
                INSERT INTO notifications (key, order_id, audience, recipient, store_code,
                                           subject, text, channel)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (key) DO NOTHING
                """,
                inp.key,
                inp.order_id,
                inp.audience.value,
                recipient,
                inp.store_code,
                inp.subject,
                inp.text,
                self._channel.name,
            )
            failure: Exception | None = None
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT sent_at, recipient FROM notifications WHERE key = $1 FOR UPDATE",
                    inp.key,
                )
                assert row is not None
                if row["sent_at"] is not None:
                    return
                try:
                    await self._channel.send(inp, row["recipient"])
                except Exception as exc:
                    failure = exc
                else:
                    await conn.execute(
                        """
                        UPDATE notifications
                        SET sent_at = now(), attempts = attempts + 1, channel = $2,
                            last_error = NULL
                        WHERE key = $1
                        """,
                        inp.key,
                        self._channel.name,
                    )
            if failure is not None:
                await conn.execute(
                    """
                    UPDATE notifications SET attempts = attempts + 1, last_error = $2
                    WHERE key = $1
                    """,
                    inp.key,
                    f"{type(failure).__name__}: {failure}"[:1000],
                )
                raise failure


async def _holder(conn: Conn, n: Notification) -> str | None:
    if n.audience is Audience.STAFF:
        value = await conn.fetchval(
            "SELECT staff_id FROM assignments WHERE order_id = $1 AND active", n.order_id
        )
    elif n.audience in (Audience.SUPERVISOR, Audience.MANAGER):
        value = await manager_of(conn, n.store_code)
    elif n.audience is Audience.CUSTOMER:
        value = await conn.fetchval(
            "SELECT customer_id FROM orders WHERE order_id = $1", n.order_id
        )
    else:
        value = settings().notify.platform_liaison
    return str(value) if value is not None else None


async def manager_of(conn: Conn, store_code: str) -> str | None:
    """The manager of the department serving the store."""
    value = await conn.fetchval(
        """
        SELECT d.manager_id FROM departments d JOIN stores s
          ON s.code = $1 AND d.order_type = s.order_type AND d.region = s.region
        WHERE d.manager_id IS NOT NULL ORDER BY d.code LIMIT 1
        """,
        store_code,
    )
    return None if value is None else str(value)

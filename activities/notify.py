"""Notifications to staff, managers, customers and the platform liaison: the outbox's writer.

A notification is written once per key, in one transaction with its deliveries (one per
route, `activities.notify_routes`); the dispatcher (`workers/dispatcher.py`) sends them. The
activity never calls a robot, so a robot that is down or throttled holds up no order.

A notification without a recipient goes to whoever holds the role for the order: staff, the
order's active assignee; supervisor and manager, the manager of the department serving the
store; customer, the order's customer; platform liaison, `ORDERFLOW_PLATFORM_LIAISON` (R6.2).
"""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.notice_texts import Heading, render
from activities.notify_routes import Route, reach
from infra.database import Conn
from infra.settings import settings
from schemas.notices import Audience, Notification

WAKE = "orderflow_outbox"
"""The channel the dispatcher LISTENs on: a delivery written wakes it at once."""
INBOX, OUTBOX = "inbox", "outbox"
"""A notification's channel: only its recipient's inbox, or the outbox's deliveries too."""


class Notifier:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def notify(self, inp: Notification) -> None:
        """Written once per `key`; a retry finds it written and does nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            await write(conn, inp)


def addressed(notice: Notification, recipient: str, **facts: str) -> Notification:
    """A notice a claim carries, to the person it claimed, with the facts only the claim knows."""
    return notice.model_copy(update={"recipient": recipient, "facts": {**notice.facts, **facts}})


async def write_to(conn: Conn, notice: Notification | None, recipient: str, **facts: str) -> None:
    """A claim's notice, in the claim's transaction: the claim and its notice are written
    together or not at all (a retry finds both)."""
    if notice is not None:
        await write(conn, addressed(notice, recipient, **facts))


async def write(conn: Conn, inp: Notification) -> bool:
    """The inbox entry and its deliveries; False when the key was written before."""
    earlier = await conn.fetchrow(
        "SELECT channel, sent_at, recipient FROM notifications WHERE key = $1 FOR UPDATE", inp.key
    )
    if earlier is not None:
        if earlier["channel"] in (INBOX, OUTBOX) or earlier["sent_at"] is not None:
            return False
        # Written before the outbox and never sent: its retry hands it to the dispatcher.
        routes = await reach(conn, inp.audience, earlier["recipient"], inp.store_code)
        await conn.execute(
            """
            UPDATE notifications SET channel = $2,
                   sent_at = CASE WHEN $2 = 'inbox' THEN now() END
            WHERE key = $1
            """,
            inp.key,
            OUTBOX if routes.routes else INBOX,
        )
        await _deliver(conn, inp.key, routes.routes)
        return True
    recipient = inp.recipient or await _holder(conn, inp)
    routes = await reach(conn, inp.audience, recipient, inp.store_code)
    subject, text = inp.subject, inp.text
    if inp.topic is not None:
        heading = await _heading(conn, inp)
        subject, text = render(inp.topic, routes.language, inp.facts, heading, inp.due_at)
    written = await conn.fetchval(
        """
        INSERT INTO notifications (key, order_id, audience, recipient, store_code, subject,
                                   text, channel, topic, due_at, language, sent_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                CASE WHEN $8 = 'inbox' THEN now() END)  -- the inbox alone: delivered now
        ON CONFLICT (key) DO NOTHING RETURNING key
        """,
        inp.key,
        inp.order_id,
        inp.audience.value,
        recipient,
        inp.store_code,
        subject,
        text,
        OUTBOX if routes.routes else INBOX,
        inp.topic.value if inp.topic else None,
        inp.due_at,
        routes.language.value,
    )
    if written is None:
        return False
    await _deliver(conn, inp.key, routes.routes)
    return True


async def _deliver(conn: Conn, key: str, routes: list[Route]) -> None:
    """One delivery per route, and the dispatcher woken when the transaction commits."""
    if not routes:
        return
    await conn.executemany(
        """
        INSERT INTO deliveries (notification_key, route, kind, channel_key, mention, mobile)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
        """,
        [(key, r.name, r.kind, r.channel_key, r.mention, r.mobile) for r in routes],
    )
    await conn.execute(f"NOTIFY {WAKE}")


async def _heading(conn: Conn, n: Notification) -> Heading:
    row = await conn.fetchrow(
        """
        SELECT (SELECT day_seq FROM orders WHERE order_id = $1) AS day_seq,
               (SELECT name FROM stores WHERE code = $2) AS store_name
        """,
        n.order_id,
        n.store_code,
    )
    assert row is not None
    return Heading(n.order_id, row["day_seq"], row["store_name"])


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

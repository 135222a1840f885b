"""A person's inbox and "my work", from the system of record.

The staff API's database role reads the inbox through `staff_inbox` (migration 0016), which
leaves the customers' notifications out, and may only set a notification's read mark.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from schemas.order import Stage
from schemas.policy import Clause
from schemas.status import DeadlineState
from schemas.work import InboxEntry, ManagerQueues, WorkItem
from starter.order_reads import IN_DEPARTMENTS, TERMINAL, Reader, jsonb_value

NEXT_ACTION: dict[Clause, str] = {
    Clause.CONFIRM: "confirm",
    Clause.PREPARE: "ready",
    Clause.DELIVER: "delivered",
    Clause.RECONFIRM_VISIT: "reconfirm",
    Clause.EXECUTE: "delivered",
    Clause.FEEDBACK_RESPONSE: "feedback respond",
    Clause.FEEDBACK_RESOLUTION: "feedback resolve",
    Clause.REMINDER_REPLY: "reply-reminder",
    Clause.REFUND_DECISION: "refund",
    Clause.ANOMALY_DECISION: "anomaly decide",
}
"""The orderctl command that meets each clause a person meets; the others are the system's."""

BY_STAGE: dict[Stage, str] = {
    Stage.ASSIGNED: "confirm",
    Stage.CONFIRMED: "ready",
    Stage.IN_PROGRESS: "ready",
    Stage.DELIVERING: "delivered",
    Stage.DELIVERED: "rate",
    Stage.ON_HOLD: "anomaly decide",
}
_OPEN = (DeadlineState.OPEN.value, DeadlineState.BREACHED.value)


async def inbox(
    conn: Reader,
    staff_id: str,
    *,
    unread: bool = False,
    after: datetime | None = None,
    limit: int = 50,
) -> list[InboxEntry]:
    """Newest first; `after`: only what came in since then (for following)."""
    rows = await conn.fetch(
        """
        SELECT key, order_id, topic, subject, text, due_at, created_at, read_at,
               deliveries AS delivered
        FROM staff_inbox
        WHERE recipient = $1 AND (NOT $2 OR read_at IS NULL)
          AND ($3::timestamptz IS NULL OR created_at > $3)
        ORDER BY created_at DESC, key DESC LIMIT $4
        """,
        staff_id,
        unread,
        after,
        limit,
    )
    return [InboxEntry(**dict(r)) for r in rows]


async def mark_read(conn: Reader, staff_id: str, keys: list[str] | None) -> int:
    """The person's own notifications only; None: all of them."""
    done = await conn.fetch(
        """
        UPDATE notifications SET read_at = now()
        WHERE recipient = $1 AND audience <> 'customer' AND read_at IS NULL
          AND ($2::text[] IS NULL OR key = ANY($2::text[]))
        RETURNING key
        """,
        staff_id,
        keys,
    )
    return len(done)


_MY_WORK = """
SELECT o.order_id, o.day_seq, o.store_code, s.name AS store_name, o.order_type, o.stage,
       o.assignee, o.next_due_at, o.view -> 'deadlines' AS deadlines
FROM orders o LEFT JOIN stores s ON s.code = o.store_code
WHERE o.stage <> ALL($1::text[])
  AND (o.assignee = $2 OR ($3::text[] IS NOT NULL AND {IN_DEPARTMENTS}))
ORDER BY o.next_due_at NULLS LAST, o.received_at
LIMIT $4
""".replace("{IN_DEPARTMENTS}", IN_DEPARTMENTS.format(departments="$3"))


async def my_work(
    conn: Reader,
    staff_id: str,
    departments: list[str] | None,
    *,
    now: datetime | None = None,
    limit: int = 200,
) -> list[WorkItem]:
    """Open orders assigned to the person, or in their departments (a manager), soonest due
    first."""
    now = now or datetime.now(UTC)
    rows = await conn.fetch(_MY_WORK, TERMINAL, staff_id, departments, limit)
    items = [_item(r, now) for r in rows]
    return sorted(items, key=lambda i: (i.due_at is None, i.due_at or now))


def _item(r: asyncpg.Record, now: datetime) -> WorkItem:
    row = dict(r)
    soonest = _soonest_open(jsonb_value(row.pop("deadlines")) or [])
    stage = Stage(row["stage"])
    clause = Clause(soonest["clause"]) if soonest else None
    due_at = datetime.fromisoformat(soonest["due_at"]) if soonest else row["next_due_at"]
    action = NEXT_ACTION.get(clause) if clause else None
    return WorkItem(
        order_id=row["order_id"],
        day_seq=row["day_seq"],
        store_code=row["store_code"],
        store_name=row["store_name"],
        order_type=row["order_type"],
        stage=stage,
        assignee=row["assignee"],
        clause=clause,
        due_at=due_at,
        seconds_left=(due_at - now).total_seconds() if due_at else None,
        next_action=action or BY_STAGE.get(stage, "wait: the system's step"),
    )


def _soonest_open(deadlines: list[dict[str, str]]) -> dict[str, str] | None:
    open_ = [d for d in deadlines if d.get("state") in _OPEN]
    return min(open_, key=lambda d: datetime.fromisoformat(d["due_at"]), default=None)


async def manager_queues(conn: Reader, departments: list[str]) -> ManagerQueues:
    """R5.2.2 anomalies and R6.1 refunds waiting on a decision in the manager's departments."""
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM anomalies a JOIN orders o USING (order_id)
           WHERE a.closed_at IS NULL AND {IN}) AS anomalies,
          (SELECT count(*) FROM refunds r JOIN orders o USING (order_id)
           WHERE r.state = 'awaiting_decision' AND {IN}) AS refunds
        """.replace("{IN}", IN_DEPARTMENTS.format(departments="$1")),
        departments,
    )
    assert row is not None
    return ManagerQueues(anomalies=row["anomalies"], refunds=row["refunds"])

"""People's reads of orders, from the system of record (R1.3, R4.1.3).

Listings, an order's detail and "my work" read PostgreSQL: each order's row keeps the status its
workflow last wrote (activities.orders), and order_events is its timeline. Reading here costs the
workflows nothing and sees every order, running or long closed. Who may read what is decided by
the caller; these functions only read.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg

from activities.policy import current_policy
from infra.database import Conn
from schemas.contract import Event, order_workflow_id
from schemas.order import DeliveryMode, OrderType, Stage
from schemas.policy import Policy
from schemas.reads import OpenAnomaly, OrderFilter, OrderRow, OrderScope
from schemas.sheet import OrderSheet, SheetLine, Told
from schemas.status import OrderStatus
from schemas.timeline import TimelineEntry

TERMINAL = [s.value for s in Stage if s.terminal]

# A pool, or a connection the caller holds (in its transaction, say).
Reader: TypeAlias = "asyncpg.Pool[asyncpg.Record] | Conn"


def jsonb_value(value: Any) -> Any:
    """jsonb as the pool's codec gives it (infra.database), or as text without one."""
    return json.loads(value) if isinstance(value, str) else value


async def order_view(conn: Reader, order_id: str) -> OrderStatus | None:
    """The order as its workflow last recorded it, with the timeline from the event log and
    the stage from the row (both follow the log, which may be a step ahead of the view)."""
    row = await conn.fetchrow(
        """
        SELECT order_id, stage, order_type, store_code, region, delivery_mode, view
        FROM orders WHERE order_id = $1
        """,
        order_id,
    )
    if row is None:
        return None
    events = await conn.fetch(
        """
        SELECT seq, at, event, stage, actor, details FROM order_events
        WHERE order_id = $1 ORDER BY seq
        """,
        order_id,
    )
    timeline = [
        TimelineEntry(
            seq=e["seq"],
            at=e["at"],
            event=e["event"],
            stage=Stage(e["stage"]),
            actor=e["actor"],
            details=jsonb_value(e["details"]) or {},
        )
        for e in events
    ]
    stage = Stage(row["stage"])
    view = jsonb_value(row["view"])
    if view is None:
        return _from_columns(row, stage, timeline)
    return OrderStatus.model_validate(view | {"stage": stage, "timeline": timeline})


def _from_columns(row: Any, stage: Stage, timeline: list[TimelineEntry]) -> OrderStatus:
    """An order recorded before its row kept the view: what the columns and the log know."""
    return OrderStatus(
        order_id=row["order_id"],
        stage=stage,
        order_type=OrderType(row["order_type"]),
        store_code=row["store_code"],
        region=row["region"],
        delivery_mode=DeliveryMode(row["delivery_mode"]),
        assignee=None,
        booking=None,
        promise=None,
        awaiting_reconfirmation=False,
        ready=False,
        visit_reconfirmed=False,
        delivered=stage in (Stage.DELIVERED, Stage.CLOSED),
        deadlines=[],
        breaches=[],
        anomalies=[],
        feedback=[],
        refunds=[],
        reminders=[],
        rating=None,
        timeline=timeline,
    )


# In some departments ({departments}, a text[]): the department of the order's last
# assignment, or before anyone is assigned, any department of its type and region (R2.3.1).
IN_DEPARTMENTS = """
    COALESCE(
        (SELECT a.department = ANY({departments}::text[]) FROM assignments a
         WHERE a.order_id = o.order_id ORDER BY a.assignment_id DESC LIMIT 1),
        EXISTS (SELECT 1 FROM departments d
                WHERE d.code = ANY({departments}::text[])
                  AND d.order_type = o.order_type AND d.region = o.region))
"""

# breached: R4.1.1 a deadline missed, by the log (every order) or the view (a breach the log
# has not caught up with). anomaly_open: R5.2 an anomaly undecided, or the order held for one.
# closed_at: the first event at the terminal stage, the one that ended the order.
_LISTING = """
SELECT * FROM (
    SELECT o.order_id, o.stage, o.order_type, o.store_code, o.region, o.assignee,
           o.received_at AS started_at, o.next_due_at,
           (jsonb_array_length(COALESCE(o.view -> 'breaches', '[]'::jsonb)) > 0
            OR EXISTS (SELECT 1 FROM order_events e
                       WHERE e.order_id = o.order_id AND e.event = $1)) AS breached,
           (o.stage = $2
            OR EXISTS (SELECT 1 FROM anomalies a
                       WHERE a.order_id = o.order_id AND a.closed_at IS NULL)) AS anomaly_open,
           CASE WHEN o.stage = ANY($3::text[]) THEN
               (SELECT min(e.at) FROM order_events e
                WHERE e.order_id = o.order_id AND e.stage = o.stage)
           END AS closed_at
    FROM orders o
    WHERE ($4::text IS NULL OR o.stage = $4)
      AND ($5::text IS NULL OR o.store_code = $5)
      AND ($6::text IS NULL OR o.order_type = $6)
      AND ($7::text IS NULL OR o.region = $7)
      AND ($8::text IS NULL OR o.assignee = $8)
      AND (NOT $9::boolean OR o.stage <> ALL($3::text[]))
      AND ($13::text[] IS NULL OR {IN_DEPARTMENTS})
) listed
WHERE ($10::boolean IS NULL OR breached = $10)
  AND ($11::boolean IS NULL OR anomaly_open = $11)
ORDER BY started_at DESC, order_id DESC
LIMIT $12
""".replace("{IN_DEPARTMENTS}", IN_DEPARTMENTS.format(departments="$13"))


async def list_orders(conn: Reader, f: OrderFilter, limit: int) -> list[OrderRow]:
    """Orders matching every filter given, newest first, in the CLI listing's terms."""
    rows = await conn.fetch(
        _LISTING,
        Event.DEADLINE_BREACHED.value,
        Stage.ON_HOLD.value,
        TERMINAL,
        f.stage.value if f.stage else None,
        f.store_code,
        f.order_type.value if f.order_type else None,
        f.region,
        f.assignee,
        f.open_only,
        f.breached,
        f.anomaly_open,
        limit,
        f.departments,
    )
    return [
        OrderRow(
            order_id=r["order_id"],
            workflow_id=order_workflow_id(r["order_id"]),
            status="completed" if r["stage"] in TERMINAL else "running",
            stage=Stage(r["stage"]),
            order_type=OrderType(r["order_type"]),
            store_code=r["store_code"],
            region=r["region"],
            assignee=r["assignee"],
            breached=r["breached"],
            anomaly_open=r["anomaly_open"],
            started_at=r["started_at"],
            closed_at=r["closed_at"],
            next_due_at=r["next_due_at"],
        )
        for r in rows
    ]


async def open_anomalies(
    conn: Reader,
    store_code: str | None,
    limit: int,
    policy: Policy | None = None,
    *,
    reach: OrderFilter | None = None,
) -> list[OpenAnomaly]:
    """R5.2.2 the anomalies waiting for a manager, oldest first; `reach` keeps to the orders
    of an assignee, a region or some departments (the other fields are not read).

    The decision is due by the anomaly_decision clause of the order's policy snapshot, which
    only its child workflow holds; `policy` (the current one by default) stands in for it.
    """
    terms = policy or current_policy()
    rows = await conn.fetch(
        """
        SELECT a.order_id, a.anomaly_id, a.kind, a.detail, a.opened_at,
               o.store_code, o.order_type, o.assignee,
               (SELECT x ->> 'paused_stage'
                FROM jsonb_array_elements(COALESCE(o.view -> 'anomalies', '[]'::jsonb)) x
                WHERE x ->> 'anomaly_id' = a.anomaly_id) AS paused_stage
        FROM anomalies a JOIN orders o ON o.order_id = a.order_id
        WHERE a.closed_at IS NULL AND ($1::text IS NULL OR o.store_code = $1)
          AND ($3::text IS NULL OR o.assignee = $3)
          AND ($4::text IS NULL OR o.region = $4)
          AND ($5::text[] IS NULL OR {IN_DEPARTMENTS})
        ORDER BY a.opened_at, a.anomaly_id
        LIMIT $2
        """.replace("{IN_DEPARTMENTS}", IN_DEPARTMENTS.format(departments="$5")),
        store_code,
        limit,
        reach.assignee if reach else None,
        reach.region if reach else None,
        reach.departments if reach else None,
    )
    return [
        OpenAnomaly(
            order_id=r["order_id"],
            anomaly_id=r["anomaly_id"],
            kind=r["kind"],
            state="open",
            detail=r["detail"],
            opened_at=r["opened_at"],
            due_at=r["opened_at"]
            + terms.for_type(OrderType(r["order_type"])).deadlines.anomaly_decision.soft,
            paused_stage=Stage(r["paused_stage"]) if r["paused_stage"] else None,
            store_code=r["store_code"],
            assignee=r["assignee"],
        )
        for r in rows
    ]


async def order_scope(conn: Reader, order_id: str) -> OrderScope | None:
    """What a permission check needs: where the order belongs and who holds it (R2.3).

    The active assignment is the truth about who holds it (the view may be a step behind);
    unassigned, it belongs to every department that could take it: its type and region.
    """
    row = await conn.fetchrow(
        """
        SELECT o.order_id, o.store_code, o.order_type, o.region, o.stage,
               COALESCE(a.staff_id, o.assignee) AS assignee, a.department
        FROM orders o LEFT JOIN assignments a ON a.order_id = o.order_id AND a.active
        WHERE o.order_id = $1
        """,
        order_id,
    )
    if row is None:
        return None
    if row["department"] is not None:
        departments = [row["department"]]
    else:
        departments = [
            d["code"]
            for d in await conn.fetch(
                "SELECT code FROM departments WHERE order_type = $1 AND region = $2 ORDER BY code",
                row["order_type"],
                row["region"],
            )
        ]
    return OrderScope(
        order_id=row["order_id"],
        store_code=row["store_code"],
        order_type=OrderType(row["order_type"]),
        region=row["region"],
        stage=Stage(row["stage"]),
        assignee=row["assignee"],
        departments=departments,
    )


async def order_sheet(conn: Reader, order_id: str) -> OrderSheet | None:
    """The order as the people working on it need it, without the contact number."""
    row = await conn.fetchrow(
        """
        SELECT o.order_id, o.view_id, o.day_seq, o.store_code, s.name AS store_name,
               o.order_type, o.delivery_mode, o.stage, o.remarks AS caution,
               o.customer_address AS address, o.expected_at, o.total,
               o.view -> 'promise' ->> 'delivery_at' AS promised_at
        FROM orders o LEFT JOIN stores s ON s.code = o.store_code
        WHERE o.order_id = $1
        """,
        order_id,
    )
    if row is None:
        return None
    lines = await conn.fetch(
        """
        SELECT name, spec, quantity, box_num AS boxes, unit_price FROM order_items
        WHERE order_id = $1 ORDER BY line_no
        """,
        order_id,
    )
    told = await conn.fetch(
        """
        SELECT audience, recipient, subject, text, created_at, delivered FROM order_told
        WHERE order_id = $1 ORDER BY created_at
        """,
        order_id,
    )
    return OrderSheet(
        **dict(row),
        items=[SheetLine(**dict(line)) for line in lines],
        told=[Told(**dict(t)) for t in told],
    )


async def reveal_contact(conn: Reader, order_id: str, staff_id: str) -> str:
    """The customer's contact number, the reveal recorded first: no record, no number."""
    await conn.execute(
        "INSERT INTO contact_reveals (order_id, staff_id) VALUES ($1, $2)", order_id, staff_id
    )
    phone: str = await conn.fetchval(
        "SELECT customer_phone FROM orders WHERE order_id = $1", order_id
    )
    return phone

"""The order in the system of record and its append-only event log (R1.3, R2.1.1, R4.1.3)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import credit
from activities.assignment import release_claim
from activities.rules import (
    box_total,
    customer_id_for,
    delivery_mode,
    discount_total,
    items_total,
)
from infra.database import Conn
from infra.settings import settings
from schemas.anomaly import AnomalyRecord
from schemas.feedback import FeedbackCase
from schemas.order import OrderType, PlatformOrder
from schemas.records import (
    OrderRecord,
    OrderSummary,
    RecordEvent,
    RecordEvents,
    RecordFeedback,
    RecordFence,
    RecordOrder,
    RecordRefund,
    RecordView,
    TimelineEntry,
)
from schemas.status import DeadlineState, OrderStatus

OPEN_DEADLINES = frozenset(
    {DeadlineState.OPEN, DeadlineState.BREACHED, DeadlineState.HARD_BREACHED}
)


class OrderRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_order(self, inp: RecordOrder) -> OrderRecord:
        """Store the order and its items; classify it (type, region, delivery mode, skills).

        Recording again (a retry, or the order after a customer change) rewrites the order's
        data and items but keeps its stage, receipt time and source.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            return await _write_order(conn, inp)

    @activity.defn
    async def record_event(self, inp: RecordEvent) -> None:
        """Append one event and move the order's current stage; (order_id, seq) is the key.

        The stage only follows a higher seq, so a late retry of an old event cannot move it back;
        the view and the order's data only follow a higher view version, so neither can they
        (R1.3: what people read is what the workflow last knew).
        """
        e = inp.entry
        async with self._pool.acquire() as conn, conn.transaction():
            if inp.view is not None:
                await _write_view(conn, inp.order_id, inp.view_version, inp.view)
            if inp.order is not None:
                await _rewrite_order(conn, inp.order, inp.view_version, e.at)
            await _append(conn, inp.order_id, e)

    @activity.defn
    async def record_events(self, inp: RecordEvents) -> None:
        """`record_event` for each line of a burst, the status after them and what the order's
        ending needs on record (the credit for an order done, the assignee's release, the
        summary) in one transaction: the record never shows half a burst, and each part is
        written once however often the burst is retried."""
        fence = inp.fence
        async with self._pool.acquire() as conn, conn.transaction():
            if fence is not None and not await _supersede(conn, inp.order_id, fence):
                activity.logger.info("a burst of an older workflow task: nothing written")
                return
            await _write_view(conn, inp.order_id, inp.view_version, inp.view, fence)
            if inp.order is not None and inp.entries:  # a change always logs its line
                await _rewrite_order(conn, inp.order, inp.view_version, inp.entries[0].at)
            for entry in inp.entries:
                await _append(conn, inp.order_id, entry, fence)
            if inp.credit is not None:
                await credit.count(conn, inp.credit)
            if inp.release is not None:
                await release_claim(conn, inp.order_id, inp.release.staff_id, "released")
            if inp.summary is not None:
                await _write_summary(conn, inp.summary)

    @activity.defn
    async def record_view(self, inp: RecordView) -> None:
        """The view alone, when a deadline that waits for a person opens (R4.1.1): "my work"
        sorts by it before the next event would bring it."""
        async with self._pool.acquire() as conn:
            await _write_view(conn, inp.order_id, inp.version, inp.view)

    @activity.defn
    async def record_feedback(self, inp: RecordFeedback) -> None:
        """R4.2 one row per case, replaced by each newer state."""
        async with self._pool.acquire() as conn:
            await _write_case(conn, inp.order_id, inp.case, inp.satisfied)

    @activity.defn
    async def record_refund(self, inp: RecordRefund) -> None:
        """R4.3.1 a refund request and the money given back, with its feedback case (R4.2.1).

        The first decision stands: a retried or late write of the open request never turns a
        decided one back, and a decided one is not decided again.
        """
        refund = inp.refund
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO refunds (order_id, refund_id, partial, amount, reason, state,
                                     refunded, decided_by, requested_at, decided_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (order_id, refund_id) DO UPDATE SET
                    state = EXCLUDED.state,
                    refunded = EXCLUDED.refunded,
                    decided_by = EXCLUDED.decided_by,
                    decided_at = EXCLUDED.decided_at,
                    updated_at = now()
                WHERE refunds.state = 'awaiting_decision'
                  AND EXCLUDED.state <> 'awaiting_decision'
                """,
                inp.order_id,
                refund.refund_id,
                refund.partial,
                refund.amount,
                refund.reason,
                refund.state.value,
                refund.refunded or 0,
                refund.decided_by,
                refund.requested_at,
                refund.decided_at,
            )
            if inp.case is not None:
                await _write_case(conn, inp.order_id, inp.case, None)

    @activity.defn
    async def record_summary(self, inp: OrderSummary) -> None:
        """R3.3.3 store the post-execution summary."""
        async with self._pool.acquire() as conn:
            await _write_summary(conn, inp)

    @activity.defn
    async def record_anomaly(self, inp: AnomalyRecord) -> None:
        """R5.2.4 open or close an anomaly row, keyed by anomaly_id.

        Without an outcome the row is opened; with one it is closed. A closed row stays closed
        with its first outcome, so a retried open or close changes nothing.
        """
        outcome = inp.outcome
        await self._pool.execute(
            """
            INSERT INTO anomalies (anomaly_id, order_id, kind, detail, opened_at, decision,
                                   outcome, closed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (anomaly_id) DO UPDATE SET
                decision = COALESCE(anomalies.decision, EXCLUDED.decision),
                outcome = COALESCE(anomalies.outcome, EXCLUDED.outcome),
                closed_at = COALESCE(anomalies.closed_at, EXCLUDED.closed_at),
                updated_at = now()
            WHERE anomalies.closed_at IS NULL AND EXCLUDED.closed_at IS NOT NULL
            """,
            inp.anomaly_id,
            inp.order_id,
            inp.kind.value,
            inp.detail,
            inp.opened_at,
            outcome.decision.value if outcome else None,
            outcome.model_dump(mode="json") if outcome else None,
            outcome.decided_at if outcome else None,
        )


async def _store_terms(conn: Conn, store_code: str) -> dict[str, Any]:
    """The store's own policy terms, set by an admin; the order keeps them as it starts."""
    found = await conn.fetchval(
        "SELECT terms FROM store_policies WHERE store_code = $1", store_code
    )
    if isinstance(found, str):  # a pool without the jsonb codec
        found = json.loads(found)
    return dict(found) if found else {}


async def _write_order(conn: Conn, inp: RecordOrder) -> OrderRecord:
    """Classify the order (type, region, delivery mode, skills) and write its row and items."""
    order = inp.order
    store = await _store_of(conn, order.store_code)
    order_type = OrderType(store["order_type"])
    record = OrderRecord(
        order_type=order_type,
        region=store["region"],
        delivery_mode=delivery_mode(order, order_type, store["self_delivery"]),
        customer_id=customer_id_for(order.customer.phone, settings().business.customer_key),
        skills=await _skills_called_for(conn, order, order_type),
        store_terms=await _store_terms(conn, order.store_code),
    )
    await _upsert_customer(conn, order, record.customer_id)
    await _upsert_order(conn, inp, record)
    await _replace_items(conn, order)
    return record


async def _rewrite_order(conn: Conn, order: PlatformOrder, version: int, at: datetime) -> None:
    """R1.3 the order's data after a customer change, a corrected phone or address or an
    adjusted price, as record_order writes it; the stage, receipt time and source stay.

    Only a newer version than the one written last rewrites it: two changes recorded out of
    order leave the later. An order not on record yet (it always is, by now) is left alone.
    """
    newer = await conn.fetchval(
        """
        UPDATE orders SET data_version = $2
        WHERE order_id = $1 AND data_version < $2
        RETURNING order_id
        """,
        order.order_id,
        version,
    )
    if newer is not None:
        # received_at and source only fill a new row, and the row exists.
        await _write_order(conn, RecordOrder(order=order, received_at=at, source=""))


async def _append(
    conn: Conn, order_id: str, e: TimelineEntry, fence: RecordFence | None = None
) -> None:
    """One line of the event log, and the order's stage when the line is its newest."""
    inserted = await conn.fetchval(
        """
        INSERT INTO order_events (order_id, seq, at, event, stage, actor, details, task)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (order_id, seq) DO NOTHING
        RETURNING seq
        """,
        order_id,
        e.seq,
        e.at,
        e.event,
        e.stage.value,
        e.actor,
        e.details,
        fence.task if fence else 0,
    )
    if inserted is not None:
        await conn.execute(
            """
            UPDATE orders SET stage = $2, stage_seq = $3, updated_at = now()
            WHERE order_id = $1 AND stage_seq < $3
            """,
            order_id,
            e.stage.value,
            e.seq,
        )


async def _supersede(conn: Conn, order_id: str, fence: RecordFence) -> bool:
    """Whether the write is from the newest task that wrote the order's record; if so, the
    lines an older task wrote from the write's first line on are gone, and the order's stage
    is its last line's (migration 0023)."""
    newest = await conn.fetchval(
        """
        UPDATE orders SET recorded_task = $2
        WHERE order_id = $1 AND recorded_task <= $2
        RETURNING order_id
        """,
        order_id,
        fence.task,
    )
    if newest is None:
        return False
    await conn.fetchval(
        "SELECT orderflow_supersede_lines($1, $2, $3)", order_id, fence.task, fence.from_seq
    )
    return True


async def _write_view(
    conn: Conn, order_id: str, version: int, view: OrderStatus, fence: RecordFence | None = None
) -> None:
    """The workflow's status for people's reads, with what they sort and filter by in columns:
    the assignee ("my work", R2.3) and the earliest deadline still open (R4.1.1). The timeline
    is left out: order_events holds it. A fenced write is the newest task's, so it replaces a
    view of the same number an older task wrote."""
    await conn.execute(
        """
        UPDATE orders SET view = $3, view_version = $2, assignee = $4, next_due_at = $5,
                          updated_at = now()
        WHERE order_id = $1 AND (view_version < $2 OR $6 AND view_version = $2)
        """,
        order_id,
        version,
        view.model_dump(mode="json", exclude={"timeline"}) | {"timeline": []},
        view.assignee.staff_id if view.assignee else None,
        next_due(view),
        fence is not None,
    )


def next_due(view: OrderStatus) -> datetime | None:
    """The earliest due time among the deadlines not yet met or voided, missed ones too."""
    due = [d.due_at for d in view.deadlines if d.state in OPEN_DEADLINES]
    return min(due, default=None)


async def _store_of(conn: Conn, store_code: str) -> asyncpg.Record:
    store = await conn.fetchrow(
        "SELECT order_type, region, self_delivery FROM stores WHERE code = $1", store_code
    )
    if store is None:
        raise ApplicationError(
            f"store {store_code!r} is not one of ours", type="UnknownStore", non_retryable=True
        )
    return store


async def _skills_called_for(conn: Conn, order: PlatformOrder, order_type: OrderType) -> list[str]:
    """R2.3.1, R3.2.1 what the items call for, in order of appearance: a service item's skill
    (else its scope), a goods item's scope. Items not in the catalogue call for nothing."""
    skus = list(dict.fromkeys(i.sku for i in order.items))
    rows = await conn.fetch(
        "SELECT sku, scope, skill FROM catalogue WHERE sku = ANY($1::text[])", skus
    )
    by_sku = {r["sku"]: r for r in rows}
    skills: list[str] = []
    for sku in skus:
        row = by_sku.get(sku)
        if row is None:
            continue
        service = order_type is OrderType.SERVICE
        need = (row["skill"] or row["scope"]) if service else row["scope"]
        if need not in skills:
            skills.append(need)
    return skills


async def _upsert_customer(conn: Conn, order: PlatformOrder, customer_id: str) -> None:
    await conn.execute(
        """
        INSERT INTO customers (customer_id, name, phone, last_order_at, credit_score)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (customer_id) DO UPDATE SET
            name = EXCLUDED.name,
            phone = EXCLUDED.phone,
            last_order_at = GREATEST(customers.last_order_at, EXCLUDED.last_order_at),
            updated_at = now()
        """,
        customer_id,
        order.customer.name,
        order.customer.phone.split("_", 1)[0],
        order.created_at,
        settings().credit.initial,
    )


async def _upsert_order(conn: Conn, inp: RecordOrder, record: OrderRecord) -> None:
    """The order's row; a second write keeps the stage, receipt time and source."""
    order = inp.order
    await conn.execute(
        """
        INSERT INTO orders (
            order_id, view_id, store_code, order_type, region, delivery_mode,
            customer_id, customer_name, customer_phone, customer_address,
            latitude, longitude, items_total, box_total, shipping_fee, package_fee,
            discount_total, total, original_price, discounts, skills, remarks,
            expected_at, day_seq, created_at, received_at, source)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
        ON CONFLICT (order_id) DO UPDATE SET
            view_id = EXCLUDED.view_id,
            delivery_mode = EXCLUDED.delivery_mode,
            customer_id = EXCLUDED.customer_id,
            customer_name = EXCLUDED.customer_name,
            customer_phone = EXCLUDED.customer_phone,
            customer_address = EXCLUDED.customer_address,
            latitude = EXCLUDED.latitude,
            longitude = EXCLUDED.longitude,
            items_total = EXCLUDED.items_total,
            box_total = EXCLUDED.box_total,
            shipping_fee = EXCLUDED.shipping_fee,
            package_fee = EXCLUDED.package_fee,
            discount_total = EXCLUDED.discount_total,
            total = EXCLUDED.total,
            original_price = EXCLUDED.original_price,
            discounts = EXCLUDED.discounts,
            skills = EXCLUDED.skills,
            remarks = EXCLUDED.remarks,
            expected_at = EXCLUDED.expected_at,
            day_seq = EXCLUDED.day_seq,
            updated_at = now()
        """,
        order.order_id,
        order.view_id,
        order.store_code,
        record.order_type.value,
        record.region,
        record.delivery_mode.value,
        record.customer_id,
        order.customer.name,
        order.customer.phone,
        order.customer.address,
        order.customer.latitude,
        order.customer.longitude,
        items_total(order),
        box_total(order),
        order.shipping_fee,
        order.package_fee,
        discount_total(order),
        order.total,
        order.original_price,
        [d.model_dump(mode="json") for d in order.discounts],
        record.skills,
        order.remarks,
        order.expected_at,
        order.day_seq,
        order.created_at,
        inp.received_at,
        inp.source,
    )


async def _replace_items(conn: Conn, order: PlatformOrder) -> None:
    await conn.execute("DELETE FROM order_items WHERE order_id = $1", order.order_id)
    await conn.executemany(
        """
        INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price,
                                 box_num, box_price, spec)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        [
            (
                order.order_id,
                n,
                i.sku,
                i.name,
                i.quantity,
                i.unit_price,
                i.box_num,
                i.box_price,
                i.spec,
            )
            for n, i in enumerate(order.items, start=1)
        ],
    )


async def _write_case(
    conn: Conn, order_id: str, case: FeedbackCase, satisfied: bool | None
) -> None:
    """A case only grows (responses and resolutions are appended), so their count orders the
    writes: a retried or late older state never overwrites a newer one."""
    await conn.execute(
        """
        INSERT INTO feedback (order_id, case_no, kind, text, owner, state, rounds,
                              responses, resolutions, satisfied, opened_at, channel, ref)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (order_id, case_no) DO UPDATE SET
            owner = EXCLUDED.owner,
            state = EXCLUDED.state,
            rounds = EXCLUDED.rounds,
            responses = EXCLUDED.responses,
            resolutions = EXCLUDED.resolutions,
            satisfied = EXCLUDED.satisfied,
            updated_at = now()
        WHERE jsonb_array_length(feedback.responses) + jsonb_array_length(feedback.resolutions)
           <= jsonb_array_length(EXCLUDED.responses) + jsonb_array_length(EXCLUDED.resolutions)
        """,
        order_id,
        case.case,
        case.kind.value,
        case.text,
        case.owner,
        case.state.value,
        case.round,
        case.responses,
        case.resolutions,
        satisfied,
        case.opened_at,
        case.channel,
        case.ref,
    )


async def _write_summary(conn: Conn, inp: OrderSummary) -> None:
    """Replaces an earlier one, as a retried write does."""
    await conn.execute(
        """
        INSERT INTO order_summaries (order_id, order_type, outcome, stage_seconds, breaches,
                                     exceptions, anomalies, feedback_rounds, rating,
                                     improvements)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (order_id) DO UPDATE SET
            order_type = EXCLUDED.order_type,
            outcome = EXCLUDED.outcome,
            stage_seconds = EXCLUDED.stage_seconds,
            breaches = EXCLUDED.breaches,
            exceptions = EXCLUDED.exceptions,
            anomalies = EXCLUDED.anomalies,
            feedback_rounds = EXCLUDED.feedback_rounds,
            rating = EXCLUDED.rating,
            improvements = EXCLUDED.improvements,
            recorded_at = now()
        """,
        inp.order_id,
        inp.order_type.value,
        inp.outcome.value,
        inp.stage_seconds,
        inp.breaches,
        inp.exceptions,
        inp.anomalies,
        inp.feedback_rounds,
        inp.rating,
        inp.improvements,
    )

"""The patrol's side effects (R2.1.2, R6.3.2): walk each store's day sequence on the platform
and compare it with the system of record.

The platform has no list-by-time call: `getOrderDaySeq` gives today's latest sequence number,
`getOrderIdByDaySeq` the order behind each number (remembered in `patrol_day_seqs`, so each is
asked once), and `getOrderDetail` the order itself for the ones we do not hold. A walk is many
calls, so a transient failure of one is tried again on the spot: with one call in ten failing,
a walk of forty calls retried as a whole would rarely get through before the orders it is
looking for are cancelled by the platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg
from temporalio import activity

from activities.db import json_dumps
from activities.notify import Notifier
from meituan.client import PLATFORM_TZ, MeituanClient, MeituanError
from meituan.codes import OrderStatus
from meituan.intake import to_platform_order
from schemas.patrol import PatrolReport, PatrolStore, StatusMismatch, StorePatrol
from schemas.records import Audience, Notification

T = TypeVar("T")
CALL_TRIES = 4
"""Each platform call of a walk, before the walk itself fails (and Temporal retries it)."""

CLOSED_ON_PLATFORM = {OrderStatus.CANCELLED, OrderStatus.COMPLETED}
OPEN_STAGES = (
    "received", "reviewing", "accepted", "assigned", "confirmed", "in_progress", "delivering",
    "on_hold",
)  # fmt: skip


async def _again(call: Callable[..., Awaitable[T]], *args: object) -> T:
    for attempt in range(1, CALL_TRIES + 1):
        try:
            return await call(*args)
        except MeituanError as exc:
            if not exc.retryable or attempt == CALL_TRIES:
                raise
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


class Patrol:
    def __init__(self, pool: asyncpg.Pool, client: MeituanClient) -> None:
        self._pool = pool
        self._client = client
        self._notifier = Notifier(pool)

    @activity.defn
    async def patrol_stores(self) -> list[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT code FROM stores ORDER BY code")
        return [r["code"] for r in rows]

    @activity.defn
    async def patrol_store(self, inp: PatrolStore) -> StorePatrol:
        store = inp.store_code
        date = datetime.now(PLATFORM_TZ).strftime("%Y%m%d")
        latest = await _again(self._client.get_order_day_seq, store)
        order_ids: list[str] = []
        for seq in range(1, latest + 1):
            order_ids.append(await self._order_at(store, date, seq))
            activity.heartbeat(seq)
        async with self._pool.acquire() as conn:
            held = {
                r["order_id"]: r["stage"]
                for r in await conn.fetch(
                    "SELECT order_id, stage FROM orders WHERE order_id = ANY($1::text[])",
                    order_ids,
                )
            }
        result = StorePatrol(store_code=store, platform_date=date, walked=latest)
        for order_id in order_ids:
            if order_id not in held:
                detail = await _again(self._client.get_order_detail, int(order_id))
                if detail.status in CLOSED_ON_PLATFORM:
                    result.missed_and_closed.append(order_id)
                else:
                    result.missing.append(to_platform_order(detail))
            elif held[order_id] in OPEN_STAGES:
                platform_status = await _again(self._client.view_status, int(order_id))
                if platform_status in CLOSED_ON_PLATFORM:
                    result.mismatches.append(
                        StatusMismatch(
                            order_id=order_id,
                            platform_status=platform_status,
                            our_stage=held[order_id],
                        )
                    )
        return result

    async def _order_at(self, store: str, date: str, seq: int) -> str:
        async with self._pool.acquire() as conn:
            known = await conn.fetchval(
                "SELECT order_id FROM patrol_day_seqs"
                " WHERE store_code = $1 AND platform_date = $2 AND day_seq = $3",
                store,
                date,
                seq,
            )
            if known is not None:
                return str(known)
            order_id = str(await _again(self._client.get_order_id_by_day_seq, store, seq, date))
            await conn.execute(
                "INSERT INTO patrol_day_seqs (store_code, platform_date, day_seq, order_id)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                store,
                date,
                seq,
                order_id,
            )
            return order_id

    @activity.defn
    async def record_patrol(self, report: PatrolReport) -> None:
        """The reconciliation report; orders only the patrol found mean the push feed is failing."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """
                INSERT INTO patrol_reports (patrol_id, at, stores, walked, found, report)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                ON CONFLICT (patrol_id) DO NOTHING
                """,
                report.patrol_id,
                report.at,
                report.stores,
                report.walked,
                report.found,
                json_dumps(report.model_dump(mode="json")),
            )
        if not (report.found or report.missed_and_closed or report.mismatches):
            return
        text = (
            f"The patrol found {len(report.found)} order(s) the pushes missed "
            f"({', '.join(report.found) or '-'}), {len(report.missed_and_closed)} missed and "
            f"already closed, {len(report.mismatches)} status mismatch(es). "
            "Check the push feed and raise it with the platform."
        )
        for audience in (Audience.SUPERVISOR, Audience.PLATFORM_LIAISON):
            await self._notifier.notify(
                Notification(
                    key=f"{report.patrol_id}:{audience.value}",
                    order_id="",
                    audience=audience,
                    store_code=report.stores[0] if report.stores else "",
                    subject="Push feed: orders found only by the patrol",
                    text=text,
                )
            )

"""The patrol's side effects (R2.1.2, R6.3.2): walk each store's day sequence on the platform
and compare it with the system of record.

The platform has no list-by-time call: `getOrderDaySeq` gives today's latest sequence number,
`getOrderIdByDaySeq` the order behind a number of a day, and `getOrderDetail` the order itself.
Every number a walk resolves is remembered in `patrol_day_seqs`, so it is asked once; a number
the platform fails to answer for is left for the next run, never skipped, and never fails the
walk: one stubborn call must not hold back the orders the rest of the walk found. An order the
patrol started is remembered too (`started_at`), so it is started once. A missed order the
platform has already cancelled is started too, cancelled: its cancellation push may have been
lost as well, and then nothing else would ever put it on record.

The last orders before midnight (platform time) are on the previous day's sequence, which
`getOrderDaySeq` no longer shows. After midnight the patrol also walks the previous day, asking
for the numbers after the last it knows until the platform answers 806 (no such order): for
`ORDERFLOW_PATROL_PREVIOUS_DAY_MINUTES` at least, then until one walk finds every number of the
day resolved and every order on record or started (`patrol_days`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar

import asyncpg
from pydantic import ValidationError
from temporalio import activity

from activities.notify import Notifier
from infra.database import json_dumps
from infra.settings import settings
from meituan.client import PLATFORM_TZ, MeituanClient, MeituanError, OrderNotFound
from meituan.codes import OrderStatus, PlatformCancelReason
from meituan.intake import to_platform_order
from schemas.notices import Audience, Notification
from schemas.order import PlatformCancel
from schemas.patrol import (
    CancelledOrder,
    PatrolReport,
    PatrolStore,
    StatusMismatch,
    StorePatrol,
)

T = TypeVar("T")
CALL_TRIES = 4
"""Each platform call of a walk, tried again on the spot: with one call in ten failing, a walk
started over for every failure would rarely get through before its orders are cancelled."""
FAILURES_IN_A_ROW = 3
"""Calls failing one after another before a walk stops asking: the platform is down, and what
is left is asked on the next run."""

CLOSED_ON_PLATFORM = (OrderStatus.CANCELLED, OrderStatus.COMPLETED)
OPEN_STAGES = (
    "received", "reviewing", "accepted", "assigned", "confirmed", "in_progress", "delivering",
    "on_hold",
)  # fmt: skip
CANCELLED_UNSEEN = PlatformCancel(
    reason_code=PlatformCancelReason.OTHER,
    reason="cancelled on the platform before the order reached us (found by the patrol)",
)
"""`getOrderDetail` does not say why an order was cancelled."""


def _platform_now() -> datetime:
    return datetime.now(PLATFORM_TZ)


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


async def _again(call: Callable[..., Awaitable[T]], *args: object) -> T:
    for attempt in range(1, CALL_TRIES + 1):
        try:
            return await call(*args)
        except MeituanError as exc:
            if not exc.retryable or attempt == CALL_TRIES:
                raise
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


class _Calls:
    """The platform calls of one walk. A call that still fails after its tries raises to the
    caller, which leaves its number or order for the next run; a refusal (806 for a number
    past the day's last) is an answer, not a failure."""

    def __init__(self) -> None:
        self.failures_in_a_row = 0

    async def ask(self, call: Callable[..., Awaitable[T]], *args: object) -> T:
        if self.failures_in_a_row >= FAILURES_IN_A_ROW:
            raise MeituanError(f"not asked: {self.failures_in_a_row} calls in a row failed")
        try:
            value = await _again(call, *args)
        except MeituanError as exc:
            if exc.retryable:
                self.failures_in_a_row += 1
            raise
        finally:
            activity.heartbeat()
        self.failures_in_a_row = 0
        return value


@dataclass
class _Day:
    """One store's day as a walk resolved it."""

    store: str
    date: date
    last: int | None  # the day's last number, once known (today's latest, or 806 after it)
    unresolved: int = 0  # numbers, or missed orders, the platform did not answer for this time


class Patrol:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: MeituanClient,
        *,
        clock: Callable[[], datetime] = _platform_now,
        previous_day: timedelta | None = None,
    ) -> None:
        """`previous_day`: how long after midnight the previous day is walked whatever it shows
        (its last numbers may reach the platform's index late); after that, until a walk finds
        it settled. Default `ORDERFLOW_PATROL_PREVIOUS_DAY_MINUTES`."""
        self._pool = pool
        self._client = client
        self._notifier = Notifier(pool)
        self._clock = clock
        self._previous_day = (
            settings().patrol.previous_day if previous_day is None else previous_day
        )

    @activity.defn
    async def patrol_stores(self) -> list[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT code FROM stores ORDER BY code")
        return [r["code"] for r in rows]

    @activity.defn
    async def patrol_store(self, inp: PatrolStore) -> StorePatrol:
        """Today's sequence, and the previous day's until it is settled (R2.1.2)."""
        store = inp.store_code
        now = self._clock().astimezone(PLATFORM_TZ)
        today = now.date()
        latest = await _again(self._client.get_order_day_seq, store)
        result = StorePatrol(store_code=store, platform_date=_ymd(today), walked=0)
        calls = _Calls()
        await self._walk(calls, _Day(store, today, latest), result)
        previous = today - timedelta(days=1)
        if not await self._settled(store, previous):
            result.previous_date = _ymd(previous)
            day = _Day(store, previous, last=None)
            if await self._walk(calls, day, result) and self._may_settle(now):
                await self._settle(day, now)
        return result

    def _may_settle(self, now: datetime) -> bool:
        """Only a walk begun `previous_day` after midnight settles the day before: its last
        numbers may reach the platform's index a little late."""
        midnight = datetime.combine(now.date(), time(), PLATFORM_TZ)
        return now - midnight >= self._previous_day

    async def _walk(self, calls: _Calls, day: _Day, result: StorePatrol) -> bool:
        """Resolve the day's numbers, then compare its orders with our record. True when the
        day is settled: its last number known, every number resolved, every order settled."""
        await self._resolve(calls, day)
        settled = await self._reconcile(calls, day, result)
        result.unresolved += day.unresolved
        return settled and day.last is not None and day.unresolved == 0

    # --- resolving numbers to orders -----------------------------------------------------------

    async def _resolve(self, calls: _Calls, day: _Day) -> None:
        """Ask for every number not resolved before, up to today's latest; for a past day, up
        to the highest remembered and then on past it until the platform has no such order."""
        known = await self._known(day)
        top = day.last if day.last is not None else max(known, default=0)
        for seq in range(1, top + 1):
            if seq not in known and not await self._resolved(calls, day, seq):
                day.unresolved += 1
        if day.last is None:
            day.last = await self._probe(calls, day, top)

    async def _known(self, day: _Day) -> set[int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT day_seq FROM patrol_day_seqs WHERE store_code = $1 AND platform_date = $2",
                day.store,
                _ymd(day.date),
            )
        return {r["day_seq"] for r in rows}

    async def _resolved(self, calls: _Calls, day: _Day, seq: int) -> bool:
        """False when the platform did not answer, or does not know the number yet (806 for a
        number up to today's latest): asked again on the next run, never skipped."""
        try:
            await self._lookup(calls, day, seq)
        except MeituanError:
            return False
        return True

    async def _probe(self, calls: _Calls, day: _Day, after: int) -> int | None:
        """A past day's last number: the numbers after `after` resolved one by one until the
        platform answers 806. None when it failed first: the end is looked for next run."""
        seq = after
        while True:
            try:
                await self._lookup(calls, day, seq + 1)
            except OrderNotFound:
                return seq
            except MeituanError:
                day.unresolved += 1
                return None
            seq += 1

    async def _lookup(self, calls: _Calls, day: _Day, seq: int) -> None:
        """Resolve one number and remember it. Raises `MeituanError` (806: no such order)."""
        order_id = await calls.ask(
            self._client.get_order_id_by_day_seq, day.store, seq, _ymd(day.date)
        )
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO patrol_day_seqs (store_code, platform_date, day_seq, order_id)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                day.store,
                _ymd(day.date),
                seq,
                str(order_id),
            )

    # --- comparing the day's orders with our record --------------------------------------------

    async def _reconcile(self, calls: _Calls, day: _Day, result: StorePatrol) -> bool:
        """Every resolved order of the day against our record; one on record or known started
        is not looked at on the platform, but for a status mismatch while it is open. True
        when each one is on record, known started, or done on the platform."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT s.order_id, s.started_at IS NOT NULL AS started, o.stage
                FROM patrol_day_seqs s LEFT JOIN orders o ON o.order_id = s.order_id
                WHERE s.store_code = $1 AND s.platform_date = $2
                ORDER BY s.day_seq
                """,
                day.store,
                _ymd(day.date),
            )
        result.walked += len(rows)
        settled = True
        for row in rows:
            if row["stage"] is None and not row["started"]:
                settled = await self._missed(calls, row["order_id"], day, result) and settled
            elif row["stage"] in OPEN_STAGES:
                await self._compare(calls, row["order_id"], row["stage"], result)
        return settled

    async def _missed(self, calls: _Calls, order_id: str, day: _Day, result: StorePatrol) -> bool:
        """An order on the platform that we do not hold: to be started, cancelled when the
        platform cancelled it (R2.1.2: its cancellation push may be lost too, and then the
        patrol is the only way to it). One done on the platform is only reported, and is the
        only one settled here: nothing is left to start."""
        try:
            detail = await calls.ask(self._client.get_order_detail, int(order_id))
        except MeituanError:
            day.unresolved += 1
            return False
        if detail.status in CLOSED_ON_PLATFORM:
            result.missed_and_closed.append(order_id)
        if detail.status == OrderStatus.COMPLETED:
            return True
        try:
            order = to_platform_order(detail)
        except ValidationError:
            # As the gateway refuses such a push; the walk goes on, and so does the alarm.
            activity.logger.exception("order %s on the platform cannot make an order", order_id)
            day.unresolved += 1
            return False
        if detail.status == OrderStatus.CANCELLED:
            result.cancelled.append(CancelledOrder(order=order, cancel=CANCELLED_UNSEEN))
        else:
            result.missing.append(order)
        return False

    async def _compare(self, calls: _Calls, order_id: str, stage: str, result: StorePatrol) -> None:
        """R6.3.2 an order closed on the platform but open with us (a lost cancellation push).
        Only a report: a failed call is left to the next run."""
        try:
            platform_status = await calls.ask(self._client.view_status, int(order_id))
        except MeituanError:
            return
        if platform_status in CLOSED_ON_PLATFORM:
            result.mismatches.append(
                StatusMismatch(order_id=order_id, platform_status=platform_status, our_stage=stage)
            )

    # --- the previous day --------------------------------------------------------------------

    async def _settled(self, store: str, day: date) -> bool:
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM patrol_days WHERE store_code = $1 AND platform_date = $2",
                store,
                _ymd(day),
            )
        return found is not None

    async def _settle(self, day: _Day, now: datetime) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO patrol_days (store_code, platform_date, last_seq, settled_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                day.store,
                _ymd(day.date),
                day.last,
                now,
            )

    # --- the report --------------------------------------------------------------------------

    @activity.defn
    async def record_patrol(self, report: PatrolReport) -> None:
        """The reconciliation report, and the orders whose workflows are now known to exist;
        orders only the patrol found mean the push feed is failing."""
        async with self._pool.acquire() as conn, conn.transaction():
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
            # R2.1.2 started once: a later walk does not look at these again.
            await conn.execute(
                "UPDATE patrol_day_seqs SET started_at = $2"
                " WHERE order_id = ANY($1::text[]) AND started_at IS NULL",
                [*report.found, *report.raced],
                report.at,
            )
        if report.found or report.missed_and_closed or report.mismatches:
            await self._alert(report)

    async def _alert(self, report: PatrolReport) -> None:
        text = (
            f"The patrol found {len(report.found)} order(s) the pushes missed "
            f"({', '.join(report.found) or '-'}); {len(report.missed_and_closed)} missed order(s) "
            f"were already closed on the platform; {len(report.mismatches)} status "
            "mismatch(es). Check the push feed and raise it with the platform."
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

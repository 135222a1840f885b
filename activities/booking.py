"""Service bookings: a qualified person and a free slot, never double-booked (R3.2.1).

A job needs the order's items' durations added up (`catalogue.duration_minutes` x quantity,
`ORDERFLOW_DEFAULT_SERVICE_MINUTES` when unknown); a job longer than one slot takes back-to-back
slots of the same person. The partial unique index on active (staff, slot) bookings makes a
double booking impossible; a booking that loses a slot to another order chooses again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.notify import write_to
from infra.database import Conn
from infra.settings import settings
from schemas.resources import Booking, BookService, OrderRef

_DEADLOCK_RETRIES = 5


@dataclass(frozen=True)
class Slot:
    slot_id: int
    staff_id: str
    starts_at: datetime
    ends_at: datetime


class _LostRace(Exception):
    """Another order took one of the chosen slots first: choose again without it."""


def first_run(slots: Sequence[Slot], minutes: int) -> list[Slot] | None:
    """The earliest run of back-to-back slots of one person lasting at least `minutes`.

    `slots` are one person's free slots in start order.
    """
    need = timedelta(minutes=minutes)
    run: list[Slot] = []
    for slot in slots:
        if run and slot.starts_at != run[-1].ends_at:
            run = []
        run.append(slot)
        if run[-1].ends_at - run[0].starts_at >= need:
            return run
    return None


def choose(
    free: dict[str, list[Slot]], minutes: int, preferred: str | None, levels: dict[str, int]
) -> list[Slot] | None:
    """The preferred person's first run if they have one; else the earliest, the more skilled
    person first on a tie."""
    if preferred and preferred in free:
        run = first_run(free[preferred], minutes)
        if run:
            return run
    runs = [r for r in (first_run(s, minutes) for s in free.values()) if r]
    if not runs:
        return None
    return min(runs, key=lambda r: (r[0].starts_at, -levels.get(r[0].staff_id, 0), r[0].staff_id))


class Bookings:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def book_service(self, inp: BookService) -> Booking:
        """`ApplicationError(type="NoSlotAvailable")` when nobody qualified is free.

        Idempotent per order: an order with an active booking gets that booking back.
        """
        earliest = inp.earliest if inp.earliest.tzinfo else inp.earliest.replace(tzinfo=UTC)
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                return await self._book(inp, earliest)
            except asyncpg.DeadlockDetectedError:
                # Two multi-slot bookings crossed; one was cancelled by PostgreSQL. Try again.
                if attempt == _DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _book(self, inp: BookService, earliest: datetime) -> Booking:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"booking:{inp.order_id}"
            )
            existing = await _booking_of(conn, inp.order_id)
            if existing is not None:
                return await _told(conn, inp, existing)
            minutes = await conn.fetchval(
                """
                SELECT COALESCE(SUM(c.duration_minutes * i.quantity), 0)
                FROM order_items i JOIN catalogue c ON c.sku = i.sku
                WHERE i.order_id = $1
                """,
                inp.order_id,
            )
            minutes = int(minutes) or settings().booking.default_service_minutes
            qualified = await conn.fetch(
                """
                SELECT s.staff_id, MIN(k.level) AS level
                FROM staff s JOIN staff_skills k ON k.staff_id = s.staff_id
                WHERE s.active AND k.skill = ANY($1::text[])
                GROUP BY s.staff_id
                HAVING COUNT(*) = cardinality($1::text[])
                """,
                sorted(set(inp.skills)),
            )
            levels = {r["staff_id"]: r["level"] for r in qualified}
            rows = await conn.fetch(
                """
                SELECT sl.slot_id, sl.staff_id, sl.starts_at, sl.ends_at
                FROM service_slots sl
                WHERE sl.staff_id = ANY($1::text[]) AND sl.starts_at >= $2
                  AND sl.store_code = $3
                  AND NOT EXISTS (SELECT 1 FROM service_bookings b
                                  WHERE b.slot_id = sl.slot_id AND b.active)
                ORDER BY sl.staff_id, sl.starts_at
                """,
                list(levels),
                earliest,
                inp.store_code,
            )
            slots = [Slot(r["slot_id"], r["staff_id"], r["starts_at"], r["ends_at"]) for r in rows]
            taken: set[int] = set()
            while True:
                free: dict[str, list[Slot]] = {}
                for slot in slots:
                    if slot.slot_id not in taken:
                        free.setdefault(slot.staff_id, []).append(slot)
                run = choose(free, minutes, inp.preferred_staff, levels)
                if run is None:
                    raise ApplicationError(
                        f"no one with {', '.join(inp.skills) or 'the skills'} has {minutes} "
                        f"free minutes from {earliest.isoformat()}",
                        type="NoSlotAvailable",
                        non_retryable=True,
                        category=ApplicationErrorCategory.BENIGN,
                    )
                try:
                    async with conn.transaction():  # a savepoint: a lost race undoes only this run
                        for slot in run:
                            booked = await conn.fetchval(
                                """
                                INSERT INTO service_bookings (order_id, staff_id, slot_id)
                                VALUES ($1, $2, $3)
                                ON CONFLICT (staff_id, slot_id) WHERE active DO NOTHING
                                RETURNING booking_id
                                """,
                                inp.order_id,
                                slot.staff_id,
                                slot.slot_id,
                            )
                            if booked is None:
                                taken.add(slot.slot_id)
                                raise _LostRace
                except _LostRace:
                    continue
                booking = await _booking_of(conn, inp.order_id)
                assert booking is not None
                return await _told(conn, inp, booking)

    @activity.defn
    async def release_booking(self, inp: OrderRef) -> None:
        await self._pool.execute(
            """
            UPDATE service_bookings SET active = false, released_at = now()
            WHERE order_id = $1 AND active
            """,
            inp.order_id,
        )


async def _told(conn: Conn, inp: BookService, booking: Booking) -> Booking:
    """The person booked, briefed in the same transaction (R3.2.2)."""
    await write_to(conn, inp.notice, booking.staff_id, slot_at=booking.slot_start.isoformat())
    return booking


async def _booking_of(conn: Conn, order_id: str) -> Booking | None:
    row = await conn.fetchrow(
        """
        SELECT b.staff_id, s.name, MIN(sl.starts_at) AS slot_start, MAX(sl.ends_at) AS slot_end
        FROM service_bookings b
        JOIN service_slots sl ON sl.slot_id = b.slot_id
        JOIN staff s ON s.staff_id = b.staff_id
        WHERE b.order_id = $1 AND b.active
        GROUP BY b.staff_id, s.name
        """,
        order_id,
    )
    if row is None:
        return None
    return Booking(
        staff_id=row["staff_id"],
        staff_name=row["name"],
        slot_start=row["slot_start"],
        slot_end=row["slot_end"],
    )

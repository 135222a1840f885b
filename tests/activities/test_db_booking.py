"""Service bookings: a qualified person, a free slot, never double-booked (R3.2.1)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.booking import Bookings
from activities.notice_texts import moment
from activities.orders import OrderRecords
from schemas.notices import Audience, Language, Notification, Topic
from schemas.records import RecordOrder
from schemas.resources import BookService, OrderRef
from starter.db_cli import generate_slots
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order, order_id
from tests.db_fixtures import pg_dsn as pg_dsn

STORE = "SH-HS-100"
MONDAY = date(2030, 1, 7)
MONDAY_8AM = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
NINE = datetime(2030, 1, 7, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, the first slot
CROWD_DAY = date(2030, 2, 4)


@pytest.fixture(scope="module")
async def slots(demo_pool: asyncpg.Pool) -> asyncpg.Pool:
    async with demo_pool.acquire() as conn:
        for first_day, days in ((MONDAY, 2), (CROWD_DAY, 3)):
            await generate_slots(
                conn,
                STORE,
                days_ahead=days,
                slot_minutes=120,
                day_start="09:00",
                day_end="19:00",
                first_day=first_day,
            )
    return demo_pool


async def _service_order(pool: asyncpg.Pool, items: tuple[tuple[str, int], ...]) -> str:
    order = make_order(items=items, store=STORE, shipping="0")
    await OrderRecords(pool).record_order(
        RecordOrder(order=order, received_at=datetime.now(UTC), source="push")
    )
    return order.order_id


def _book(
    oid: str, skills: list[str], earliest: datetime = MONDAY_8AM, preferred: str | None = None
) -> BookService:
    return BookService(
        order_id=oid,
        store_code=STORE,
        region="shanghai-xuhui",
        skills=skills,
        earliest=earliest,
        preferred_staff=preferred,
    )


async def test_books_the_first_free_slot_of_a_qualified_person(slots: asyncpg.Pool) -> None:
    bookings = Bookings(slots)
    oid = await _service_order(slots, (("S-PLM", 1),))
    booking = await bookings.book_service(_book(oid, ["plumbing"]))
    assert booking.staff_id == "T-301" and booking.staff_name == "孙师傅"
    assert booking.slot_start == NINE and booking.slot_end == NINE + timedelta(hours=2)
    again = await bookings.book_service(_book(oid, ["plumbing"]))
    assert again == booking
    count = await slots.fetchval(
        "SELECT count(*) FROM service_bookings WHERE order_id = $1 AND active", oid
    )
    assert count == 1
    # The next plumbing order gets the next slot.
    other = await bookings.book_service(_book(order_id(), ["plumbing"]))
    assert other.staff_id == "T-301" and other.slot_start == NINE + timedelta(hours=2)


async def test_a_long_job_takes_back_to_back_slots(slots: asyncpg.Pool) -> None:
    oid = await _service_order(slots, (("S-CLN2", 2),))  # 2 x 120 minutes
    booking = await Bookings(slots).book_service(_book(oid, ["cleaning"]))
    assert booking.staff_id == "T-302"  # cleaning level 3 beats T-303's level 1 at the same time
    assert booking.slot_start == NINE and booking.slot_end == NINE + timedelta(hours=4)
    held = await slots.fetchval(
        "SELECT count(*) FROM service_bookings WHERE order_id = $1 AND active", oid
    )
    assert held == 2


async def test_preferred_person(slots: asyncpg.Pool) -> None:
    booking = await Bookings(slots).book_service(
        _book(order_id(), ["appliance"], preferred="T-303")
    )
    assert booking.staff_id == "T-303" and booking.slot_start == NINE
    # A preferred person without the skill is passed over.
    booking = await Bookings(slots).book_service(_book(order_id(), ["plumbing"], preferred="T-302"))
    assert booking.staff_id == "T-301"


async def test_no_slot(slots: asyncpg.Pool) -> None:
    with pytest.raises(ApplicationError) as caught:
        await Bookings(slots).book_service(
            _book(order_id(), ["plumbing"], earliest=datetime(2031, 1, 1, tzinfo=UTC))
        )
    assert caught.value.type == "NoSlotAvailable" and caught.value.non_retryable
    # Waiting, not failing: the worker logs it quietly, without a traceback.
    assert caught.value.category is ApplicationErrorCategory.BENIGN
    with pytest.raises(ApplicationError):
        await Bookings(slots).book_service(_book(order_id(), ["welding"]))


async def test_release_frees_the_slot_once(slots: asyncpg.Pool) -> None:
    bookings = Bookings(slots)
    late = datetime(2030, 1, 8, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai: the last slot of Tuesday
    oid = order_id()
    first = await bookings.book_service(_book(oid, ["plumbing"], earliest=late))
    assert first.slot_start == late
    await bookings.release_booking(OrderRef(order_id=oid))
    await bookings.release_booking(OrderRef(order_id=oid))
    again = await bookings.book_service(_book(order_id(), ["plumbing"], earliest=late))
    assert again.slot_start == first.slot_start
    rows = await slots.fetch(
        "SELECT active, released_at FROM service_bookings WHERE order_id = $1", oid
    )
    assert [r["active"] for r in rows] == [False] and rows[0]["released_at"] is not None


async def test_concurrent_bookings_never_double_book(slots: asyncpg.Pool) -> None:
    earliest = datetime.combine(CROWD_DAY, datetime.min.time(), UTC)
    free = await slots.fetchval(
        """
        SELECT count(*) FROM service_slots s
        WHERE s.staff_id IN ('T-302', 'T-303') AND s.starts_at >= $1
          AND NOT EXISTS (SELECT 1 FROM service_bookings b WHERE b.slot_id = s.slot_id AND b.active)
        """,
        earliest,
    )
    bookings = Bookings(slots)

    async def one() -> bool:
        try:
            await bookings.book_service(_book(order_id(), ["cleaning"], earliest=earliest))
            return True
        except ApplicationError as exc:
            assert exc.type == "NoSlotAvailable"
            return False

    assert free == 30
    results = await asyncio.gather(*(one() for _ in range(free + 10)))
    assert sum(results) == free
    doubles = await slots.fetchval(
        """
        SELECT count(*) FROM (SELECT slot_id FROM service_bookings WHERE active
                              GROUP BY slot_id HAVING count(*) > 1) d
        """
    )
    assert doubles == 0


async def test_the_person_booked_is_briefed_with_the_slot_in_the_bookings_transaction(
    slots: asyncpg.Pool,
) -> None:
    """R3.2.2 the briefing a booking carries goes to the person booked, with the slot, once
    however often the booking is retried."""
    bookings = Bookings(slots)
    oid = await _service_order(slots, (("S-PLM", 1),))
    notice = Notification(
        key=f"{oid}:3",
        order_id=oid,
        audience=Audience.STAFF,
        store_code=STORE,
        topic=Topic.VISIT,
        facts={"brief": "水管维修 x1"},
    )
    inp = _book(oid, ["plumbing"]).model_copy(update={"notice": notice})
    booking = await bookings.book_service(inp)
    assert await bookings.book_service(inp) == booking  # a retry
    rows = await slots.fetch(
        "SELECT recipient, topic, subject, text FROM notifications WHERE order_id = $1", oid
    )
    assert [(r["recipient"], r["topic"]) for r in rows] == [(booking.staff_id, "visit")]
    assert "水管维修 x1" in rows[0]["text"]
    # The slot the booking found, as the store reads it.
    assert moment(booking.slot_start, Language.ZH_CN) in rows[0]["subject"]

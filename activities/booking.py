"""Service bookings: a qualified person and a free slot, never double-booked (R3.2.1)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.resources import Booking, BookService, OrderRef


class Bookings:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def book_service(self, inp: BookService) -> Booking:
        """`ApplicationError(type="NoSlotAvailable")` when nobody qualified is free."""
        raise NotImplementedError

    @activity.defn
    async def release_booking(self, inp: OrderRef) -> None:
        raise NotImplementedError

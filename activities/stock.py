"""Stock with a ledger; never oversold (R3.1.2)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.resources import OrderRef, ReserveStock, StockReservation


class Stock:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def reserve_stock(self, inp: ReserveStock) -> StockReservation:
        """`ApplicationError(type="OutOfStock")` when any line cannot be covered."""
        raise NotImplementedError

    @activity.defn
    async def commit_stock(self, inp: OrderRef) -> None:
        raise NotImplementedError

    @activity.defn
    async def release_stock(self, inp: OrderRef) -> None:
        raise NotImplementedError

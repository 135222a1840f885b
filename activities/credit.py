"""Customer credit profiles (R5.3.3)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.records import CreditEvent


class Credit:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_credit_event(self, inp: CreditEvent) -> None:
        raise NotImplementedError

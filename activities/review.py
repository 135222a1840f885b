"""The review rules (R2.2.1-R2.2.3, R5.1, R5.3.1-R5.3.3)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.review import ReviewInput, ReviewVerdict


class Review:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def review_order(self, inp: ReviewInput) -> ReviewVerdict:
        raise NotImplementedError

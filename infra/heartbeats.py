"""The heartbeat of a long round (the doctor's, the record check's, the statistics' refresh): a
round on a worker that died is taken up again within its heartbeat timeout, not after its whole
start-to-close timeout, while its Schedule skips the rounds that would overlap it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

EVERY_S = 5.0


@contextlib.asynccontextmanager
async def beating(every_s: float = EVERY_S) -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()

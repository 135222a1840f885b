"""Random delays in every activity, to shake out tests that read a result before it is there.

A test that waits for one entry of an order's status and then asserts something a later step
writes passes while the worker is fast and fails when it is not, as on a loaded CI machine.
`ORDERFLOW_TEST_JITTER_MS=50 make test` runs each activity of the test workers up to 50 ms
late, so such a race fails every few runs here instead of once in a while in CI.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

JITTER = "ORDERFLOW_TEST_JITTER_MS"


class _LateActivities(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, most_ms: float) -> None:
        super().__init__(next)
        self._most_s = most_ms / 1000

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        await asyncio.sleep(random.uniform(0, self._most_s))
        return await super().execute_activity(input)


class Jitter(Interceptor):
    def __init__(self, most_ms: float) -> None:
        self._most_ms = most_ms

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LateActivities(next, self._most_ms)


def interceptors() -> list[Interceptor]:
    """What a test worker takes as `interceptors=`: a `Jitter` when the variable asks for one."""
    raw = os.environ.get(JITTER, "").strip()
    return [Jitter(float(raw))] if raw and float(raw) > 0 else []

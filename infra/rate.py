"""Counting requests per caller in fixed one-minute windows, in memory: each process (each
replica) counts its own. Enough to keep one source from flooding what it reaches."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

TRACKED: Final = 10_000
"""Callers counted in one minute; beyond them, a new caller is over the limit (a flood)."""


class PerMinute:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._minute = -1
        self._counts: dict[str, int] = {}

    def admit(self, caller: str) -> bool:
        """Counts this request; whether it is within the limit."""
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        if caller not in self._counts and len(self._counts) >= TRACKED:
            return False
        count = self._counts.get(caller, 0) + 1
        self._counts[caller] = count
        return count <= self.limit

    def just_over(self, caller: str) -> bool:
        """Whether the caller has just gone over: said once a minute, not once a request."""
        return self._counts.get(caller, 0) == self.limit + 1

"""Assignment by rules and capacity (R2.3)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.resources import Assignee, AssignInput, ReleaseAssignment


class Assignment:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def assign_order(self, inp: AssignInput) -> Assignee:
        """Claim capacity atomically; `ApplicationError(type="NoAssigneeAvailable")` when full."""
        raise NotImplementedError

    @activity.defn
    async def release_assignment(self, inp: ReleaseAssignment) -> None:
        raise NotImplementedError

"""The least a takeout order can be on Temporal: the capacity benchmark's floor of cost.

Receive, review, assign, confirm and deliver are five activities that do nothing; the person's
one step is an update, and its deadline one timer, cancelled when the person acts. What the
order workflow costs beyond this is the price of what it does besides.

Kept apart from the benchmark so that the workflow sandbox imports nothing but this file; its
worker is `bench/minimal_worker.py`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

MINIMAL_QUEUE = "bench-minimal"
MINIMAL_TYPE = "MinimalOrderWorkflow"
STEP_TIMEOUT = timedelta(seconds=30)
PERSON_DEADLINE = timedelta(minutes=10)
"""Far enough that it never fires in a run."""


@activity.defn(name="minimal_step")
async def minimal_step(step: str) -> None:
    """Does nothing: what remains of an activity is the engine's cost of running one."""


@workflow.defn(name=MINIMAL_TYPE)
class MinimalOrderWorkflow:
    def __init__(self) -> None:
        self._waiting = False
        self._acted = False

    @workflow.run
    async def run(self) -> str:
        for step in ("receive", "review", "assign"):
            await self._step(step)
        # The person's deadline runs from the assignment, past the next step: a timer started in
        # one workflow task and cancelled in a later one, as an order's deadlines mostly are.
        deadline = asyncio.ensure_future(
            workflow.wait_condition(lambda: self._acted, timeout=PERSON_DEADLINE)
        )
        await self._step("confirm")
        self._waiting = True
        await deadline
        await self._step("deliver")
        return "delivered"

    async def _step(self, name: str) -> None:
        await workflow.execute_activity(minimal_step, name, start_to_close_timeout=STEP_TIMEOUT)

    @workflow.update
    async def act(self) -> str:
        """The person's step. Sent as soon as the order exists, it waits here for the order to
        be ready for it: a person who acts the moment there is something to do."""
        await workflow.wait_condition(lambda: self._waiting)
        self._acted = True
        return "ok"

"""An engineer at the Temporal CLI throughout the fault run, as engineers are in production.

Every pause, they pick a random open order and ask Temporal itself for its status
(`temporal workflow query --type status`) and its stack trace (`temporal workflow stack`, what
the Web UI shows): real clients, outside the staff API, which reach orders whose worker has
just died. A query of an order held by a dead worker waits for another to take it up; one that
gets no answer in time counts as unanswered, not as a fault of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from localstack.devstack import temporal_binary

OPEN_ORDERS = 'WorkflowType="OrderWorkflow" AND ExecutionStatus="Running"'
PATIENCE_S = 20.0


@dataclass
class Engineer:
    client: Client
    address: str
    namespace: str
    rng: random.Random
    pause_s: tuple[float, float] = (0.5, 2.0)
    calls: dict[str, int] = field(default_factory=lambda: {"query": 0, "stack": 0})
    unanswered: dict[str, int] = field(default_factory=lambda: {"query": 0, "stack": 0})
    unlisted: int = 0  # listings of the open orders Temporal did not answer

    async def work(self, until: asyncio.Event) -> None:
        """Until the day is over; Temporal away (restarting) only means fewer calls."""
        while not until.is_set():
            try:
                open_orders = [
                    e.id async for e in self.client.list_workflows(OPEN_ORDERS, limit=500)
                ]
            except RPCError:
                open_orders = []
                self.unlisted += 1
            if open_orders:
                workflow_id = self.rng.choice(open_orders)
                await self._ask("query", workflow_id, "--type", "status")
                await self._ask("stack", workflow_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self.rng.uniform(*self.pause_s))

    async def _ask(self, command: str, workflow_id: str, *args: str) -> None:
        """One `temporal workflow <command>`, as typed at a terminal."""
        self.calls[command] += 1
        process = await asyncio.create_subprocess_exec(
            str(temporal_binary()),
            "workflow",
            command,
            "--workflow-id",
            workflow_id,
            *args,
            "--address",
            self.address,
            "--namespace",
            self.namespace,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            code = await asyncio.wait_for(process.wait(), PATIENCE_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            code = -1
        if code != 0:
            self.unanswered[command] += 1

    def report(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "unanswered": dict(self.unanswered),
            "unlisted": self.unlisted,
        }

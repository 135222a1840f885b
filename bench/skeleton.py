"""A workflow with an order's shape and nothing else: the engine's own ceiling for the pipeline.

`SkeletonWorkflow` is given the shape of a finished `OrderWorkflow` history, workflow task by
workflow task: what the order waited for before each task (activities finished, timers fired,
signals, updates) and what the task then did (local activities run, activities scheduled,
timers started and cancelled). It does the same with activities that do nothing, so its
history has the order's activities, timers and messages by construction, and what is left of
the order's cost is what the engine itself charges for them.

Kept apart from the benchmark so that the workflow sandbox imports nothing but this file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

SKELETON_QUEUE = "bench-skeleton"
STEP_TIMEOUT = timedelta(seconds=30)


@dataclass
class Timer:
    timer_id: str
    seconds: float


@dataclass
class Task:
    """One workflow task of the original: what it waited for, then what it did."""

    finished: list[int] = field(default_factory=list)
    """Activities (by the event id that scheduled them) that had finished."""
    fired: list[str] = field(default_factory=list)
    signals: int = 0
    updates: int = 0
    local: int = 0
    patches: int = 0
    """`workflow.patched` markers recorded."""
    scheduled: list[int] = field(default_factory=list)
    started: list[Timer] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


@dataclass
class Shape:
    tasks: list[Task]


@activity.defn(name="skeleton_step")
async def empty_step() -> None:
    """Does nothing: what remains of an activity is the engine's cost of running one."""


@workflow.defn(name="SkeletonWorkflow")
class SkeletonWorkflow:
    def __init__(self) -> None:
        self._signals = 0
        self._updates = 0
        self._waiting: str | None = None

    @workflow.run
    async def run(self, shape: Shape) -> int:
        activities: dict[int, asyncio.Task[None]] = {}
        timers: dict[str, asyncio.Task[None]] = {}
        signals = updates = patches = 0
        for task in shape.tasks:
            for key in task.finished:
                await activities.pop(key)
            for timer_id in task.fired:
                await timers.pop(timer_id)
            if task.signals:
                signals += task.signals
                await self._wait_for("signal", self._signals_reach(signals))
            if task.updates:
                updates += task.updates
                await self._wait_for("update", self._updates_reach(updates))
            for _ in range(task.patches):
                patches += 1
                workflow.patched(f"skeleton-{patches}")
            for _ in range(task.local):
                await workflow.execute_local_activity(
                    empty_step, start_to_close_timeout=STEP_TIMEOUT
                )
            for key in task.scheduled:
                activities[key] = asyncio.ensure_future(
                    workflow.execute_activity(empty_step, start_to_close_timeout=STEP_TIMEOUT)
                )
            for timer in task.started:
                timers[timer.timer_id] = asyncio.ensure_future(asyncio.sleep(timer.seconds))
            for timer_id in task.cancelled:
                timers.pop(timer_id).cancel()
        await asyncio.gather(*activities.values())
        return len(shape.tasks)

    def _signals_reach(self, n: int) -> Callable[[], bool]:
        return lambda: self._signals >= n

    def _updates_reach(self, n: int) -> Callable[[], bool]:
        return lambda: self._updates >= n

    async def _wait_for(self, kind: str, arrived: Callable[[], bool]) -> None:
        self._waiting = kind
        await workflow.wait_condition(arrived)
        self._waiting = None

    @workflow.signal
    def message(self) -> None:
        self._signals += 1

    @workflow.update
    def act(self) -> str:
        self._updates += 1
        return "ok"

    @workflow.query
    def waiting(self) -> str | None:
        """The message the skeleton waits for, as a person finds the next thing to do."""
        return self._waiting

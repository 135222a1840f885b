"""Deadline clocks for workflow code: soft deadline, hard limit, pauses, restarts.

A deadline watches a piece of work. Past the soft deadline the breach is recorded and the
owner is told; past the hard limit the policy's action runs. Time spent paused (an order on
hold for an anomaly, R5.2.1) does not count against the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.policy import Clause, Deadline
    from schemas.status import Breach, DeadlineState, DeadlineView
    from workflows import story

Check = Callable[[], bool]

# A deadline passes when its timer fires, never by comparing workflow.now() with it. A worker
# that picks an order up cold to answer a query applies the events not yet handled (a timer
# that has fired) with the time of the last completed task, and keeps the commands that made;
# the next replay applies them with the true time. A comparison then decides differently
# between the two, a fired timer does not. Orders started before this version compare, and
# replay as they ran.
FIRE_BY_TIMER = "deadlines-fire-by-timer"

# The shortest timer: a deadline already past when its wait begins passes when it fires.
_AT_ONCE = timedelta(milliseconds=1)


def _never() -> bool:
    return False


def _summary(view: DeadlineView, field: str) -> str:
    """The timer's line in the Web UI: the clause, and whether it is the deadline or the hard
    limit."""
    return story.deadline(view.clause, "hard limit" if field == "hard_at" else "deadline")


async def _wait(condition: Check, within: timedelta, summary: str, lapses: bool) -> bool:
    """True once `condition()` holds, False when `within` passed first. A lapsing timer is not
    cancelled when the condition holds: it fires later to no effect. Cancelled in the task that
    started it, a timer is never sent, and the SDK's core cannot replay the one case where the
    start and the cancellation went out in two tasks (a query took the task apart around a
    local step: REVIEW_DEADLINE_LAPSES, docs/actions-and-replay.md)."""
    if not lapses:
        try:
            await workflow.wait_condition(condition, timeout=within, timeout_summary=summary)
        except TimeoutError:
            return False
        return True
    timer = asyncio.ensure_future(workflow.sleep(within, summary=summary))
    await workflow.wait_condition(lambda: condition() or timer.done())
    return condition()


class DeadlineClock:
    """Every deadline an execution has opened, and the breaches they produced."""

    def __init__(self, *, fire_by_timer: bool = False) -> None:
        self.views: dict[str, DeadlineView] = {}
        self.breaches: list[Breach] = []
        self._fire_by_timer = fire_by_timer

    def open(
        self,
        key: str,
        clause: Clause,
        deadline: Deadline,
        since: datetime,
        due: datetime | None = None,
    ) -> DeadlineView:
        """`due` (a promised time, R2.4.3) replaces the policy's soft deadline when given."""
        due_at = due or since + deadline.soft
        view = DeadlineView(
            key=key,
            clause=clause,
            started_at=since,
            due_at=due_at,
            hard_at=due_at + (deadline.hard - deadline.soft),
            state=DeadlineState.OPEN,
        )
        self.views[key] = view
        return view

    def close(self, view: DeadlineView, *, void: bool = False) -> None:
        if view.ended_at is not None:
            return
        view.ended_at = workflow.now()
        if void:
            view.state = DeadlineState.VOID
        elif view.state is DeadlineState.OPEN:
            view.state = DeadlineState.MET
        else:
            view.state = DeadlineState.MET_LATE

    def restart(self, view: DeadlineView, deadline: Deadline) -> None:
        """A new owner gets a fresh deadline (after a reassignment)."""
        now = workflow.now()
        view.started_at = now
        view.due_at = now + deadline.soft
        view.hard_at = now + deadline.hard
        view.state = DeadlineState.OPEN

    def move(self, view: DeadlineView, due: datetime, deadline: Deadline) -> None:
        """A new promise to the customer (R3.3.2 reschedule) moves a deadline not yet breached."""
        if view.state is DeadlineState.OPEN:
            view.due_at = due
            view.hard_at = due + (deadline.hard - deadline.soft)

    @property
    def breached(self) -> bool:
        return bool(self.breaches)

    async def watch(
        self,
        view: DeadlineView,
        done: Check,
        *,
        on_breach: Callable[[DeadlineView], Awaitable[None]],
        on_hard_limit: Callable[[DeadlineView], Awaitable[bool]],
        paused: Check = _never,
        lapses: bool = False,
    ) -> None:
        """Run until `done()`. `on_hard_limit` returns True when the clock should start over.
        `lapses`: a timer is left to fire once the work is done, never cancelled (`_wait`)."""
        while True:
            if await self._until(view, "due_at", done, paused, lapses=lapses):
                return
            view.state = DeadlineState.BREACHED
            self.breaches.append(
                Breach(key=view.key, clause=view.clause, at=workflow.now(), hard=False)
            )
            await on_breach(view)
            if await self._until(view, "hard_at", done, paused, passed_first=True, lapses=lapses):
                return
            view.state = DeadlineState.HARD_BREACHED
            self.breaches.append(
                Breach(key=view.key, clause=view.clause, at=workflow.now(), hard=True)
            )
            if not await on_hard_limit(view) or done():
                return

    async def _until(
        self,
        view: DeadlineView,
        field: str,
        done: Check,
        paused: Check,
        *,
        passed_first: bool = False,
        lapses: bool = False,
    ) -> bool:
        """Wait until `done()` (True) or the deadline in `field` passes (False). With
        `passed_first`, a deadline already past counts even if the work has just finished: a
        hard limit passed while the breach of the deadline was being reported."""
        if not self._fire_by_timer:
            return await self._until_compared(view, field, done, paused)
        if done() and not passed_first:
            return True
        remaining: timedelta = getattr(view, field) - workflow.now()
        if remaining <= timedelta(0):
            # Past already when the wait begins (a late push, R2.1.1): it passes on the next
            # task, by a timer like any other.
            await workflow.sleep(_AT_ONCE, summary=_summary(view, field))
            return False
        while not done():
            target: datetime = getattr(view, field)
            met = await _wait(lambda: done() or paused(), remaining, _summary(view, field), lapses)
            if not met:
                if done():
                    return True
                # Moved while the timer ran (a new promise, R3.3.2): wait out the difference.
                remaining = getattr(view, field) - target
                if remaining <= timedelta(0):
                    return False
                continue
            if paused() and not done():
                await self._hold(view, done, paused)
                remaining = max(getattr(view, field) - workflow.now(), _AT_ONCE)
        return True

    @staticmethod
    async def _hold(view: DeadlineView, done: Check, paused: Check) -> None:
        """Time on hold (R5.2.1) moves the deadline by as much."""
        held_since = workflow.now()
        await workflow.wait_condition(lambda: done() or not paused())
        held = workflow.now() - held_since
        view.due_at += held
        view.hard_at += held

    @classmethod
    async def _until_compared(
        cls, view: DeadlineView, field: str, done: Check, paused: Check
    ) -> bool:
        """Before FIRE_BY_TIMER: the deadline passes when workflow.now() is past it."""
        while not done():
            remaining: timedelta = getattr(view, field) - workflow.now()
            if remaining <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(lambda: done() or paused(), timeout=remaining)
            except TimeoutError:
                continue
            if paused() and not done():
                await cls._hold(view, done, paused)
        return True

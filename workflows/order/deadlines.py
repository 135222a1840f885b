"""The order's deadlines: every [X] minutes of the measures, from its policy's clauses.

Each piece of work with a clause runs under a watch on the shared DeadlineClock. The watch
never interrupts the work: past the soft deadline the supervisor is told; past the hard limit
the policy's action runs (reassign, escalate or cancel).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

from workflows.order.entity import Order
from workflows.order.patches import REVIEW_DEADLINE_LAPSES
from workflows.order.staffing import Staffing
from workflows.order.state import CancelRequest

with workflow.unsafe.imports_passed_through():
    from schemas.contract import Event, deadline_key
    from schemas.notices import Audience, Topic
    from schemas.policy import Clause, Deadline, HardAction
    from schemas.status import DeadlineView
    from workflows import search_attributes as sa

R = TypeVar("R")

LOCAL_WORK = frozenset({Clause.REVIEW})
"""Clauses whose work is one local step where LOCAL_WRITES is patched in: the review. Their
timers lapse (REVIEW_DEADLINE_LAPSES)."""

# Deadlines a person works to, as "my work" sorts them (R4.1.1): the record shows each as soon as
# it opens and once it closes. The others are the system's own and pass with an event.
WAITS_FOR_A_PERSON = frozenset(
    {
        Clause.CONFIRM,
        Clause.PREPARE,
        Clause.DELIVER,
        Clause.RECONFIRM_VISIT,
        Clause.EXECUTE,
        Clause.FEEDBACK_RESPONSE,
        Clause.FEEDBACK_RESOLUTION,
        Clause.REMINDER_REPLY,
        Clause.REFUND_DECISION,
    }
)


class Deadlines:
    """Every deadline goes on the order's one clock, so the status shows all it has had."""

    def __init__(self, order: Order, staffing: Staffing) -> None:
        self._order = order
        self._state = order.state
        self._clock = order.state.clock
        self._staffing = staffing

    async def within(
        self,
        clause: Clause,
        work: Coroutine[Any, Any, R],
        *,
        since: datetime | None = None,
        due: datetime | None = None,
        key: str | None = None,
        pausable: bool = True,
    ) -> R:
        """Run a stage's work under its deadline; the watch never interrupts the work itself."""
        view = self._clock.open(
            key or deadline_key(clause),
            clause,
            self.deadline(clause),
            since or workflow.now(),
            due,
        )
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(
            self._clock.watch(
                view,
                task.done,
                on_breach=self._on_breach,
                on_hard_limit=self._on_hard_limit,
                paused=(lambda: self._state.on_hold) if pausable else (lambda: False),
                lapses=self._lapses(clause),
            )
        )
        on_record = clause in WAITS_FOR_A_PERSON
        try:
            if on_record:
                await self._order.record_view()
            result = await task
        except (Exception, asyncio.CancelledError):
            self._clock.close(view, void=True)
            await watch
            raise
        self._clock.close(view)
        await watch
        if on_record:
            await self._order.record_view()
        return result

    def _lapses(self, clause: Clause) -> bool:
        order = self._order
        return (
            clause in LOCAL_WORK
            and order.steps.local_writes
            and order.patches.patched(REVIEW_DEADLINE_LAPSES)
        )

    def deadline(self, clause: Clause) -> Deadline:
        if clause is Clause.RECEIVE:
            return self._state.snapshot.receive
        return self._state.policy.deadlines.of(clause)

    def follow_visit(self, slot_start: datetime) -> None:
        """R3.2.1 the visit moved: its execution deadline follows the new slot."""
        deadline = self.deadline(Clause.EXECUTE)
        for view in self._clock.views.values():
            if view.clause is Clause.EXECUTE:
                self._clock.move(view, slot_start + deadline.soft, deadline)

    def follow_promise(self, ready_at: datetime | None, shift: timedelta) -> None:
        """R3.3.2 a new promise: the preparing and delivery deadlines move with it."""
        for view in self._clock.views.values():
            if view.clause is Clause.PREPARE and ready_at is not None:
                self._clock.move(view, ready_at, self.deadline(view.clause))
            elif view.clause is Clause.DELIVER:
                self._clock.move(view, view.due_at + shift, self.deadline(view.clause))

    async def _on_breach(self, view: DeadlineView) -> None:
        """Recorded, flagged for search, and the supervisor told."""
        self._order.visibility.show(sa.SLA_BREACHED.value_set(True))
        await self._order.log(
            Event.DEADLINE_BREACHED, key=view.key, due_at=view.due_at.isoformat(), on_record=False
        )
        await self._order.steps.tell(
            Audience.SUPERVISOR,
            Topic.DEADLINE_MISSED,
            {
                "clause": view.clause.value,
                "due": view.due_at.isoformat(),
                "hard_at": view.hard_at.isoformat(),
                "stage": self._state.stage.value,
            },
        )

    async def _on_hard_limit(self, view: DeadlineView) -> bool:
        """The policy's action; True when the clock starts over for a new assignee."""
        state = self._state
        deadline = self.deadline(view.clause)
        action = deadline.action
        if action is HardAction.REASSIGN and state.reassignments >= state.policy.max_reassignments:
            action = HardAction.ESCALATE
        self._clock.breaches[-1].action = action
        await self._order.log(Event.HARD_LIMIT_PASSED, key=view.key, action=action.value)
        if action is HardAction.CANCEL:
            assert deadline.cancel_code is not None
            self._order.request_cancel(
                CancelRequest(
                    deadline.cancel_code,
                    f"{view.clause.value} past its hard limit",
                    "policy",
                    False,
                )
            )
            return False
        if action is HardAction.REASSIGN and await self._staffing.reassign(
            f"{view.clause.value} past its hard limit", by="policy"
        ):
            self._clock.restart(view, deadline)
            return True
        await self._order.steps.tell(
            Audience.MANAGER,
            Topic.HARD_LIMIT,
            {"clause": view.clause.value, "stage": state.stage.value, "brief": state.brief()},
            recipient=state.manager_id,
        )
        return False

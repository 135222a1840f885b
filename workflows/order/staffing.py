"""Who works on the order (R2.3): the first assignee, and a new one when a person asks or a
deadline's hard limit says so."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.order.entity import Order, not_allowed, refusal
from workflows.order.waiting import look_until_found

with workflow.unsafe.imports_passed_through():
    from activities.assignment import Assignment
    from schemas.contract import Event
    from schemas.messages import Reassign, UpdateResult
    from schemas.notices import Audience, Notification, Topic
    from schemas.order import Stage
    from schemas.policy import Clause
    from schemas.resources import Assignee, AssignInput, ReleaseAssignment
    from workflows import search_attributes as sa


class Staffing:
    """One reassignment at a time: a person's and a deadline's never claim two people at once."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = order.state
        self._lock = asyncio.Lock()

    async def first_assignee(self) -> Assignee:
        """Waits for capacity to free up rather than overloading anyone (R2.3.2)."""
        return await look_until_found(
            self._order, Event.WAITING_FOR_CAPACITY, lambda: self._find(exclude=[], preferred=None)
        )

    async def take(self, assignee: Assignee) -> None:
        """The order is the assignee's, searchable by them, and they are told: by the claim
        itself where TOLD_AND_SHOWN_WITH_THE_WORK is patched in (`_notice`)."""
        state = self._state
        state.assignee = assignee
        self._order.visibility.show(sa.ASSIGNEE_ID.value_set(assignee.staff_id))
        if self._order.patches.with_the_work:
            return
        await self._order.steps.tell(
            Audience.STAFF,
            Topic.ASSIGNED,
            {"brief": state.brief()},
            recipient=assignee.staff_id,
            due_at=self._confirm_due(),
        )

    def _notice(self) -> Notification | None:
        """R2.3.3 what the claim tells the person it claims (its recipient filled in there)."""
        if not self._order.patches.with_the_work:
            return None
        return self._order.steps.notice(
            Audience.STAFF,
            Topic.ASSIGNED,
            {"brief": self._state.brief()},
            due_at=self._confirm_due(),
        )

    def _confirm_due(self) -> datetime | None:
        """R2.4.1 the assignee's first task, confirming with the customer, is due within its
        clause; an order confirmed without a call (takeout) has no such task."""
        state = self._state
        if state.policy.auto_confirm or state.promise is not None:
            return None
        return workflow.now() + state.policy.deadlines.of(Clause.CONFIRM).soft

    async def reassign(self, reason: str, by: str, to: str | None = None) -> bool:
        """Claim the new person before freeing the old one; False when nobody else is free."""
        state = self._state
        async with self._lock:
            old = state.assignee
            new = await self._find(exclude=[old.staff_id] if old else [], preferred=to)
            if new is None:
                await self._order.log(Event.REASSIGN_FAILED, actor=by, reason=reason)
                return False
            state.reassignments += 1
            if old is not None:
                await self._order.steps.act(
                    Assignment.release_assignment,
                    ReleaseAssignment(order_id=state.order_id, staff_id=old.staff_id),
                )
            await self.take(new)
            await self._order.log(
                Event.REASSIGNED,
                actor=by,
                reason=reason,
                from_staff=old.staff_id if old else None,
                to_staff=new.staff_id,
            )
            return True

    # --- a person asks ---------------------------------------------------------------------

    async def reassign_on_request(self, msg: Reassign) -> UpdateResult:
        if not await self.reassign(msg.reason, by=msg.by, to=msg.to):
            raise ApplicationError(
                f"nobody else can take order {self._state.order_id} now",
                type="NoAssigneeAvailable",
            )
        assert self._state.assignee is not None
        return self._order.result(f"reassigned to {self._state.assignee.staff_id}")

    def check_reassign(self, msg: Reassign) -> None:
        self._order.require_stage(
            "reassign", Stage.ASSIGNED, Stage.CONFIRMED, Stage.IN_PROGRESS, Stage.DELIVERING
        )
        if self._state.assignee and msg.to == self._state.assignee.staff_id:
            raise not_allowed(f"{msg.to} already has this order")

    async def _find(self, exclude: list[str], preferred: str | None) -> Assignee | None:
        state = self._state
        try:
            return await self._order.steps.act(
                Assignment.assign_order,
                AssignInput(
                    order_id=state.order_id,
                    order_type=state.order_type,
                    store_code=state.order.store_code,
                    region=state.recorded.region,
                    skills=state.recorded.skills,
                    exclude=exclude,
                    preferred=preferred,
                    round=state.reassignments + 1,
                    notice=self._notice(),
                ),
            )
        except ActivityError as err:
            refused = refusal(err)
            if refused is None or refused.type != "NoAssigneeAvailable":
                raise
            return None

"""The customer (R2.4.1-R2.4.3): the promise confirmed with them, and the changes they make after
ordering, which go back through review and confirmation."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow

from workflows.order.deadlines import Deadlines
from workflows.order.entity import Order, not_allowed
from workflows.order.fulfilment import Fulfilment
from workflows.order.review import Reviewer
from workflows.order.state import CancelRequest, Halt

with workflow.unsafe.imports_passed_through():
    from schemas.contract import Event, deadline_key
    from schemas.messages import ConfirmWithCustomer, CustomerChange, UpdateResult
    from schemas.notices import Audience, Topic
    from schemas.order import OrderType, Stage
    from schemas.policy import Clause
    from schemas.review import Outcome
    from schemas.status import Promise

MERCHANT_CHANGED = 2002  # order changed, not the customer's fault


class Customer:
    """Changes are rechecked one at a time, each against the order the one before left."""

    def __init__(
        self, order: Order, deadlines: Deadlines, reviewer: Reviewer, fulfilment: Fulfilment
    ) -> None:
        self._order = order
        self._state = order.state
        self._deadlines = deadlines
        self._reviewer = reviewer
        self._fulfilment = fulfilment
        self._change_lock = asyncio.Lock()

    # --- the promise -----------------------------------------------------------------------

    async def auto_confirm(self) -> None:
        """Takeout rarely needs a call: the promise follows from the policy's times."""
        state = self._state
        now = workflow.now()
        ready = now + state.policy.deadlines.prepare.soft
        delivery = state.order.expected_at or ready + state.policy.deadlines.deliver.soft
        await self._promise(
            ConfirmWithCustomer(
                by="system",
                channel="automatic",
                promised_ready_at=min(ready, delivery),
                promised_delivery_at=delivery,
            ),
            told_meanwhile=self._order.patches.with_the_work,
        )

    async def confirm(self, msg: ConfirmWithCustomer) -> UpdateResult:
        await self._promise(msg)
        return self._order.result("confirmed with the customer")

    def check_confirm(self, msg: ConfirmWithCustomer) -> None:
        state = self._state
        self._order.require_active("confirm_with_customer")
        if not (state.awaiting_reconfirmation or state.stage is Stage.ASSIGNED):
            raise not_allowed(
                f"confirm_with_customer is for an assigned order or one the customer changed; "
                f"this order is {state.stage.value}"
            )
        if msg.promised_delivery_at <= workflow.now():
            raise not_allowed("promised_delivery_at must be in the future")

    async def _promise(self, msg: ConfirmWithCustomer, *, told_meanwhile: bool = False) -> None:
        """R2.4.3 the customer is told the expected times and the promises. `told_meanwhile`:
        the order goes on while the notice is written (a promise nobody had to make)."""
        state = self._state
        moved = state.promise is not None and state.promise.delivery_at != msg.promised_delivery_at
        state.promise = Promise(
            ready_at=msg.promised_ready_at,
            delivery_at=msg.promised_delivery_at,
            promises=msg.promises,
            confirmed_by=msg.by,
            confirmed_at=workflow.now(),
        )
        state.awaiting_reconfirmation = False
        if moved and state.booking is not None:
            self._order.spawn(self._fulfilment.rebook())
        await self._order.log(
            Event.CONFIRMED_WITH_CUSTOMER,
            actor=msg.by,
            channel=msg.channel,
            promised_delivery_at=msg.promised_delivery_at.isoformat(),
        )
        what = "visit" if state.order_type is OrderType.SERVICE else "delivery"
        told = self._order.steps.tell(
            Audience.CUSTOMER,
            Topic.CONFIRMED,
            {
                "what": what,
                "promised_at": msg.promised_delivery_at.isoformat(),
                "promises": msg.promises,
            },
        )
        if told_meanwhile:
            self._order.spawn(told)
        else:
            await told

    # --- changes ---------------------------------------------------------------------------

    async def change(self, msg: CustomerChange) -> None:
        """R2.4.2 changed fields go back through review and re-confirmation."""
        state = self._state
        if state.finished or state.stage in (Stage.DELIVERED, Stage.CLOSED):
            await self._order.log(
                Event.CUSTOMER_CHANGE_IGNORED, reason=f"order is {state.standing}"
            )
            return
        fields = msg.changes.changed_fields()
        state.order = msg.changes.apply(state.order)
        state.changes += 1
        state.order_version += 1  # R1.3 on record with the event below
        await self._order.log(
            Event.CUSTOMER_CHANGED, actor="customer", fields=fields, note=msg.note
        )
        await workflow.wait_condition(lambda: state.reviewed or state.finished)
        if state.finished:
            return
        async with self._change_lock:
            with contextlib.suppress(Halt):
                await self._recheck(fields)

    async def _recheck(self, fields: list[str]) -> None:
        state = self._state
        verdict = await self._reviewer.verdict()
        await self._reviewer.note(verdict)
        if verdict.outcome is Outcome.REJECT:
            self._order.request_cancel(
                CancelRequest(
                    verdict.cancel_code or MERCHANT_CHANGED, verdict.reason, "review", False
                )
            )
            return
        if verdict.outcome is Outcome.ANOMALY:
            await self._reviewer.hold(verdict)
        if "items" in fields and state.stock_reserved:
            await self._fulfilment.reserve_stock_again()
        if state.promise is None:
            return  # not confirmed yet: the confirm stage covers the change
        state.awaiting_reconfirmation = True
        if state.policy.auto_confirm:
            await self.auto_confirm()
            return
        assert state.assignee is not None
        await self._order.steps.tell(
            Audience.STAFF,
            Topic.CHANGED,
            {"fields": ", ".join(fields)},
            recipient=state.assignee.staff_id,
            due_at=workflow.now() + self._deadlines.deadline(Clause.CONFIRM).soft,
        )
        await self._deadlines.within(
            Clause.CONFIRM,
            workflow.wait_condition(lambda: not state.awaiting_reconfirmation or state.finished),
            key=deadline_key(Clause.CONFIRM, state.changes + 1),
        )

"""Holds (R5.2): an anomalous order pauses at once while an AnomalyWorkflow child waits for a
manager's decision, then resumes where it was or ends by that decision."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle

from workflows.order.state import MERCHANT_OTHER, CancelRequest, Halt

with workflow.unsafe.imports_passed_through():
    from schemas.anomaly import AnomalyInput, AnomalyOutcome
    from schemas.contract import Event, anomaly_workflow_id
    from schemas.order import Stage
    from schemas.review import AnomalyKind, RuleFailure
    from schemas.status import AnomalyView
    from workflows import search_attributes as sa
    from workflows.anomaly import AnomalyWorkflow

if TYPE_CHECKING:
    from workflows.order.entity import Order


class Holds:
    """The order's anomalies, one at a time: a second waits until the first is decided."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = order.state
        self._lock = asyncio.Lock()

    async def open(
        self, kind: AnomalyKind, detail: str, failures: list[RuleFailure] | None = None
    ) -> AnomalyOutcome:
        """Pause at once, wait for the child's decision, then resume or end (R5.2.1, R5.2.4)."""
        state = self._state
        async with self._lock:
            number = len(state.anomalies) + 1
            view = AnomalyView(
                anomaly_id=anomaly_workflow_id(state.order_id, number),
                kind=kind,
                detail=detail,
                opened_at=workflow.now(),
                paused_stage=state.stage,
            )
            state.held_by = view.anomaly_id
            self._hold(True)
            await self._order.log(Event.ANOMALY_OPENED, anomaly_id=view.anomaly_id, kind=kind.value)
            child = await workflow.start_child_workflow(
                AnomalyWorkflow.run, self._input(number, view, failures), id=view.anomaly_id
            )
            # Shown once the child exists, so whoever sees it can decide it straight away.
            state.anomalies.append(view)
            await self._order.record_view()  # R5.2.2 the managers' inbox reads the record
            await workflow.wait_condition(lambda: child.done() or state.cancel is not None)
            if not child.done():
                await self._end_with_order(child, view)
                raise Halt
            outcome = child.result()
            view.decision = outcome.decision.value
            view.resumed = outcome.resume
            view.closed_at = workflow.now()
            await self._apply(outcome)
            self._hold(False)
        if not outcome.resume:
            self._order.request_cancel(
                CancelRequest(
                    outcome.cancel_code or MERCHANT_OTHER,
                    f"anomaly {outcome.kind.value}: {outcome.decision.value} ({outcome.cause})",
                    outcome.decided_by,
                    False,
                )
            )
            raise Halt
        return outcome

    def _input(
        self, number: int, view: AnomalyView, failures: list[RuleFailure] | None
    ) -> AnomalyInput:
        """What the manager needs to decide, and where the child sends merchant API calls."""
        state = self._state
        return AnomalyInput(
            order_id=state.order_id,
            number=number,
            kind=view.kind,
            detail=view.detail,
            failures=failures or [],
            store_code=state.order.store_code,
            customer_id=state.recorded.customer_id,
            manager_id=state.manager_id,
            paused_stage=view.paused_stage.value,
            deadline=state.policy.deadlines.anomaly_decision,
            platform_task_queue=state.snapshot.platform_task_queue,
        )

    async def _end_with_order(
        self, child: ChildWorkflowHandle[AnomalyWorkflow, AnomalyOutcome], view: AnomalyView
    ) -> None:
        """The order is being cancelled before a decision: the child ends with it."""
        child.cancel()
        with contextlib.suppress(ChildWorkflowError, asyncio.CancelledError):
            await child
        view.decision = "cancel"  # as the child records it: ended with the order
        view.resumed = False
        view.closed_at = workflow.now()
        self._hold(False)

    def open_later(self, kind: AnomalyKind, detail: str) -> None:
        """From a message handler: the handler answers now; the order pauses until decided."""
        self._order.spawn(self.open(kind, detail))

    async def _apply(self, outcome: AnomalyOutcome) -> None:
        """The manager's corrections become the order's own."""
        state = self._state
        if outcome.corrections is not None:
            state.order = outcome.corrections.apply(state.order)
        if outcome.new_total is not None:
            state.order = state.order.model_copy(update={"total": outcome.new_total})
        if outcome.corrections is not None or outcome.new_total is not None:
            state.order_version += 1  # R1.3 on record with the event below
        await self._order.log(
            Event.ANOMALY_CLOSED,
            actor=outcome.decided_by,
            anomaly_id=outcome.anomaly_id,
            decision=outcome.decision.value,
            resume=outcome.resume,
            cause=outcome.cause,
            responsibility=outcome.responsibility,
        )

    def _hold(self, on: bool) -> None:
        state = self._state
        state.on_hold = on
        if on:
            state.paused_stage = state.stage
            self._order.set_stage(Stage.ON_HOLD)
        elif state.paused_stage is not None:
            if not state.stage.terminal:
                self._order.set_stage(state.paused_stage)
            state.paused_stage = None
        self._order.visibility.show(sa.ANOMALY_OPEN.value_set(on))

"""AnomalyWorkflow: a manager investigates an anomalous order and decides (R5.2)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.credit import Credit
    from activities.orders import OrderRecords
    from activities.platform_calls import PlatformCalls
    from schemas.anomaly import (
        AnomalyInput,
        AnomalyOutcome,
        AnomalyRecord,
        AnomalyStatus,
        Decide,
        Decision,
    )
    from schemas.notices import Audience, Topic
    from schemas.platform_calls import PlatformReport
    from schemas.policy import Clause, HardAction
    from schemas.records import CreditEvent, CreditEventKind
    from schemas.review import AnomalyKind
    from schemas.status import DeadlineView
    from workflows.deadlines import FIRE_BY_TIMER, DeadlineClock
    from workflows.steps import Steps

# A cancellation that lands while an activity is finishing is taken by that activity (its
# result wins), so the workflow also checks for one after each step. Anomalies started before
# this version do not, and replay as they ran.
CANCEL_SEEN_WHEREVER_IT_LANDS = "anomaly-cancel-seen-wherever-it-lands"
# A decision and the order's cancellation in one workflow task: the cancellation takes the step
# that records the decision, which is then recorded again. Anomalies before this ended
# cancelled with their record open.
DECISION_RECORDED_THROUGH_CANCEL = "anomaly-decision-recorded-through-cancel"
# The same, when the cancellation lands in the task where the remedy's last step finishes: it
# comes as the task's cancellation (asyncio.CancelledError), not as a step's failure, and takes
# the remedy or the step that records the decision before it is sent. Anomalies before this
# ended cancelled with their record open (tests/histories/anomaly-cancelled-while-closing.json).
DECISION_RECORDED_THROUGH_TASK_CANCEL = "anomaly-decision-recorded-through-task-cancel"


def _remedy_ends_with_order(err: BaseException) -> bool:
    """Whether a remedy the order's cancellation cut short still leaves the decision to be
    recorded (a step's failure always did)."""
    return isinstance(err, ActivityError) or workflow.patched(DECISION_RECORDED_THROUGH_TASK_CANCEL)


def _recorded_again(err: BaseException) -> bool:
    """Whether a decision whose recording the order's cancellation took is recorded again."""
    if isinstance(err, ActivityError):
        return workflow.patched(DECISION_RECORDED_THROUGH_CANCEL)
    return workflow.patched(DECISION_RECORDED_THROUGH_TASK_CANCEL)


# Which decisions make sense for which kind; the rest are refused with a clear message.
_ONLY_FOR: dict[Decision, set[AnomalyKind]] = {
    Decision.ADJUST_PRICE: {AnomalyKind.PRICE},
}


@workflow.defn
class AnomalyWorkflow:
    @workflow.init
    def __init__(self, inp: AnomalyInput) -> None:
        """Before any handler runs: a decision can reach the child in its first task, before
        `run` has started, and its validator reads what the anomaly is about."""
        self._inp = inp
        self._id = workflow.info().workflow_id
        self._decision: Decide | None = None
        self._escalations = 0
        self._outcome: AnomalyOutcome | None = None
        self._steps = Steps(
            order_id=inp.order_id, store_code=inp.store_code, notice_key=self._id, gives_up=False
        ).route(inp.platform_task_queue)
        self._opened_at = workflow.now()

    @workflow.run
    async def run(self, inp: AnomalyInput) -> AnomalyOutcome:
        self._cancel_taken_into_account = workflow.patched(CANCEL_SEEN_WHEREVER_IT_LANDS)
        self._clock = DeadlineClock(fire_by_timer=workflow.patched(FIRE_BY_TIMER))
        try:
            await self._open()
        except (asyncio.CancelledError, ActivityError) as err:
            await self._end_if_cancelled(err)
            raise
        try:
            if self._ended():
                raise asyncio.CancelledError
            await self._await_decision()
        except asyncio.CancelledError:
            await self._ended_before_decision()
            raise
        except ActivityError as err:
            await self._end_if_cancelled(err)
            raise
        assert self._decision is not None
        try:
            await self._remedy(self._decision)
        except (ActivityError, asyncio.CancelledError) as err:
            if not (self._ended() and _remedy_ends_with_order(err)):
                raise
            # The order ended while the remedy was under way: the decision stands on record.
        outcome = self._record_outcome(self._decision)
        try:
            await self._close(outcome)
        except (ActivityError, asyncio.CancelledError) as err:
            if not (self._ended() and _recorded_again(err)):
                raise
            await self._close(outcome)  # R5.2.4 the decision stands on record
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._outcome is not None
        return self._outcome

    # --- stages -------------------------------------------------------------------------------

    async def _open(self) -> None:
        """R5.2.1 recorded and the responsible manager told at once."""
        await self._steps.act(
            OrderRecords.record_anomaly,
            AnomalyRecord(
                anomaly_id=self._id,
                order_id=self._inp.order_id,
                kind=self._inp.kind,
                detail=self._inp.detail,
                opened_at=self._opened_at,
            ),
        )
        await self._steps.tell(
            Audience.MANAGER,
            Topic.ANOMALY_OPENED,
            {"kind": self._inp.kind.value, "detail": self._inp.detail},
            recipient=self._inp.manager_id,
            due_at=self._opened_at + self._inp.deadline.soft,  # R5.2.2 the decision's clause
        )

    async def _await_decision(self) -> None:
        """R5.2.2 the manager investigates and decides, under the anomaly_decision clause."""
        view = self._clock.open(
            Clause.ANOMALY_DECISION.value,
            Clause.ANOMALY_DECISION,
            self._inp.deadline,
            self._opened_at,
        )
        await self._clock.watch(
            view, self._decided_or_ended, on_breach=self._escalate, on_hard_limit=self._hard_limit
        )
        await workflow.wait_condition(self._decided_or_ended)
        if self._decision is None:
            raise asyncio.CancelledError
        self._clock.close(view)

    def _decided_or_ended(self) -> bool:
        return self._decision is not None or self._ended()

    def _ended(self) -> bool:
        """The order cancelled this, whether or not the cancellation reached a waiting step."""
        return self._cancel_taken_into_account and workflow.cancellation_reason() is not None

    async def _remedy(self, decision: Decide) -> None:
        """R5.2.3 remedy by cause."""
        order_id = self._inp.order_id
        if decision.decision is Decision.CONFIRM_FRAUD:
            await self._steps.act(
                Credit.record_credit_event,
                CreditEvent(
                    customer_id=self._inp.customer_id,
                    order_id=order_id,
                    kind=CreditEventKind.FRAUD,
                    note=decision.cause,
                ),
            )
            await self._steps.act(
                PlatformCalls.report_to_platform,
                PlatformReport(order_id=order_id, kind="fraud", text=decision.cause),
            )
        elif decision.decision is Decision.AGREED_WITH_PLATFORM:
            await self._steps.act(
                PlatformCalls.report_to_platform,
                PlatformReport(
                    order_id=order_id, kind="agreement", text=decision.note or decision.cause
                ),
            )
        if decision.decision in (Decision.CORRECT_INFO, Decision.ADJUST_PRICE):
            await self._steps.tell(
                Audience.CUSTOMER,
                Topic.ORDER_UPDATED,
                {"note": decision.note or decision.decision.value},
            )

    async def _end_if_cancelled(self, err: BaseException) -> None:
        """The order's cancellation reaches a step in flight as its cancellation, or as its
        failure (a worker lost mid-step is not retried once cancelled): either way this ends,
        its record closed. Anomalies older than the patch raised as is."""
        if self._ended():
            await self._ended_before_decision()
            raise asyncio.CancelledError from err

    async def _ended_before_decision(self) -> None:
        """R5.2.4 the order ended while this was open (cancelled by the platform, say)."""
        self._decision = Decide(
            by="system",
            decision=Decision.CANCEL,
            cause="the order ended before a decision",
            responsibility="none",
            cancel_code=2007,
        )
        await self._close(self._record_outcome(self._decision))

    async def _close(self, outcome: AnomalyOutcome) -> None:
        """R5.2.4 the outcome recorded for lookup and statistics."""
        self._outcome = outcome
        await self._steps.act(
            OrderRecords.record_anomaly,
            AnomalyRecord(
                anomaly_id=self._id,
                order_id=self._inp.order_id,
                kind=self._inp.kind,
                detail=self._inp.detail,
                opened_at=self._opened_at,
                outcome=outcome,
            ),
        )

    def _record_outcome(self, decision: Decide) -> AnomalyOutcome:
        return AnomalyOutcome(
            anomaly_id=self._id,
            kind=self._inp.kind,
            decision=decision.decision,
            resume=decision.resumes,
            cause=decision.cause,
            responsibility=decision.responsibility,
            decided_by=decision.by,
            decided_at=workflow.now(),
            note=decision.note,
            corrections=decision.corrections,
            new_total=decision.new_total,
            cancel_code=decision.cancel_code,
            escalations=self._escalations,
        )

    # --- deadline actions ---------------------------------------------------------------------

    async def _escalate(self, view: DeadlineView) -> None:
        self._escalations += 1
        await self._steps.tell(
            Audience.SUPERVISOR,
            Topic.ANOMALY_UNDECIDED,
            {"started_at": view.started_at.isoformat()},
            due_at=view.due_at,
        )

    async def _hard_limit(self, view: DeadlineView) -> bool:
        deadline = self._inp.deadline
        self._clock.breaches[-1].action = deadline.action
        if deadline.action is HardAction.CANCEL and self._decision is None:
            self._decision = Decide(
                by="policy",
                decision=Decision.CANCEL,
                cause="no decision within the anomaly_decision hard limit",
                responsibility="store",
                cancel_code=deadline.cancel_code,
            )
            return False
        self._escalations += 1
        await self._steps.tell(Audience.MANAGER, Topic.ANOMALY_HARD_LIMIT)
        return False

    # --- messages -----------------------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: Decide) -> AnomalyOutcome:
        self._decision = decision
        await workflow.wait_condition(lambda: self._outcome is not None)
        assert self._outcome is not None
        return self._outcome

    @decide.validator
    def _validate_decide(self, decision: Decide) -> None:
        if self._decision is not None:
            raise ApplicationError(
                f"{self._id} was already decided ({self._decision.decision.value})",
                type="NotAllowed",
                non_retryable=True,
            )
        allowed = _ONLY_FOR.get(decision.decision)
        if allowed is not None and self._inp.kind not in allowed:
            raise ApplicationError(
                f"{decision.decision.value} does not apply to {self._inp.kind.value} anomalies",
                type="NotAllowed",
                non_retryable=True,
            )

    @workflow.query
    def status(self) -> AnomalyStatus:
        view = self._clock.views.get(Clause.ANOMALY_DECISION.value)
        return AnomalyStatus(
            anomaly_id=self._id,
            order_id=self._inp.order_id,
            kind=self._inp.kind,
            detail=self._inp.detail,
            state="decided" if self._outcome else ("escalated" if self._escalations else "open"),
            opened_at=self._opened_at,
            due_at=view.due_at if view else self._opened_at + self._inp.deadline.soft,
            hard_at=view.hard_at if view else self._opened_at + self._inp.deadline.hard,
            escalations=self._escalations,
            outcome=self._outcome,
        )

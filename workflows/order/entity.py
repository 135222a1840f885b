"""The order as its parts act on it: its state, and the steps every part takes with it.

A step is an activity with the order's options; a failure nobody expects holds the order for a
manager (`step`). Every wait of the lifecycle ends when the order is being cancelled
(`until`), and every stage change, breach and human action goes on the timeline (`log`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from workflows.order.holds import Holds
from workflows.order.patches import (
    RECORD_VIEW_BETWEEN_EVENTS,
    REWRITE_ON_SIGNAL,
    TIMELINE_BEFORE_RECORD,
    Patches,
)
from workflows.order.state import CancelRequest, Halt, OrderState
from workflows.order.visibility import Visibility

with workflow.unsafe.imports_passed_through():
    from activities.assignment import Assignment
    from activities.credit import Credit
    from activities.orders import OrderRecords
    from schemas.contract import Event
    from schemas.messages import UpdateResult
    from schemas.order import PlatformOrder, Stage
    from schemas.platform_calls import PlatformOrderCall
    from schemas.records import (
        CreditEvent,
        OrderSummary,
        RecordEvent,
        RecordEvents,
        RecordFence,
        RecordView,
        TimelineEntry,
    )
    from schemas.resources import ReleaseAssignment
    from schemas.review import AnomalyKind
    from schemas.status import OrderOutcome, OrderStatus
    from workflows import search_attributes as sa
    from workflows import story
    from workflows.steps import Steps
    from workflows.summary import summarise

A = TypeVar("A")
R = TypeVar("R")


def refusal(err: ActivityError) -> ApplicationError | None:
    """The business refusal behind an activity failure, if that is what it was."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


def gave_up(err: ActivityError) -> bool:
    """The step tried for as long as its kind allows (`activity_options.gives_up_after`)."""
    return err.retry_state in (RetryState.TIMEOUT, RetryState.MAXIMUM_ATTEMPTS_REACHED)


def not_allowed(message: str) -> ApplicationError:
    """An update refused: the caller gets the reason, the order stays as it was."""
    return ApplicationError(message, type="NotAllowed", non_retryable=True)


def when(moment: datetime) -> str:
    """A time as people read it in a notice, to the minute."""
    return moment.strftime("%Y-%m-%d %H:%M")


class _Carried(TypedDict):
    """What every write to the record carries besides its lines (`Order._next_view`)."""

    order_id: str
    view: OrderStatus
    view_version: int
    order: PlatformOrder | None


class Order:
    """One per workflow run, shared by every part of the order."""

    def __init__(self, state: OrderState, steps: Steps, patches: Patches) -> None:
        self.state = state
        self.steps = steps
        self.patches = patches
        self.visibility = Visibility(steps, self._progress)
        self.holds = Holds(self)
        self._background: list[asyncio.Task[Any]] = []

    # --- steps -----------------------------------------------------------------------------

    async def step(
        self,
        fn: Callable[[Any, A], Awaitable[R]],
        arg: A,
        *,
        refusals: set[str] | frozenset[str] = frozenset(),
    ) -> R:
        """A lifecycle step. A refusal the caller expects is raised to it; any other, or a step
        that gave up trying, is a system fault (R5.1 (5)) for a manager, and the step is tried
        again if they resume."""
        while True:
            if self.state.cancel is not None:
                raise Halt
            try:
                return await self.steps.act(fn, arg)
            except ActivityError as err:
                refused = refusal(err)
                if refused is not None and refused.type in refusals:
                    raise
                if refused is None and not gave_up(err):
                    raise
                name = getattr(fn, "__name__", "step")
                why = refused.message if refused else "gave up: no answer in the time allowed"
                await self.holds.open(AnomalyKind.OTHER, f"system fault in {name}: {why}")

    async def until(self, condition: Callable[[], bool], at_most: timedelta | None = None) -> None:
        """A lifecycle wait: returns when `condition()` holds or `at_most` passes, and halts
        the lifecycle when the order is being cancelled."""
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: condition() or self.state.cancel is not None, timeout=at_most
            )
        if self.state.cancel is not None:
            raise Halt

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work the order starts but does not wait for (a message handler's, a notice nothing
        waits on); `run` waits for it at the end."""

        async def run() -> None:
            with contextlib.suppress(Halt):
                await work

        self._background.append(asyncio.create_task(run()))

    @contextlib.contextmanager
    def answering(self, matter: str) -> Iterator[None]:
        """Claims a matter for the update answering it, from its first line to its last.

        An update's validator runs, and its handler runs to its first await, before the next
        update is looked at; a handler that changed the matter only after awaiting the platform
        let a second answer through (a refund agreed and rejected). Claimed before any await, a
        second answer is refused by `require_unclaimed`; a failed answer frees the matter.
        """
        self.state.answering.add(matter)
        try:
            yield
        finally:
            self.state.answering.discard(matter)

    def require_unclaimed(self, matter: str, what: str) -> None:
        if matter in self.state.answering:
            raise not_allowed(f"{what} is being answered already")

    async def count_credit(self, event: CreditEvent) -> None:
        """R5.3.3 the customer's credit moved by the order done: with its line, where the
        recorder carries it (ENDING_WITH_THE_RECORD)."""
        if self._carried_by_the_recorder():
            self.state.credit = event
            return
        await self.steps.act(Credit.record_credit_event, event)

    async def release_assignee(self, release: ReleaseAssignment) -> None:
        """The assignee's capacity back as the order closes: with the order's last line,
        where the recorder carries it (ENDING_WITH_THE_RECORD)."""
        if self._carried_by_the_recorder():
            self.state.release = release
            return
        await self.step(Assignment.release_assignment, release)

    def _carried_by_the_recorder(self) -> bool:
        """ENDING_WITH_THE_RECORD, while the recorder runs: a write it makes will carry this."""
        state = self.state
        return state.ending_on_record and state.record is not None and not state.recording_ends

    def _progress(self) -> tuple[int, int, int]:
        return len(self.state.timeline), self.steps.busy, self.steps.local_in_flight

    def background_done(self) -> bool:
        return all(t.done() for t in self._background)

    def call(self) -> PlatformOrderCall:
        return PlatformOrderCall(order_id=self.state.order_id)

    # --- stages and the timeline -----------------------------------------------------------

    def set_stage(self, stage: Stage) -> None:
        self.state.stage = stage
        self.state.stages.append((stage, workflow.now()))
        self.visibility.show(
            sa.ORDER_STAGE.value_set(stage.value),
            sa.STORE_CODE.value_set(self.state.order.store_code),
        )

    async def enter(self, stage: Stage, **details: Any) -> None:
        """A stage change waits while the order is on hold: processing pauses at once (R5.2.1).
        The lifecycle goes on while its line goes on record (in bursts)."""
        await self.until(lambda: not self.state.on_hold)
        self.set_stage(stage)
        await self.log(Event.stage(stage), on_record=False, **details)

    async def log(
        self, event: Event, actor: str = "system", *, on_record: bool = True, **details: Any
    ) -> None:
        """R4.1.3 every stage change, breach and human action: who, when, what. `on_record`:
        returns once the line is on record, so that a person's action answered is one they
        read back; in bursts the lifecycle's own lines need not wait."""
        state = self.state
        entry = TimelineEntry(
            seq=len(state.timeline) + 1,
            at=workflow.now(),
            event=event.value,
            stage=state.stage,
            actor=actor,
            details=details,
        )
        state.timeline.append(entry)
        self.show()
        if state.record is None:
            return
        if not state.in_bursts:
            await self.steps.act(OrderRecords.record_event, self._on_record(entry))
        elif on_record:
            state.record_waiters += 1
            await workflow.wait_condition(lambda: state.entries_recorded >= entry.seq)
            state.record_waiters -= 1

    async def record_in_bursts(self) -> None:
        """R4.1.3, R1.3 the recorder of RECORD_IN_BURSTS: whatever the order logged since its
        last write, with the status after it, in one write, once the order settles: no step in
        flight (it waits for a person, a timer or the platform's push), or someone waits to
        read it back, or the order ends. A chain of steps costs one write, and no line a round
        trip of its own. In order: one write at a time. Ends when told, with nothing left."""
        state, steps = self.state, self.steps

        def due() -> bool:
            unrecorded = state.entries_recorded < len(state.timeline) or state.view_changed
            carried = state.credit or state.release or state.summary
            return state.record is not None and (unrecorded or bool(carried))

        def settled() -> bool:
            return steps.busy == 0 or state.record_waiters > 0 or state.recording_ends

        while True:
            await workflow.wait_condition(lambda: (due() and settled()) or state.recording_ends)
            if not due():
                return
            if not await self._still_settled(settled):
                continue
            burst = state.timeline[state.entries_recorded :]
            write = self._burst(burst)
            state.view_changed = False
            await steps.act(OrderRecords.record_events, write, busy=False)
            state.entries_recorded += len(burst)
            self._carried(write)

    async def _still_settled(self, settled: Callable[[], bool]) -> bool:
        """Whether the order is settled once this workflow task has done all it will: a wait
        that is over at once (a stage entered while no hold is open) is not the order
        settling, so the recorder lets the task run on while it logs or starts steps."""
        state, steps = self.state, self.steps
        while True:
            seen = (len(state.timeline), steps.busy)
            await workflow.wait_condition(lambda: True)  # the rest of this task's pass
            if (len(state.timeline), steps.busy) == seen:
                return settled()

    def _burst(self, entries: list[TimelineEntry]) -> RecordEvents:
        """The order's data goes with lines only: a change always logs one."""
        state = self.state
        fence = None
        if self.steps.local_writes:  # LOCAL_WRITES: written from inside the task, so fenced
            started = int(workflow.now().timestamp() * 1_000_000)
            fence = RecordFence(task=started, from_seq=state.entries_recorded + 1)
        return RecordEvents(
            entries=entries,
            credit=state.credit,
            release=state.release,
            summary=state.summary,
            fence=fence,
            **self._next_view(with_order=bool(entries)),
        )

    def _carried(self, write: RecordEvents) -> None:
        """What `write` put on record is no longer due."""
        state = self.state
        if write.credit is not None:
            state.credit = None
        if write.release is not None:
            state.release = None
        if write.summary is not None:
            state.summary = None

    def _next_view(self, *, with_order: bool) -> _Carried:
        """R1.3 the status as it stands, numbered, and the order's data if it changed since it
        was last sent (and `with_order`): what the next write to the record carries."""
        state = self.state
        state.views_recorded += 1
        changed = with_order and state.order_version != state.order_recorded
        if changed:
            state.order_recorded = state.order_version
        return _Carried(
            order_id=state.order_id,
            view=state.status(with_timeline=False),
            view_version=state.views_recorded,
            order=state.order if changed else None,
        )

    async def record_backlog(self) -> None:
        """R4.1.3 the entries logged before the order was recorded (a reminder that started
        it, say), on record once it is; `log` writes each later one as it comes. Once, and
        only where TIMELINE_BEFORE_RECORD is patched in. In bursts, the recorder's first
        write carries them."""
        state = self.state
        if state.backlog_recorded or state.record is None or state.in_bursts:
            return
        state.backlog_recorded = True
        if not state.timeline or not self.patches.patched(TIMELINE_BEFORE_RECORD):
            return
        for entry in list(state.timeline):
            await self.steps.act(OrderRecords.record_event, self._on_record(entry))

    def show(self) -> None:
        """The order's current details in the Web UI: stage, assignee, next deadline."""
        workflow.set_current_details(story.current(self.state.status(with_timeline=False)))

    def _on_record(self, entry: TimelineEntry) -> RecordEvent:
        """R1.3 the event with the status it leaves, and the order's data when it changed: the
        record is what people read. Payload only: the commands stay those of a bare event."""
        return RecordEvent(entry=entry, **self._next_view(with_order=True))

    def rewrite_record(self) -> None:
        """The next write supersedes whatever a task that never completed wrote from the lines
        on record on (`RecordFence`): only fenced writes do, so only orders with local writes."""
        state = self.state
        if not (state.in_bursts and self.steps.local_writes and state.record is not None):
            return
        if self.patches.patched(REWRITE_ON_SIGNAL):  # a write the order made no room for before
            state.view_changed = True

    async def record_view(self) -> None:
        """R4.1.1, R5.2.2 the status on record when no event carries the change: a deadline a
        person works to opened or closed, an anomaly is shown for a decision. New commands, so
        only where RECORD_VIEW_BETWEEN_EVENTS is patched in."""
        state = self.state
        self.show()
        if state.in_bursts:
            state.view_changed = True  # the recorder's next write
            return
        if state.record is None or not self.patches.patched(RECORD_VIEW_BETWEEN_EVENTS):
            return
        state.views_recorded += 1
        await self.steps.act(
            OrderRecords.record_view,
            RecordView(
                order_id=state.order_id,
                version=state.views_recorded,
                view=state.status(with_timeline=False),
            ),
        )

    # --- the end ---------------------------------------------------------------------------

    def request_cancel(self, request: CancelRequest) -> None:
        """The first request wins; an order that has ended is not cancelled."""
        if self.state.cancel is None and not self.state.stage.terminal:
            self.state.cancel = request

    async def finish(
        self, stage: Stage, reason: str, code: int | None = None, **details: Any
    ) -> None:
        """The order ends: open deadlines void, the outcome set, the summary on record."""
        state = self.state
        ended_at = workflow.now()
        for view in state.clock.views.values():
            state.clock.close(view, void=True)
        self.set_stage(stage)
        state.outcome = OrderOutcome(
            order_id=state.order_id,
            stage=stage,
            reason=reason,
            cancel_code=code,
            breaches=len(state.clock.breaches),
            anomalies=len(state.anomalies),
        )
        summary = self._summary(stage, ended_at)
        carried = summary is not None and self._carried_by_the_recorder()
        if carried:
            state.summary = summary  # in the write that puts the last line on record
        await self.log(Event.stage(stage), reason=reason, cancel_code=code, **details)
        if summary is not None and not carried:
            await self.steps.act(OrderRecords.record_summary, summary)

    def _summary(self, outcome: Stage, ended_at: datetime) -> OrderSummary | None:
        """R3.3.3 how it went, for an order on record."""
        state = self.state
        if state.record is None:
            return None
        return summarise(
            order_id=state.order_id,
            order_type=state.record.order_type,
            outcome=outcome,
            stages=state.stages,
            ended_at=ended_at,
            breaches=state.clock.breaches,
            deadlines=list(state.clock.views.values()),
            exceptions=state.exceptions,
            anomalies=[f"{a.kind.value}: {a.decision}" for a in state.anomalies],
            feedback=state.feedback,
            rating=state.rating,
            low_rating=state.policy.low_rating,
        )

    # --- what updates answer and refuse ----------------------------------------------------

    def result(self, message: str) -> UpdateResult:
        return UpdateResult(stage=self.state.stage, message=message)

    def require_active(self, name: str) -> None:
        state = self.state
        if state.finished:
            raise not_allowed(f"{name}: the order is {state.standing}")
        if state.on_hold:
            raise not_allowed(
                f"{name}: the order is on hold until its anomaly is decided ({state.held_by})"
            )

    def require_stage(self, name: str, *stages: Stage) -> None:
        self.require_active(name)
        stage = self.state.stage
        if stage not in stages:
            allowed = ", ".join(s.value for s in stages)
            raise not_allowed(f"{name} is allowed at {allowed}; the order is {stage.value}")
        if self.state.awaiting_reconfirmation and name != "reassign":
            raise not_allowed(
                f"{name}: the customer changed the order; confirm_with_customer first"
            )

"""A deadline that passes while no worker holds the order is breached however it is learnt.

After a worker dies, the first worker to touch an order may do so for a query. It replays the
history, applies the events not yet handled (the deadline's timer that fired) with the time of
the last completed task, and keeps the commands that made for the order's next task. The next
replay applies the same events with the true time. Both must decide the same, or the order's
history no longer replays and the order is stuck (found by the fault run, bench/fault_run.py).

A replay of the history cut just after the timer fired is exactly that cold query. What the next
task logged is read from the activities it scheduled: an order with local steps (LOCAL_WRITES)
leaves markers, which do not hold their input, so these orders run as before that patch; the
deadlines' code is the same for both.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from schemas.notices import Topic
from schemas.order import Stage
from schemas.records import RecordEvent
from tests.doubles import Business
from tests.orders import at_stage, start
from tests.recording import unpatched
from tests.workflows.test_deadlines import breached
from tests.workflows.test_replay import HISTORIES
from workers.registry import WORKFLOWS
from workflows.deadlines import FIRE_BY_TIMER
from workflows.order.patches import LOCAL_WRITES

BREACH = "deadline_breached"


class _NewEvents(Interceptor):
    """Collects the timeline events a replay logs past the end of its history."""

    def __init__(self) -> None:
        self.logged: list[str] = []

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        logged = self.logged

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                if not workflow.unsafe.is_replaying():
                    logged.extend(_logged(input.activity, input.args[0].model_dump(mode="json")))
                return super().start_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


async def logged_by_cold_query(history: WorkflowHistory, upto: int) -> list[str]:
    """What a worker answering a query cold, with the history up to event `upto`, logs."""
    new_events = _NewEvents()
    cut = WorkflowHistory(history.workflow_id, history.events[: upto + 1])
    await Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        interceptors=[new_events],
        workflow_runner=UnsandboxedWorkflowRunner(),  # the interceptor's list is ours
    ).replay_workflow(cut)
    return new_events.logged


def logged_by_next_task(events: list[HistoryEvent], upto: int) -> list[str]:
    """What the workflow task that followed event `upto` logged, from the history: the
    activities its commands scheduled, before the next task was scheduled."""
    completed = next(
        i for i in range(upto, len(events))
        if events[i].HasField("workflow_task_completed_event_attributes")
    )  # fmt: skip
    logged: list[str] = []
    for e in events[completed + 1 :]:
        if e.HasField("workflow_task_scheduled_event_attributes"):
            break
        scheduled = e.activity_task_scheduled_event_attributes
        if e.HasField("activity_task_scheduled_event_attributes"):
            payload = json.loads(scheduled.input.payloads[0].data)
            logged.extend(_logged(scheduled.activity_type.name, payload))
    return logged


def _logged(activity: str, payload: dict[str, Any]) -> list[str]:
    """The lines a task's activity puts on record, one by one or in a burst (RECORD_IN_BURSTS,
    which may write them in a later task), and a breach told to the supervisor, which is in
    the breach's own task either way."""
    if activity == "record_event":
        return [RecordEvent.model_validate(payload).entry.event]
    if activity == "record_events":
        return [entry["event"] for entry in payload["entries"]]
    if activity == "notify" and payload["topic"] == Topic.DEADLINE_MISSED.value:
        return [BREACH]
    return []


async def breaches_agree(history: WorkflowHistory) -> int:
    """Checks every fired timer of the history; returns how many were breaches."""
    events = list(history.events)
    breaches = 0
    for i, event in enumerate(events):
        if not event.HasField("timer_fired_event_attributes"):
            continue
        live = logged_by_next_task(events, i)
        cold = await logged_by_cold_query(history, i)
        assert (BREACH in cold) == (BREACH in live), (
            f"{history.workflow_id}: timer fired at event {event.event_id}: "
            f"next task logged {live}, a cold query {cold}"
        )
        breaches += BREACH in live
    return breaches


async def test_a_deadline_that_fired_unseen_is_breached_by_a_cold_query_too(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.failing[order_id].add("review_order")  # the review never finishes: R2.2.4 passes
    with unpatched(LOCAL_WRITES):
        handle = await start(env, order_id)
        await at_stage(handle, Stage.REVIEWING)
    await breached(env, handle, "review", 5.5)
    history = await handle.fetch_history()
    business.failing[order_id].clear()
    assert await breaches_agree(history) == 1


def patched_in(history: str) -> set[str]:
    """The workflow.patched() ids a recorded history carries."""
    markers = (
        e["markerRecordedEventAttributes"]
        for e in json.loads(history)["events"]
        if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"
    )
    return {
        json.loads(base64.b64decode(m["details"]["patch-data"]["payloads"][0]["data"]))["id"]
        for m in markers
    }


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, text in HISTORIES.items()
        if FIRE_BY_TIMER in patched_in(text) and LOCAL_WRITES not in patched_in(text)
    ],
)
async def test_recorded_deadlines_are_breached_by_a_cold_query_too(name: str) -> None:
    await breaches_agree(WorkflowHistory.from_json(name, HISTORIES[name]))

"""Orders whose history no longer replays, found and repaired: for engineers, straight on
Temporal (`orderctl doctor [--repair]`).

A workflow whose task fails with a non-determinism error is stuck: the server retries the task
for ever and the order moves no further, while nothing tells anyone. The known causes are the
SDK's (temporalio/sdk-python#1591: an update ordered differently on a cold worker than on
replay), so the same code replays fine from a point before the failure. The repair resets the
run to the workflow task that made the first event the replay disagrees with: Temporal replays
the history up to there and runs the rest again, and since every activity is idempotent (keyed
writes, the platform's "already in that state" taken as done) nothing happens twice to effect.
Signals and updates sent after that point are reapplied by the reset. The reason, with the
failed event, is kept in the new run's history.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from infra.heartbeats import beating
from infra.logging import get_logger
from schemas.doctor import OPEN, DoctorReport, DoctorRound, Repaired, Unrepaired

log = get_logger(__name__)
PARALLEL = 8
NON_DETERMINISM = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
# Set by the server on a run whose workflow task keeps failing, after
# `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute` failures in a row.
REPORTED_NON_DETERMINISM = (
    'TemporalReportedProblems IN ("cause=WorkflowTaskFailedCauseNonDeterministicError")'
)
# "[TMPRL1100] Nondeterminism error: ... HistoryEvent(id: 165, TimerStarted)": Core's message
_DIVERGED_AT = re.compile(r"HistoryEvent\(id: (\d+)")


@dataclass(frozen=True)
class Stuck:
    """A run whose last workflow task failed with a non-determinism error."""

    workflow_id: str
    run_id: str
    workflow_type: str
    failed_event_id: int
    reset_to: int | None
    """The workflow task that made the first event the replay disagrees with (`reset_point`);
    None: no task completed before it."""
    attempts: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Repair:
    stuck: Stuck
    new_run_id: str | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**self.stuck.as_json(), "new_run_id": self.new_run_id, "error": self.error}


async def find_stuck(
    client: Client, query: str = OPEN, *, limit: int = 10_000, thorough: bool = False
) -> list[Stuck]:
    """Every open run of `query` whose pending workflow task has failed for non-determinism.

    Only the runs the server reports with that problem are looked into (the search attribute
    `TemporalReportedProblems`, as the Web UI's "task failures" view asks): one listing
    instead of a description of every open order. A server without it (before 1.28), or
    `thorough`, is answered by describing each open run."""
    gate = asyncio.Semaphore(PARALLEL)

    async def check(workflow_id: str, run_id: str) -> Stuck | None:
        async with gate:
            return await _stuck(client, workflow_id, run_id)

    if thorough:
        runs = await _listed(client, query, limit)
    else:
        runs = await _reported(client, query, limit)
    found = await asyncio.gather(*(check(w, r) for w, r in runs))
    return [s for s in found if s is not None]


async def _reported(client: Client, query: str, limit: int) -> list[tuple[str, str]]:
    try:
        return await _listed(client, f"({query}) AND {REPORTED_NON_DETERMINISM}", limit)
    except RPCError as err:
        if err.status is not RPCStatusCode.INVALID_ARGUMENT:
            raise
        log.info("doctor.reported_problems_unknown", error=err.message)
        return await _listed(client, query, limit)


async def _listed(client: Client, query: str, limit: int) -> list[tuple[str, str]]:
    return [(e.id, e.run_id) async for e in client.list_workflows(query, limit=limit) if e.run_id]


async def _stuck(client: Client, workflow_id: str, run_id: str) -> Stuck | None:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        described = await handle.describe()
    except RPCError:
        return None  # ended or gone since the listing
    pending = described.raw_description.pending_workflow_task
    if described.status is not WorkflowExecutionStatus.RUNNING or pending.attempt < 2:
        return None  # a failing task is retried: its attempt counts up from 2
    failed: HistoryEvent | None = None
    completed: list[int] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failed = event
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed.append(event.event_id)
    if failed is None:
        return None
    attributes = failed.workflow_task_failed_event_attributes
    if attributes.cause != NON_DETERMINISM:
        return None
    message = attributes.failure.message
    return Stuck(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=described.workflow_type,
        failed_event_id=failed.event_id,
        reset_to=reset_point(completed, failed.event_id, message),
        attempts=pending.attempt,
        message=message[:300],
    )


def reset_point(completed: list[int], failed_event_id: int, message: str) -> int | None:
    """The workflow task whose commands are to be made again.

    The failure names the first event the replay disagrees with, and the task that completed
    just before it made that event: a reset to it drops its commands and runs it afresh. A
    reset to a later task would keep the event and fail the same way. Without a named event,
    the last task that completed before the failure.
    """
    named = _DIVERGED_AT.search(message)
    before = int(named.group(1)) if named else failed_event_id
    earlier = [c for c in completed if c < before]
    return earlier[-1] if earlier else None


async def repair(client: Client, stuck: Stuck) -> Repair:
    """Reset to the last good workflow task; a run that never completed one cannot be."""
    if stuck.reset_to is None:
        return Repair(stuck, None, "no workflow task completed before the failure")
    request = ResetWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=stuck.workflow_id, run_id=stuck.run_id),
        reason=(
            f"orderctl doctor: non-determinism at event {stuck.failed_event_id}; "
            f"reset to workflow task {stuck.reset_to}"
        ),
        workflow_task_finish_event_id=stuck.reset_to,
        request_id=str(uuid.uuid4()),
        identity="orderctl doctor",
    )
    try:
        response = await client.workflow_service.reset_workflow_execution(request)
    except RPCError as err:
        return Repair(stuck, None, err.message)
    return Repair(stuck, response.run_id)


class Doctor:
    """The round the Schedule `order-doctor` runs (`workflows.doctor`), as an engineer would
    with `orderctl doctor --repair`; one worker's client does it for every replica."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def doctor_round(self, inp: DoctorRound) -> DoctorReport:
        """Idempotent: a run repaired is no longer open, so the next round does not find it."""
        async with beating():
            return await self._round(inp)

    async def _round(self, inp: DoctorRound) -> DoctorReport:
        report = await find_and_repair(self._client, inp)
        # The count is the metric to alert on: each round sets it, repaired or not.
        activity.metric_meter().create_gauge(
            "orderflow_workflows_not_replaying", "open workflows whose history no longer replays"
        ).set(report.found)
        return report


async def find_and_repair(client: Client, inp: DoctorRound) -> DoctorReport:
    """One round: what `inp.query` finds stuck, each reset (when `inp.repair`) and logged."""
    stuck = await find_stuck(client, inp.query, thorough=inp.thorough)
    report = DoctorReport(found=len(stuck))
    if not inp.repair:
        return report
    for s in stuck:
        done = await repair(client, s)
        if done.new_run_id is not None:
            report.repaired.append(
                Repaired(workflow_id=s.workflow_id, run_id=s.run_id, new_run_id=done.new_run_id)
            )
            log.warning(
                "doctor.repaired",
                workflow_id=s.workflow_id,
                reset_to=s.reset_to,
                new_run_id=done.new_run_id,
            )
        else:
            error = done.error or "not reset"
            report.unrepaired.append(Unrepaired(workflow_id=s.workflow_id, error=error))
            log.error("doctor.unrepaired", workflow_id=s.workflow_id, error=error)
    return report

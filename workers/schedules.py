"""The Temporal Schedules: `order-patrol` runs the patrol (R2.1.2); `order-report-daily` and
`order-report-weekly` send the managers the regular statistics (R4.3.1), and
`order-stats-refresh` keeps their rollup fresh (ORDERFLOW_STATS_REFRESH_MINUTES);
`order-record-check` finds the records ahead of their histories and has them written again
(ORDERFLOW_RECORD_CHECK_MINUTES); `order-doctor`,
when ORDERFLOW_DOCTOR_MINUTES is set, repairs the workflows whose history no longer replays.

python -m workers.schedules        # create them, or bring them in line with the configuration
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.policy import current_policy
from analytics.period import zone_name
from infra.settings import settings
from infra.temporal import connect_client
from schemas.contract import (
    DOCTOR_RUN_ID,
    DOCTOR_SCHEDULE_ID,
    PATROL_RUN_ID,
    PATROL_SCHEDULE_ID,
    RECORD_CHECK_RUN_ID,
    RECORD_CHECK_SCHEDULE_ID,
    REPORT_SCHEDULE_IDS,
    STATS_REFRESH_RUN_ID,
    STATS_REFRESH_SCHEDULE_ID,
    TASK_QUEUE,
)
from schemas.doctor import DoctorRound
from schemas.patrol import PatrolInput
from schemas.record_check import RecordCheckRound
from schemas.reports import RefreshRound, ReportKind, ReportRound
from workflows.doctor import DoctorWorkflow
from workflows.patrol import PatrolWorkflow
from workflows.record_check import RecordCheckWorkflow
from workflows.reports import ReportWorkflow, StatsRefreshWorkflow

SCHEDULE_ID = PATROL_SCHEDULE_ID


def every_interval(
    run: Callable[[Any, Any], Awaitable[Any]], arg: Any, run_id: str, every: timedelta
) -> Schedule:
    """A round of `run` every `every`. One at a time, whatever the number of worker replicas:
    a slow round (a slow platform, a large backlog) is skipped over, not queued up behind."""
    return Schedule(
        action=ScheduleActionStartWorkflow(run, arg, id=run_id, task_queue=TASK_QUEUE),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def patrol_schedule(every: timedelta) -> Schedule:
    return every_interval(PatrolWorkflow.run, PatrolInput(), PATROL_RUN_ID, every)


REPORT_AT: dict[ReportKind, ScheduleCalendarSpec] = {
    "daily": ScheduleCalendarSpec(hour=[ScheduleRange(6)], minute=[ScheduleRange(0)]),
    "weekly": ScheduleCalendarSpec(
        day_of_week=[ScheduleRange(1)], hour=[ScheduleRange(6)], minute=[ScheduleRange(30)]
    ),
}
"""Before the day's first orders: yesterday's figures for each store, every Monday the week's."""


def report_schedule(kind: ReportKind) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReportWorkflow.run,
            ReportRound(kind=kind),
            id=f"{REPORT_SCHEDULE_IDS[kind]}-run",
            task_queue=TASK_QUEUE,
        ),
        spec=ScheduleSpec(
            calendars=[REPORT_AT[kind]], time_zone_name=zone_name(settings().business.timezone)
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_report_schedules(client: Client) -> None:
    """Idempotent, as the patrol's: an operator's pause stands."""
    for kind in REPORT_AT:
        await _ensure(client, REPORT_SCHEDULE_IDS[kind], report_schedule(kind))


def stats_refresh_schedule(every: timedelta) -> Schedule:
    return every_interval(StatsRefreshWorkflow.run, RefreshRound(), STATS_REFRESH_RUN_ID, every)


async def ensure_stats_refresh_schedule(client: Client, every: timedelta) -> None:
    """Idempotent, as the patrol's: every `every`, an operator's pause stands."""
    await _ensure(client, STATS_REFRESH_SCHEDULE_ID, stats_refresh_schedule(every))


def stats_refresh_every() -> timedelta:
    return timedelta(minutes=settings().worker.stats_refresh_minutes)


def record_check_schedule(every: timedelta) -> Schedule:
    return every_interval(RecordCheckWorkflow.run, RecordCheckRound(), RECORD_CHECK_RUN_ID, every)


async def ensure_record_check_schedule(client: Client, every: timedelta) -> None:
    """Idempotent, as the patrol's: every `every`, an operator's pause stands."""
    await _ensure(client, RECORD_CHECK_SCHEDULE_ID, record_check_schedule(every))


def record_check_every() -> timedelta:
    return timedelta(minutes=settings().worker.record_check_minutes)


def doctor_schedule(every: timedelta) -> Schedule:
    return every_interval(DoctorWorkflow.run, DoctorRound(), DOCTOR_RUN_ID, every)


async def ensure_patrol_schedule(client: Client, every: timedelta) -> None:
    """Idempotent: creates the schedule, or updates an existing one to `every`."""
    await _ensure(client, SCHEDULE_ID, patrol_schedule(every))


async def ensure_doctor_schedule(client: Client, every: timedelta) -> None:
    """Idempotent: the doctor's rounds every `every`."""
    await _ensure(client, DOCTOR_SCHEDULE_ID, doctor_schedule(every))


async def remove_doctor_schedule(client: Client) -> bool:
    """Turned off by an operator (`python -m workers.schedules` with the doctor unset); a
    worker never removes it, so one replica started without the setting cannot. True when
    there was one."""
    try:
        await client.get_schedule_handle(DOCTOR_SCHEDULE_ID).delete()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def doctor_every() -> timedelta | None:
    minutes = settings().worker.doctor_minutes
    return None if minutes is None else timedelta(minutes=minutes)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Paused by an operator, it stays paused (with their note).
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)


async def _main() -> None:
    client = await connect_client()
    every = timedelta(minutes=current_policy().patrol_minutes)
    await ensure_patrol_schedule(client, every)
    print(f"schedule {SCHEDULE_ID}: every {every}")
    await ensure_report_schedules(client)
    print(f"schedules {', '.join(REPORT_SCHEDULE_IDS.values())}: daily 06:00, Mondays 06:30")
    await ensure_stats_refresh_schedule(client, stats_refresh_every())
    print(f"schedule {STATS_REFRESH_SCHEDULE_ID}: every {stats_refresh_every()}")
    await ensure_record_check_schedule(client, record_check_every())
    print(f"schedule {RECORD_CHECK_SCHEDULE_ID}: every {record_check_every()}")
    doctor = doctor_every()
    if doctor is not None:
        await ensure_doctor_schedule(client, doctor)
        print(f"schedule {DOCTOR_SCHEDULE_ID}: every {doctor}")
    elif await remove_doctor_schedule(client):
        print(f"schedule {DOCTOR_SCHEDULE_ID}: removed (ORDERFLOW_DOCTOR_MINUTES is not set)")


if __name__ == "__main__":
    asyncio.run(_main())

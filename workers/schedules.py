"""The Temporal Schedule `order-patrol` that runs the patrol (R2.1.2).

python -m workers.schedules        # create it, or bring its interval in line with the policy
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.policy import current_policy
from infra.temporal import connect_client
from schemas.contract import PATROL_RUN_ID, PATROL_SCHEDULE_ID, TASK_QUEUE
from schemas.patrol import PatrolInput
from workflows.patrol import PatrolWorkflow

SCHEDULE_ID = PATROL_SCHEDULE_ID


def patrol_schedule(every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PatrolWorkflow.run, PatrolInput(), id=PATROL_RUN_ID, task_queue=TASK_QUEUE
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A slow platform must not pile patrols up behind each other.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_patrol_schedule(client: Client, every: timedelta) -> None:
    """Idempotent: creates the schedule, or updates an existing one to `every`."""
    schedule = patrol_schedule(every)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(replace)


async def _main() -> None:
    every = timedelta(minutes=current_policy().patrol_minutes)
    await ensure_patrol_schedule(await connect_client(), every)
    print(f"schedule {SCHEDULE_ID}: every {every}")


if __name__ == "__main__":
    asyncio.run(_main())

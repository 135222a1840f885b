"""DoctorWorkflow: one round of finding and repairing the workflows whose history no longer
replays (`activities.doctor`), run by the Schedule `order-doctor` when the workers are asked to
(ORDERFLOW_DOCTOR_MINUTES). A round that cannot reach Temporal is tried again by the next."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.doctor import Doctor
    from schemas.doctor import DoctorReport, DoctorRound

ROUND_TIMEOUT = timedelta(minutes=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class DoctorWorkflow:
    @workflow.run
    async def run(self, inp: DoctorRound) -> DoctorReport:
        return await workflow.execute_activity_method(
            Doctor.doctor_round,
            inp,
            start_to_close_timeout=ROUND_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=2),
        )

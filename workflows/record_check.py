"""RecordCheckWorkflow: one round of holding the orders' records against their histories
(`activities.record_check`), run by the Schedule `order-record-check` every
ORDERFLOW_RECORD_CHECK_MINUTES. A round that fails is not retried long: the next one does it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.record_check import RecordCheck
    from schemas.record_check import RecordCheckReport, RecordCheckRound

ROUND_TIMEOUT = timedelta(minutes=5)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class RecordCheckWorkflow:
    @workflow.run
    async def run(self, inp: RecordCheckRound) -> RecordCheckReport:
        return await workflow.execute_activity_method(
            RecordCheck.check_records,
            inp,
            start_to_close_timeout=ROUND_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=2),
        )

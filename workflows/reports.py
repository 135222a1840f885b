"""ReportWorkflow: one round of the regular statistics (R4.3.1), run by the Schedules
`order-report-daily` and `order-report-weekly`: the period before the round is computed, kept
as a report file, and each manager told through the notification routes.

StatsRefreshWorkflow: one refresh of the statistics' rollup, run by the Schedule
`order-stats-refresh` every ORDERFLOW_STATS_REFRESH_MINUTES, so that the read-only reporting
role reads a fresh rollup without writing it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from schemas.reports import (
        REFRESH_STATS,
        SEND_REPORTS,
        RefreshRound,
        ReportRequest,
        ReportRound,
        ReportSent,
        StatsRefreshed,
    )

ROUND_TIMEOUT = timedelta(minutes=10)
REFRESH_TIMEOUT = timedelta(minutes=30)
"""A rebuild (a changed zone or format) of a million orders takes minutes (docs/benchmarks.md)."""
REFRESH_HEARTBEAT = timedelta(seconds=30)
SCHEDULED_AT = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
"""Set by the Schedule on each run it starts."""


@workflow.defn
class ReportWorkflow:
    @workflow.run
    async def run(self, inp: ReportRound) -> ReportSent:
        # The period is fixed by when the Schedule meant the round to start, however late a
        # worker takes it up; started by hand, by now.
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_AT)
        request = ReportRequest(kind=inp.kind, as_of=scheduled or workflow.now())
        sent: ReportSent = await workflow.execute_activity(
            SEND_REPORTS,
            request,
            result_type=ReportSent,
            start_to_close_timeout=ROUND_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=5),
        )
        return sent


@workflow.defn
class StatsRefreshWorkflow:
    @workflow.run
    async def run(self, inp: RefreshRound) -> StatsRefreshed:
        # A round that fails is not retried long: the next one, minutes later, does the same.
        refreshed: StatsRefreshed = await workflow.execute_activity(
            REFRESH_STATS,
            inp,
            result_type=StatsRefreshed,
            start_to_close_timeout=REFRESH_TIMEOUT,
            heartbeat_timeout=REFRESH_HEARTBEAT,
            retry_policy=RetryPolicy(maximum_attempts=2),
        )
        return refreshed

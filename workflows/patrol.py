"""PatrolWorkflow: the periodic check that catches what the pushes missed (R2.1.2, R6.3.2).

Run by the Temporal Schedule `order-patrol`. Every order the platform holds and we do not is
started as its own OrderWorkflow (`order-<order_id>`, source "patrol"), abandoned by the
patrol so it lives on after the patrol ends; a push that arrives at the same moment simply
wins the start. One the platform had already cancelled is started cancelled, so that it is on
record all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.patrol import Patrol
    from schemas.contract import order_workflow_id
    from schemas.order import OrderInput, PlatformCancel, PlatformOrder
    from schemas.patrol import PatrolInput, PatrolReport, PatrolStore, StorePatrol
    from workflows import story
    from workflows.activity_options import RETRY
    from workflows.order import OrderWorkflow

WALK_TIMEOUT = timedelta(minutes=5)
HEARTBEAT = timedelta(seconds=30)


@workflow.defn
class PatrolWorkflow:
    @workflow.run
    async def run(self, inp: PatrolInput) -> PatrolReport:
        stores = inp.stores or await workflow.execute_activity_method(
            Patrol.patrol_stores, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY
        )
        walks = await asyncio.gather(*(self._walk(store) for store in stores))
        found: list[str] = []
        raced: list[str] = []
        for order, cancel in _to_start(walks):
            (found if await self._start(order, cancel) else raced).append(order.order_id)
        report = PatrolReport(
            patrol_id=workflow.info().workflow_id + "/" + workflow.info().run_id,
            at=workflow.now(),
            stores=stores,
            walked=sum(w.walked for w in walks),
            found=found,
            raced=raced,
            missed_and_closed=[o for w in walks for o in w.missed_and_closed],
            mismatches=[m for w in walks for m in w.mismatches],
            unresolved=sum(w.unresolved for w in walks),
        )
        await workflow.execute_activity_method(
            Patrol.record_patrol,
            report,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        return report

    async def _walk(self, store: str) -> StorePatrol:
        return await workflow.execute_activity_method(
            Patrol.patrol_store,
            PatrolStore(store_code=store),
            start_to_close_timeout=WALK_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RETRY,
        )

    async def _start(self, order: PlatformOrder, cancel: PlatformCancel | None) -> bool:
        """False when the order's workflow already exists (its push came in meanwhile)."""
        try:
            await workflow.start_child_workflow(
                OrderWorkflow.run,
                OrderInput(order=order, source="patrol", platform_cancel=cancel),
                id=order_workflow_id(order.order_id),
                # One run per order, ever: an order that ended before it was on record (and so
                # looks missing) is not started again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=story.summary(order),
                static_details=story.details(order),
            )
        except WorkflowAlreadyStartedError:
            return False
        return True


def _to_start(
    walks: Sequence[StorePatrol],
) -> Iterator[tuple[PlatformOrder, PlatformCancel | None]]:
    """The orders the walks found missing, open ones first. No patch guards the cancelled
    ones (R2.1.2): they come from the walks' results in the history, which walks recorded
    before them leave empty, so an older history replays with the same commands."""
    for walk in walks:
        for order in walk.missing:
            yield order, None
    for walk in walks:
        for cancelled in walk.cancelled:
            yield cancelled.order, cancelled.cancel

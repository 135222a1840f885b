"""Steps that cannot go on for good (R5.1 (5)): a merchant API call that gets no answer for as
long as its kind allows is a system fault for a manager, not a workflow retrying for ever; a
compensation step that fails for good is told to the manager, and the cancellation still ends
the order, instead of failing the workflow halfway through compensating."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.anomaly import Decide, Decision
from schemas.messages import MarkReady, PlatformCancel
from schemas.order import Stage
from tests.doubles import Business
from tests.orders import at_stage, has_event, start, until
from workflows.activity_options import PLATFORM_GIVES_UP_AFTER
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow


async def test_a_platform_call_that_gets_no_answer_becomes_a_system_fault(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    business.failing[order_id].add("preparationMealComplete")
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))

    await env.sleep(PLATFORM_GIVES_UP_AFTER + timedelta(minutes=1))
    held = await until(handle, lambda s: s.stage is Stage.ON_HOLD and bool(s.anomalies), "held")
    [anomaly] = held.anomalies
    assert anomaly.detail.startswith("system fault in platform_meal_ready: gave up")

    business.failing[order_id].clear()
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, anomaly.anomaly_id)
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.AGREED_WITH_PLATFORM,
            cause="platform outage",
            responsibility="platform",
        ),
    )
    await at_stage(handle, Stage.DELIVERING)  # the call made again, and taken
    assert business.platform_calls(order_id).count("preparationMealComplete") == 1
    await handle.cancel()
    await handle.result()


async def test_a_release_that_fails_for_good_is_told_and_the_order_still_ends(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    business.refusing[order_id]["release_stock"] = "StockLedgerBroken"

    await handle.signal(
        OrderWorkflow.platform_cancel,
        PlatformCancel(reason_code=1101, reason="用户取消", deal_op_type=1),
    )
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED
    current = await has_event(handle, "compensation_failed")
    failed = next(e for e in current.timeline if e.event == "compensation_failed")
    assert failed.details["step"] == "stock" and "release_stock refused" in failed.details["error"]
    cancelled = next(e for e in current.timeline if e.event == "cancelled")
    assert cancelled.details["released"] == ["assignee capacity"]
    assert cancelled.details["not_released"] == ["stock"]
    assert order_id not in business.released_stock
    assert (order_id, "S-101") in business.released_assignments
    told = business.notices_for(order_id, "manager")
    assert any("stock not released" in n.subject and "by hand" in n.text for n in told)

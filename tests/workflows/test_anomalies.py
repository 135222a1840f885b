"""Anomalous orders (R5): the order pauses at once, a child waits for the manager, then the
order resumes where it paused or ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import settings
from schemas.anomaly import AnomalyStatus, Decide, Decision
from schemas.messages import DeliveryStatus, MarkReady, Remedy, ReportException
from schemas.notices import Topic
from schemas.order import CustomerChanges, Stage
from schemas.review import AnomalyKind, Outcome, ReviewVerdict, RuleFailure
from tests.doubles import Business
from tests.orders import COURIER_STORE, Handle, at_stage, has_event, start, status, until
from workflows import search_attributes as sa
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

RULE = {
    AnomalyKind.INFO: "phone_valid",
    AnomalyKind.PRICE: "price_within_tolerance",
    AnomalyKind.PROHIBITED: "item_not_prohibited",
    AnomalyKind.FRAUD: "customer_credit",
    AnomalyKind.OTHER: "system",
}

RESUMING: dict[AnomalyKind, dict[str, Any]] = {
    AnomalyKind.INFO: {
        "decision": Decision.CORRECT_INFO,
        "corrections": CustomerChanges(address="上海市徐汇区宜山路1号"),
    },
    AnomalyKind.PRICE: {"decision": Decision.ADJUST_PRICE, "new_total": Decimal("58.00")},
    AnomalyKind.PROHIBITED: {"decision": Decision.DISMISS},
    AnomalyKind.FRAUD: {"decision": Decision.DISMISS},
    AnomalyKind.OTHER: {"decision": Decision.AGREED_WITH_PLATFORM, "resume": True},
}

ENDING: dict[AnomalyKind, dict[str, Any]] = {
    AnomalyKind.INFO: {"decision": Decision.CANCEL, "cancel_code": 2012},
    AnomalyKind.PRICE: {"decision": Decision.CANCEL, "cancel_code": 2007},
    AnomalyKind.PROHIBITED: {"decision": Decision.CANCEL, "cancel_code": 2007},
    AnomalyKind.FRAUD: {"decision": Decision.CONFIRM_FRAUD},
    AnomalyKind.OTHER: {"decision": Decision.AGREED_WITH_PLATFORM, "resume": False},
}


def anomaly_verdict(kind: AnomalyKind) -> ReviewVerdict:
    return ReviewVerdict(
        outcome=Outcome.ANOMALY,
        anomaly_kind=kind,
        failures=[RuleFailure(rule=RULE[kind], message=f"{kind.value} found", anomaly=kind)],
    )


async def on_hold(env: WorkflowEnvironment, handle: Handle, order_id: str, number: int = 1) -> Any:
    """The order is paused and flagged; returns the child's handle."""
    await at_stage(handle, Stage.ON_HOLD)
    anomaly_id = f"anomaly-{order_id}-{number}"
    current = await until(  # the order shows the anomaly once its child exists
        handle, lambda s: bool(s.anomalies) and s.anomalies[-1].anomaly_id == anomaly_id, anomaly_id
    )
    assert current.stage is Stage.ON_HOLD
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.ANOMALY_OPEN) is True
    assert attributes.get(sa.ORDER_STAGE) == "on_hold"
    child = env.client.get_workflow_handle_for(AnomalyWorkflow.run, f"anomaly-{order_id}-{number}")
    return child


async def escalations(child: Any, count: int) -> AnomalyStatus:
    for _ in range(200):
        current: AnomalyStatus = await child.query(AnomalyWorkflow.status)
        if current.escalations >= count:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"anomaly not escalated {count} times: {current}")


def decide(kind: AnomalyKind, fields: dict[str, Any]) -> Decide:
    return Decide(
        by="M-001", cause=f"checked the {kind.value} finding", responsibility="customer", **fields
    )


@pytest.mark.parametrize("kind", list(AnomalyKind))
async def test_each_kind_is_decided_and_the_order_resumes_where_it_paused(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str, kind: AnomalyKind
) -> None:
    business.verdicts[order_id] = [anomaly_verdict(kind)]
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)
    paused = await status(handle)
    assert paused.paused_stage is Stage.REVIEWING
    assert "confirm" not in business.platform_calls(order_id)  # R5.2.1 paused at once
    for _ in range(200):  # R5.2.1 the child tells the manager first thing
        if any(n.topic is Topic.ANOMALY_OPENED for n in business.notices_for(order_id, "manager")):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the manager was not told")
    assert (await child.query(AnomalyWorkflow.status)).state == "open"

    outcome = await child.execute_update(AnomalyWorkflow.decide, decide(kind, RESUMING[kind]))

    assert outcome.resume is True
    resumed = await at_stage(handle, Stage.IN_PROGRESS)
    assert resumed.anomalies[0].decision == RESUMING[kind]["decision"].value
    assert resumed.anomalies[0].resumed is True
    assert (await handle.describe()).typed_search_attributes.get(sa.ANOMALY_OPEN) is False
    record = business.anomalies[f"anomaly-{order_id}-1"]  # R5.2.4 recorded for lookup
    assert record.outcome is not None and record.outcome.decided_by == "M-001"
    if kind is AnomalyKind.INFO:  # the corrected address is what the assignee is sent to
        brief = business.notices_for(order_id, "staff")[0].text
        assert "宜山路1号" in brief
    await handle.cancel()


@pytest.mark.parametrize("kind", list(AnomalyKind))
async def test_each_kind_can_end_the_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str, kind: AnomalyKind
) -> None:
    business.verdicts[order_id] = [anomaly_verdict(kind)]
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)

    await child.execute_update(AnomalyWorkflow.decide, decide(kind, ENDING[kind]))
    outcome = await handle.result()

    assert outcome.stage is Stage.CANCELLED
    assert outcome.cancel_code == ENDING[kind].get("cancel_code", 2007)
    assert ("cancel", order_id, {"reason_code": outcome.cancel_code}) in business.calls
    assert order_id not in business.reserved  # it ended in review, before anything was claimed
    if kind is AnomalyKind.FRAUD:  # R5.2.3 contain the risk, report to the platform
        assert [c.kind.value for c in business.credit if c.order_id == order_id] == ["fraud"]
        assert ("report", order_id, {"kind": "fraud"}) in business.calls
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.ORDER_STAGE) == "cancelled"


async def test_a_decision_that_does_not_fit_the_anomaly_is_refused(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.verdicts[order_id] = [anomaly_verdict(AnomalyKind.INFO)]
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await child.execute_update(
            AnomalyWorkflow.decide,
            decide(AnomalyKind.INFO, {"decision": Decision.ADJUST_PRICE, "new_total": Decimal(1)}),
        )
    assert "does not apply to info anomalies" in str(refused.value.cause)
    await child.execute_update(
        AnomalyWorkflow.decide, decide(AnomalyKind.INFO, {"decision": Decision.DISMISS})
    )
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await child.execute_update(
            AnomalyWorkflow.decide, decide(AnomalyKind.INFO, {"decision": Decision.DISMISS})
        )
    assert "already decided" in str(twice.value.cause)
    await handle.cancel()


async def test_the_anomaly_decision_deadline_escalates(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.verdicts[order_id] = [anomaly_verdict(AnomalyKind.PRICE)]
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)
    await env.sleep(timedelta(minutes=31))
    assert (await escalations(child, 1)).state == "escalated"
    await env.sleep(timedelta(minutes=30))
    await escalations(child, 2)
    assert any(
        "past its hard limit" in n.subject for n in business.notices_for(order_id, "manager")
    )
    outcome = await child.execute_update(
        AnomalyWorkflow.decide, decide(AnomalyKind.PRICE, {"decision": Decision.DISMISS})
    )
    assert outcome.escalations == 2
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.cancel()


async def test_the_anomaly_hard_limit_can_cancel_by_policy(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    order_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERFLOW_POLICY__deadlines__anomaly_decision__action", "cancel")
    monkeypatch.setenv("ORDERFLOW_POLICY__deadlines__anomaly_decision__cancel_code", "2007")
    settings.cache_clear()
    business.verdicts[order_id] = [anomaly_verdict(AnomalyKind.PROHIBITED)]
    handle = await start(env, order_id)
    await on_hold(env, handle, order_id)
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2007
    assert business.anomalies[f"anomaly-{order_id}-1"].outcome.decided_by == "policy"  # type: ignore[union-attr]


ANOTHER_COURIER = Decide(
    by="M-002",
    decision=Decision.AGREED_WITH_PLATFORM,
    cause="courier fell ill",
    responsibility="courier",
    note="platform sends another courier",
)


async def test_a_courier_cancellation_pauses_delivery_and_its_deadline(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R5.1 (5) a delivery problem: the order waits on hold, its deadline paused."""
    handle = await start(env, order_id, COURIER_STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-201"))
    before = await until(handle, lambda s: any(d.key == "deliver" for d in s.deadlines), "deliver")
    due = next(d for d in before.deadlines if d.key == "deliver").due_at
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=100))
    child = await on_hold(env, handle, order_id)
    assert (await status(handle)).paused_stage is Stage.IN_PROGRESS

    await env.sleep(timedelta(minutes=50))  # longer than the deliver deadline
    held = await status(handle)
    assert not [b for b in held.breaches if b.key == "deliver"]
    await child.execute_update(AnomalyWorkflow.decide, ANOTHER_COURIER)
    resumed = await at_stage(handle, Stage.IN_PROGRESS)
    moved = next(d for d in resumed.deadlines if d.key == "deliver").due_at
    assert moved - due >= timedelta(minutes=50)  # the hold did not count against it
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=20))
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=40))
    assert (await handle.result()).stage is Stage.CLOSED


async def test_a_courier_cancellation_pushed_again_opens_no_second_anomaly(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """The platform retries a push it thinks was lost: the same status twice is one event."""
    handle = await start(env, order_id, COURIER_STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-201"))
    for _ in range(2):
        await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=100))
    child = await on_hold(env, handle, order_id)
    await child.execute_update(AnomalyWorkflow.decide, ANOTHER_COURIER)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=20))
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=40))
    assert (await handle.result()).stage is Stage.CLOSED
    final = await status(handle)
    assert [a.anomaly_id for a in final.anomalies] == [f"anomaly-{order_id}-1"]
    couriers = [e.details["status"] for e in final.timeline if e.event == "courier_status"]
    assert couriers == [100, 20, 40]


async def test_an_exception_escalated_by_staff_opens_an_anomaly(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)
    await at_stage(handle, Stage.IN_PROGRESS)
    result = await handle.execute_update(
        OrderWorkflow.report_exception,
        ReportException(
            by="S-101", kind="shortage", detail="红烧肉 burnt, none left", remedy=Remedy.ESCALATE
        ),
    )
    assert "escalate" in result.message
    child = await on_hold(env, handle, order_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    assert "on hold" in str(refused.value.cause)
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.CANCEL,
            cause="no pork left today",
            responsibility="store",
            cancel_code=2009,
        ),
    )
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED and outcome.cancel_code == 2009


async def test_a_platform_refusal_is_a_system_fault_for_a_manager(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R5.1 (5) a refused confirm is not retried forever: a manager agrees it with the platform."""
    business.refusing[order_id]["confirm"] = "OrderFinished"
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)
    assert (await child.query(AnomalyWorkflow.status)).kind is AnomalyKind.OTHER
    del business.refusing[order_id]["confirm"]
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.AGREED_WITH_PLATFORM,
            cause="platform outage",
            responsibility="platform",
        ),
    )
    await at_stage(handle, Stage.IN_PROGRESS)
    assert business.platform_calls(order_id).count("confirm") == 1
    await has_event(handle, "anomaly_closed")
    await handle.cancel()


async def test_a_refused_receipt_is_a_system_fault_about_the_recorded_order(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    """R5.1 (5) an order the platform moved on before its workflow began (cancelled while its
    push was lost, say) refuses the receipt: the order is on record and a manager decides."""
    business.refusing[order_id]["poi_received"] = "AlreadyInState"
    handle = await start(env, order_id)
    child = await on_hold(env, handle, order_id)
    assert (await child.query(AnomalyWorkflow.status)).kind is AnomalyKind.OTHER
    await child.execute_update(
        AnomalyWorkflow.decide,
        Decide(
            by="M-001",
            decision=Decision.AGREED_WITH_PLATFORM,
            cause="cancelled on the platform",
            responsibility="platform",
            resume=False,
        ),
    )
    outcome = await handle.result()
    assert outcome.stage is Stage.CANCELLED

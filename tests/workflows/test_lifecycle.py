"""The happy paths of a goods order and a service order, stage by stage."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.messages import (
    ConfirmWithCustomer,
    DeliveryStatus,
    MarkDelivered,
    MarkReady,
    ReconfirmVisit,
    RecordRating,
)
from schemas.order import Stage
from tests.doubles import Business
from tests.orders import COURIER_STORE, SERVICE_STORE, at_stage, later, start, status
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow


async def test_goods_order_self_delivery_runs_every_stage_to_close(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id)

    in_progress = await at_stage(handle, Stage.IN_PROGRESS)
    assert in_progress.assignee is not None
    assert in_progress.promise is not None and in_progress.promise.confirmed_by == "system"
    assert business.reserved[order_id] == ["G-HSR", "G-CKW"]

    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
    await at_stage(handle, Stage.DELIVERING)
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="S-101", proof="photo://door-1234")
    )
    outcome = await handle.result()

    assert outcome.stage is Stage.CLOSED
    assert business.platform_calls(order_id) == [
        "poi_received",
        "confirm",
        "preparationMealComplete",
        "delivering",
        "arrived",
    ]
    stages = [e for e in business.event_names(order_id) if e in {s.value for s in Stage}]
    assert stages == [
        "received",
        "reviewing",
        "accepted",
        "assigned",
        "confirmed",
        "in_progress",
        "delivering",
        "delivered",
        "closed",
    ]
    assert order_id in business.committed
    assert (order_id, in_progress.assignee.staff_id) in business.released_assignments
    summary = business.summaries[order_id]
    assert summary.outcome is Stage.CLOSED and summary.breaches == []
    assert set(summary.stage_seconds) >= {"received", "in_progress", "delivering", "delivered"}
    told = [n.subject for n in business.notices_for(order_id, "customer")]
    assert "Your order is confirmed" in told and "Delivered" in told
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.ORDER_STAGE) == "closed"
    assert attributes.get(sa.ORDER_TYPE) == "goods"
    assert attributes.get(sa.REGION) == "shanghai-xuhui"
    assert attributes.get(sa.STORE_CODE) == "SH-XH-001"
    assert attributes.get(sa.ASSIGNEE_ID) == in_progress.assignee.staff_id
    assert attributes.get(sa.SLA_BREACHED) is None


async def test_goods_order_by_platform_courier_follows_delivery_status(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id, COURIER_STORE)
    await at_stage(handle, Stage.IN_PROGRESS)
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=10))
    await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-201"))
    await handle.signal(
        OrderWorkflow.delivery_status, DeliveryStatus(status=20, courier_name="张师傅")
    )
    await at_stage(handle, Stage.DELIVERING)
    await handle.signal(OrderWorkflow.delivery_status, DeliveryStatus(status=40))

    outcome = await handle.result()

    assert outcome.stage is Stage.CLOSED
    assert business.platform_calls(order_id) == [
        "poi_received",
        "confirm",
        "preparationMealComplete",
    ]
    assert [e for e in business.event_names(order_id) if e == "courier_status"] == [
        "courier_status"
    ] * 3


async def test_service_order_is_confirmed_booked_reconfirmed_done_and_rated(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id, SERVICE_STORE)
    assigned = await at_stage(handle, Stage.ASSIGNED)
    assert assigned.promise is None  # a service is confirmed by a person (R2.4.1)

    now = await env.get_current_time()
    visit = later(now, 24 * 60)
    await handle.execute_update(
        OrderWorkflow.confirm_with_customer,
        ConfirmWithCustomer(
            by="T-301", promised_delivery_at=visit, promises="带齐工具; 鞋套; 不满意免费返工"
        ),
    )
    booked = await at_stage(handle, Stage.IN_PROGRESS)
    while booked.booking is None:
        booked = await status(handle)
    assert booked.booking.slot_start == visit
    await handle.execute_update(OrderWorkflow.reconfirm_visit, ReconfirmVisit(by="T-301"))
    await handle.execute_update(
        OrderWorkflow.mark_delivered, MarkDelivered(by="T-301", proof="service report #88")
    )
    await at_stage(handle, Stage.DELIVERED)
    await handle.execute_update(
        OrderWorkflow.record_rating, RecordRating(by="customer", score=5, comment="很好")
    )

    outcome = await handle.result()

    assert outcome.stage is Stage.CLOSED
    # R3.4.1 the visit done shows as completed on the platform
    assert business.platform_calls(order_id) == ["poi_received", "confirm", "arrived"]
    assert order_id in business.released_bookings
    assert business.summaries[order_id].rating == 5
    staff_notices = business.notices_for(order_id, "staff")
    assert any("Re-confirm time and place" in n.text for n in staff_notices)  # R3.2.2 brief
    confirmed = [n for n in business.notices_for(order_id, "customer") if "confirmed" in n.subject]
    assert "不满意免费返工" in confirmed[0].text  # R2.4.3 promises told
    assert (await handle.describe()).typed_search_attributes.get(sa.ORDER_TYPE) == "service"


async def test_a_late_push_breaches_the_receive_deadline_at_once(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    handle = await start(env, order_id, age=timedelta(minutes=30))
    current = await at_stage(handle, Stage.IN_PROGRESS)
    receive = [b for b in current.breaches if b.key == "receive"]
    assert [b.hard for b in receive] == [False, True]
    assert any("receive" in n.subject for n in business.notices_for(order_id, "manager"))
    await handle.cancel()

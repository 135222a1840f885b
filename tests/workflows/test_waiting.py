"""An order waiting for free staff or a free slot waits for days without filling its history
(R2.3.2, R3.2.1): its looks back off to the policy's longest interval."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.policy import OrderPolicy
from tests.doubles import Business
from tests.orders import SERVICE_STORE, Handle, confirm_visit, has_event, start
from tests.steps_run import local_steps, server_steps
from workflows.order.waiting import interval

HISTORY_BOUND = 2_000
THREE_DAYS = timedelta(days=3)


def looks_in(span: timedelta) -> int:
    """How many looks the backoff of the default policy makes in `span` of waiting."""
    policy = OrderPolicy()
    looks, waited = 1, timedelta(0)
    while waited + (step := interval(policy, looks, backs_off=True)) <= span:
        waited += step
        looks += 1
    return looks


async def _looks(handle: Handle, activity_type: str) -> tuple[int, int]:
    """The history's length, and how often the order looked."""
    history = await handle.fetch_history()
    looks = [*server_steps(history.events), *local_steps(history.events)].count(activity_type)
    return len(history.events), looks


async def test_three_days_without_free_staff_stay_under_the_history_bound(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.refusing[order_id]["assign_order"] = "NoAssigneeAvailable"
    handle = await start(env, order_id)
    await has_event(handle, "waiting_for_capacity")

    await env.sleep(THREE_DAYS)
    events, looks = await _looks(handle, "assign_order")
    # 1, 2, 4, 8, 16, 32 minutes, then hourly: about 75 looks in three days, not 4,320.
    assert abs(looks - looks_in(THREE_DAYS)) <= 3, (looks, looks_in(THREE_DAYS))
    assert events < HISTORY_BOUND, events

    del business.refusing[order_id]["assign_order"]
    await env.sleep(timedelta(minutes=61))  # the next look, at most the longest interval away
    current = await has_event(handle, "assigned")
    assert [e.event for e in current.timeline].count("waiting_for_capacity") == 1
    await handle.cancel()
    await handle.result()


async def test_three_days_without_a_free_slot_stay_under_the_history_bound(
    env: WorkflowEnvironment, worker: Worker, business: Business, order_id: str
) -> None:
    business.refusing[order_id]["book_service"] = "NoSlotAvailable"
    handle = await start(env, order_id, SERVICE_STORE)
    await confirm_visit(env, handle, 5 * 24 * 60)
    await has_event(handle, "waiting_for_slot")

    await env.sleep(THREE_DAYS)
    events, looks = await _looks(handle, "book_service")
    assert abs(looks - looks_in(THREE_DAYS)) <= 3, (looks, looks_in(THREE_DAYS))
    assert events < HISTORY_BOUND, events

    del business.refusing[order_id]["book_service"]
    await env.sleep(timedelta(minutes=61))
    await has_event(handle, "booked")
    await handle.cancel()
    await handle.result()


def test_the_looks_double_up_to_the_longest_interval() -> None:
    policy = OrderPolicy(assign_retry_minutes=1)
    waits = [interval(policy, n, backs_off=True).total_seconds() / 60 for n in range(1, 10)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    # Orders started before the change keep their interval; a longest under the first is the first.
    assert interval(policy, 7, backs_off=False) == timedelta(minutes=1)
    short = OrderPolicy(assign_retry_minutes=5, assign_retry_max_minutes=2)
    assert interval(short, 4, backs_off=True) == timedelta(minutes=5)

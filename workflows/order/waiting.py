"""Waiting for free capacity or a free slot (R2.3.2, R3.2.1) at a cost the history can bear.

Each look is an activity and a timer, about eleven events. Looking every minute, a store with
nobody free over a weekend filled an order's history towards Temporal's limit, so the looks back
off: from the policy's first interval, doubling, to its longest. A wait so long that Temporal
suggests a new run holds the order for a manager (R5.1) instead of looking on; their decision
resumes the looks or cancels the order. The clause's own deadline still tells people when the
order is late (its hard limit escalates). Orders started before WAITS_BACK_OFF look at the
first interval, as they did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

from workflows.order.entity import Order
from workflows.order.patches import WAITS_BACK_OFF

with workflow.unsafe.imports_passed_through():
    from schemas.contract import Event
    from schemas.policy import OrderPolicy
    from schemas.review import AnomalyKind

T = TypeVar("T")


async def look_until_found(
    order: Order, waiting: Event, look: Callable[[], Awaitable[T | None]]
) -> T:
    """`look()` again and again until it finds something; the wait is logged once."""
    looks = 0
    held = False
    while True:
        found = await look()
        if found is not None:
            return found
        if looks == 0:
            # Asked only here: an order that finds what it needs at once records no marker.
            backs_off = order.patches.patched(WAITS_BACK_OFF)
            await order.log(waiting, on_record=False)
        looks += 1
        if backs_off and not held and workflow.info().is_continue_as_new_suggested():
            held = True  # once per wait: resumed, the order looks on at the longest interval
            await order.holds.open(
                AnomalyKind.OTHER, f"{waiting.value}: nothing free after {looks} looks"
            )
        await order.until(lambda: False, interval(order.state.policy, looks, backs_off))


def interval(policy: OrderPolicy, looks: int, backs_off: bool) -> timedelta:
    """The wait before the next look, after `looks` found nothing."""
    first = policy.assign_retry_minutes
    if not backs_off:
        return timedelta(minutes=first)
    longest = max(first, policy.assign_retry_max_minutes)
    return timedelta(minutes=min(first * 2 ** min(looks - 1, 30), longest))

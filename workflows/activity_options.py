"""How every activity of the workflows is run."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

# Transient faults retry, at most a minute apart; the deadline clocks, not the retries, tell
# people when something is late. Business refusals are non-retryable ApplicationErrors raised
# by the activity itself. How long a step keeps trying is chosen by its kind:
# - a merchant API call gives up after PLATFORM_GIVES_UP_AFTER: the platform that has not taken
#   it in that long will not take it by waiting, and its own clocks (auto-cancel, refunds) have
#   run out; the lifecycle makes it a system fault for a manager (R5.1 (5), `Order.step`);
# - a write to the system of record or a notice keeps trying: nothing about the order can go
#   on record without PostgreSQL, so giving up would trade an order that waits for one that
#   fails; Temporal retries cost the history nothing, and the patrol and the statistics show
#   orders that stand still.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
TIMEOUT = timedelta(seconds=30)
PLATFORM_GIVES_UP_AFTER = timedelta(minutes=30)
# A cancelled order compensates after its in-flight activities have finished, so a claim that
# lands during cancellation is still released.
CANCELLATION = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


def is_platform_call(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__qualname__", "").startswith("PlatformCalls."))


def task_queue_for(fn: Callable[..., Any], platform_task_queue: str | None) -> str | None:
    """Merchant API calls go to the platform's own queue when one is configured, where their
    workers keep to the platform's rate limit; everything else stays on the order's queue."""
    if platform_task_queue and is_platform_call(fn):
        return platform_task_queue
    return None


def gives_up_after(fn: Callable[..., Any]) -> timedelta | None:
    """The step's schedule-to-close timeout, by its kind (above); None: it keeps trying."""
    return PLATFORM_GIVES_UP_AFTER if is_platform_call(fn) else None

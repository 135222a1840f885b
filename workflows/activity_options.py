"""How every activity of the workflows is run."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

# Transient faults (database down, platform unreachable) retry until they pass; the deadline
# clocks, not the retries, tell people when something is late. Business refusals are
# non-retryable ApplicationErrors raised by the activity itself.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
TIMEOUT = timedelta(seconds=30)
# A cancelled order compensates after its in-flight activities have finished, so a claim that
# lands during cancellation is still released.
CANCELLATION = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


def task_queue_for(fn: Callable[..., Any], platform_task_queue: str | None) -> str | None:
    """Merchant API calls go to the platform's own queue when one is configured, where their
    workers keep to the platform's rate limit; everything else stays on the order's queue."""
    if platform_task_queue and getattr(fn, "__qualname__", "").startswith("PlatformCalls."):
        return platform_task_queue
    return None

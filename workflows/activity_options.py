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
# A database step run as a local activity holds its workflow task open while it runs: a write
# that takes longer than this is stuck (a lock, a lost connection) and is tried again, as a
# server activity's would be after TIMEOUT.
LOCAL_TIMEOUT = timedelta(seconds=10)
# Shorter than RETRY's first interval: every retry of a local step waits on a timer, with its
# workflow task completed (the SDK waits in the worker, the task held open, for backoffs under
# it). Signals and updates reach the order meanwhile, no task completes without commands to
# keep a wait alive (docs/actions-and-replay.md), and a time-skipping server skips the wait.
LOCAL_RETRY_THRESHOLD = timedelta(milliseconds=500)
PLATFORM_GIVES_UP_AFTER = timedelta(minutes=30)
# A cancelled order compensates after its in-flight activities have finished, so a claim that
# lands during cancellation is still released.
CANCELLATION = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


def is_platform_call(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__qualname__", "").startswith("PlatformCalls."))


def runs_locally(fn: Callable[..., Any]) -> bool:
    """The steps an order with local steps (LOCAL_WRITES) runs on its own worker: writes of its
    own record, and its review, which reads. A local activity can run in a workflow task that
    never completes (its worker died), and the next attempt may decide otherwise, once events
    that came meanwhile are in it: the record's writes are fenced by their task for that
    (`RecordFence`). Claims on stock, staff and slots, and notices to people, stay server
    activities, which run only for a task that completed."""
    return getattr(fn, "__qualname__", "").startswith(("OrderRecords.", "Review."))


def task_queue_for(fn: Callable[..., Any], platform_task_queue: str | None) -> str | None:
    """Merchant API calls go to the platform's own queue when one is configured, where their
    workers keep to the platform's rate limit; everything else stays on the order's queue."""
    if platform_task_queue and is_platform_call(fn):
        return platform_task_queue
    return None


def gives_up_after(fn: Callable[..., Any]) -> timedelta | None:
    """The step's schedule-to-close timeout, by its kind (above); None: it keeps trying."""
    return PLATFORM_GIVES_UP_AFTER if is_platform_call(fn) else None

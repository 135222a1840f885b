"""How every activity of the workflows is run."""

from datetime import timedelta

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

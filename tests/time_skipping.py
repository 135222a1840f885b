"""The time-skipping test server, kept skipping.

The server stops skipping time while an activity is scheduled or running, and takes that lock
back when the activity ends. When the workflow ends first (terminated, or cancelled and done
while a cancelled activity still runs), the lock is never taken back (temporalio/sdk-java#1138,
open), and every later test that waits on a timer waits in real time: in CI one teardown that
terminated an order mid-activity turned the rest of the session into two-minute timeouts.

So around every test that uses the session's server, a probe asks for five virtual minutes;
when they do not pass within a few real seconds, the locks left behind are released one by
one (the server counts them) and the test is named, so what left them can be found.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

PROBE = timedelta(minutes=5)
PATIENCE_S = 3.0
MOST_LOCKS = 20


async def skips(env: WorkflowEnvironment) -> bool:
    """Whether virtual time passes faster than real time right now.

    The probe's own sleep can fail: an activity timing out while it sleeps unlocks once more
    than was locked, and the server refuses that and keeps an extra lock
    (temporalio/sdk-java#2246); that counts as not skipping, so the lock is released.
    """
    try:
        async with asyncio.timeout(PATIENCE_S):
            await env.sleep(PROBE)
    except (TimeoutError, RPCError):
        return False
    return True


async def release_leaked_locks(env: WorkflowEnvironment) -> int:
    """Release the locks nobody holds any more; how many it took."""
    released = 0
    while not await skips(env):
        if released == MOST_LOCKS:
            raise AssertionError(f"time skipping still locked after releasing {released} locks")
        try:
            await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
        except RPCError as err:  # nothing left to release: something really is in flight
            raise AssertionError(f"time does not skip and no lock is left over: {err}") from err
        released += 1
    return released


def report(released: int, where: str) -> None:
    if released:
        print(
            f"\n{where}: time skipping was left locked; released {released} lock(s) "
            "(temporalio/sdk-java#1138)",
            file=sys.stderr,
        )

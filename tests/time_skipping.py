"""Why a module that ends workflows mid-step runs on a time-skipping server of its own.

The test server stops skipping time while an activity is scheduled or running, and takes that
lock back when the activity ends. When the workflow ends first (terminated while a step is
scheduled or running), the lock is never taken back (temporalio/sdk-java#1138, open), and every
later test that waits on a timer waits in real time: in CI one teardown that terminated an
order mid-step turned the rest of the session into two-minute timeouts. Tests on the shared
server (`env`) therefore end their workflows at rest or let them finish; a module whose
teardown cannot wait for that (the real stack's) takes `own_env`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

PROBE = timedelta(minutes=5)
PATIENCE_S = 3.0


async def skips(env: WorkflowEnvironment) -> bool:
    """Whether virtual time passes faster than real time right now."""
    try:
        async with asyncio.timeout(PATIENCE_S):
            await env.sleep(PROBE)
    except (TimeoutError, RPCError):
        return False
    return True

"""The time-skipping server's lock leak (temporalio/sdk-java#1138), shown on a server of its
own: why the real-stack modules take `own_env` (tests/time_skipping.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests import time_skipping
from tests.conftest import _binary


@activity.defn
async def a_while() -> None:
    await asyncio.sleep(1.0)


@workflow.defn(sandboxed=False)
class OneStep:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(a_while, start_to_close_timeout=timedelta(seconds=2))


async def test_a_workflow_ended_mid_step_stops_the_servers_time_for_good() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server")
    )
    async with env, Worker(env.client, task_queue="q", workflows=[OneStep], activities=[a_while]):
        assert await time_skipping.skips(env)
        handle = await env.client.start_workflow(OneStep.run, id="one-step", task_queue="q")
        await asyncio.sleep(0.3)  # its activity is running
        await handle.terminate("ended mid-step")
        await asyncio.sleep(2.5)  # the activity finished for nobody, past its own timeout
        assert not await time_skipping.skips(env)

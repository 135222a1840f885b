"""The time-skipping server's lock leaks, each shown on a server of its own: a workflow ended
mid-step (temporalio/sdk-java#1138), why the real-stack modules take `own_env`; an abandoned
child ended after its parent (temporalio/sdk-java#2392), why the patrol scenario terminates the
order it found (tests/time_skipping.py)."""

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


@workflow.defn(sandboxed=False)
class Abandoned:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@workflow.defn(sandboxed=False)
class Abandoning:
    @workflow.run
    async def run(self, children: list[str]) -> None:
        for child in children:
            await workflow.start_child_workflow(
                Abandoned.run, id=child, parent_close_policy=workflow.ParentClosePolicy.ABANDON
            )


async def test_an_abandoned_child_may_end_after_its_parent_only_by_termination() -> None:
    """Why the patrol scenario terminates the order its patrol started: any other ending after
    the parent closed stops the server's time for good (temporalio/sdk-java#2392)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server")
    )
    workflows = [Abandoning, Abandoned]
    async with env, Worker(env.client, task_queue="q", workflows=workflows):
        with env.auto_time_skipping_disabled():  # no decade-long jump to a child's run timeout
            await env.client.execute_workflow(
                Abandoning.run, ["terminated", "completed"], id="parent", task_queue="q"
            )
            terminated = env.client.get_workflow_handle("terminated")
            await time_skipping.terminate_at_rest(terminated, "ended by termination")
            assert await time_skipping.skips(env)

            completed = env.client.get_workflow_handle("completed")
            await completed.signal(Abandoned.finish)
            await completed.result()
            assert not await time_skipping.skips(env)

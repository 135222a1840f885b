"""Records the histories the replay tests hold the workflow code to.

    .venv/bin/python -m tests.record_histories            # every scenario
    .venv/bin/python -m tests.record_histories refund     # one

Existing files are never overwritten: a new recording of a scenario goes next to the old ones
(`goods.json`, `goods-2.json`, ...), so the histories of orders started before a
`workflow.patched()` change keep replaying after it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import load_policy
from tests.conftest import TASK_QUEUE, _binary, register_search_attributes
from tests.doubles import Business
from tests.scenarios import SCENARIOS
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _free_path(stem: str) -> Path:
    path, version = HISTORIES / f"{stem}.json", 1
    while path.exists():
        version += 1
        path = HISTORIES / f"{stem}-{version}.json"
    return path


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    business = Business()
    HISTORIES.mkdir(exist_ok=True)
    async with (
        env,
        Worker(
            env.client,
            task_queue=TASK_QUEUE,
            workflows=[OrderWorkflow, AnomalyWorkflow, PatrolWorkflow],
            activities=[*business.activities(), load_policy],
        ),
    ):
        for name in names:
            workflow_ids = await SCENARIOS[name](env, business, str(uuid.uuid4().int % 10**15))
            for n, workflow_id in enumerate(workflow_ids):
                history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                path = _free_path(name + ("" if n == 0 else f"-child{n}"))
                path.write_text(history.to_json(), encoding="utf-8")
                print(f"recorded {path} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(SCENARIOS)))

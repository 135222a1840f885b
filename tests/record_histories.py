"""Records the histories the replay tests hold the workflow code to.

    .venv/bin/python -m tests.record_histories            # every scenario
    .venv/bin/python -m tests.record_histories refund     # one
    .venv/bin/python -m tests.record_histories --unpatched courier-status-once courier
                                                    # as it ran before that patch

Existing files are never overwritten: a new recording of a scenario goes next to the old ones
(`goods.json`, `goods-2.json`, ...), so the histories of orders started before a
`workflow.patched()` change keep replaying after it.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import load_policy
from tests.conftest import TASK_QUEUE, _binary, register_search_attributes
from tests.doubles import Business
from tests.recording import HISTORIES, before_suffix, free_path, unpatched
from tests.scenarios import SCENARIOS
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow


async def record(names: list[str], before: tuple[str, ...] = ()) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    business = Business()
    HISTORIES.mkdir(exist_ok=True)
    with unpatched(*before):
        await _record(env, business, names, before_suffix(before))


async def _record(
    env: WorkflowEnvironment, business: Business, names: list[str], suffix: str
) -> None:
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
                path = free_path(name + ("" if n == 0 else f"-child{n}") + suffix)
                path.write_text(history.to_json(), encoding="utf-8")
                print(f"recorded {path} ({len(history.events)} events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="default: every one")
    parser.add_argument(
        "--unpatched",
        action="append",
        default=[],
        metavar="PATCH_ID",
        help="record as the code before this patch ran (repeatable)",
    )
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"no such scenario: {', '.join(sorted(unknown))}; see tests/scenarios.py")
    asyncio.run(record(args.scenarios or list(SCENARIOS), tuple(args.unpatched)))


if __name__ == "__main__":
    main()

"""Every recorded history replays against the current workflow code.

A change that alters the commands of an order already in flight fails here: put it behind
`workflow.patched()` and record a new history next to the old one (tests/record_histories.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from tests.doubles import Business
from tests.scenarios import SCENARIOS
from workers.main import tuning
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow
from workflows.patrol import PatrolWorkflow

HISTORIES = {
    path.stem: path.read_text(encoding="utf-8")
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
}


def replayer(*, as_in_production: bool = False) -> Replayer:
    """The full sandbox, or the workflow runner the production worker is given (its modules
    passed through, `workers.main.tuning`)."""
    runner = tuning({})["workflow_runner"] if as_in_production else None
    return Replayer(
        workflows=[OrderWorkflow, AnomalyWorkflow, PatrolWorkflow],
        data_converter=pydantic_data_converter,
        **({"workflow_runner": runner} if runner else {}),
    )


def test_every_scenario_has_a_recorded_history() -> None:
    assert set(HISTORIES) >= set(SCENARIOS)


@pytest.mark.parametrize("as_in_production", [False, True], ids=["full-sandbox", "production"])
@pytest.mark.parametrize("name", list(HISTORIES))
async def test_recorded_history_replays(name: str, as_in_production: bool) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    result = await replayer(as_in_production=as_in_production).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, f"{name}: {result.replay_failure}"


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_a_fresh_history_replays(
    env: WorkflowEnvironment, worker: Worker, business: Business, name: str
) -> None:
    workflow_ids = await SCENARIOS[name](env, business, str(uuid.uuid4().int % 10**15))
    for workflow_id in workflow_ids:
        history = await env.client.get_workflow_handle(workflow_id).fetch_history()
        await replayer().replay_workflow(history)

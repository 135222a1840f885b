"""The Temporal Web UI tells each order's story: a summary and details at start, current details
that follow the stage, assignee and next deadline, and a line on every step and deadline timer,
all encrypted with the codec like the rest of the history (issue "Fit the ecosystem").

On a real dev server (the time-skipping test server keeps no user metadata), whose client
encrypts: what the UI reads through the codec server is what these tests decode."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.policy import load_policy
from infra.codec import ENCODING, METADATA_ENCODING, build_converter, new_key
from schemas.messages import MarkReady
from schemas.order import OrderInput, Stage
from schemas.policy import Clause
from tests.conftest import TASK_QUEUE, _binary
from tests.doubles import Business
from tests.orders import GOODS_STORE, Handle, at_stage, platform_order, until
from workflows import search_attributes as sa
from workflows import story
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

KEY = new_key("k1")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def encrypting() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=build_converter([KEY]),
        search_attributes=list(sa.ALL),
    )
    async with environment:
        yield environment


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def preparing(encrypting: WorkflowEnvironment) -> AsyncIterator[Handle]:
    """A goods order started as the gateway starts it, assigned and made ready."""
    business = Business()
    async with Worker(
        encrypting.client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow, AnomalyWorkflow],
        activities=[*business.activities(), load_policy],
    ):
        now = await encrypting.get_current_time()
        order = platform_order(str(uuid.uuid4().int % 10**15), GOODS_STORE, now)
        order = order.model_copy(update={"day_seq": 17})
        handle = await encrypting.client.start_workflow(
            OrderWorkflow.run,
            OrderInput(order=order),
            id=f"order-{order.order_id}",
            task_queue=TASK_QUEUE,
            search_attributes=sa.at_start(GOODS_STORE, "goods", "shanghai-xuhui"),
            static_summary=story.summary(order, "goods"),
            static_details=story.details(order),
        )
        # Marked ready once its deadline (and the deadline's timer) is open, not before.
        await until(
            handle,
            lambda s: any(d.clause is Clause.PREPARE for d in s.deadlines),
            "the prepare deadline",
        )
        await handle.execute_update(OrderWorkflow.mark_ready, MarkReady(by="S-101"))
        await at_stage(handle, Stage.DELIVERING)
        yield handle
        await handle.terminate("the story is told; not driven further")


def _summaries(history: Any, kind: str) -> list[Payload]:
    return [
        e.user_metadata.summary
        for e in history.events
        if e.WhichOneof("attributes") == kind and e.HasField("user_metadata")
    ]


async def test_an_order_starts_with_its_summary_and_details(preparing: Handle) -> None:
    described = await preparing.describe()
    summary = await described.static_summary()
    assert summary is not None and summary.startswith(f"#17 {GOODS_STORE} goods · ¥")
    assert summary.endswith("item(s)")
    details = await described.static_details()
    assert details is not None and "× " in details and "handover: store" in details
    assert "陆" not in details and "上海" not in details  # nobody's name or address


async def test_its_current_details_follow_the_stage_assignee_and_next_deadline(
    preparing: Handle,
) -> None:
    metadata: WorkflowMetadata = await preparing.query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    current = metadata.current_details
    assert current.startswith(f"**{Stage.DELIVERING.value}**"), current
    assert "assignee S-101" in current and "next: deliver due" in current


async def test_each_step_and_deadline_timer_has_its_line(
    encrypting: WorkflowEnvironment, preparing: Handle
) -> None:
    history = await preparing.fetch_history()
    converter = encrypting.client.data_converter
    steps = [
        await converter.decode([p], [str])
        for kind in ("activity_task_scheduled_event_attributes", "marker_recorded_event_attributes")
        for p in _summaries(history, kind)
    ]
    lines = [s[0] for s in steps]
    order_id = preparing.id.removeprefix("order-")
    assert f"order on record · order {order_id}" in lines
    assert f"platform: confirmed · order {order_id}" in lines
    timers = [
        (await converter.decode([p], [str]))[0]
        for p in _summaries(history, "timer_started_event_attributes")
    ]
    assert "accept deadline" in timers and "prepare deadline" in timers, timers


async def test_the_lines_are_encrypted_in_the_history(
    encrypting: WorkflowEnvironment, preparing: Handle
) -> None:
    """Read without the codec, as the server keeps them: no line is in plaintext."""
    plain = Client(encrypting.client.service_client, data_converter=pydantic_data_converter)
    history = await plain.get_workflow_handle(preparing.id).fetch_history()
    payloads = _summaries(history, "activity_task_scheduled_event_attributes")
    payloads += _summaries(history, "marker_recorded_event_attributes")
    payloads += _summaries(history, "timer_started_event_attributes")
    started = history.events[0]
    payloads += [started.user_metadata.summary, started.user_metadata.details]
    assert payloads
    for payload in payloads:
        assert payload.metadata[METADATA_ENCODING] == ENCODING
        assert b"order" not in payload.data and b"deadline" not in payload.data


def test_every_step_of_an_order_has_its_words() -> None:
    """A step without them shows in the UI as its bare name."""
    names = {a.__name__ for a in Business().activities()} - {
        "patrol_stores",
        "patrol_store",
        "record_patrol",
    }
    assert names <= set(story.STEPS), names - set(story.STEPS)


async def test_a_history_with_its_story_replays(
    encrypting: WorkflowEnvironment, preparing: Handle
) -> None:
    """The lines are user metadata, not commands: a history carrying them replays, as the
    recorded histories from before them do (tests/workflows/test_replay.py)."""
    history = await preparing.fetch_history()
    assert any(e.HasField("user_metadata") for e in history.events)
    replayer = Replayer(
        workflows=[OrderWorkflow, AnomalyWorkflow], data_converter=encrypting.client.data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure

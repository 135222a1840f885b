"""What an order costs Temporal, counted from its history (issue targets for the plain goods
order: at most 12 activities scheduled on the server, 6 upserts, 120 events; the service
order, half of what it cost before: 14, 5, 118).

The order's own database work runs as local activities, a marker each, and the search
attributes one workflow task sets go in one upsert (FEWER_ROUND_TRIPS); the timeline goes on
record in bursts (RECORD_IN_BURSTS). Each scenario runs as orders run now and as they ran before
both patches, on the same server, so the saving is measured, not assumed; and every line still
reaches the record, in order, with the status after the last.

The upserts counted are the order's own: Temporal's SDK adds one of `TemporalChangeVersion` for
each `workflow.patched` an order passes, until the patch is deprecated (docs/patches.md).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.order import Stage
from tests.doubles import Business
from tests.history_steps import local_steps, remote_steps
from tests.orders import status
from tests.recording import unpatched
from tests.scenarios import SCENARIOS
from workflows.order.patches import FEWER_ROUND_TRIPS, RECORD_IN_BURSTS

E = EventType
CHANGE_VERSION = "TemporalChangeVersion"


@dataclass(frozen=True)
class Cost:
    events: int
    tasks: int
    remote: Counter[str]
    local: Counter[str]
    upserts: int  # the order's own

    @classmethod
    def of(cls, history: WorkflowHistory) -> Cost:
        tasks = sum(e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED for e in history.events)
        upserted = [
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            for e in history.events
            if e.event_type == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        ]
        upserts = sum(CHANGE_VERSION not in fields for fields in upserted)
        return cls(len(history.events), tasks, remote_steps(history), local_steps(history), upserts)


def business_steps(cost: Cost) -> Counter[str]:
    writes = ("record_event", "record_events", "record_view")
    return Counter({k: n for k, n in (cost.remote + cost.local).items() if k not in writes})


async def run(env: WorkflowEnvironment, business: Business, scenario: str) -> tuple[str, Cost]:
    [workflow_id] = await SCENARIOS[scenario](env, business, str(uuid.uuid4().int % 10**15))
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return workflow_id, Cost.of(history)


@pytest.mark.parametrize(
    ("scenario", "remote", "upserts", "events"),
    [("goods", 12, 6, 120), ("service", 14, 5, 118)],
)
async def test_an_order_costs_a_fraction_of_the_round_trips_it_did(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    scenario: str,
    remote: int,
    upserts: int,
    events: int,
) -> None:
    with unpatched(RECORD_IN_BURSTS, FEWER_ROUND_TRIPS):
        _, before = await run(env, business, scenario)
    workflow_id, now = await run(env, business, scenario)

    assert sum(now.remote.values()) <= remote, now.remote
    assert now.upserts <= upserts
    assert now.events <= events, now
    assert now.events * 2 <= before.events + 10, (now.events, before.events)
    assert now.tasks * 2 <= before.tasks, (now.tasks, before.tasks)
    # What stays remote: the merchant API calls.
    assert all(name.startswith("platform_") for name in now.remote), now.remote
    # Nothing else changed: the business steps are the same ones, wherever they ran; the
    # timeline in bursts instead of a write per line.
    assert business_steps(now) == business_steps(before)
    # The timeline: a burst of lines per write, not a write per line.
    assert now.local["record_events"] < before.remote["record_event"] + before.remote["record_view"]
    # Every line on record, in order, once; the status on record is the last one.
    order_id = workflow_id.removeprefix("order-")
    final = await status(env.client.get_workflow_handle(workflow_id))
    on_record = business.events[order_id]
    assert sorted(on_record) == list(range(1, len(final.timeline) + 1))
    assert [on_record[seq] for seq in sorted(on_record)] == final.timeline
    assert business.views[order_id][1].stage is final.stage is Stage.CLOSED

"""What an order costs Temporal, counted from its history, against what it cost before the
patches that cut it: the timeline on record in bursts (RECORD_IN_BURSTS); the order's record,
review, cases, summary and credit written by local activities, notices written beside the
lifecycle and the search attributes of one workflow task in one upsert (FEWER_ROUND_TRIPS).

Each scenario runs as orders run now and as they ran before both patches, on the same server, so
the saving is measured, not assumed; and every line still reaches the record, in order, with the
status after the last. The bounds are what the orders cost when FEWER_ROUND_TRIPS came in, with
room for the order in which a worker takes concurrent work (goods: 20-21 server activities, 7
upserts, 176-185 events, where they were 33, 11 and 257; service: 21, 6 and 191, where they
were 35, 10 and 287). The targets (goods at most 12, 6 and 120; service 14, 5 and 118) are not
met: the timeline, the claims and the notices stay remote (`activity_options.LOCAL_STEPS` says
why), and the next cut is their writes carried by the steps that make them.

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
from workflows.activity_options import LOCAL_STEPS
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
    [("goods", 22, 7, 195), ("service", 23, 6, 205)],
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
    assert now.events * 4 <= before.events * 3, (now.events, before.events)
    assert now.tasks * 3 <= before.tasks * 2, (now.tasks, before.tasks)
    # Local: only what a later write puts right.
    assert set(now.local) <= {"load_policy", *(n.rsplit(".")[-1] for n in LOCAL_STEPS)}
    # Nothing else changed: the business steps are the same ones, wherever they ran; the
    # timeline in bursts instead of a write per line.
    assert business_steps(now) == business_steps(before)
    # The timeline: a burst of lines per write, not a write per line.
    one_by_one = before.remote["record_event"] + before.remote["record_view"]
    assert now.remote["record_events"] < one_by_one
    # Every line on record, in order, once; the status on record is the last one.
    order_id = workflow_id.removeprefix("order-")
    final = await status(env.client.get_workflow_handle(workflow_id))
    on_record = business.events[order_id]
    assert sorted(on_record) == list(range(1, len(final.timeline) + 1))
    assert [on_record[seq] for seq in sorted(on_record)] == final.timeline
    assert business.views[order_id][1].stage is final.stage is Stage.CLOSED

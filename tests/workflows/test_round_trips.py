"""What an order costs Temporal, counted from its history: the timeline goes on record in
bursts (RECORD_IN_BURSTS), not one activity per line; those writes carry what the order's
ending needs on record (ENDING_WITH_THE_RECORD: credit, the assignee's release, the summary);
and the record's writes and the review run as local activities on the workflow worker
(LOCAL_WRITES). Every line still reaches the record, in order, with the status after the last,
and nothing carried is lost.

Each scenario runs as orders run now and as they ran before each change, on the same server, so
the saving is measured, not assumed.
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
from tests.orders import status
from tests.recording import unpatched
from tests.scenarios import SCENARIOS
from tests.steps_run import local_steps, server_steps
from workflows.order.patches import LOCAL_WRITES, RECORD_IN_BURSTS

E = EventType
VERSIONS = "TemporalChangeVersion"

LOCAL = ("record_order", "record_events", "review_order")
"""The steps of a plain order that run on its workflow worker (LOCAL_WRITES)."""


CARRIED = ("record_credit_event", "release_assignment", "record_summary")
"""Activities whose work the recorder's writes do (ENDING_WITH_THE_RECORD)."""


@dataclass(frozen=True)
class Cost:
    events: int
    tasks: int
    upserts: int
    """The order's own search-attribute upserts."""
    versions: int
    """The SDK's upserts of TemporalChangeVersion, one per patch the order meets first (they
    go once the patches are deprecated, docs/patches.md)."""
    server: Counter[str]
    """Activities scheduled on the server, by name."""
    local: Counter[str]
    """Local activities, by name (from their markers)."""

    @classmethod
    def of(cls, history: WorkflowHistory) -> Cost:
        tasks = sum(e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED for e in history.events)
        upserted = [
            set(
                e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            )
            for e in history.events
            if e.event_type == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        ]
        versions = upserted.count({VERSIONS})
        return cls(
            len(history.events),
            tasks,
            len(upserted) - versions,
            versions,
            Counter(server_steps(history.events)),
            Counter(local_steps(history.events)),
        )

    @property
    def activities(self) -> Counter[str]:
        """Every step the order ran, on the server or locally."""
        return self.server + self.local

    @property
    def writes(self) -> int:
        """Activities that put the timeline or the status on record, or do what the
        recorder's writes now carry."""
        names = ("record_event", "record_events", "record_view", *CARRIED)
        return sum(self.activities[name] for name in names)


async def run(env: WorkflowEnvironment, business: Business, scenario: str) -> tuple[str, Cost]:
    [workflow_id] = await SCENARIOS[scenario](env, business, str(uuid.uuid4().int % 10**15))
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return workflow_id, Cost.of(history)


@pytest.mark.parametrize("scenario", ["goods", "service"])
async def test_an_order_goes_on_record_in_bursts_at_a_fraction_of_the_writes(
    env: WorkflowEnvironment, worker: Worker, business: Business, scenario: str
) -> None:
    with unpatched(RECORD_IN_BURSTS):
        before_id, before = await run(env, business, scenario)
    workflow_id, now = await run(env, business, scenario)

    for name in ("record_event", "record_view", *CARRIED):
        assert now.activities[name] == 0, name
    assert now.writes * 2 <= before.writes, (now.writes, before.writes)
    assert now.tasks < before.tasks
    # Nothing else changed: the business steps are the same ones.
    assert +(now.activities - Counter({"record_events": now.writes})) == +(
        before.activities - Counter(dict.fromkeys(("record_event", "record_view", *CARRIED), 99))
    )
    # What the writes carried is all there, as the activities of their own wrote it.
    order_id, earlier = workflow_id.removeprefix("order-"), before_id.removeprefix("order-")
    assert (
        [c.kind for c in business.credit if c.order_id == order_id]
        == [c.kind for c in business.credit if c.order_id == earlier]
        != []
    )
    assert [o for o, _ in business.released_assignments].count(order_id) == 1
    assert business.summaries[order_id].outcome is Stage.CLOSED
    # Every line on record, in order, once; the status on record is the last one.
    final = await status(env.client.get_workflow_handle(workflow_id))
    on_record = business.events[order_id]
    assert sorted(on_record) == list(range(1, len(final.timeline) + 1))
    assert [on_record[seq] for seq in sorted(on_record)] == final.timeline
    assert business.views[order_id][1].stage is final.stage is Stage.CLOSED


@pytest.mark.parametrize(
    ("scenario", "at_most_server_activities", "at_most_events", "at_most_upserts"),
    [("goods", 11, 136, 8), ("service", 10, 146, 7)],
)
async def test_the_record_is_written_locally_and_the_rest_on_the_server(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    scenario: str,
    at_most_server_activities: int,
    at_most_events: int,
    at_most_upserts: int,
) -> None:
    """LOCAL_WRITES: the writes of the order's record and its review run on the workflow
    worker; the claims, the notices and the merchant API calls stay server activities; the
    search attributes a task changes are upserted once at its end. The bounds are those
    measured when LOCAL_WRITES came in (goods 11 server activities, 128-134 events, 8 upserts;
    service 10, 142, 7). The targets (goods at most 12 server activities, 120 events, 6
    upserts; service 14, 118, 5) hold for the activities only."""
    with unpatched(LOCAL_WRITES):
        _, before = await run(env, business, scenario)
    workflow_id, now = await run(env, business, scenario)

    assert set(now.local) == {"load_policy", *LOCAL}, now.local
    assert set(now.server).isdisjoint(now.local), now.server
    assert sum(now.server.values()) <= at_most_server_activities, now.server
    assert sum(now.server.values()) * 2 <= sum(before.server.values()) + 1
    assert now.events <= at_most_events, now.events
    assert now.upserts <= at_most_upserts, now.upserts
    assert now.upserts < before.upserts
    assert now.tasks < before.tasks, (now.tasks, before.tasks)
    # The same steps ran, only where they ran changed (the recorder's bursts may group the
    # lines otherwise, as the steps take their turns at another pace).
    bursts = Counter({"record_events": 99})
    assert +(now.activities - bursts) == +(before.activities - bursts)
    # Everything on record all the same.
    final = await status(env.client.get_workflow_handle(workflow_id))
    on_record = business.events[workflow_id.removeprefix("order-")]
    assert [on_record[seq] for seq in sorted(on_record)] == final.timeline
    assert final.stage is Stage.CLOSED

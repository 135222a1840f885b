"""What an order costs Temporal, counted from its history: the timeline goes on record in
bursts (RECORD_IN_BURSTS), not one activity per line, and those writes carry what the
order's ending needs on record (ENDING_WITH_THE_RECORD: credit, the assignee's release, the
summary); every line still reaches the record, in order, with the status after the last, and
nothing carried is lost.

Each scenario runs twice on the same server: as orders run now and as they ran before the
bursts, so the saving is measured, not assumed. The bounds are those measured when
ENDING_WITH_THE_RECORD came in (goods: 33 activities and 249-260 events before the bursts, 24
and 200 with them, 21 and 184-187 now; service: 35 and 284-287, 24 and 215, 22 and 205-211),
with a little room for the order in which a worker happens to take concurrent work.
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
from workflows.order.patches import RECORD_IN_BURSTS

E = EventType


CARRIED = ("record_credit_event", "release_assignment", "record_summary")
"""Activities whose work the recorder's writes do (ENDING_WITH_THE_RECORD)."""


@dataclass(frozen=True)
class Cost:
    events: int
    tasks: int
    activities: Counter[str]

    @classmethod
    def of(cls, history: WorkflowHistory) -> Cost:
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        tasks = sum(e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED for e in history.events)
        return cls(len(history.events), tasks, Counter(scheduled))

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


@pytest.mark.parametrize(
    ("scenario", "at_most_activities", "at_most_events"),
    [("goods", 22, 192), ("service", 23, 215)],
)
async def test_an_order_goes_on_record_in_bursts_at_a_fraction_of_the_cost(
    env: WorkflowEnvironment,
    worker: Worker,
    business: Business,
    scenario: str,
    at_most_activities: int,
    at_most_events: int,
) -> None:
    with unpatched(RECORD_IN_BURSTS):
        before_id, before = await run(env, business, scenario)
    workflow_id, now = await run(env, business, scenario)

    for name in ("record_event", "record_view", *CARRIED):
        assert now.activities[name] == 0, name
    assert sum(now.activities.values()) <= at_most_activities, now.activities
    assert now.events <= at_most_events
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

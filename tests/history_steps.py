"""The steps an order ran, read from its history: activities scheduled on the server, and local
activities, which leave a marker each instead (FEWER_ROUND_TRIPS)."""

from __future__ import annotations

import json
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

LOCAL_MARKER = "core_local_activity"


def remote_steps(history: WorkflowHistory) -> Counter[str]:
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


def local_steps(history: WorkflowHistory) -> Counter[str]:
    found: Counter[str] = Counter()
    for e in history.events:
        marker = e.marker_recorded_event_attributes
        if (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and marker.marker_name == LOCAL_MARKER
        ):
            found[json.loads(marker.details["data"].payloads[0].data)["activity_type"]] += 1
    return found


def steps(history: WorkflowHistory) -> Counter[str]:
    """Every step, remote or local, by its activity type."""
    return remote_steps(history) + local_steps(history)

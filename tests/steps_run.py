"""The steps an order ran, read from its history: activities scheduled on the server, and local
activities (LOCAL_WRITES), which leave a marker naming the activity but not its input."""

from __future__ import annotations

import json
from collections.abc import Iterable

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.capacity_bench import LOCAL_ACTIVITY_MARKER


def server_steps(events: Iterable[HistoryEvent]) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def local_steps(events: Iterable[HistoryEvent]) -> list[str]:
    return [name for e in events if (name := local_activity(e))]


def local_activity(event: HistoryEvent) -> str:
    """The name of the local activity whose marker `event` is; empty for any other event."""
    marker = event.marker_recorded_event_attributes
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return ""
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return ""
    name: str = json.loads(marker.details["data"].payloads[0].data)["activity_type"]
    return name

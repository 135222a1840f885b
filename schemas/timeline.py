"""One line of an order's timeline: shown in its status and kept in the event log (R4.1.3).

Its own module because both the status (schemas.status) and the records written from it
(schemas.records) hold it, and the records also carry the status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.base import Model
from schemas.order import Stage


class TimelineEntry(Model):
    seq: int
    at: datetime
    event: str
    stage: Stage
    actor: str = "system"
    details: dict[str, Any] = {}

"""The order in the system of record and its append-only event log (R1.3, R2.1.1, R4.1.3)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.anomaly import AnomalyRecord
from schemas.records import OrderRecord, OrderSummary, RecordEvent, RecordOrder


class OrderRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_order(self, inp: RecordOrder) -> OrderRecord:
        """Store the order and its items; classify it (type, region, delivery mode, skills)."""
        raise NotImplementedError

    @activity.defn
    async def record_event(self, inp: RecordEvent) -> None:
        """Append one event and move the order's current stage; (order_id, seq) is the key."""
        raise NotImplementedError

    @activity.defn
    async def record_summary(self, inp: OrderSummary) -> None:
        """R3.3.3 store the post-execution summary."""
        raise NotImplementedError

    @activity.defn
    async def record_anomaly(self, inp: AnomalyRecord) -> None:
        """R5.2.4 open or close an anomaly row, keyed by anomaly_id."""
        raise NotImplementedError

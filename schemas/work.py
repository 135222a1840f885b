"""What a person sees of their own work: their inbox, and their open orders by urgency.

Read from the system of record (`starter.work_reads`), never from the workflows."""

from __future__ import annotations

from datetime import datetime

from schemas.base import Model
from schemas.order import OrderType, Stage
from schemas.policy import Clause


class InboxEntry(Model):
    """One notification addressed to the person, as written in their language."""

    key: str
    order_id: str
    topic: str | None
    subject: str
    text: str
    due_at: datetime | None
    created_at: datetime
    read_at: datetime | None
    delivered: str | None  # each route and how it went: "person:S-101=sent"


class WorkItem(Model):
    """An open order with what it needs next and by when (R4.1.1 the clause, its time left)."""

    order_id: str
    day_seq: int | None
    store_code: str
    store_name: str | None
    order_type: OrderType
    stage: Stage
    assignee: str | None
    clause: Clause | None  # the open deadline due soonest
    due_at: datetime | None
    seconds_left: float | None  # negative: late
    next_action: str  # the orderctl command that moves it on


class ManagerQueues(Model):
    """What waits on a manager besides the orders: anomalies and refunds to decide (R5.2, R6.1)."""

    anomalies: int
    refunds: int

"""What people read about orders, from the system of record (starter.order_reads).

Listings, an order's detail and "my work" come from PostgreSQL, not from workflow queries: the
record holds every order, running or not, and reading it costs the workflows nothing (R1.3,
R4.1.3).
"""

from __future__ import annotations

from datetime import datetime

from schemas.base import Model
from schemas.order import OrderType, Stage


class OrderFilter(Model):
    """Every field narrows the listing; None leaves it open."""

    stage: Stage | None = None
    store_code: str | None = None
    order_type: OrderType | None = None
    region: str | None = None
    assignee: str | None = None  # a staff id
    breached: bool | None = None  # a deadline was missed (R4.1.1)
    anomaly_open: bool | None = None  # on hold for a manager's decision (R5.2)
    open_only: bool = False  # not closed, rejected or cancelled
    departments: list[str] | None = None  # of these departments (a manager's reach)


class OrderRow(Model):
    """One line of a listing; the names are the CLI's listing's, from before it read the
    record."""

    order_id: str
    workflow_id: str
    status: str  # running, or completed once the stage is terminal
    stage: Stage
    order_type: OrderType
    store_code: str
    region: str
    assignee: str | None
    breached: bool
    anomaly_open: bool
    started_at: datetime
    closed_at: datetime | None
    next_due_at: datetime | None


class OpenAnomaly(Model):
    """R5.2.2 an anomaly waiting for a manager's decision."""

    order_id: str
    anomaly_id: str
    kind: str
    state: str  # open: no decision yet
    detail: str
    opened_at: datetime
    due_at: datetime  # the decision's deadline (anomaly_decision, soft)
    paused_stage: Stage | None
    store_code: str
    assignee: str | None


class OrderScope(Model):
    """What a permission check needs to know of an order, and nothing more."""

    order_id: str
    store_code: str
    order_type: OrderType
    region: str
    stage: Stage
    assignee: str | None
    departments: list[str]  # the assigned one, else every one that could take the order

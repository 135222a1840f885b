"""What an engineer reads of an order in the Temporal Web UI: its summary and details at start,
its current details as it goes, and a line naming each step and each deadline's timer.

Without them an order is a column of `record_event` rows. The words carry no customer's name,
phone or address, and they travel as payloads: with `ORDERFLOW_CODEC_KEYS` set they are
encrypted like the rest, and the UI shows them through the codec server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.order import PlatformOrder
    from schemas.policy import Clause
    from schemas.status import DeadlineState, OrderStatus

STEPS: Final[dict[str, str]] = {
    "load_policy": "policy snapshot",
    "record_order": "order on record",
    "record_event": "timeline entry on record",
    "record_events": "timeline and status on record",
    "record_view": "status on record",
    "record_feedback": "feedback case on record",
    "record_refund": "refund on record",
    "record_summary": "order summary on record",
    "record_anomaly": "anomaly on record",
    "review_order": "review",
    "assign_order": "assignment",
    "release_assignment": "assignee released",
    "reserve_stock": "stock reserved",
    "commit_stock": "stock taken",
    "release_stock": "stock released",
    "book_service": "visit booked",
    "release_booking": "booking released",
    "record_credit_event": "customer credit",
    "notify": "notification to the outbox",
    "platform_receive": "platform: received",
    "platform_confirm": "platform: confirmed",
    "platform_cancel_order": "platform: cancelled",
    "platform_meal_ready": "platform: ready",
    "platform_delivering": "platform: delivering",
    "platform_arrived": "platform: delivered",
    "platform_answer_refund": "platform: refund answered",
    "platform_reply_reminder": "platform: reminder answered",
    "report_to_platform": "platform liaison told",
}
"""Each activity's line in the Web UI, by its name."""

_OPEN: Final = frozenset({DeadlineState.OPEN, DeadlineState.BREACHED, DeadlineState.HARD_BREACHED})


def step(fn: Callable[..., Any], order_id: str) -> str:
    name = getattr(fn, "__name__", "step")
    return f"{STEPS.get(name, name)} · order {order_id}"


def deadline(clause: Clause, limit: str) -> str:
    """A deadline's timer: the policy clause it keeps, and which of its limits."""
    return f"{clause.value} {limit}"


def summary(order: PlatformOrder, order_type: str | None = None) -> str:
    """One line: the day number, store, type, amount and number of items."""
    day = f"#{order.day_seq}" if order.day_seq is not None else "#-"
    items = sum(i.quantity for i in order.items)
    kind = f" {order_type}" if order_type else ""
    return f"{day} {order.store_code}{kind} · ¥{order.total} · {items} item(s)"


def details(order: PlatformOrder) -> str:
    """The items and how the order is to be handed over; nothing that names the customer."""
    lines = [f"- {i.name} × {i.quantity} (¥{i.unit_price})" for i in order.items]
    handover = (
        "pickup" if order.pickup else "platform courier" if order.platform_delivery else "store"
    )
    due = order.expected_at.isoformat() if order.expected_at else "as soon as possible"
    return "\n".join([f"**Order {order.order_id}**", *lines, f"handover: {handover}, due {due}"])


def current(status: OrderStatus) -> str:
    """Where the order stands: stage, assignee, the next deadline, what holds it."""
    parts = [f"**{status.stage.value}**"]
    if status.assignee is not None:
        parts.append(f"assignee {status.assignee.staff_id}")
    open_ = [d for d in status.deadlines if d.state in _OPEN]
    if open_:
        soonest = min(open_, key=lambda d: d.due_at)
        parts.append(f"next: {soonest.key} due {soonest.due_at.isoformat(timespec='minutes')}")
    if status.paused_stage is not None:
        parts.append("on hold for an anomaly")
    return " · ".join(parts)

"""The names orderflow is known by outside its own code: workflow ids, the task queue, the
patrol and doctor schedules, the timeline's event vocabulary and the deadline keys.

Workflows write these names into histories and the system of record; analytics, the CLI and
the staff simulation read them back. Each is spelled here once, so a rename is one change and
a reader of the timeline finds every event in one list. Deterministic: workflows import it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from schemas.order import Stage
from schemas.policy import Clause

TASK_QUEUE: Final = "orders"

PATROL_SCHEDULE_ID: Final = "order-patrol"
PATROL_RUN_ID: Final = "order-patrol-run"
"""The schedule appends the time of each run to this id."""
DOCTOR_SCHEDULE_ID: Final = "order-doctor"
DOCTOR_RUN_ID: Final = "order-doctor-run"
RECORD_CHECK_SCHEDULE_ID: Final = "order-record-check"
RECORD_CHECK_RUN_ID: Final = "order-record-check-run"
"""R4.1.3 the orders' records held against their histories (`activities/record_check.py`)."""
REPORT_SCHEDULE_IDS: Final = {"daily": "order-report-daily", "weekly": "order-report-weekly"}
"""R4.3.1 the regular statistics: each store's day, the company's week, sent to the managers."""
STATS_REFRESH_SCHEDULE_ID: Final = "order-stats-refresh"
STATS_REFRESH_RUN_ID: Final = "order-stats-refresh-run"
"""R4.3.1 the statistics' rollup kept fresh by the workers, for readers that may not write it."""

_ORDER_PREFIX: Final = "order-"
_OWNED_BY_ORDER = re.compile(r"^(?:order|anomaly)-(\d+)")


def order_workflow_id(order_id: int | str) -> str:
    """One order, one workflow: the id is what makes a repeated push start nothing new."""
    return f"{_ORDER_PREFIX}{order_id}"


def anomaly_workflow_id(order_id: int | str, number: int) -> str:
    """The n-th anomaly of an order (an order may be held more than once)."""
    return f"anomaly-{order_id}-{number}"


def order_id_in(text: str) -> str:
    """The order id a person typed: the platform's id, or the workflow id `order-<id>`."""
    return text.strip().removeprefix(_ORDER_PREFIX)


def order_id_of(workflow_id: object) -> str | None:
    """`order-<id>` and `anomaly-<id>-<n>` belong to order <id>; other workflows to none."""
    match = _OWNED_BY_ORDER.match(str(workflow_id or ""))
    return match.group(1) if match else None


class Event(StrEnum):
    """What an order's timeline records (R4.1.3): a stage entered, a breach, a person's act.

    The stage events carry the stage's own name (`Event.stage`); the rest name what happened.
    """

    # stages entered
    RECEIVED = Stage.RECEIVED.value
    REVIEWING = Stage.REVIEWING.value
    ACCEPTED = Stage.ACCEPTED.value
    ASSIGNED = Stage.ASSIGNED.value
    CONFIRMED = Stage.CONFIRMED.value
    IN_PROGRESS = Stage.IN_PROGRESS.value
    DELIVERING = Stage.DELIVERING.value
    DELIVERED = Stage.DELIVERED.value
    CLOSED = Stage.CLOSED.value
    REJECTED = Stage.REJECTED.value
    CANCELLED = Stage.CANCELLED.value
    # review (one per verdict: `Event.review`)
    REVIEW_PASS = "review_pass"
    REVIEW_REJECT = "review_reject"
    REVIEW_ANOMALY = "review_anomaly"
    # capacity and assignment
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    REASSIGNED = "reassigned"
    REASSIGN_FAILED = "reassign_failed"
    # the customer
    CONFIRMED_WITH_CUSTOMER = "confirmed_with_customer"
    CUSTOMER_CHANGED = "customer_changed"
    CUSTOMER_CHANGE_IGNORED = "customer_change_ignored"
    # service visits
    BOOKED = "booked"
    REBOOKED = "rebooked"
    WAITING_FOR_SLOT = "waiting_for_slot"
    VISIT_RECONFIRMED = "visit_reconfirmed"
    # work reported by staff
    PROGRESS = "progress"
    EXCEPTION = "exception"
    READY = "ready"
    DELIVERED_WITH_PROOF = "delivered_with_proof"
    RATED = "rated"
    # the platform's courier
    COURIER_STATUS = "courier_status"
    DELIVERY_STATUS_IGNORED = "delivery_status_ignored"
    # anomalies
    ANOMALY_OPENED = "anomaly_opened"
    ANOMALY_CLOSED = "anomaly_closed"
    # deadlines
    DEADLINE_BREACHED = "deadline_breached"
    HARD_LIMIT_PASSED = "hard_limit_passed"
    # after-sales: feedback, reminders, refunds
    FEEDBACK_OPENED = "feedback_opened"
    FEEDBACK_IGNORED = "feedback_ignored"
    FEEDBACK_RESPONDED = "feedback_responded"
    FEEDBACK_RESOLVED = "feedback_resolved"
    CUSTOMER_REMINDED = "customer_reminded"
    REMINDER_IGNORED = "reminder_ignored"
    REMINDER_REPLIED = "reminder_replied"
    REFUND_NOTICE = "refund_notice"
    REFUND_IGNORED = "refund_ignored"
    REFUND_DECIDED = "refund_decided"
    # cancellation
    CANCEL_REQUESTED = "cancel_requested"
    PLATFORM_CANCELLED = "platform_cancelled"
    PLATFORM_CANCEL_IGNORED = "platform_cancel_ignored"
    PLATFORM_CANCEL_REFUSED = "platform_cancel_refused"
    COMPENSATION_FAILED = "compensation_failed"

    @classmethod
    def stage(cls, stage: Stage) -> Event:
        """The event of entering `stage`."""
        return cls(stage.value)

    @classmethod
    def review(cls, outcome: str) -> Event:
        """The event of a review verdict (`pass`, `reject`, `anomaly`)."""
        return cls(f"review_{outcome}")


DEADLINE_CASE_SEPARATOR: Final = "#"
"""Between a clause's prefix and its case in a deadline key: `refund#<refund_id>`."""

_KEY_PREFIX: Final = {Clause.REFUND_DECISION: "refund", Clause.REMINDER_REPLY: "reminder"}
"""Clauses opened once per case are keyed `<prefix>#<case>`; the prefix is the clause's name
except where the case is named after its thing (a refund, a reminder)."""


def deadline_key(clause: Clause, case: object | None = None) -> str:
    """The key of one deadline in an order: the clause, or `<clause>#<case>` for a clause
    opened once per change, feedback round, refund or reminder."""
    if case is None:
        return clause.value
    return f"{deadline_key_prefix(clause)}{DEADLINE_CASE_SEPARATOR}{case}"


def deadline_key_prefix(clause: Clause) -> str:
    return _KEY_PREFIX.get(clause, clause.value)

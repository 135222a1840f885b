"""What a notification is about: its topic names the text people read (`activities.notice_texts`
holds each topic's words in every language), its facts fill that text in.

The workflows say what happened and to whom; the words are chosen when the notification is
written, in the recipient's language, so a text can be corrected without touching a workflow.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from schemas.base import Model


class Language(StrEnum):
    ZH_CN = "zh-CN"
    EN = "en"


class Topic(StrEnum):
    # To the people on the order
    ASSIGNED = "assigned"  # R2.3.3 the assignee told
    CHANGED = "changed"  # R2.4.2 the customer changed the order: confirm again
    VISIT = "visit"  # R3.2.2 a service visit booked
    VISIT_MOVED = "visit_moved"  # R3.2.1 the visit moved
    CANCELLED_FOR_STAFF = "cancelled_for_staff"
    FEEDBACK_OPENED = "feedback_opened"  # R4.2.1
    REMINDER = "reminder"  # the customer's reminder (催单)
    # To the supervisor and the manager
    DEADLINE_MISSED = "deadline_missed"  # R5.1 a breach
    HARD_LIMIT = "hard_limit"  # R5.1.3 escalated
    NOT_RELEASED = "not_released"
    FEEDBACK_ESCALATED = "feedback_escalated"  # R4.2.3
    REFUND_REQUEST = "refund_request"
    LOW_STOCK = "low_stock"  # R2.2.1
    ANOMALY_OPENED = "anomaly_opened"  # R5.2.1 the manager told
    ANOMALY_UNDECIDED = "anomaly_undecided"
    ANOMALY_HARD_LIMIT = "anomaly_hard_limit"
    REPORT = "report"  # R4.3.1 the regular statistics, to each manager
    # To the platform liaison
    PLATFORM_REPORT = "platform_report"  # R6.2
    # To the customer
    CONFIRMED = "confirmed"  # R2.4.3
    REJECTED = "rejected"  # R2.2.4
    PROGRESS = "progress"  # R3.3.1
    EXCEPTION_SUBSTITUTED = "exception_substituted"  # R3.3.2 one per remedy
    EXCEPTION_RESCHEDULED = "exception_rescheduled"
    EXCEPTION_CANCELLED = "exception_cancelled"
    EXCEPTION_ESCALATED = "exception_escalated"
    DELIVERED = "delivered"  # R3.4.1
    SERVICE_COMPLETED = "service_completed"
    CANCELLED = "cancelled"
    FEEDBACK_ANSWER = "feedback_answer"  # R4.2.2
    FEEDBACK_RESOLUTION = "feedback_resolution"
    ORDER_UPDATED = "order_updated"


class Audience(StrEnum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    CUSTOMER = "customer"
    PLATFORM_LIAISON = "platform_liaison"  # R6.2 the person who deals with the platform


class Notification(Model):
    """What to tell whom; the words are the topic's, in the recipient's language
    (`activities.notice_texts`). `subject` and `text` are the words themselves for a
    notification without a topic, as every one had before topics."""

    key: str  # idempotency: the same key is written once and delivered once per route
    order_id: str
    audience: Audience
    recipient: str | None = None  # a staff id; None: whoever holds the role for the store
    store_code: str
    topic: Topic | None = None
    facts: dict[str, str] = {}
    due_at: datetime | None = None  # by when the person must act, when there is a deadline
    subject: str = ""
    text: str = ""

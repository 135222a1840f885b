"""Every action a person may take on an order: the workflow's update or signal, its message,
its duty in the permission table, and what makes a retried request the same update."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.anomaly import Decide
from schemas.messages import (
    Action,
    CancelOrder,
    ConfirmWithCustomer,
    CustomerChange,
    CustomerFeedback,
    DecideRefund,
    MarkDelivered,
    MarkReady,
    Reassign,
    ReconfirmVisit,
    RecordRating,
    ReplyReminder,
    ReportException,
    ReportProgress,
    ResolveFeedback,
    RespondFeedback,
)
from schemas.people import Duty, Person
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow


@dataclass(frozen=True)
class Act:
    name: str
    message: type[BaseModel]
    duty: Duty

    def parse(self, body: dict[str, Any], actor: Person) -> BaseModel:
        """The message as the person sent it, with them as its actor whatever the body says."""
        if issubclass(self.message, Action):
            body = {**body, "by": actor.staff_id}
        return self.message.model_validate(body)

    def update_id(self, target: str, message: BaseModel, request_key: str | None) -> str:
        """`<action>:<target>:<key>`: the client's Idempotency-Key, else the request's content,
        so the same request sent twice is one update and its second sender gets the first's
        answer. Two different answers to one matter (a refund agreed by one manager, rejected
        by another) are two updates: the workflow takes the first and refuses the second with
        what was decided, rather than handing the second sender the first one's answer."""
        basis = request_key or message.model_dump_json()
        key = hashlib.sha256(basis.encode()).hexdigest()[:20]
        return f"{self.name}:{target}:{key}"


def _act(method: Callable[..., Any], message: type[BaseModel], duty: Duty) -> Act:
    return Act(method.__name__, message, duty)


W = OrderWorkflow
UPDATES: dict[str, Act] = {
    act.name: act
    for act in (
        _act(W.confirm_with_customer, ConfirmWithCustomer, Duty.WORK),
        _act(W.report_progress, ReportProgress, Duty.WORK),
        _act(W.report_exception, ReportException, Duty.WORK),
        _act(W.mark_ready, MarkReady, Duty.WORK),
        _act(W.mark_delivered, MarkDelivered, Duty.WORK),
        _act(W.reconfirm_visit, ReconfirmVisit, Duty.WORK),
        _act(W.record_rating, RecordRating, Duty.CARE),
        _act(W.respond_feedback, RespondFeedback, Duty.CARE),
        _act(W.resolve_feedback, ResolveFeedback, Duty.CARE),
        _act(W.reply_reminder, ReplyReminder, Duty.CARE),
        _act(W.decide_refund, DecideRefund, Duty.DECIDE),
        _act(W.reassign, Reassign, Duty.DECIDE),
        _act(W.cancel_order, CancelOrder, Duty.DECIDE),
    )
}
"""The order's updates people may send (R2.4, R3.3, R3.4, R4.2, R5.2)."""

SIGNALS: dict[str, Act] = {
    act.name: act
    for act in (
        _act(W.customer_change, CustomerChange, Duty.CARE),
        _act(W.customer_feedback, CustomerFeedback, Duty.CARE),
    )
}
"""What the customer said by phone or in person, sent on their behalf (R2.4.2, R4.2.1)."""

DECIDE_ANOMALY = _act(AnomalyWorkflow.decide, Decide, Duty.DECIDE)
"""R5.2.3 a manager's decision on an anomaly, sent to the anomaly's own workflow."""

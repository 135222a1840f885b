"""The company's policy: every "[X] minutes" of the measures, per order type.

Defaults live here; `activities.policy.load_policy` layers the policy file and environment
overrides on top, and a store's own terms (`with_store_terms`) go on top of those for its
orders. A running order keeps the snapshot it took when it started.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, model_validator

from schemas.base import Model
from schemas.order import OrderType


class HardAction(StrEnum):
    """What happens when a deadline's hard limit passes too."""

    ESCALATE = "escalate"  # a manager takes the order over
    REASSIGN = "reassign"  # another person is given the work
    CANCEL = "cancel"  # the order is cancelled on the platform with `cancel_code`


class Deadline(Model):
    minutes: float = Field(gt=0)
    hard_minutes: float = Field(gt=0)
    action: HardAction = HardAction.ESCALATE
    cancel_code: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Deadline:
        if self.hard_minutes < self.minutes:
            raise ValueError("hard_minutes must not be shorter than minutes")
        if self.action is HardAction.CANCEL and self.cancel_code is None:
            raise ValueError("a cancel action needs a merchant cancel_code")
        return self

    @property
    def soft(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    @property
    def hard(self) -> timedelta:
        return timedelta(minutes=self.hard_minutes)


def _d(
    minutes: float, hard: float, action: HardAction = HardAction.ESCALATE, code: int | None = None
) -> Deadline:
    return Deadline(minutes=minutes, hard_minutes=hard, action=action, cancel_code=code)


class Clause(StrEnum):
    """Deadline names, after the clause of the measures that sets them."""

    RECEIVE = "receive"  # R2.1.3 received within X min of creation on the platform
    REVIEW = "review"  # R2.2.4 reviewed within X min of receipt
    ACCEPT = "accept"  # R6.1 confirmed on the platform before its auto-cancel
    ASSIGN = "assign"  # R2.3.3 assigned within X min of passing review
    CONFIRM = "confirm"  # R2.4.1 confirmed with the customer within X min of assignment
    PREPARE = "prepare"  # R3.1.1 goods ready (or by the promised time)
    DELIVER = "deliver"  # R3.4.1 goods delivered (or by the promised time)
    SCHEDULE = "schedule"  # R3.2.1 a qualified person and a slot booked
    RECONFIRM_VISIT = "reconfirm_visit"  # R3.2.2 the person re-confirms time and place
    EXECUTE = "execute"  # R3.3.1 the service done, from the slot's start
    FEEDBACK_RESPONSE = "feedback_response"  # R4.2.2 feedback answered
    FEEDBACK_RESOLUTION = "feedback_resolution"  # R4.2.3 result back to the customer
    REMINDER_REPLY = "reminder_reply"  # R4.2.2 a customer's reminder answered
    REFUND_DECISION = "refund_decision"  # R6.1 the platform's refund rules
    ANOMALY_DECISION = "anomaly_decision"  # R5.2.2 the manager decides an anomaly


class Deadlines(Model):
    review: Deadline = _d(5, 15)
    accept: Deadline = _d(3, 5)
    assign: Deadline = _d(3, 10)
    confirm: Deadline = _d(10, 20, HardAction.CANCEL, 2012)
    prepare: Deadline = _d(30, 45)
    deliver: Deadline = _d(40, 60)
    schedule: Deadline = _d(30, 60)
    reconfirm_visit: Deadline = _d(60, 120)
    execute: Deadline = _d(150, 240)
    feedback_response: Deadline = _d(30, 60)
    feedback_resolution: Deadline = _d(240, 480)
    reminder_reply: Deadline = _d(5, 10)
    refund_decision: Deadline = _d(30, 60)
    anomaly_decision: Deadline = _d(30, 60)

    def of(self, clause: Clause) -> Deadline:
        deadline: Deadline = getattr(self, clause.value)
        return deadline


class OrderPolicy(Model):
    """Everything one order type's lifecycle consults."""

    auto_confirm: bool = False  # R2.4.1 takeout rarely needs a call
    feedback_window_minutes: float = Field(default=24 * 60, ge=0)  # R4.2 after delivery
    max_feedback_rounds: int = Field(default=3, ge=1)  # R4.2.3 then a manager is brought in
    max_reassignments: int = Field(default=2, ge=0)  # then the hard limit escalates instead
    low_rating: int = Field(default=2, ge=1, le=5)  # R3.4.2 a rating this low opens a complaint
    assign_retry_minutes: float = Field(default=1, gt=0)  # R2.3.2 first look for free capacity
    # R2.3.2, R3.2.1 the looks double from there to this: the longest between two looks
    assign_retry_max_minutes: float = Field(default=60, gt=0)
    deadlines: Deadlines = Deadlines()


def store_terms(terms: OrderPolicy, overrides: Mapping[str, Any]) -> OrderPolicy:
    """The type's terms with a store's own on top (`store_policies`, set by an admin), merged
    key by key; ValidationError when they do not fit."""
    if not overrides:
        return terms
    return OrderPolicy.model_validate(merged_terms(terms.model_dump(mode="json"), overrides))


def with_store_terms(terms: OrderPolicy, overrides: Mapping[str, Any]) -> OrderPolicy:
    """`store_terms`, or the type's terms as they are when the store's no longer fit: a
    store's setting must not stop its orders."""
    try:
        return store_terms(terms, overrides)
    except ValidationError:
        return terms


def merged_terms(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`, key by key at every depth."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merged_terms(out[key], value)
        else:
            out[key] = value
    return out


def _goods() -> OrderPolicy:
    return OrderPolicy(auto_confirm=True, feedback_window_minutes=24 * 60)


def _service() -> OrderPolicy:
    return OrderPolicy(
        auto_confirm=False,
        feedback_window_minutes=3 * 24 * 60,
        deadlines=Deadlines(confirm=_d(15, 30, HardAction.REASSIGN)),
    )


class Targets(Model):
    """R4.3.2 what the company aims at: the statistics' findings measure each period against
    these as well as against the period before."""

    on_time: float = Field(default=0.95, gt=0, le=1)
    """Share of each clause's deadlines met."""
    on_time_by_clause: dict[Clause, float] = {}
    """A clause's own target, where it differs."""
    rating: float = Field(default=4.5, ge=1, le=5)
    """The average rating at least."""
    complaint_rate: float = Field(default=0.05, ge=0, le=1)
    """Orders with a complaint, at most."""
    anomaly_rate: float = Field(default=0.05, ge=0, le=1)
    """Orders held for an anomaly, at most."""
    cancellation_rate: float = Field(default=0.05, ge=0, le=1)
    """Orders cancelled or rejected, at most."""
    small_sample: int = Field(default=20, ge=1)
    """A figure on fewer cases than this is said to rest on a small sample."""

    @model_validator(mode="after")
    def _shares(self) -> Targets:
        for clause, share in self.on_time_by_clause.items():
            if not 0 < share <= 1:
                raise ValueError(f"on_time_by_clause.{clause.value} is a share over 0 up to 1")
        return self

    def on_time_for(self, clause: Clause) -> float:
        return self.on_time_by_clause.get(clause, self.on_time)


class Policy(Model):
    receive: Deadline = _d(2, 5)  # R2.1.3, before the order's type is known
    patrol_minutes: float = Field(default=10, gt=0)  # R2.1.2 how often the platform is walked
    platform_task_queue: str | None = None
    """Deployment, not policy: the task queue of the merchant API calls when they run on
    workers of their own (ORDERFLOW_PLATFORM_TASK_QUEUE); None: the order's own queue."""
    goods: OrderPolicy = Field(default_factory=_goods)
    service: OrderPolicy = Field(default_factory=_service)
    targets: Targets = Field(default_factory=Targets)

    def for_type(self, order_type: OrderType) -> OrderPolicy:
        return self.goods if order_type is OrderType.GOODS else self.service

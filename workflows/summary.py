"""The post-execution summary of an order (R3.3.3): durations, breaches, and what to improve,
derived from what happened in it (which clause was late, by how much, what held it)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.order import OrderType, Stage
    from schemas.records import OrderSummary
    from schemas.status import Breach, DeadlineState, DeadlineView


def stage_seconds(stages: list[tuple[Stage, datetime]], ended_at: datetime) -> dict[str, float]:
    """Time spent in each stage, on hold included, summed over repeated visits."""
    seconds: dict[str, float] = {}
    for (stage, began), (_, ended) in zip(
        stages, [*stages[1:], (Stage.CLOSED, ended_at)], strict=False
    ):
        seconds[stage.value] = seconds.get(stage.value, 0.0) + (ended - began).total_seconds()
    return seconds


def improvements(
    deadlines: list[DeadlineView],
    stages: list[tuple[Stage, datetime]],
    ended_at: datetime,
    exceptions: list[str],
    anomalies: list[str],
    feedback: list[FeedbackCase],
    rating: int | None,
    low_rating: int,
) -> list[str]:
    """What went wrong in this order, from what happened in it: each entry is `cause: detail`,
    the cause a stable phrase the statistics count (R4.3.2 most frequent causes)."""
    found = [_late(view, stages, ended_at) for view in deadlines if view.state in _LATE]
    found += [f"exception {exception}" for exception in exceptions]
    found += [f"anomaly {anomaly}" for anomaly in anomalies]
    for case in feedback:
        if case.round > 1 or case.state is FeedbackState.ESCALATED:
            found.append(f"feedback rounds: #{case.case} ({case.kind.value}) took {case.round}")
    if rating is not None and rating <= low_rating:
        found.append(f"low rating: {rating} of 5")
    return found


_LATE = (DeadlineState.BREACHED, DeadlineState.HARD_BREACHED, DeadlineState.MET_LATE)


def _late(view: DeadlineView, stages: list[tuple[Stage, datetime]], ended_at: datetime) -> str:
    """Which clause, by how much, and what held the order meanwhile."""
    until = view.ended_at or ended_at
    minutes = max(0.0, (until - view.due_at).total_seconds() / 60)
    hard = " past the hard limit" if view.state is DeadlineState.HARD_BREACHED else ""
    held = _held(stages, view.started_at, until, ended_at)
    why = f", {held:.0f} min of it on hold for an anomaly" if held >= 1 else ""
    return f"late {view.clause.value}: {minutes:.0f} min after its due time{hard}{why}"


def _held(
    stages: list[tuple[Stage, datetime]], start: datetime, end: datetime, ended_at: datetime
) -> float:
    """Minutes of [start, end] the order spent on hold."""
    total = 0.0
    for (stage, began), (_, left) in zip(
        stages, [*stages[1:], (Stage.CLOSED, ended_at)], strict=False
    ):
        if stage is Stage.ON_HOLD:
            overlap = (min(left, end) - max(began, start)).total_seconds()
            total += max(0.0, overlap)
    return total / 60


def summarise(
    *,
    order_id: str,
    order_type: OrderType,
    outcome: Stage,
    stages: list[tuple[Stage, datetime]],
    ended_at: datetime,
    breaches: list[Breach],
    deadlines: list[DeadlineView],
    exceptions: list[str],
    anomalies: list[str],
    feedback: list[FeedbackCase],
    rating: int | None,
    low_rating: int,
) -> OrderSummary:
    return OrderSummary(
        order_id=order_id,
        order_type=order_type,
        outcome=outcome,
        stage_seconds=stage_seconds(stages, ended_at),
        breaches=[f"{b.key}{' (hard)' if b.hard else ''}" for b in breaches],
        exceptions=exceptions,
        anomalies=anomalies,
        feedback_rounds=sum(case.round for case in feedback),
        rating=rating,
        improvements=improvements(
            deadlines, stages, ended_at, exceptions, anomalies, feedback, rating, low_rating
        ),
    )

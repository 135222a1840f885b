"""The post-execution summary of an order (R3.3.3): durations, breaches, and what to improve,
derived from what happened in it (which clause was late, by how much, where the order stood)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.order import OrderType, Stage
    from schemas.records import OrderSummary
    from schemas.status import Breach, DeadlineView


def stage_seconds(stages: list[tuple[Stage, datetime]], ended_at: datetime) -> dict[str, float]:
    """Time spent in each stage, on hold included, summed over repeated visits."""
    seconds: dict[str, float] = {}
    for (stage, began), (_, ended) in zip(
        stages, [*stages[1:], (Stage.CLOSED, ended_at)], strict=False
    ):
        seconds[stage.value] = seconds.get(stage.value, 0.0) + (ended - began).total_seconds()
    return seconds


def improvements(
    breaches: list[Breach],
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
    views = {view.key: view for view in deadlines}
    missed = dict.fromkeys(b.key for b in breaches)  # each deadline once, in order
    found = [
        _late([b for b in breaches if b.key == key], views.get(key), stages, ended_at)
        for key in missed
    ]
    found += [f"exception {exception}" for exception in exceptions]
    found += [f"anomaly {anomaly}" for anomaly in anomalies]
    for case in feedback:
        if case.round > 1 or case.state is FeedbackState.ESCALATED:
            found.append(f"feedback rounds: #{case.case} ({case.kind.value}) took {case.round}")
    if rating is not None and rating <= low_rating:
        found.append(f"low rating: {rating} of 5")
    return found


def _late(
    breaches: list[Breach],
    view: DeadlineView | None,
    stages: list[tuple[Stage, datetime]],
    ended_at: datetime,
) -> str:
    """Which clause, by how much (from when it fell due to when it was met, or the order
    ended), and where the order stood when it fell due. Time on hold is not in it: a hold
    moves the deadline."""
    fell_due = min(b.at for b in breaches)
    until = view.ended_at if view is not None and view.ended_at else ended_at
    minutes = max(0.0, (until - fell_due).total_seconds() / 60)
    hard = ", past the hard limit" if any(b.hard for b in breaches) else ""
    stage = _stage_at(stages, fell_due)
    return (
        f"late {breaches[0].clause.value}: {minutes:.0f} min after its due time{hard}"
        f" (the order was {stage.value} then)"
    )


def _stage_at(stages: list[tuple[Stage, datetime]], moment: datetime) -> Stage:
    current = stages[0][0] if stages else Stage.RECEIVED
    for stage, began in stages:
        if began > moment:
            break
        current = stage
    return current


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
            breaches,
            deadlines,
            stages,
            ended_at,
            exceptions,
            anomalies,
            feedback,
            rating,
            low_rating,
        ),
    )

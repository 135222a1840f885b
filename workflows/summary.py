"""The post-execution summary of an order (R3.3.3): durations, breaches, what to improve."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.feedback import FeedbackCase, FeedbackState
    from schemas.order import OrderType, Stage
    from schemas.records import OrderSummary
    from schemas.status import Breach


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
    exceptions: list[str],
    anomalies: list[str],
    feedback: list[FeedbackCase],
    rating: int | None,
    low_rating: int,
) -> list[str]:
    found: list[str] = []
    for clause in sorted({b.clause.value for b in breaches}):
        hard = any(b.hard and b.clause.value == clause for b in breaches)
        found.append(
            f"{clause} deadline {'past its hard limit' if hard else 'missed'}: "
            "review staffing and hand-offs"
        )
    for exception in exceptions:
        found.append(f"execution exception ({exception}): check its cause")
    for anomaly in anomalies:
        found.append(f"anomaly ({anomaly}): tighten the review rule that lets it through")
    if any(case.round > 1 or case.state is FeedbackState.ESCALATED for case in feedback):
        found.append("feedback needed more than one round: improve first responses")
    if rating is not None and rating <= low_rating:
        found.append(f"low rating ({rating}): follow up the service quality")
    return found


def summarise(
    *,
    order_id: str,
    order_type: OrderType,
    outcome: Stage,
    stages: list[tuple[Stage, datetime]],
    ended_at: datetime,
    breaches: list[Breach],
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
        improvements=improvements(breaches, exceptions, anomalies, feedback, rating, low_rating),
    )

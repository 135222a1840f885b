"""R3.3.3 the improvements of an order come from what happened in it: which clause was late, by
how much, and what held the order meanwhile; each begins with a cause the statistics count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.order import Stage
from schemas.policy import Clause
from schemas.status import DeadlineState, DeadlineView
from workflows.summary import improvements

T0 = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def _view(
    clause: Clause, due_min: int, ended_min: int | None, state: DeadlineState
) -> DeadlineView:
    return DeadlineView(
        key=clause.value,
        clause=clause,
        started_at=T0,
        due_at=T0 + timedelta(minutes=due_min),
        hard_at=T0 + timedelta(minutes=due_min * 2),
        state=state,
        ended_at=None if ended_min is None else T0 + timedelta(minutes=ended_min),
    )


def test_late_clauses_say_by_how_much_and_what_held_them() -> None:
    stages = [
        (Stage.ASSIGNED, T0),
        (Stage.ON_HOLD, T0 + timedelta(minutes=2)),  # an anomaly, decided 12 minutes later
        (Stage.ASSIGNED, T0 + timedelta(minutes=14)),
        (Stage.CONFIRMED, T0 + timedelta(minutes=20)),
    ]
    views = [
        _view(Clause.CONFIRM, 10, 20, DeadlineState.MET_LATE),
        _view(Clause.PREPARE, 30, 25, DeadlineState.MET),
        _view(Clause.DELIVER, 40, None, DeadlineState.HARD_BREACHED),
    ]
    found = improvements(
        views, stages, T0 + timedelta(minutes=100), ["delay: reschedule"], [], [], 2, 2
    )
    assert found == [
        "late confirm: 10 min after its due time, 12 min of it on hold for an anomaly",
        "late deliver: 60 min after its due time past the hard limit, "
        "12 min of it on hold for an anomaly",
        "exception delay: reschedule",
        "low rating: 2 of 5",
    ]
    assert improvements([], stages, T0, [], [], [], 5, 2) == []  # nothing went wrong

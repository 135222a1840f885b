"""R3.3.3 the improvements of an order come from what happened in it: which clause was late, by
how much and where the order stood; each begins with a cause the statistics count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.order import Stage
from schemas.policy import Clause, HardAction
from schemas.status import Breach, DeadlineState, DeadlineView
from workflows.summary import improvements

T0 = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _view(clause: Clause, due: int, ended: int, state: DeadlineState) -> DeadlineView:
    return DeadlineView(
        key=clause.value,
        clause=clause,
        started_at=T0,
        due_at=_at(due),
        hard_at=_at(due * 2),
        state=state,
        ended_at=_at(ended),
    )


def test_late_clauses_say_by_how_much_and_where_the_order_stood() -> None:
    stages = [(Stage.ASSIGNED, T0), (Stage.CONFIRMED, _at(20)), (Stage.CANCELLED, _at(90))]
    views = [
        _view(Clause.CONFIRM, 10, 20, DeadlineState.MET_LATE),
        _view(Clause.PREPARE, 30, 25, DeadlineState.MET),
        # late, past its hard limit, then the order ended: the end voided it
        _view(Clause.DELIVER, 40, 90, DeadlineState.VOID),
    ]
    breaches = [
        Breach(key="confirm", clause=Clause.CONFIRM, at=_at(10), hard=False),
        Breach(key="deliver", clause=Clause.DELIVER, at=_at(40), hard=False),
        Breach(
            key="deliver", clause=Clause.DELIVER, at=_at(80), hard=True, action=HardAction.CANCEL
        ),
    ]
    found = improvements(breaches, views, stages, _at(90), ["delay: reschedule"], [], [], 2, 2)
    assert found == [
        "late confirm: 10 min after its due time (the order was assigned then)",
        "late deliver: 50 min after its due time, past the hard limit "
        "(the order was confirmed then)",
        "exception delay: reschedule",
        "low rating: 2 of 5",
    ]
    assert improvements([], views, stages, T0, [], [], [], 5, 2) == []  # nothing went wrong

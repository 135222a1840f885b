"""A lifted ban sticks: the next credit event does not ban the customer again."""

from __future__ import annotations

from activities.credit import status_for
from infra.settings import settings
from starter.api.admin import lifted


def test_a_lifted_ban_is_not_undone_by_the_next_credit_event() -> None:
    rules = settings().credit
    low = lifted({"status": "banned", "credit_score": 5})
    assert low == {"status": "restricted", "credit_score": rules.banned_below}
    after_a_good_order = low["credit_score"] + rules.completed
    assert status_for(after_a_good_order, low["status"]) == "restricted"
    assert lifted({"status": "banned", "credit_score": 100}) == {
        "status": "good",
        "credit_score": 100,
    }

"""Admin rules without a database: a lifted ban sticks (the next credit event does not ban
the customer again); a store's hours do not overlap; targets are shares."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.credit import status_for
from infra.settings import settings
from schemas.admin import StoreHours
from schemas.policy import Targets
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


def test_hours_that_overlap_and_targets_that_are_not_shares_are_refused() -> None:
    with pytest.raises(ValidationError, match="two ranges on day 1 overlap at 12:00"):
        StoreHours.model_validate(
            {
                "hours": [
                    {"weekday": 1, "opens": "10:00", "closes": "14:00"},
                    {"weekday": 1, "opens": "12:00", "closes": "22:00"},
                ],
                "reason": "x",
            }
        )
    apart = [
        {"weekday": 1, "opens": "10:00", "closes": "14:00"},
        {"weekday": 1, "opens": "17:00", "closes": "22:00"},
        {"weekday": 2, "opens": "10:00", "closes": "22:00"},
    ]
    assert len(StoreHours.model_validate({"hours": apart, "reason": "x"}).hours) == 3
    with pytest.raises(ValidationError, match=r"on_time_by_clause\.accept is a share"):
        Targets.model_validate({"on_time_by_clause": {"accept": 99}})

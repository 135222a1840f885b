"""R4.3.1 the figures of a period as JSON, with the findings (R4.3.2) and scorecards (R7.2).

Pure: `compute` takes the read's rows (`Raw`) and returns the whole answer of
`orderctl stats --json`; the terminal and the HTML report render that answer, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from analytics.findings import (
    DEFAULT_THRESHOLDS,
    Thresholds,
    comparison,
    find,
    forged_pushes,
)
from analytics.formats import money, ratio, rounded
from analytics.targets import against_targets
from analytics.totals import Histogram, Raw, StaffTotals, Tally, Totals, tally
from analytics.vocabulary import CLAUSES, FIRST_RESPONSE, HANDLING, OUTCOMES, STAGES, stage_metric
from meituan.codes import MerchantCancelReason, PlatformCancelReason
from schemas.policy import Targets
from schemas.review import AnomalyKind

DEFAULT_TARGETS = Targets()


def cancel_reason(code: int) -> str:
    """The platform's or the merchant's name of a cancel code."""
    for enum in (PlatformCancelReason, MerchantCancelReason):
        try:
            return enum(code).name.lower()
        except ValueError:
            continue
    return "unknown" if code == 0 else str(code)


def _stage_histograms(tot: Totals) -> dict[str, Histogram]:
    """The stages timed in the totals, in the contract's order."""
    return {
        s: tot.durations[stage_metric(s)]
        for s in STAGES
        if stage_metric(s) in tot.durations and tot.durations[stage_metric(s)].n
    }


def figures(tot: Totals) -> dict[str, Any]:
    """R4.3.1 the figures of one period (or group) as JSON."""
    return {
        "orders": {
            "count": tot.orders,
            "by_outcome": {o: tot.outcomes[o] for o in OUTCOMES if tot.outcomes[o]},
            "patrol_found": tot.patrol_found,
            "with_anomaly": tot.anomaly_orders,
        },
        "amount": {
            "gross": money(tot.gross),
            "discounts": money(tot.discounts),
            "paid": money(tot.paid),
            "refunded": money(tot.refunded),
            "net": money(tot.net),
        },
        "satisfaction": {
            "rated": tot.rated,
            "rating_average": tot.rating_average,
            "distribution": {str(k): tot.ratings[k] for k in range(1, 6)},
            "complaint_orders": tot.complained,
            "complaint_rate": tot.complaint_rate,
        },
        "stage_seconds": {s: h.summary() for s, h in _stage_histograms(tot).items()},
        "handling_seconds": tot.durations[HANDLING].summary()
        if HANDLING in tot.durations
        else Histogram().summary(),
        "deadlines": {c: tot.deadlines[c].summary() for c in CLAUSES if c in tot.deadlines},
        "breach_rate": tot.breach_rate,
        "orders_breached": tot.breached_orders,
        "orders_past_hard_limit": tot.hard_orders,
        "anomalies": {
            kind: dict(sorted(decisions.items()))
            for kind, decisions in sorted(tot.anomalies.items())
        },
        "feedback": _feedback(tot),
    }


def _feedback(tot: Totals) -> dict[str, Any]:
    """R4.2 the cases of every kind, the platform's reminders and refund requests included."""
    cases = sum(c["cases"] for c in tot.feedback.values())
    rounds = sum(c["rounds"] for c in tot.feedback.values())
    return {
        "cases": cases,
        "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(tot.feedback.items())},
        "first_response_seconds": tot.durations.get(FIRST_RESPONSE, Histogram()).summary(),
        "average_rounds": ratio(rounds, cases, 2),
        "more_than_one_round": sum(c["multi_round"] for c in tot.feedback.values()),
        "satisfied": sum(c["satisfied"] for c in tot.feedback.values()),
        "escalated": sum(c["escalated"] for c in tot.feedback.values()),
    }


def group_row(key: str, tot: Totals, previous: Totals | None) -> dict[str, Any]:
    return {
        "key": key,
        "orders": tot.orders,
        "previous_orders": previous.orders if previous else 0,
        "net": money(tot.net),
        "rating_average": tot.rating_average,
        "complaint_rate": tot.complaint_rate,
        "breach_rate": tot.breach_rate,
        "anomaly_orders": tot.anomaly_orders,
        "stage_p90": {s: rounded(h.percentile(0.9), 3) for s, h in _stage_histograms(tot).items()},
        "on_time_rate": ratio(
            sum(d.met for d in tot.deadlines.values()),
            sum(d.total for d in tot.deadlines.values()),
        ),
    }


def scorecards(
    staff: Mapping[str, StaffTotals], departments: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """R7.2 one card per person and per department (the people's figures added up)."""
    people = []
    by_department: dict[str, StaffTotals] = {}
    for staff_id, person in sorted(staff.items()):
        people.append(
            {"staff_id": staff_id, "department": person.department, "role": person.role}
            | person.card()
        )
        code = person.department or "unknown"
        by_department.setdefault(code, StaffTotals(staff_id=code, department=code)).merge(person)
    units = [
        {
            "department": code,
            "name": departments.get(code, ""),
            "people": sum(1 for p in staff.values() if (p.department or "unknown") == code),
        }
        | card.card()
        for code, card in sorted(by_department.items())
    ]
    return people, units


def compute(
    raw: Raw, limits: Thresholds = DEFAULT_THRESHOLDS, targets: Targets = DEFAULT_TARGETS
) -> dict[str, Any]:
    """The whole answer of `orderctl stats --json`; the findings against the targets first."""
    t = tally(raw)
    period, previous = raw.period, raw.period.previous()
    people, units = scorecards(t.staff, raw.departments)
    patrol = raw.patrol.get("current", {"runs": 0, "found": 0})
    refused = refused_pushes(raw.rows.get("refused", []))
    return {
        "period": {"from": str(period.start), "to": str(period.end), "days": period.days},
        "previous_period": {"from": str(previous.start), "to": str(previous.end)},
        "zone": raw.zone,
        **figures(t.current),
        "cancellations": _cancellations(t),
        "orders_per_hour": [t.current.hours.get(h, 0) for h in range(24)],
        "daily": _daily(t, raw),
        "patrol": {"runs": patrol["runs"], "orders_found": patrol["found"]},
        "refused_pushes": refused,
        "groups": _groups(t, raw),
        "comparison": comparison(t.current, t.previous),
        "previous": figures(t.previous),
        "improvement_causes": causes(raw.rows.get("causes", [])),
        "findings": [
            f.as_json()
            for f in (
                *against_targets(t.current, t.stores, targets),
                *find(t.current, t.previous, t.stores, t.staff, limits),
                *forged_pushes(refused["by_cause"]),
            )
        ],
        "staff": people,
        "departments": units,
        "source": {
            "orders_computed_live": raw.live_orders,
            "pairs_not_yet_rolled_up": raw.dirty_pairs,
            "seconds": raw.seconds,
        },
    }


def causes(rows: Sequence[Mapping[str, Any]], top: int = 10) -> list[dict[str, Any]]:
    """R3.3.3 the most frequent causes of what went wrong in orders, with the period before."""
    now = {r["cause"]: r["n"] for r in rows if r["period"] == "current"}
    before = {r["cause"]: r["n"] for r in rows if r["period"] == "previous"}
    ranked = sorted(now.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"cause": c, "n": n, "previous": before.get(c, 0)} for c, n in ranked]


def refused_pushes(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """R6.3 pushes refused for what they are, by cause, with the period before: forged or
    broken traffic, or a secret that no longer matches the platform's."""
    now = {r["cause"]: r for r in rows if r["period"] == "current"}
    before = sum(r["refused"] for r in rows if r["period"] == "previous")
    return {
        "refused": sum(r["refused"] for r in now.values()),
        "not_kept": sum(r["not_kept"] for r in now.values()),
        "previous": before,
        "by_cause": {c: now[c]["refused"] for c in sorted(now, key=lambda c: -now[c]["refused"])},
    }


def _cancellations(t: Tally) -> list[dict[str, Any]]:
    """Orders cancelled or rejected, by reason and by whom, the most frequent first."""
    return [
        {"outcome": outcome, "code": code, "reason": cancel_reason(code), "by": by, "n": n}
        for (outcome, code, by), n in sorted(t.cancellations.items(), key=lambda kv: -kv[1])
    ]


def _daily(t: Tally, raw: Raw) -> list[dict[str, Any]]:
    """Each day of the period, also a day without orders (R5.3.2 price anomalies over time)."""
    period = raw.period
    days = [period.start + timedelta(days=i) for i in range(period.days)]
    return [
        {
            "day": str(d),
            "orders": t.daily.get(d, {}).get("orders", 0),
            "price_anomalies": t.daily.get(d, {}).get(AnomalyKind.PRICE.value, 0),
            "anomalies": sum(v for k, v in t.daily.get(d, {}).items() if k != "orders"),
        }
        for d in days
    ]


def _groups(t: Tally, raw: Raw) -> dict[str, Any] | None:
    """`--by`: a row per group of either period."""
    if raw.by is None:
        return None
    keys = sorted(set(t.groups) | set(t.previous_groups))
    return {
        "by": raw.by,
        "rows": [group_row(k, t.groups.get(k, Totals()), t.previous_groups.get(k)) for k in keys],
    }

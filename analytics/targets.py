"""R4.3.2 a period against what the company aims at (the policy's `[targets]`), not only against
the period before: a day on which every order was late is a finding even when the day before
had no orders at all.

Pure, on totals only. Each finding says what, how far from its target and where (the stores
with the most of it); a figure on fewer cases than the targets' `small_sample` says so and is
a notice, not a warning: it is shown, not hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from analytics.findings import Finding
from analytics.formats import pct, ratio
from analytics.totals import Deadlines, Totals
from analytics.vocabulary import CLAUSES
from schemas.order import Stage
from schemas.policy import Clause, Targets

ENDED_UNSERVED = (Stage.CANCELLED.value, Stage.REJECTED.value)


def against_targets(
    current: Totals, stores: Mapping[str, Totals], targets: Targets
) -> list[Finding]:
    return [
        *_deadlines(current, stores, targets),
        *_rating(current, targets),
        *_rates(current, stores, targets),
    ]


def _deadlines(current: Totals, stores: Mapping[str, Totals], targets: Targets) -> list[Finding]:
    """Each clause's deadlines met against its target, and the hard limits passed."""
    found: list[Finding] = []
    for clause in CLAUSES:
        d = current.deadlines.get(clause)
        if d is None or not d.total:
            continue
        where = _where(stores, _counting(clause, hard=False))
        target = targets.on_time_for(Clause(clause))
        rate = d.met / d.total
        if rate < target:
            found.append(
                _finding(
                    "clause_below_target",
                    clause,
                    f"Clause {clause}: {d.met} of {d.total} deadlines met ({pct(rate)}), "
                    f"target {pct(target)}: {pct(target - rate)} short{where}.",
                    d.total,
                    targets,
                    {"met": d.met, "deadlines": d.total, "rate": rate, "target": target},
                )
            )
        if d.hard:
            hard = _where(stores, _counting(clause, hard=True))
            found.append(
                _finding(
                    "clause_past_hard_limit",
                    clause,
                    f"Clause {clause}: {d.hard} of {d.total} deadlines passed their hard limit, "
                    f"where the policy's action was taken{hard}.",
                    d.total,
                    targets,
                    {"hard": d.hard, "deadlines": d.total},
                )
            )
    return found


def _counting(clause: str, *, hard: bool) -> Callable[[Totals], int]:
    """A group's deadlines of `clause` past the hard limit, or late at all."""

    def count(totals: Totals) -> int:
        d = totals.deadlines.get(clause) or Deadlines()
        return d.hard if hard else d.late

    return count


def _rating(current: Totals, targets: Targets) -> list[Finding]:
    average = current.rating_average
    if average is None or average >= targets.rating:
        return []
    return [
        _finding(
            "rating_below_target",
            "satisfaction",
            f"Average rating {average} on {current.rated} ratings, target {targets.rating}.",
            current.rated,
            targets,
            {"average": average, "ratings": current.rated, "target": targets.rating},
        )
    ]


_RATES: tuple[tuple[str, str, Callable[[Totals], int], Callable[[Targets], float]], ...] = (
    ("complaint", "drew a complaint", lambda t: t.complained, lambda g: g.complaint_rate),
    ("anomaly", "were held for an anomaly", lambda t: t.anomaly_orders, lambda g: g.anomaly_rate),
    (
        "cancellation",
        "were cancelled or rejected",
        lambda t: sum(t.outcomes.get(o, 0) for o in ENDED_UNSERVED),
        lambda g: g.cancellation_rate,
    ),
)


def _rates(current: Totals, stores: Mapping[str, Totals], targets: Targets) -> list[Finding]:
    """Complaints, anomalies and cancellations per order, against their thresholds."""
    found: list[Finding] = []
    for name, what, count_of, limit_of in _RATES:
        count, limit = count_of(current), limit_of(targets)
        rate = ratio(count, current.orders)
        if rate is None or rate <= limit:
            continue
        found.append(
            _finding(
                f"{name}_rate_above_target",
                name,
                f"{count} of {current.orders} orders {what} ({pct(rate)}), "
                f"above the {pct(limit)} aimed at{_where(stores, count_of)}.",
                current.orders,
                targets,
                {"count": count, "orders": current.orders, "rate": rate, "target": limit},
            )
        )
    return found


def _where(stores: Mapping[str, Totals], count_of: Callable[[Totals], int]) -> str:
    """The stores with the most of it, at most three."""
    ranked = sorted(((count_of(t), s) for s, t in stores.items() if count_of(t)), reverse=True)
    if not ranked:
        return ""
    return "; most at " + ", ".join(f"{store} ({n})" for n, store in ranked[:3])


def _finding(
    kind: str, subject: str, message: str, base: int, targets: Targets, figures: dict[str, Any]
) -> Finding:
    small = base < targets.small_sample
    if small:
        message += f" A small sample ({base}): read it with care."
    return Finding(
        kind,
        subject,
        message,
        severity="notice" if small else "warning",
        figures={**figures, "small_sample": small},
    )

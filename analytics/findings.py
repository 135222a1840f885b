"""R4.3.2 what stands out in a period: patterns, problems and risks, in plain words.

Pure, on totals only. A finding needs both a large effect and a large enough base, and a rate
that stands out must also be unlikely by chance (a Poisson tail under 1 %): a quiet period
finds nothing, and a small store with one bad day is not singled out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from analytics.formats import change, duration, money, pct, ratio
from analytics.totals import Deadlines, StaffTotals, Totals
from analytics.vocabulary import STAGES, stage_metric
from meituan.codes import ErrorCode


@dataclass(frozen=True)
class Thresholds:
    """When a figure is worth a person's attention."""

    p90_worse: float = 0.20
    """A stage's p90 up by more than this share ..."""
    p90_min_seconds: float = 30.0
    """... and by at least this many seconds ..."""
    p90_min_count: int = 20
    """... with at least this many orders in both periods."""
    outlier_factor: float = 2.0
    """A store or person more than this many times the overall rate ..."""
    outlier_min_count: int = 5
    """... with at least this many breaches or complaints ..."""
    outlier_min_base: int = 20
    """... out of at least this many orders (or deadlines for a person)."""
    price_factor: float = 1.5
    """Price anomalies per order up by this factor on the previous period ..."""
    price_min_count: int = 3
    """... with at least this many in the period."""


DEFAULT_THRESHOLDS: Final = Thresholds()


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str
    message: str
    severity: Literal["warning", "notice"] = "warning"
    figures: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "message": self.message,
            "figures": dict(self.figures),
        }


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected): how likely the count is by chance alone."""
    if observed <= 0:
        return 1.0
    if expected <= 0:
        return 0.0
    term = math.exp(-expected)  # P(X = 0); summed in logs when that underflows
    if term == 0.0:
        log_term, below = -expected, 0.0
        for k in range(observed):
            below += math.exp(log_term)
            log_term += math.log(expected) - math.log(k + 1)
        return max(0.0, 1.0 - below)
    below = 0.0
    for k in range(observed):
        below += term
        term *= expected / (k + 1)
    return max(0.0, 1.0 - below)


def comparison(current: Totals, previous: Totals) -> list[dict[str, Any]]:
    """R4.3.2 the period against the one before, figure by figure, in words."""
    lines: list[dict[str, Any]] = []

    def line(name: str, now: float | None, before: float | None, text: str) -> None:
        lines.append({"figure": name, "current": now, "previous": before, "text": text})

    line(
        "orders",
        current.orders,
        previous.orders,
        f"{current.orders} orders ({change(current.orders, previous.orders)} "
        f"on {previous.orders} the period before)",
    )
    line(
        "net",
        float(current.net),
        float(previous.net),
        f"net {money(current.net)} ({change(float(current.net), float(previous.net))})",
    )
    if current.rating_average is not None or previous.rating_average is not None:
        line(
            "rating_average",
            current.rating_average,
            previous.rating_average,
            f"average rating {current.rating_average or '—'} "
            f"(before {previous.rating_average or '—'})",
        )
    line(
        "complaint_rate",
        current.complaint_rate,
        previous.complaint_rate,
        f"complaints on {pct(current.complaint_rate)} of orders "
        f"(before {pct(previous.complaint_rate)})",
    )
    line(
        "breach_rate",
        current.breach_rate,
        previous.breach_rate,
        f"a deadline missed on {pct(current.breach_rate)} of orders "
        f"(before {pct(previous.breach_rate)})",
    )
    return lines


def find(
    current: Totals,
    previous: Totals,
    stores: Mapping[str, Totals],
    staff: Mapping[str, StaffTotals],
    limits: Thresholds = Thresholds(),
) -> list[Finding]:
    """R4.3.2 patterns, problems and risks, in plain words; a quiet period finds nothing."""
    return [
        *_slower_stages(current, previous, limits),
        *_standout_stores(current, stores, limits),
        *_standout_people(staff, limits),
        *_price_anomalies(current, previous, limits),
        *_patrol(current),
    ]


def _slower_stages(current: Totals, previous: Totals, limits: Thresholds) -> list[Finding]:
    """A stage slower than before: its p90 up by a share and by seconds, on enough orders."""
    found: list[Finding] = []
    for stage in STAGES:
        now = current.durations.get(stage_metric(stage))
        before = previous.durations.get(stage_metric(stage))
        if not now or not before:
            continue
        if min(now.n, before.n) < limits.p90_min_count:
            continue
        p_now, p_before = now.percentile(0.9), before.percentile(0.9)
        if p_now is None or p_before is None or p_before <= 0:
            continue
        if p_now > p_before * (1 + limits.p90_worse) and p_now - p_before >= limits.p90_min_seconds:
            found.append(
                Finding(
                    "stage_slower",
                    stage,
                    f"Stage {stage} got slower: 90% of orders now take up to {duration(p_now)}, "
                    f"against {duration(p_before)} the period before "
                    f"({change(p_now, p_before)}).",
                    figures={"p90": round(p_now, 1), "previous_p90": round(p_before, 1)},
                )
            )
    return found


def _breaches(t: Totals) -> int:
    return t.breached_orders


def _complaints(t: Totals) -> int:
    return t.complained


_STORE_RATES: tuple[tuple[str, Callable[[Totals], int], str], ...] = (
    ("breach", _breaches, "missed a deadline"),
    ("complaint", _complaints, "complained"),
)


def _standout_stores(
    current: Totals, stores: Mapping[str, Totals], limits: Thresholds
) -> list[Finding]:
    """A store whose breach or complaint rate stands out against all stores'."""
    found: list[Finding] = []
    for name, count_of, what in _STORE_RATES:
        overall = ratio(count_of(current), current.orders)
        if not overall:
            continue
        for store, tot in sorted(stores.items()):
            count = count_of(tot)
            rate = ratio(count, tot.orders)
            if (
                rate is not None
                and tot.orders >= limits.outlier_min_base
                and count >= limits.outlier_min_count
                and rate > limits.outlier_factor * overall
                and poisson_tail(count, overall * tot.orders) < 0.01
            ):
                found.append(
                    Finding(
                        f"store_{name}_rate",
                        store,
                        f"Store {store}: {pct(rate)} of its orders {what} "
                        f"({count} of {tot.orders}), {rate / overall:.1f}× the overall "
                        f"{pct(overall)}.",
                        figures={"rate": rate, "overall": overall, "count": count},
                    )
                )
    return found


def _standout_people(staff: Mapping[str, StaffTotals], limits: Thresholds) -> list[Finding]:
    """R7.2 a person whose breach or complaint rate stands out. Lateness is weighed by the
    clauses a person has (a manager's anomaly decisions are not a cook's deliveries), and
    chance is ruled out: the count must be unlikely (p < 1 %) at the staff's own rates."""
    per_clause: dict[str, Deadlines] = defaultdict(Deadlines)
    complaints_all = orders_all = 0
    for person in staff.values():
        for clause, d in person.deadlines.items():
            per_clause[clause].add(d.met, d.breached, d.hard)
        complaints_all += person.complaints
        orders_all += person.orders
    complaint_overall = ratio(complaints_all, orders_all, 6)
    found: list[Finding] = []
    for staff_id, person in sorted(staff.items()):
        late = _late_person(staff_id, person, per_clause, limits)
        if late is not None:
            found.append(late)
        if complaint_overall:
            complained = _complaining_person(staff_id, person, complaint_overall, limits)
            if complained is not None:
                found.append(complained)
    return found


def _late_person(
    staff_id: str, person: StaffTotals, per_clause: Mapping[str, Deadlines], limits: Thresholds
) -> Finding | None:
    d = person.all_deadlines
    expected = sum(
        dd.total * per_clause[c].late / per_clause[c].total
        for c, dd in person.deadlines.items()
        if per_clause[c].total
    )
    if not (
        expected > 0
        and d.total >= limits.outlier_min_base
        and d.late >= limits.outlier_min_count
        and d.late > limits.outlier_factor * expected
        and poisson_tail(d.late, expected) < 0.01
    ):
        return None
    return Finding(
        "person_breach_rate",
        staff_id,
        f"{staff_id} ({person.department or 'no department'}) was late on "
        f"{d.late} of {d.total} deadlines, {d.late / expected:.1f}× what the "
        f"staff's rates for the same clauses would give ({expected:.1f}).",
        figures={"late": d.late, "deadlines": d.total, "expected": expected},
    )


def _complaining_person(
    staff_id: str, person: StaffTotals, overall: float, limits: Thresholds
) -> Finding | None:
    if not (
        person.orders >= limits.outlier_min_base
        and person.complaints >= limits.outlier_min_count
        and person.complaints > limits.outlier_factor * overall * person.orders
        and poisson_tail(person.complaints, overall * person.orders) < 0.01
    ):
        return None
    rate = person.complaints / person.orders
    return Finding(
        "person_complaint_rate",
        staff_id,
        f"{staff_id} ({person.department or 'no department'}) drew complaints on "
        f"{pct(rate)} of their orders ({person.complaints} of {person.orders}), "
        f"{rate / overall:.1f}× the staff's {pct(overall)}.",
        figures={"rate": rate, "overall": overall},
    )


def _price_anomalies(current: Totals, previous: Totals, limits: Thresholds) -> list[Finding]:
    """R5.3.2 price monitoring: price anomalies per order, against the period before."""
    now_price, before_price = current.price_anomalies(), previous.price_anomalies()
    rate_now = ratio(now_price, current.orders, 6)
    rate_before = ratio(before_price, previous.orders, 6)
    if not (
        rate_now
        and now_price >= limits.price_min_count
        and (not rate_before or rate_now > limits.price_factor * rate_before)
    ):
        return []
    return [
        Finding(
            "price_anomalies_up",
            "price",
            f"Price anomalies rose: {now_price} ({pct(rate_now)} of orders) against "
            f"{before_price} ({pct(rate_before or 0.0)}) the period before; check the "
            "price list against the platform's prices (R5.3.2).",
            figures={"count": now_price, "previous": before_price},
        )
    ]


def _patrol(current: Totals) -> list[Finding]:
    """R6.3.2 orders only the patrol found: the push feed missed them."""
    if not current.patrol_found:
        return []
    return [
        Finding(
            "patrol_found",
            "integration",
            f"{current.patrol_found} order(s) reached us only through the patrol: the "
            "platform's pushes missed them. Raise it with the platform (R6.3.2).",
            figures={"count": current.patrol_found},
        )
    ]


def forged_pushes(by_cause: Mapping[str, int]) -> list[Finding]:
    """R6.3 pushes whose signature did not verify: someone forging them, or a secret that no
    longer matches the platform's (then real orders are being refused)."""
    bad = by_cause.get(ErrorCode.BAD_SIGNATURE.name.lower(), 0)
    if not bad:
        return []
    return [
        Finding(
            "pushes_refused_for_signature",
            "integration",
            f"{bad} push(es) were refused for their signature: either someone is sending "
            "forged pushes, or MEITUAN_APP_SECRET no longer matches the platform's and real "
            "orders are being refused. `orderctl pushes --counts` shows them by day (R6.3).",
            figures={"count": bad},
        )
    ]

"""The read's rows summed into totals: per period, per group, per store and per person.

Pure: `Raw` holds plain rows as the queries return them, so everything from here on is tested
on hand-made inputs. Every total is additive (counts, sums, histograms), which is what lets the
rollup store days and a period be any run of them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from analytics.formats import ratio, rounded
from analytics.period import Group, Period
from analytics.vocabulary import CLAUSES
from schemas.review import AnomalyKind

BUCKETS_PER_UNIT = 20
"""Duration histograms: bucket b holds ln(1 + seconds) * 20 in [b, b + 1), about 5 % wide."""

Rows = list[dict[str, Any]]


@dataclass
class Raw:
    """The query results of one read: plain rows, as the pure functions take them."""

    period: Period
    zone: str
    by: Group | None
    rows: dict[str, Rows] = field(default_factory=dict)
    staff: Rows = field(default_factory=list)
    departments: dict[str, str] = field(default_factory=dict)
    patrol: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    live_orders: int = 0
    dirty_pairs: int = 0


@dataclass
class Histogram:
    """A duration histogram on the rollup's log scale; a percentile is the middle of its bucket,
    within 2.5 % of 1 + seconds of the exact value (2.5 % for anything over a minute)."""

    counts: Counter[int] = field(default_factory=Counter)
    n: int = 0
    seconds: float = 0.0

    def add(self, bucket: int, n: int, seconds: float) -> None:
        self.counts[bucket] += n
        self.n += n
        self.seconds += seconds

    def merge(self, other: Histogram) -> None:
        self.counts.update(other.counts)
        self.n += other.n
        self.seconds += other.seconds

    @staticmethod
    def bucket_of(seconds: float) -> int:
        return math.floor(math.log1p(max(seconds, 0.0)) * BUCKETS_PER_UNIT)

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        hist = cls()
        for value in values:
            hist.add(cls.bucket_of(value), 1, value)
        return hist

    def percentile(self, p: float) -> float | None:
        """Nearest rank: the middle of the bucket holding the ceil(p * n)-th value."""
        if self.n == 0:
            return None
        rank = max(1, math.ceil(p * self.n))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.expm1((bucket + 0.5) / BUCKETS_PER_UNIT)
        return None  # pragma: no cover - counts add up to n

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50": rounded(self.percentile(0.5), 3),
            "p90": rounded(self.percentile(0.9), 3),
            "mean": rounded(self.seconds / self.n if self.n else None, 3),
        }


@dataclass
class Deadlines:
    """Deadlines of one clause: met, breached (late, within the hard limit) and hard (past it)."""

    met: int = 0
    breached: int = 0
    hard: int = 0

    def add(self, met: int, breached: int, hard: int) -> None:
        self.met += met
        self.breached += breached
        self.hard += hard

    @property
    def total(self) -> int:
        return self.met + self.breached + self.hard

    @property
    def late(self) -> int:
        return self.breached + self.hard

    def summary(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "breached": self.breached,
            "hard": self.hard,
            "on_time_rate": ratio(self.met, self.total),
        }


@dataclass
class Totals:
    """The additive figures of one group in one period."""

    orders: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    gross: Decimal = Decimal("0")
    discounts: Decimal = Decimal("0")
    paid: Decimal = Decimal("0")
    refunded: Decimal = Decimal("0")
    ratings: Counter[int] = field(default_factory=Counter)
    complained: int = 0
    breached_orders: int = 0
    hard_orders: int = 0
    anomaly_orders: int = 0
    patrol_found: int = 0
    hours: Counter[int] = field(default_factory=Counter)
    durations: dict[str, Histogram] = field(default_factory=lambda: defaultdict(Histogram))
    deadlines: dict[str, Deadlines] = field(default_factory=lambda: defaultdict(Deadlines))
    anomalies: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    feedback: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def rating_average(self) -> float | None:
        return ratio(sum(k * v for k, v in self.ratings.items()), self.rated, 2)

    @property
    def complaint_rate(self) -> float | None:
        return ratio(self.complained, self.orders)

    @property
    def breach_rate(self) -> float | None:
        """Share of orders with a deadline missed."""
        return ratio(self.breached_orders, self.orders)

    @property
    def net(self) -> Decimal:
        """R4.3.1 paid less refunded (see the package's docstring for what counts as refunded)."""
        return self.paid - self.refunded

    def price_anomalies(self) -> int:
        return sum(self.anomalies.get(AnomalyKind.PRICE.value, Counter()).values())


@dataclass
class StaffTotals:
    """R7.2 one person's figures in one period."""

    staff_id: str
    department: str = ""
    role: str = ""
    orders: int = 0
    handled: int = 0
    handling_seconds: float = 0.0
    rated: int = 0
    rating_sum: int = 0
    complaints: int = 0
    anomalies_decided: int = 0
    deadlines: dict[str, Deadlines] = field(default_factory=lambda: defaultdict(Deadlines))

    def merge(self, other: StaffTotals) -> None:
        self.orders += other.orders
        self.handled += other.handled
        self.handling_seconds += other.handling_seconds
        self.rated += other.rated
        self.rating_sum += other.rating_sum
        self.complaints += other.complaints
        self.anomalies_decided += other.anomalies_decided
        for clause, d in other.deadlines.items():
            self.deadlines[clause].add(d.met, d.breached, d.hard)

    @property
    def all_deadlines(self) -> Deadlines:
        total = Deadlines()
        for d in self.deadlines.values():
            total.add(d.met, d.breached, d.hard)
        return total

    def card(self) -> dict[str, Any]:
        overall = self.all_deadlines
        return {
            "orders": self.orders,
            "on_time_rate": ratio(overall.met, overall.total),
            "late": overall.late,
            "on_time": {c: self.deadlines[c].summary() for c in CLAUSES if self.deadlines[c].total},
            "average_handling_seconds": rounded(
                self.handling_seconds / self.handled if self.handled else None
            ),
            "average_rating": ratio(self.rating_sum, self.rated, 2),
            "rated": self.rated,
            "complaints": self.complaints,
            "complaint_rate": ratio(self.complaints, self.orders),
            "anomalies_decided": self.anomalies_decided,
        }


def group_key(by: Group | None, row: Mapping[str, Any]) -> str:
    if by is None:
        return "all"
    if by == "hour":
        return f"{int(row['hour']):02d}"
    column = {"store": "store_code", "region": "region", "type": "order_type"}[by]
    return str(row[column])


@dataclass
class Tally:
    """Totals per period, per group in each period, and per person in each period."""

    by: Group | None = None
    current: Totals = field(default_factory=Totals)
    previous: Totals = field(default_factory=Totals)
    groups: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    previous_groups: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    stores: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    staff: dict[str, StaffTotals] = field(default_factory=dict)
    previous_staff: dict[str, StaffTotals] = field(default_factory=dict)
    daily: dict[date, dict[str, int]] = field(default_factory=dict)
    cancellations: Counter[tuple[str, int, str]] = field(default_factory=Counter)

    def targets(self, row: Mapping[str, Any], with_groups: bool = True) -> list[Totals]:
        """The totals a row adds to: its period's, its group's, and (now) its store's."""
        current = row["period"] == "current"
        found = [self.current if current else self.previous]
        if with_groups and self.by is not None:
            groups = self.groups if current else self.previous_groups
            found.append(groups[group_key(self.by, row)])
        if current and "store_code" in row:
            found.append(self.stores[row["store_code"]])
        return found

    def person(self, row: Mapping[str, Any], who: Mapping[str, Mapping[str, Any]]) -> StaffTotals:
        people = self.staff if row["period"] == "current" else self.previous_staff
        staff_id = row["staff_id"]
        if staff_id not in people:
            info = who.get(staff_id, {})
            people[staff_id] = StaffTotals(
                staff_id=staff_id,
                department=str(info.get("department", "")),
                role=str(info.get("role", "")),
            )
        return people[staff_id]


def tally(raw: Raw) -> Tally:
    """Sum the rows into totals: the period, the previous one, the groups, stores and people."""
    t = Tally(by=raw.by)
    _add_orders(t, raw.rows.get("orders", []))
    _add_breakdowns(t, raw.rows)
    _add_staff(t, raw)
    return t


def _add_orders(t: Tally, rows: Rows) -> None:
    for row in rows:
        for tot in t.targets(row):
            tot.orders += row["orders"]
            tot.outcomes[row["outcome"]] += row["orders"]
            tot.gross += row["gross"]
            tot.discounts += row["discounts"]
            tot.paid += row["paid"]
            tot.refunded += row["refunded"]
            for score in range(1, 6):
                tot.ratings[score] += row[f"r{score}"]
            tot.complained += row["complained"]
            tot.breached_orders += row["breached"]
            tot.hard_orders += row["hard"]
            tot.anomaly_orders += row["anomalous"]
            tot.patrol_found += row["patrol"]
            tot.hours[int(row["hour"])] += row["orders"]


def _add_breakdowns(t: Tally, rows: Mapping[str, Rows]) -> None:
    """Durations, deadlines, anomalies, feedback and cancellations; the days' counts. Per hour,
    only orders are grouped: the other rollup rows carry no hour."""
    grouped = t.by != "hour"
    for row in rows.get("durations", []):
        for tot in t.targets(row, t.by in ("store", "region", "type")):
            tot.durations[row["metric"]].add(row["bucket"], row["n"], row["seconds"])
    for row in rows.get("deadlines", []):
        for tot in t.targets(row, grouped):
            tot.deadlines[row["clause"]].add(row["met"], row["breached"], row["hard"])
    for row in rows.get("anomalies", []):
        for tot in t.targets(row, grouped):
            tot.anomalies[row["kind"]][row["decision"]] += row["n"]
        day = t.daily.setdefault(row["day"], Counter())
        day[row["kind"]] += row["n"]
    for row in rows.get("feedback", []):
        for tot in t.targets(row, grouped):
            case = tot.feedback[row["kind"]]
            for name in ("cases", "responded", "rounds", "multi_round", "satisfied", "escalated"):
                case[name] += row[name]
    for row in rows.get("cancels", []):
        if row["period"] == "current":
            t.cancellations[(row["outcome"], row["code"], row["by_whom"])] += row["n"]
    for row in rows.get("daily", []):
        t.daily.setdefault(row["day"], Counter())["orders"] += row["orders"]


def _add_staff(t: Tally, raw: Raw) -> None:
    """R7.2 each person's rows, with their department and role from the staff list."""
    who = {r["staff_id"]: r for r in raw.staff}
    for row in raw.rows.get("staff", []):
        t.person(row, who).merge(
            StaffTotals(
                staff_id=row["staff_id"],
                orders=row["orders"],
                handled=row["handled"],
                handling_seconds=float(row["handling_seconds"]),
                rated=row["rated"],
                rating_sum=row["rating_sum"],
                complaints=row["complaints"],
                anomalies_decided=row["anomalies_decided"],
            )
        )
    for row in raw.rows.get("staff_deadlines", []):
        t.person(row, who).deadlines[row["clause"]].add(row["met"], row["breached"], row["hard"])

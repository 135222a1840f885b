"""R4.3.1 the regular statistics: a Schedule's round (`ReportWorkflow`), and what it sent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from schemas.base import Model

ReportKind = Literal["daily", "weekly"]

SEND_REPORTS = "send_reports"
"""The activity's name: it lives with the statistics (`analytics.delivery`), above the
workflows, which name it rather than import it."""


class ReportRound(Model):
    kind: ReportKind = "daily"


class ReportRequest(Model):
    kind: ReportKind
    as_of: datetime  # the round's start: the period is the day (or week) before it


REFRESH_STATS = "refresh_stats"
"""The rollup's refresh (`analytics.refreshing`), named like SEND_REPORTS."""


class RefreshRound(Model):
    """One refresh of the statistics' rollup, as the Schedule `order-stats-refresh` starts it."""


class StatsRefreshed(Model):
    pairs: int  # (business day, store) pairs recomputed
    orders: int  # orders rolled up
    rebuilt: bool  # the whole rollup, for a changed time zone or format
    seconds: float


class ReportSent(Model):
    kind: ReportKind
    period_from: date
    period_to: date
    file: str  # the HTML report, kept for whoever wants the whole of it
    managers: list[str]  # each told with their stores' figures and the top findings
    findings: int

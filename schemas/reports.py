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


class ReportSent(Model):
    kind: ReportKind
    period_from: date
    period_to: date
    file: str  # the HTML report, kept for whoever wants the whole of it
    managers: list[str]  # each told with their stores' figures and the top findings
    findings: int

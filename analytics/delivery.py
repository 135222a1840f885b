"""R4.3.1 the regular statistics delivered: the activity a `ReportWorkflow` round runs.

The period before the round (a day, or the ISO week) is computed by store, kept as one report
file, and each manager is told through the notification routes (their inbox, their robot): their
stores' figures and the period's top findings. A round run again writes the same file and the
same notifications (their keys name the period), so a retry sends nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio import activity

from activities.notify import write
from analytics.collect import collect
from analytics.formats import pct
from analytics.period import Period
from analytics.report import render
from infra.database import data_dir
from infra.settings import settings
from schemas.notices import Audience, Notification, Topic
from schemas.reports import SEND_REPORTS, ReportKind, ReportRequest, ReportSent

TOP_FINDINGS = 3


def period_before(kind: ReportKind, day: date) -> Period:
    """The day before `day`, or the whole ISO week before the one `day` is in."""
    if kind == "daily":
        return Period(day - timedelta(days=1), day - timedelta(days=1))
    monday = day - timedelta(days=day.isoweekday() - 1)
    return Period(monday - timedelta(days=7), monday - timedelta(days=1))


class Reports:
    """The figures are read (and the rollup refreshed) as ORDERFLOW_STATS_DATABASE_URL's role
    when it is set, each round on a connection of its own; the notifications are written as
    the worker's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._folder = data_dir() / "reports"

    @activity.defn(name=SEND_REPORTS)
    async def send_reports(self, req: ReportRequest) -> ReportSent:
        day = req.as_of.astimezone(settings().business.timezone).date()
        period = period_before(req.kind, day)
        stats_url = settings().database.stats_url
        if stats_url:
            stats = await collect(period, "store", database_url=stats_url)
        else:
            stats = await collect(period, "store", pool=self._pool)
        path = self._folder / f"{req.kind}-{period.start}.html"
        await asyncio.to_thread(_keep, path, render(stats))
        managers = await self._managers()
        for manager, stores in managers.items():
            await self._tell(req.kind, period, manager, stores, stats, path)
        return ReportSent(
            kind=req.kind,
            period_from=period.start,
            period_to=period.end,
            file=str(path),
            managers=sorted(managers),
            findings=len(stats["findings"]),
        )

    async def _managers(self) -> dict[str, list[str]]:
        """Each manager and the stores their departments serve."""
        rows = await self._pool.fetch(
            """
            SELECT d.manager_id, array_agg(DISTINCT s.code ORDER BY s.code) AS stores
            FROM departments d JOIN stores s
              ON s.order_type = d.order_type AND s.region = d.region
            WHERE d.manager_id IS NOT NULL GROUP BY d.manager_id
            """
        )
        return {r["manager_id"]: list(r["stores"]) for r in rows}

    async def _tell(
        self,
        kind: ReportKind,
        period: Period,
        manager: str,
        stores: Sequence[str],
        stats: Mapping[str, Any],
        path: Path,
    ) -> None:
        facts = {
            "kind": kind,
            "period": period.label(),
            "figures": _figures(stats, stores),
            "findings": _top(stats, stores),
            "file": str(path),
        }
        note = Notification(
            key=f"report:{kind}:{period.start}:{manager}",
            order_id="",
            audience=Audience.MANAGER,
            recipient=manager,
            store_code=stores[0] if len(stores) == 1 else "",
            topic=Topic.REPORT,
            facts=facts,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await write(conn, note)


def _keep(path: Path, page: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def _figures(stats: Mapping[str, Any], stores: Sequence[str]) -> str:
    rows = {r["key"]: r for r in (stats.get("groups") or {}).get("rows", [])}
    lines = []
    for store in stores:
        r = rows.get(store)
        if r is None or not r["orders"]:
            lines.append(f"{store}: 0")
            continue
        lines.append(
            f"{store}: {r['orders']} ({r['previous_orders']}), {pct(r['on_time_rate'])}, "
            f"{r['rating_average'] or '—'}"
        )
    return "\n".join(lines)


def _top(stats: Mapping[str, Any], stores: Sequence[str]) -> str:
    """The warnings first. A finding about a store goes to its managers; the company's (the
    targets, a slower stage, a person standing out) to every manager."""
    mine = [
        f
        for f in stats["findings"]
        if f["subject"] in stores or not f["kind"].startswith(("store_", "person_"))
    ]
    mine.sort(key=lambda f: f["severity"] != "warning")
    return "\n".join(f"- {f['message']}" for f in mine[:TOP_FINDINGS]) or "—"

"""The demo's summary: how the day's orders ended, per outcome, cause, clause and anomaly, read
from the workflows themselves and checked against the database (`checks.py`)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from temporalio.client import Client

from localstack.demo.checks import Check, check_database
from localstack.demo.day import Day
from localstack.demo.options import (
    CLAUSES,
    ORDERS_QUERY,
    SHOWN_STAGES,
    TERMINAL,
    DemoOptions,
    DemoResult,
)
from localstack.devstack import Database, Stack, TemporalServer
from localstack.staff import Staff
from meituan.codes import PlatformCancelReason
from schemas.anomaly import AnomalyStatus
from schemas.contract import Event, order_id_in
from schemas.order import Stage
from schemas.status import DeadlineState, OrderOutcome, OrderStatus
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow


async def _gather_limited(coros: list[Awaitable[Any]], limit: int = 8) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[Any]) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


def _cancel_cause(outcome: OrderOutcome) -> str:
    code = outcome.cancel_code or 0
    if outcome.reason.startswith("anomaly"):
        return "anomaly decision"
    if code == PlatformCancelReason.NOT_CONFIRMED_IN_TIME:
        return "platform auto-cancel"
    if 1100 <= code < 1200:
        return "customer"
    if 1200 <= code < 1300:
        return "platform support"
    if outcome.reason.startswith("full refund"):
        return "full refund"
    if "hard limit" in outcome.reason:
        return "deadline hard limit"
    return f"merchant {code}"


def deadline_table(
    statuses: list[OrderStatus], anomalies: list[AnomalyStatus]
) -> dict[str, dict[str, int]]:
    """Per clause: deadlines met, missed (soft) and past the hard limit; void ones not counted."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for s in statuses:
        for view in s.deadlines:
            if view.state is DeadlineState.MET:
                table[view.clause.value]["met"] += 1
        for key in {b.key for b in s.breaches if not b.hard}:
            clause = next(b.clause for b in s.breaches if b.key == key)
            table[clause.value]["breached"] += 1
        for key in {b.key for b in s.breaches if b.hard}:
            clause = next(b.clause for b in s.breaches if b.key == key)
            table[clause.value]["hard"] += 1
    for a in anomalies:
        if a.outcome is None or a.outcome.decided_by == "system":
            continue
        table["anomaly_decision"]["breached" if a.outcome.escalations else "met"] += 1
    return {
        clause: {k: table[clause].get(k, 0) for k in ("met", "breached", "hard")}
        for clause in CLAUSES
        if clause in table
    }


@dataclass(frozen=True)
class Observed:
    """The parts of a running stack the summary reads."""

    client: Client
    db: Database
    temporal: TemporalServer


@dataclass(frozen=True)
class Finals:
    """What the workflows say at the end of the day; an order that did not answer is missing."""

    outcomes: dict[str, OrderOutcome]
    """The results of the orders that ended."""
    statuses: dict[str, OrderStatus]
    anomalies: list[AnomalyStatus]
    unread: dict[str, str]
    """The orders whose status could not be read, with the last error."""


async def summarise(
    stack: Observed | Stack,
    day: Day,
    staff: Staff,
    finished: bool,
    options: DemoOptions,
    began: float,
) -> DemoResult:
    """`began`: when the demo started (monotonic), for the time from start to summary."""
    workflow_ids = sorted(day.placed.values())
    finals = await _finals(stack.client, day, workflow_ids)
    open_orders = {
        order_id_in(w): day.stages.get(w, "not started")
        for w in workflow_ids
        if w not in day.stages or w in day.running
    }
    pool = stack.db.pool
    average_stage_seconds = await _average_stage_seconds(pool)
    read = len(finals.statuses)
    checks = [
        Check(
            "final status read from every order's workflow",
            len(day.placed) - read == 0,
            f"{read} of {len(day.placed)}"
            + "".join(f"; {order}: {error}" for order, error in list(finals.unread.items())[:3]),
        ),
        *await check_database(
            pool, {order_id_in(w) for w in workflow_ids}, finals.outcomes, finals.statuses
        ),
    ]
    agrees = all(c.ok for c in checks)
    patrols = await pool.fetchrow(
        "SELECT count(*) AS runs, coalesce(sum(cardinality(found)), 0) AS found FROM patrol_reports"
    )
    by_outcome = _by_outcome(finals)
    summary: dict[str, Any] = {
        "ok": finished and agrees and not open_orders,
        "orders": options.orders,
        "seed": options.seed,
        "elapsed_s": round(time.monotonic() - began, 1),
        "business_day_s": round(day.elapsed(), 1),
        "finished": finished,
        "outcomes": {
            stage.value: dict(sorted(by_outcome[stage.value].items()))
            for stage in TERMINAL
            if stage.value in by_outcome
        },
        "outcome_totals": {k: sum(v.values()) for k, v in by_outcome.items()},
        "cancelled_by": _cancelled_by(finals),
        "deadlines": deadline_table(list(finals.statuses.values()), finals.anomalies),
        "anomalies": _anomaly_decisions(finals),
        "average_stage_seconds": average_stage_seconds,
        "customer_events": {"sent": dict(day.events), "not_sent": dict(day.missed)},
        "patrol": dict(patrols) if patrols else {},
        "staff": staff.report.as_dict(),
        "database_agrees": agrees,
        "database_checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        "open_orders": open_orders,
        "web_ui": _web_ui(stack.temporal.ui_link),
        "database": stack.db.name,
    }
    return DemoResult(ok=summary["ok"], summary=summary)


async def _finals(client: Client, day: Day, workflow_ids: list[str]) -> Finals:
    """Results of the ended orders, every order's status, and the status of their anomalies."""
    results = await _gather_limited(
        [
            client.get_workflow_handle_for(OrderWorkflow.run, w).result()
            for w in workflow_ids
            if w in day.stages and w not in day.running
        ]
    )
    outcomes = {o.order_id: o for o in results if isinstance(o, OrderOutcome)}
    queried = await _gather_limited([_status(client, w) for w in workflow_ids])
    statuses = {s.order_id: s for s in queried if isinstance(s, OrderStatus)}
    unread = {  # by workflow id, so a failed check's evidence keeps the history
        w: _shortened(f"{type(s).__name__}: {s}")
        for w, s in zip(workflow_ids, queried, strict=True)
        if not isinstance(s, OrderStatus)
    }
    anomaly_ids = [a.anomaly_id for s in statuses.values() for a in s.anomalies]
    anomaly_answers = await _gather_limited(
        [client.get_workflow_handle(a).query(AnomalyWorkflow.status) for a in anomaly_ids]
    )
    anomalies = [a for a in anomaly_answers if isinstance(a, AnomalyStatus)]
    return Finals(outcomes, statuses, anomalies, unread)


async def _status(client: Client, workflow_id: str, tries: int = 3) -> OrderStatus | Exception:
    """An order's status; a query that fails (its worker restarting, a replay slow under
    load) is asked again, and the last error kept for the check to name."""
    error: Exception = RuntimeError("not asked")
    for _ in range(tries):
        try:
            return await client.get_workflow_handle(workflow_id).query(OrderWorkflow.status)
        except Exception as exc:  # any failure: named in the check, never dropped
            error = exc
            await asyncio.sleep(1)
    return error


def _shortened(error: str, keep: int = 300) -> str:
    """An error's head and tail: the SDK's failures name their cause at the end."""
    return error if len(error) <= 2 * keep else f"{error[:keep]} ... {error[-keep:]}"


def _by_outcome(finals: Finals) -> dict[str, Counter[str]]:
    """Final stage -> order type -> orders."""
    by_outcome: dict[str, Counter[str]] = defaultdict(Counter)
    for o in finals.outcomes.values():
        status = finals.statuses.get(o.order_id)
        kind = status.order_type if status is not None else None
        by_outcome[o.stage.value][kind.value if kind else "unknown"] += 1
    return by_outcome


def _cancelled_by(finals: Finals) -> dict[str, int]:
    causes = Counter(
        _cancel_cause(o) for o in finals.outcomes.values() if o.stage is Stage.CANCELLED
    )
    return dict(causes.most_common())


def _anomaly_decisions(finals: Finals) -> dict[str, dict[str, int]]:
    """Anomaly kind -> decision -> anomalies, from the orders' own view of them."""
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for s in finals.statuses.values():
        for a in s.anomalies:
            by_kind[a.kind.value][a.decision or "undecided (order ended)"] += 1
    return {k: dict(v.most_common()) for k, v in sorted(by_kind.items())}


async def _average_stage_seconds(pool: asyncpg.Pool) -> dict[str, float]:
    """R3.3.3 the time spent per stage, averaged over the post-execution summaries."""
    stage_rows = await pool.fetch("SELECT stage_seconds FROM order_summaries")
    per_stage: dict[str, list[float]] = defaultdict(list)
    for row in stage_rows:
        for stage, seconds in row["stage_seconds"].items():
            per_stage[stage].append(float(seconds))
    return {
        stage.value: round(sum(per_stage[stage.value]) / len(per_stage[stage.value]), 1)
        for stage in SHOWN_STAGES
        if per_stage.get(stage.value) and not stage.terminal
    }


def _web_ui(link: Callable[[str], str | None]) -> dict[str, str | None]:
    return {
        "orders": link(ORDERS_QUERY),
        "cancelled": link(f'WorkflowType="OrderWorkflow" AND OrderStage="{Stage.CANCELLED.value}"'),
        Event.DEADLINE_BREACHED.value: link('WorkflowType="OrderWorkflow" AND SlaBreached=true'),
        "anomalies": link('WorkflowType="AnomalyWorkflow"'),
    }

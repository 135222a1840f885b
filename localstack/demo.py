"""`make demo`: a business day of Meituan orders through the whole stack, then its summary.

    python -m localstack.demo [--orders N] [--seed S] [--json] [--keep] [--limit SECONDS]

Starts a fresh local stack (`localstack.devstack`) under the demo policy (deadlines in seconds),
has the simulated platform push N orders for the three demo stores through the gateway, lets
customers cancel, remind, complain and ask for refunds, and lets the simulated staff
(`localstack.staff`) do the human work through the workflows' updates. It ends when every order is
closed, rejected or cancelled, then prints the statistics of the day (R4.3.1) and checks that
the system of record agrees with the workflows (R1.3). Exit status 0 when everything finished
and agreed; 1 when orders were still open at the time limit or the database disagrees.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from infra import database as db
from localstack.devstack import (
    Database,
    Say,
    Stack,
    StackError,
    StackOptions,
    TemporalServer,
    dev_stack,
)
from localstack.simulator import AdminError, RunningSimulator, SimConfig, SimOrder, Simulator
from localstack.staff import Staff, StaffSettings
from meituan.codes import PlatformCancelReason
from meituan.intake import to_platform_order
from schemas.anomaly import AnomalyStatus
from schemas.contract import order_id_in, order_workflow_id
from schemas.messages import CustomerFeedback, FeedbackKind
from schemas.order import PlatformOrder, Stage
from schemas.policy import Clause
from schemas.status import DeadlineState, OrderOutcome, OrderStatus
from workflows import search_attributes as sa
from workflows.anomaly import AnomalyWorkflow
from workflows.order import OrderWorkflow

POLICY_FILE = Path(__file__).with_name("demo_policy.toml")
DEMO_DATABASE = "orderflow_demo"
ORDERS_QUERY = 'WorkflowType="OrderWorkflow"'
TERMINAL = (Stage.CLOSED, Stage.REJECTED, Stage.CANCELLED)
SHOWN_STAGES = (
    Stage.RECEIVED,
    Stage.REVIEWING,
    Stage.ACCEPTED,
    Stage.ASSIGNED,
    Stage.CONFIRMED,
    Stage.IN_PROGRESS,
    Stage.DELIVERING,
    Stage.DELIVERED,
    Stage.ON_HOLD,
    Stage.CLOSED,
    Stage.REJECTED,
    Stage.CANCELLED,
)
CLAUSES = tuple(clause.value for clause in Clause)  # in the order of the measures


@dataclass
class DemoOptions:
    orders: int = 50
    seed: int = 7
    data_dir: Path = field(default_factory=lambda: db.data_dir() / "demo")
    """Temporal's state and log; wiped at the start of every run."""
    database: str = DEMO_DATABASE
    server_dsn: str | None = None
    """A PostgreSQL server to use; None: `DATABASE_URL`'s, else the embedded one."""
    pgdata: Path | None = None
    temporal_port: int | None = 7233
    ui_port: int | None = 8233
    gateway_port: int | None = 8080
    simulator_port: int | None = 8090
    spread_s: float | None = None
    """Seconds over which the orders arrive; default 1.5 s per order, at most 75 s."""
    limit_s: float = 240.0
    """The business day's time limit, after which the open orders are reported."""
    anomaly_rate: float = 0.15
    keep: bool = False
    """Keep the stack (and the Web UI) up after the summary until Ctrl-C."""

    @property
    def arrival_window_s(self) -> float:
        return self.spread_s if self.spread_s is not None else min(75.0, 1.5 * self.orders)


@dataclass
class DemoResult:
    ok: bool
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


# --- the customers ------------------------------------------------------------------------------


@dataclass
class Customer:
    """What one order's customer will do; seeded per order so timing does not change it."""

    index: int
    created_after_s: float
    cancel_after_s: float | None = None
    remind_after_s: float | None = None
    complain: bool = False
    refund: str | None = None  # "full" or "partial"


def plan_customers(orders: int, seed: int, window_s: float) -> list[Customer]:
    """When each order is placed, and which customers cancel, remind, complain or want money
    back; each kind of event happens at least once when there are orders enough."""
    step = window_s / max(orders, 1)
    plan: list[Customer] = []
    for i in range(orders):
        rng = random.Random(f"{seed}:customer:{i}")
        customer = Customer(i, i * step + rng.uniform(0, step * 0.8))
        if rng.random() < 0.1:
            # Early: takeout can be ready and delivered within seconds, then it is too late.
            customer.cancel_after_s = rng.uniform(0.5, 2.0)
        elif rng.random() < 0.05:
            customer.remind_after_s = rng.uniform(4, 9)
        elif rng.random() < 0.07:
            customer.complain = True
        elif rng.random() < 0.04:
            customer.refund = "full" if rng.random() < 0.6 else "partial"
        plan.append(customer)
    free = random.Random(f"{seed}:forced")
    untouched = [
        c for c in plan if not (c.cancel_after_s or c.remind_after_s or c.complain or c.refund)
    ]
    free.shuffle(untouched)

    def ensure(has: Callable[[Customer], bool], give: Callable[[Customer], None]) -> None:
        if untouched and not any(has(c) for c in plan):
            give(untouched.pop())

    ensure(lambda c: c.cancel_after_s is not None, lambda c: setattr(c, "cancel_after_s", 0.8))
    if orders >= 4:
        ensure(lambda c: c.complain, lambda c: setattr(c, "complain", True))
        ensure(lambda c: c.refund is not None, lambda c: setattr(c, "refund", "full"))
    if orders >= 10:
        ensure(lambda c: c.remind_after_s is not None, lambda c: setattr(c, "remind_after_s", 6))
    return plan


Intent = tuple[str, bool, Callable[[], Awaitable[bool]]]
"""A customer's event: its name, whether it is due now, and doing it (False: too late)."""
REFUNDABLE = (Stage.IN_PROGRESS.value, Stage.DELIVERING.value, Stage.DELIVERED.value)
ENDED = {s.value for s in TERMINAL}


@dataclass
class Day:
    """The business day as the demo watches it: orders placed, their stages, customer events."""

    sim: Simulator
    client: Client
    plan: list[Customer]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    placed: dict[int, str] = field(default_factory=dict)
    """Plan index -> workflow id."""
    placed_at: dict[int, float] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    done: set[tuple[int, str]] = field(default_factory=set)
    events: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def place(self, customer: Customer, anomaly: str | None = None) -> SimOrder:
        """The platform creates the order and pushes it, signed, to the gateway; the
        generator decides by its anomaly rate unless `anomaly` names a kind."""
        order = self.sim.create_order(None, anomaly=anomaly)
        self.placed[customer.index] = order_workflow_id(order.order_id)
        self.placed_at[customer.index] = time.monotonic()
        return order

    async def customers_act(self) -> None:
        """Each planned event happens once, when the order is at the point it is about; an
        order that ended first makes it moot."""
        now = time.monotonic()
        for customer in self.plan:
            workflow_id = self.placed.get(customer.index)
            if workflow_id is None:
                continue
            stage = self.stages.get(workflow_id, "")
            age = now - self.placed_at[customer.index]
            for name, due, act in self._intents(customer, workflow_id, stage, age):
                key = (customer.index, name)
                if key in self.done or not (due or stage in ENDED):
                    continue
                self.done.add(key)
                try:
                    acted = stage not in ENDED and await act()
                except RPCError:
                    self.done.discard(key)  # Temporal unreachable: the customer tries again
                    raise
                if acted:
                    self.events[name] += 1
                else:
                    self.missed[name] += 1

    def _intents(self, c: Customer, workflow_id: str, stage: str, age: float) -> list[Intent]:
        order_id = int(order_id_in(workflow_id))
        intents: list[Intent] = []
        if c.cancel_after_s is not None:
            intents.append(("user_cancel", age >= c.cancel_after_s, lambda: self._cancel(order_id)))
        if c.remind_after_s is not None:
            intents.append(("reminder", age >= c.remind_after_s, lambda: self._remind(order_id)))
        if c.complain:
            due = stage == Stage.DELIVERED.value
            intents.append(("complaint", due, lambda: self._complain(workflow_id)))
        if c.refund is not None:
            partial = c.refund == "partial"
            intents.append(
                (
                    f"refund_{c.refund}",
                    stage in REFUNDABLE,
                    lambda: self._refund(order_id, partial),
                )
            )
        return intents

    async def _cancel(self, order_id: int) -> bool:
        """The customer cancels in the app: the platform pushes the cancellation."""
        try:
            self.sim.user_cancel(order_id, reason_code=PlatformCancelReason.USER_1101)
        except AdminError:
            return False  # already completed or cancelled on the platform
        return True

    async def _remind(self, order_id: int) -> bool:
        self.sim.remind(order_id)
        return True

    async def _refund(self, order_id: int, partial: bool) -> bool:
        try:
            self.sim.apply_refund(order_id, reason="餐品有问题", partial=partial)
        except AdminError:
            return False
        return True

    async def _complain(self, workflow_id: str) -> bool:
        """R4.2.1 a complaint by phone, sent as orderctl sends it: the customer_feedback signal."""
        feedback = CustomerFeedback(
            kind=FeedbackKind.COMPLAINT, text="送来的菜凉了，汤也洒了", channel="phone"
        )
        await self.client.get_workflow_handle(workflow_id).signal(
            OrderWorkflow.customer_feedback, feedback
        )
        return True

    async def watch(self) -> None:
        """One visibility listing: every order's stage and whether it still runs."""
        stages: dict[str, str] = {}
        running: set[str] = set()
        async for wf in self.client.list_workflows(ORDERS_QUERY):
            stages[wf.id] = wf.typed_search_attributes.get(sa.ORDER_STAGE) or "received"
            if wf.status is WorkflowExecutionStatus.RUNNING:
                running.add(wf.id)
        self.stages, self.running = stages, running

    def all_finished(self) -> bool:
        ids = set(self.placed.values())
        return (
            len(self.placed) == len(self.plan)
            and ids <= set(self.stages)
            and not (ids & self.running)
        )

    def progress(self) -> str:
        counts = Counter(self.stages[w] for w in self.placed.values() if w in self.stages)
        line = " · ".join(f"{stage.value} {counts.get(stage.value, 0)}" for stage in SHOWN_STAGES)
        waiting = len(self.plan) - len(self.placed)
        unseen = sum(1 for w in self.placed.values() if w not in self.stages)
        extra = (f" · to come {waiting}" if waiting else "") + (
            f" · in flight {unseen}" if unseen else ""
        )
        return f"t+{self.elapsed():.0f}s  {line}{extra}"


async def business_day(
    sim: Simulator, client: Client, options: DemoOptions, staff: Staff, say: Say
) -> tuple[Day, bool]:
    """Orders arrive, customers act, staff work, until every order ended or the time limit."""
    plan = plan_customers(options.orders, options.seed, options.arrival_window_s)
    day = Day(sim, client, plan)
    anomalies_seen = False
    staff_task = asyncio.create_task(staff.run())
    try:
        next_line = 0.0
        while day.elapsed() < options.limit_s:
            for customer in plan:
                if customer.index not in day.placed and day.elapsed() >= customer.created_after_s:
                    # A day without any anomaly would not show R5: the last order makes sure.
                    last = customer.index == len(plan) - 1
                    forced = "wrong_price" if last and not anomalies_seen else None
                    placed = day.place(customer, forced)
                    anomalies_seen = anomalies_seen or placed.anomaly is not None
            try:
                await day.watch()
                await day.customers_act()
            except RPCError as exc:  # Temporal restarting: the day goes on, look again soon
                say(f"t+{day.elapsed():.0f}s  Temporal unreachable ({exc.status.name}), retrying")
            if day.elapsed() >= next_line:
                say(day.progress())
                next_line = day.elapsed() + 1.0
            if day.all_finished():
                day.ended = time.monotonic()
                return day, True
            await asyncio.sleep(0.5)
        day.ended = time.monotonic()
        return day, False
    finally:
        staff_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await staff_task


# --- the summary --------------------------------------------------------------------------------


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


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def check_database(
    pool: asyncpg.Pool,
    placed: set[str],
    outcomes: dict[str, OrderOutcome],
    statuses: dict[str, OrderStatus],
) -> list[Check]:
    """R1.3 the system of record agrees with the workflows of the finished orders (`outcomes`),
    and nothing they claimed is left claimed. Orders still open are left out: their claims are
    rightly held."""
    checks: list[Check] = []
    ids = set(outcomes)
    rows = await pool.fetch("SELECT order_id, stage FROM orders")
    db_stage = {r["order_id"]: r["stage"] for r in rows}
    missing, unknown = ids - set(db_stage), set(db_stage) - placed
    checks.append(
        Check(
            "every order recorded",
            not missing and not unknown,
            f"{len(set(db_stage) & ids)} rows for {len(ids)} finished orders"
            + (f"; missing {sorted(missing)[:5]}" if missing else "")
            + (f"; not placed by the demo {sorted(unknown)[:5]}" if unknown else ""),
        )
    )
    wrong = [
        f"{o.order_id}: db {db_stage.get(o.order_id)} / workflow {o.stage.value}"
        for o in outcomes.values()
        if db_stage.get(o.order_id) != o.stage.value
    ]
    checks.append(
        Check(
            "row stage = workflow's final stage",
            not wrong,
            f"{len(ids) - len(wrong)} of {len(ids)} agree" + (f"; {wrong[:3]}" if wrong else ""),
        )
    )
    events = await pool.fetch(
        "SELECT order_id, seq, event FROM order_events WHERE order_id = ANY($1::text[])",
        sorted(ids),
    )
    logged: dict[str, dict[int, str]] = defaultdict(dict)
    for r in events:
        logged[r["order_id"]][r["seq"]] = r["event"]
    finished = [s for s in statuses.values() if s.order_id in ids]
    timeline_total = sum(len(s.timeline) for s in finished)
    before_record = 0
    disagree: list[str] = []
    for s in finished:
        mine = logged.get(s.order_id, {})
        first = min(mine, default=0)
        # Events of an order cancelled before it was recorded live in its history only.
        expected = {e.seq: e.event for e in s.timeline if e.seq >= first}
        before_record += len(s.timeline) - len(expected)
        if mine != expected:
            disagree.append(s.order_id)
    checks.append(
        Check(
            "event log = workflow timelines (R4.1.3)",
            not disagree and len(finished) == len(ids),
            f"{len(events)} events in the database, {timeline_total} in the timelines"
            + (f" ({before_record} logged before the order was recorded)" if before_record else "")
            + (f"; differ: {disagree[:3]}" if disagree else ""),
        )
    )
    summaries = await pool.fetch("SELECT order_id, outcome FROM order_summaries")
    summary_of = {r["order_id"]: r["outcome"] for r in summaries}
    off = [i for i in ids if summary_of.get(i) != outcomes[i].stage.value]
    checks.append(
        Check(
            "post-execution summary per order (R3.3.3)",
            not off,
            f"{len(ids) - len(off)} of {len(ids)}"
            + (f"; missing or different: {off[:3]}" if off else ""),
        )
    )
    finished_ids = sorted(ids)
    active = await pool.fetchval(
        "SELECT count(*) FROM assignments WHERE active AND order_id = ANY($1::text[])",
        finished_ids,
    )
    all_active = await pool.fetchval("SELECT count(*) FROM assignments WHERE active")
    load = await pool.fetchval("SELECT coalesce(sum(active_load), 0) FROM staff")
    checks.append(
        Check(
            "no assignment left active (R2.3.2)",
            active == 0 and load == all_active,
            f"{active} active for finished orders; staff load {load} = {all_active} active",
        )
    )
    dangling = await pool.fetchval(
        """
        SELECT count(*) FROM (
            SELECT order_id, round, sku FROM stock_ledger
            WHERE order_id = ANY($1::text[])
            GROUP BY order_id, round, sku
            HAVING bool_or(kind = 'reserve') AND NOT bool_or(kind IN ('commit', 'release'))
        ) AS open_reservations
        """,
        finished_ids,
    )
    taken = await pool.fetchval(
        "SELECT count(DISTINCT order_id) FROM stock_ledger WHERE kind = 'commit'"
    )
    checks.append(
        Check(
            "no stock reservation left open (R3.1.2)",
            dangling == 0,
            f"{dangling} reservations neither committed nor released; "
            f"goods taken from stock for {taken} orders",
        )
    )
    bookings = await pool.fetchval(
        "SELECT count(*) FROM service_bookings WHERE active AND order_id = ANY($1::text[])",
        finished_ids,
    )
    checks.append(Check("no service slot left booked (R3.2.1)", bookings == 0, f"{bookings}"))
    anomaly_rows = await pool.fetch(
        "SELECT anomaly_id, closed_at FROM anomalies WHERE order_id = ANY($1::text[])",
        finished_ids,
    )
    in_workflows = {a.anomaly_id for s in finished for a in s.anomalies}
    unclosed = [r["anomaly_id"] for r in anomaly_rows if r["closed_at"] is None]
    checks.append(
        Check(
            "anomalies recorded and closed (R5.2.4)",
            {r["anomaly_id"] for r in anomaly_rows} == in_workflows and not unclosed,
            f"{len(anomaly_rows)} rows for {len(in_workflows)} anomalies"
            + (f"; still open {unclosed[:3]}" if unclosed else ""),
        )
    )
    return checks


@dataclass(frozen=True)
class Observed:
    """The parts of a running stack the summary reads."""

    client: Client
    db: Database
    temporal: TemporalServer


async def summarise(
    stack: Observed | Stack,
    day: Day,
    staff: Staff,
    finished: bool,
    options: DemoOptions,
    began: float,
) -> DemoResult:
    """`began`: when the demo started (monotonic), for the time from start to summary."""
    client = stack.client
    workflow_ids = sorted(day.placed.values())
    results = await _gather_limited(
        [
            client.get_workflow_handle_for(OrderWorkflow.run, w).result()
            for w in workflow_ids
            if w in day.stages and w not in day.running
        ]
    )
    outcomes = {o.order_id: o for o in results if isinstance(o, OrderOutcome)}
    queried = await _gather_limited(
        [client.get_workflow_handle(w).query(OrderWorkflow.status) for w in workflow_ids]
    )
    statuses = {s.order_id: s for s in queried if isinstance(s, OrderStatus)}
    anomaly_ids = [a.anomaly_id for s in statuses.values() for a in s.anomalies]
    anomaly_answers = await _gather_limited(
        [client.get_workflow_handle(a).query(AnomalyWorkflow.status) for a in anomaly_ids]
    )
    anomalies = [a for a in anomaly_answers if isinstance(a, AnomalyStatus)]

    by_outcome: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes.values():
        kind = statuses[o.order_id].order_type if o.order_id in statuses else None
        by_outcome[o.stage.value][kind.value if kind else "unknown"] += 1
    cancelled_by = Counter(
        _cancel_cause(o) for o in outcomes.values() if o.stage is Stage.CANCELLED
    )
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for s in statuses.values():
        for a in s.anomalies:
            by_kind[a.kind.value][a.decision or "undecided (order ended)"] += 1
    open_orders = {
        order_id_in(w): day.stages.get(w, "not started")
        for w in workflow_ids
        if w not in day.stages or w in day.running
    }
    unread = len(day.placed) - len(statuses)
    placed_ids = {order_id_in(w) for w in workflow_ids}
    stage_rows = await stack.db.pool.fetch("SELECT stage_seconds FROM order_summaries")
    per_stage: dict[str, list[float]] = defaultdict(list)
    for row in stage_rows:
        for stage, seconds in row["stage_seconds"].items():
            per_stage[stage].append(float(seconds))
    checks = [
        Check(
            "final status read from every order's workflow",
            unread == 0,
            f"{len(statuses)} of {len(day.placed)}",
        ),
        *await check_database(stack.db.pool, placed_ids, outcomes, statuses),
    ]
    agrees = all(c.ok for c in checks)
    patrols = await stack.db.pool.fetchrow(
        "SELECT count(*) AS runs, coalesce(sum(cardinality(found)), 0) AS found FROM patrol_reports"
    )
    link = stack.temporal.ui_link
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
        "cancelled_by": dict(cancelled_by.most_common()),
        "deadlines": deadline_table(list(statuses.values()), anomalies),
        "anomalies": {k: dict(v.most_common()) for k, v in sorted(by_kind.items())},
        "average_stage_seconds": {
            stage.value: round(sum(per_stage[stage.value]) / len(per_stage[stage.value]), 1)
            for stage in SHOWN_STAGES
            if per_stage.get(stage.value) and not stage.terminal
        },
        "customer_events": {"sent": dict(day.events), "not_sent": dict(day.missed)},
        "patrol": dict(patrols) if patrols else {},
        "staff": staff.report.as_dict(),
        "database_agrees": agrees,
        "database_checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        "open_orders": open_orders,
        "web_ui": {
            "orders": link(ORDERS_QUERY),
            "cancelled": link('WorkflowType="OrderWorkflow" AND OrderStage="cancelled"'),
            "deadline_breached": link('WorkflowType="OrderWorkflow" AND SlaBreached=true'),
            "anomalies": link('WorkflowType="AnomalyWorkflow"'),
        },
        "database": stack.db.name,
    }
    return DemoResult(ok=summary["ok"], summary=summary)


def render(summary: dict[str, Any], kept: bool) -> str:
    """The summary as a person reads it at the end of `make demo`."""
    out: list[str] = []
    minutes, seconds = divmod(round(summary["elapsed_s"]), 60)
    out.append("")
    out.append(
        f"== orderflow demo: {summary['orders']} orders, seed {summary['seed']}, "
        f"{minutes} min {seconds:02d} s from start to summary "
        f"(business day {summary['business_day_s']:.0f} s)"
    )
    totals = summary["outcome_totals"]
    out.append("")
    out.append("Orders by outcome                goods  service  total")
    for stage, kinds in summary["outcomes"].items():
        out.append(
            f"  {stage:<30} {kinds.get('goods', 0):>5} {kinds.get('service', 0):>8} "
            f"{totals[stage]:>6}"
        )
    if summary["cancelled_by"]:
        causes = " · ".join(f"{k} {v}" for k, v in summary["cancelled_by"].items())
        out.append(f"  cancelled by: {causes}")
    out.append("")
    out.append("Deadlines per clause               met  missed  past hard limit")
    for clause, row in summary["deadlines"].items():
        out.append(f"  {clause:<30} {row['met']:>5} {row['breached']:>7} {row['hard']:>16}")
    out.append("")
    out.append("Anomalies by kind and decision")
    if not summary["anomalies"]:
        out.append("  none")
    for kind, decisions in summary["anomalies"].items():
        out.append(f"  {kind:<12} " + " · ".join(f"{d} {n}" for d, n in decisions.items()))
    out.append("")
    out.append("Average time per stage (s, from the post-execution summaries)")
    out.append("  " + " · ".join(f"{k} {v}" for k, v in summary["average_stage_seconds"].items()))
    sent, missed = summary["customer_events"]["sent"], summary["customer_events"]["not_sent"]
    out.append("")
    out.append(
        "Customers: "
        + (" · ".join(f"{k} {v}" for k, v in sorted(sent.items())) or "no events")
        + (f"  (too late, the order was done: {dict(sorted(missed.items()))})" if missed else "")
    )
    patrol = summary["patrol"]
    out.append(
        f"Patrol (R2.1.2): {patrol.get('runs', 0)} walks of the platform, "
        f"{patrol.get('found', 0)} orders found that the pushes had missed"
    )
    staff = summary["staff"]
    out.append(
        f"Staff: {sum(staff['actions'].values())} actions, "
        f"{sum(staff['slow_on_purpose'].values())} on purpose past the soft deadline, "
        f"{sum(staff['refused_as_stale'].values())} refused because the order had moved on"
    )
    if staff["errors"]:
        out.append(f"  staff errors: {staff['errors'][:3]}")
    out.append("")
    verdict = "yes" if summary["database_agrees"] else "NO"
    out.append(f"Database {summary['database']} agrees with the workflows: {verdict}")
    for check in summary["database_checks"]:
        out.append(f"  {'ok ' if check['ok'] else 'BAD'} {check['check']}: {check['detail']}")
    if summary["open_orders"]:
        out.append("")
        out.append(f"Still open at the time limit ({len(summary['open_orders'])}):")
        for order_id, stage in sorted(summary["open_orders"].items()):
            out.append(f"  {order_workflow_id(order_id)}: {stage}")
    out.append("")
    out.append("Where to look (Temporal Web UI, filtered by search attribute):")
    for name, url in summary["web_ui"].items():
        if url:
            out.append(f"  {name:<18} {url}")
    out.append(
        "  The stack stays up until Ctrl-C."
        if kept
        else "  The dev server stops now; `--keep` leaves it running for browsing."
    )
    out.append("")
    out.append("orderctl to try (with --keep, and TEMPORAL_ADDRESS pointing at the stack):")
    out.append("  orderctl list --stage closed --store SH-XH-001 · orderctl list --breached")
    out.append("  orderctl show <order id> · orderctl anomalies")
    out.append(
        "  orderctl stats --by store · orderctl report --out day.html"
        f" (DATABASE_URL at database {summary['database']})"
    )
    return "\n".join(out)


# --- running it ---------------------------------------------------------------------------------


def sim_config(options: DemoOptions) -> SimConfig:
    return SimConfig(
        seed=options.seed,
        anomaly_rate=options.anomaly_rate,
        confirm_timeout_s=60.0,  # R6.1 the platform cancels what is not accepted in time
        courier_step_s=1.0,
        push_retry_delay_s=1.0,
    )


def order_lookup(running: RunningSimulator) -> Callable[[str], PlatformOrder | None]:
    """The platform's view of an order, as a manager sees it in the merchant console."""

    def lookup(order_id: str) -> PlatformOrder | None:
        sim_order = running.sim.orders.get(int(order_id))
        return to_platform_order(sim_order.current()) if sim_order else None

    return lookup


async def run_demo(
    options: DemoOptions,
    say: Say = print,
    *,
    after: Callable[[Stack, DemoResult], Awaitable[None]] | None = None,
) -> DemoResult:
    """The whole demo; `after` runs with the stack still up (to keep it for the Web UI)."""
    began = time.monotonic()
    stack_options = StackOptions(
        data_dir=options.data_dir,
        database=options.database,
        server_dsn=options.server_dsn,
        pgdata=options.pgdata,
        fresh=True,
        temporal_port=options.temporal_port,
        ui_port=options.ui_port,
        gateway_port=options.gateway_port,
        simulator_port=options.simulator_port,
        sim_config=sim_config(options),
        policy=POLICY_FILE,
    )
    async with dev_stack(stack_options, say) as stack:
        say(
            f"a business day: {options.orders} orders over {options.arrival_window_s:.0f} s "
            f"to stores {', '.join(s.code for s in stack.sim.sim.business.stores)}, "
            f"anomaly rate {options.anomaly_rate:g}, seed {options.seed}"
        )
        staff = Staff(
            stack.client,
            StaffSettings(seed=options.seed),
            lookup=order_lookup(stack.sim),
            business=stack.sim.sim.business,
        )
        day, finished = await business_day(stack.sim.sim, stack.client, options, staff, say)
        if not finished:
            say(f"time limit of {options.limit_s:g} s reached with orders still open")
        say("collecting the summary (final status of every order, and the database)")
        result = await summarise(stack, day, staff, finished, options, began)
        if after is not None:
            await after(stack, result)
        return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.demo", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--orders", type=int, default=50, help="orders in the day (50)")
    parser.add_argument("--seed", type=int, default=7, help="seed of everything random (7)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    parser.add_argument(
        "--limit", type=float, default=240.0, help="time limit of the day, seconds (240)"
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    return args


async def _main(args: argparse.Namespace) -> int:
    options = DemoOptions(orders=args.orders, seed=args.seed, limit_s=args.limit, keep=args.keep)
    say: Say = (lambda _: None) if args.json else (lambda line: print(line, flush=True))
    main_task = asyncio.current_task()
    assert main_task is not None
    interrupts = 0
    results: list[DemoResult] = []

    def interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            say("stopping (processes are shut down in order)...")
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)

    async def show(stack: Stack, result: DemoResult) -> None:
        results.append(result)
        if args.json:
            print(json.dumps(result.summary, ensure_ascii=False, indent=2), flush=True)
        else:
            print(render(result.summary, kept=args.keep), flush=True)
        if args.keep:
            await asyncio.Event().wait()

    try:
        result = await run_demo(options, say, after=show)
    except asyncio.CancelledError:
        if interrupts and results:
            return results[0].exit_code
        if interrupts:
            print("interrupted", file=sys.stderr)
            return 130
        raise
    except StackError as exc:
        print(f"error: the local stack did not start: {exc}", file=sys.stderr)
        return 2
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

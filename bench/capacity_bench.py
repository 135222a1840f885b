"""Capacity: the highest rate of new orders the whole stack delivers, against a minimal order and
against the code of an earlier commit.

    .venv/bin/python -m bench.capacity_bench [--rates 1,2,3,4,6,8,12,16,24] [--seconds 60]
        [--before HEAD] [--variants current,minimal,before] [--full-ramp] [--no-record]

Orders arrive open loop (each on time whatever became of the earlier ones), `--seconds` at each
rate of the ramp, on one dev server and one PostgreSQL server. Every system is started first;
then each rate is run on each system in turn, so that whatever else loads the machine falls on
all of them alike:

- current: this checkout's gateway, staff API and worker, each its own process, on a fresh
  database and in a namespace of its own (bench/capacity_stack.py), with a simulator of its
  own pushing signed takeout orders (the two goods stores in turn: the store's own rider, the
  platform's courier). The workers confirm takeout automatically (the default policy), and the
  simulated staff (`localstack.staff`) do each person's step through the staff API the moment
  they find it, without think time; they work during the system's own steps only.
- minimal: `bench/minimal.py`, five empty activities, one update, one timer, in a worker
  process of its own; the driver starts each and sends its update at once.
- before: the same as current from the tree of an earlier commit (`--before`, default HEAD, so
  that on the commit that makes a change `--before HEAD~1` compares with the one before it).

An order counts as delivered when its record reached `delivered` (its first event at that stage
or later in `order_events`, as written) by the end of its step's window plus `--grace`; the
minimal order when its workflow completed. Latency is from the push (the start) to then, over
the orders delivered at all. A rate is sustained when at least 95% were delivered in time and
the p95 latency is under 10 s. After a step the orders left running may finish (`--drain`);
any still running then are terminated, and the ramp of that system ends at its first rate not
sustained (`--full-ramp` runs every rate). Each step also says how long orders took from the push
to each stage, where the time goes. The billable actions per order are counted from the
histories of the first step's orders (their child workflows' included).

The feedback window is cut to one second so that orders close soon after delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from bench import common
from bench.capacity_stack import (
    Code,
    earlier_commit,
    minimal_system,
    namespace,
    order_system,
    running,
    terminate_running,
    this_checkout,
)
from bench.minimal import MINIMAL_QUEUE, MINIMAL_TYPE, MinimalOrderWorkflow
from infra.logging import configure_logging
from localstack.demo import order_lookup
from localstack.devstack import connect_temporal, simulator
from localstack.simulator import RunningSimulator, SimConfig
from localstack.staff import Staff, StaffSettings, signed_in
from schemas.contract import order_workflow_id
from schemas.order import Stage

ORDER_TYPE = "OrderWorkflow"
TAKEOUT_STORES = ("SH-XH-001", "SH-PD-002")
"""The demo's two goods stores: one delivers with its own rider, the other by the platform's."""
SHARE_GOAL = 0.95
P95_GOAL_S = 10.0
GOALS = {"current_over_before": 2.5, "current_over_minimal": 0.5}
FEEDBACK_WINDOW_S = 1.0
COMPANY_SCALE = 50
P50_P95 = (("p50", 50), ("p95", 95))
VARIANTS = ("current", "minimal", "before")
RATES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)
"""Close together at the low end, where the order system is on two cores, so that a ratio of
rates says something; doubling further up, where the minimal order is."""
E = EventType

ACTIONS = {
    "starts": E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    "activities": E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    "timers": E.EVENT_TYPE_TIMER_STARTED,
    "signals": E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "updates": E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    "upserts": E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    "child_starts": E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
}
"""The billable actions counted per order; `billable` is their sum, with `local_activity_tasks`:
Temporal Cloud counts all the local activities of one workflow task as a single action."""
LOCAL_ACTIVITY_MARKER = "core_local_activity"


# --- histories -----------------------------------------------------------------------------------


def counts(history: WorkflowHistory) -> Counter[str]:
    """The actions of one history, with its workflow tasks, local activities and events."""
    found: Counter[str] = Counter()
    tasks_with_local: set[int] = set()
    for event in history.events:
        found["events"] += 1
        for name, kind in ACTIONS.items():
            if event.event_type == kind:
                found[name] += 1
        if event.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found["workflow_tasks"] += 1
        elif (
            event.event_type == E.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            found["local_activities"] += 1
            tasks_with_local.add(
                event.marker_recorded_event_attributes.workflow_task_completed_event_id
            )
    found["local_activity_tasks"] = len(tasks_with_local)
    return found


def children(history: WorkflowHistory) -> list[tuple[str, str]]:
    return [
        (started.workflow_execution.workflow_id, started.workflow_execution.run_id)
        for event in history.events
        if event.event_type == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
        for started in [event.child_workflow_execution_started_event_attributes]
    ]


async def with_children(
    client: Client, workflow_id: str, run_id: str | None = None
) -> Counter[str]:
    """An order's counts and those of the workflows it started as children, theirs too."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    total = counts(history)
    for child_id, child_run in children(history):
        total.update(await with_children(client, child_id, child_run))
    return total


async def actions_per_order(client: Client, workflow_ids: Sequence[str]) -> dict[str, float]:
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> Counter[str]:
        async with gate:
            return await with_children(client, workflow_id)

    total: Counter[str] = Counter()
    for found in await asyncio.gather(*(one(w) for w in workflow_ids)):
        total.update(found)
    n = max(1, len(workflow_ids))
    names = [*ACTIONS, "local_activity_tasks", "local_activities", "workflow_tasks", "events"]
    per = {name: round(total[name] / n, 2) for name in names}
    billable = sum(total[a] for a in [*ACTIONS, "local_activity_tasks"])
    return {"billable": round(billable / n, 2), **per}


async def completed_at(client: Client, workflow_ids: Sequence[str]) -> dict[str, float]:
    """When each workflow completed, by the server's clock (this machine's)."""
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> float | None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        last = history.events[-1]
        if last.event_type != E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return None
        return last.event_time.seconds + last.event_time.nanos / 1e9

    found = await asyncio.gather(*(one(w) for w in workflow_ids))
    return {w: at for w, at in zip(workflow_ids, found, strict=True) if at is not None}


# --- what drives each system ---------------------------------------------------------------------


class Driver(Protocol):
    workflow_type: str

    def arrive(self, i: int) -> tuple[str, float]:
        """Starts order `i` of a step; its key and when it was pushed (wall clock)."""
        ...

    async def delivered(self, keys: Sequence[str]) -> dict[str, float]:
        """When each of these orders reached `delivered` (wall clock), for those that did."""
        ...

    async def count_delivered(self, keys: Sequence[str]) -> int:
        """How many of these orders were delivered so far: cheaper than `delivered`."""
        ...

    async def stages(self, pushed: dict[str, float]) -> dict[str, dict[str, float]]:
        """Push to each stage reached, p50 and p95 (s), by stage: where the time went."""
        ...

    def workflow_id(self, key: str) -> str: ...

    async def settle(self) -> None:
        """Anything of its own still in flight after a step is dropped."""
        ...


REACHED = [Stage.DELIVERED.value, Stage.CLOSED.value]
DELIVERED_SQL = """
SELECT order_id, extract(epoch FROM min(recorded_at))::float8 AS at
FROM order_events
WHERE order_id = ANY($1::text[]) AND stage = ANY($2::text[])
GROUP BY order_id
"""
STAGES_SQL = """
SELECT order_id, stage, extract(epoch FROM min(recorded_at))::float8 AS at
FROM order_events
WHERE order_id = ANY($1::text[])
GROUP BY order_id, stage
"""
COUNT_SQL = """
SELECT count(DISTINCT order_id) FROM order_events
WHERE order_id = ANY($1::text[]) AND stage = ANY($2::text[])
"""


@dataclass
class OrderDriver:
    """Signed pushes from the simulator; delivery read from the system of record."""

    sim: RunningSimulator
    pool: asyncpg.Pool
    workflow_type: str = ORDER_TYPE

    def arrive(self, i: int) -> tuple[str, float]:
        at = time.time()
        order = self.sim.sim.create_order({"app_poi_code": TAKEOUT_STORES[i % len(TAKEOUT_STORES)]})
        return str(order.order_id), at

    async def delivered(self, keys: Sequence[str]) -> dict[str, float]:
        rows = await self.pool.fetch(DELIVERED_SQL, list(keys), REACHED)
        return {r["order_id"]: r["at"] for r in rows}

    async def count_delivered(self, keys: Sequence[str]) -> int:
        found: int = await self.pool.fetchval(COUNT_SQL, list(keys), REACHED)
        return found

    async def stages(self, pushed: dict[str, float]) -> dict[str, dict[str, float]]:
        took: dict[str, list[float]] = {}
        for row in await self.pool.fetch(STAGES_SQL, list(pushed)):
            took.setdefault(row["stage"], []).append(row["at"] - pushed[row["order_id"]])
        order = {stage.value: i for i, stage in enumerate(Stage)}
        return {
            stage: {p: round(common.percentile(took[stage], n), 2) for p, n in P50_P95}
            for stage in sorted(took, key=lambda name: order.get(name, len(order)))
        }

    def workflow_id(self, key: str) -> str:
        return order_workflow_id(key)

    async def settle(self) -> None:
        return None


@dataclass
class MinimalDriver:
    """Starts the minimal order and sends its update at once; delivery is its completion."""

    client: Client
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    workflow_type: str = MINIMAL_TYPE
    errors: list[str] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _step: int = 0

    def arrive(self, i: int) -> tuple[str, float]:
        if i == 0:
            self._step += 1
        workflow_id = f"{self._prefix}{i}"
        at = time.time()
        task = asyncio.create_task(self._one(workflow_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return workflow_id, at

    async def _one(self, workflow_id: str) -> None:
        try:
            handle = await self.client.start_workflow(
                MinimalOrderWorkflow.run, id=workflow_id, task_queue=MINIMAL_QUEUE
            )
            await handle.execute_update(MinimalOrderWorkflow.act)
        except RPCError as exc:
            self.errors.append(f"{workflow_id}: {exc}")

    @property
    def _prefix(self) -> str:
        return f"minimal-{self.run_id}-{self._step}-"

    async def delivered(self, keys: Sequence[str]) -> dict[str, float]:
        return await completed_at(self.client, keys)

    async def count_delivered(self, keys: Sequence[str]) -> int:
        query = (
            f'WorkflowType="{MINIMAL_TYPE}" AND ExecutionStatus="Completed" '
            f'AND WorkflowId STARTS_WITH "{self._prefix}"'
        )
        return (await self.client.count_workflows(query)).count

    async def stages(self, pushed: dict[str, float]) -> dict[str, dict[str, float]]:
        return {}

    def workflow_id(self, key: str) -> str:
        return key

    async def settle(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- a step of the ramp --------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    pushed: dict[str, float]
    deadline: float
    delivered: dict[str, float]
    terminated: int
    stages: dict[str, dict[str, float]]

    def summary(self) -> dict[str, Any]:
        in_time = [k for k, at in self.delivered.items() if at <= self.deadline]
        latencies = [self.delivered[k] - self.pushed[k] for k in self.delivered]
        share = len(in_time) / len(self.pushed)
        p50, p95 = (common.percentile(latencies, p) for p in (50, 95))
        span = max(self.pushed.values()) - min(self.pushed.values())
        return {
            "rate": self.rate,
            "pushed": len(self.pushed),
            # As paced: under the rate asked for, the benchmark's own process fell behind.
            "arrived_per_s": round((len(self.pushed) - 1) / span, 2) if span else None,
            "delivered_in_time": len(in_time),
            "delivered_late": len(self.delivered) - len(in_time),
            "share": round(share, 3),
            "p50_s": round(p50, 3) if latencies else None,
            "p95_s": round(p95, 3) if latencies else None,
            "terminated": self.terminated,
            "sustained": share >= SHARE_GOAL and bool(latencies) and p95 < P95_GOAL_S,
            **({"push_to_stage_s": self.stages} if self.stages else {}),
        }


async def drain(client: Client, workflow_type: str, within_s: float) -> bool:
    """True once none of the system's orders is running, waiting at most `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        if await running(client, workflow_type) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(1.0)


async def until_delivered(driver: Driver, keys: Sequence[str], deadline: float) -> None:
    """Until the end of the grace, or sooner once every order of the step was delivered."""
    while (left := deadline - time.time()) > 0:
        if await driver.count_delivered(keys) >= len(keys):
            return
        await asyncio.sleep(min(1.0, left))


async def step(rate: float, args: argparse.Namespace, driver: Driver, client: Client) -> Step:
    """`rate` arrivals a second for `args.seconds`, open loop; then the count."""
    pushed: dict[str, float] = {}
    began, paced_from = time.time(), time.monotonic()
    for i in range(max(1, round(rate * args.seconds))):
        await asyncio.sleep(max(0.0, paced_from + i / rate - time.monotonic()))
        key, at = driver.arrive(i)
        pushed[key] = at
    deadline = began + args.seconds + args.grace
    await until_delivered(driver, list(pushed), deadline)
    drained = await drain(client, driver.workflow_type, args.drain)
    delivered = await driver.delivered(list(pushed))
    stages = await driver.stages(pushed)
    terminated = 0 if drained else await terminate_running(client, driver.workflow_type)
    await driver.settle()
    return Step(rate, pushed, deadline, delivered, terminated, stages)


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


# --- the systems ---------------------------------------------------------------------------------


@dataclass
class Shared:
    """What every system of the run shares: the dev server and PostgreSQL."""

    base: common.Base
    client: Client
    policy: dict[str, str]
    folder: Path


@dataclass
class Contender:
    """One system on the ramp: what drives it, who does its people's steps, its steps so far."""

    label: str
    code: str
    driver: Driver
    client: Client
    staff: Staff | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def sustained_rate(self) -> float:
        """The highest rate of the ramp sustained, with every rate below it sustained too."""
        best = 0.0
        for done in self.steps:
            if not done.summary()["sustained"]:
                break
            best = done.rate
        return best

    def climbing(self, args: argparse.Namespace) -> bool:
        """Still on the ramp: every rate so far sustained, or the whole ramp asked for."""
        return args.full_ramp or all(s.summary()["sustained"] for s in self.steps)

    async def step(self, rate: float, args: argparse.Namespace) -> None:
        say(f"{self.label}: {rate:g} orders/s for {args.seconds:g} s")
        working = asyncio.create_task(self.staff.run()) if self.staff else None
        try:
            self.steps.append(await step(rate, args, self.driver, self.client))
        finally:
            if working is not None:
                working.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await working
        row = self.steps[-1].summary()
        say(
            f"{self.label}: {rate:g}/s delivered {row['share']:.0%} in time, "
            f"p50 {row['p50_s']} s, p95 {row['p95_s']} s"
        )

    async def outcome(self, args: argparse.Namespace) -> dict[str, Any]:
        """The ramp's rows, the rate sustained, and the actions of a sample of delivered
        orders."""
        sample = sorted(self.steps[0].delivered)[: args.sample] if self.steps else []
        ids = [self.driver.workflow_id(k) for k in sample]
        result = {
            "code": self.code,
            "steps": [s.summary() for s in self.steps],
            "sustained_rate": self.sustained_rate,
            "actions_per_order": await actions_per_order(self.client, ids),
            "actions_sampled": len(sample),
        }
        if self.staff is not None:
            report = self.staff.report
            result["staff"] = {"actions": dict(report.actions), "errors": report.errors[:5]}
        if isinstance(self.driver, MinimalDriver):
            result["errors"] = self.driver.errors[:5]
        return result


def staff_settings(args: argparse.Namespace) -> StaffSettings:
    """People who act the moment they find work, never late on purpose."""
    return StaffSettings(
        seed=args.seed,
        think_s=(0.0, 0.0),
        slow_share=0.0,
        poll_s=args.poll,
        recheck_s=args.poll,
        visit_in_s=(5.0, 10.0),
    )


def sim_config(args: argparse.Namespace, ids_file: Path) -> SimConfig:
    """Clean orders, never cancelled by the platform; ids that no system of the run saw."""
    return SimConfig(
        seed=args.seed,
        push_base=None,
        anomaly_rate=0.0,
        confirm_timeout_s=None,
        courier_step_s=args.courier_step,
        ids_file=ids_file,
    )


async def order_contender(
    code: Code, shared: Shared, args: argparse.Namespace, stack: contextlib.AsyncExitStack
) -> Contender:
    """An order system of `code` in a namespace of its own, with a simulator (its platform)
    and staff of its own, so that pushes and people never cross from one system to another."""
    base = shared.base
    client = await namespace(base.temporal, shared.client, f"capacity-{code.label}")
    ids = shared.folder / f"simulator-ids-{code.label}.json"
    sim = await stack.enter_async_context(simulator(sim_config(args, ids), port=None))
    system = await stack.enter_async_context(
        order_system(
            code, base.temporal, client, base.db.dsn, sim.api_base_url, shared.policy, shared.folder
        )
    )
    await common.scale_company(system.pool, COMPANY_SCALE)
    sim.sim.config.push_base = system.push_base
    people = await stack.enter_async_context(signed_in(system.api_url, system.pool))
    staff = Staff(people, staff_settings(args), lookup=order_lookup(sim), business=sim.sim.business)
    return Contender(code.label, code.commit, OrderDriver(sim, system.pool), client, staff)


async def contender(
    variant: str, shared: Shared, args: argparse.Namespace, stack: contextlib.AsyncExitStack
) -> Contender:
    say(f"{variant}: starting")
    if variant == "minimal":
        await stack.enter_async_context(
            minimal_system(shared.base.temporal, shared.client, shared.policy, shared.folder)
        )
        driver = MinimalDriver(shared.client)
        return Contender("minimal", this_checkout().commit, driver, shared.client)
    if variant == "current":
        return await order_contender(this_checkout(), shared, args, stack)
    code = stack.enter_context(earlier_commit(args.before, shared.folder))
    return await order_contender(code, shared, args, stack)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every system started, then each rate of the ramp for each system in turn: what else
    loads the machine meanwhile falls on all of them alike."""
    began = time.perf_counter()
    window = str(FEEDBACK_WINDOW_S / 60)
    policy = {
        "ORDERFLOW_POLICY__goods__feedback_window_minutes": window,
        "ORDERFLOW_POLICY__service__feedback_window_minutes": window,
    }
    with (
        tempfile.TemporaryDirectory(prefix="capacity-bench-") as folder,
        common.environment(policy),
    ):
        async with (
            common.base_stack("capacity-bench", demo_data=False) as base,
            contextlib.AsyncExitStack() as stack,
        ):
            client = await connect_temporal(base.temporal.address, base.temporal.namespace)
            shared = Shared(base, client, policy, Path(folder))
            contenders = [await contender(v, shared, args, stack) for v in args.variants]
            for rate in args.rates:
                for one in contenders:
                    if one.climbing(args):
                        await one.step(rate, args)
            results = {c.label: await c.outcome(args) for c in contenders}
    result = report(results, args, time.perf_counter() - began)
    say(f"sustained orders/s {result['sustained_rate']}, ratios {result['ratios']}")
    return result


def over(results: dict[str, dict[str, Any]], part: str, whole: str, key: str) -> float | None:
    """`part`'s figure over `whole`'s; None when either did not run or `whole`'s is 0."""
    if part not in results or whole not in results:
        return None
    a, b = results[part][key], results[whole][key]
    return round(a / b, 3) if b else None


def report(
    results: dict[str, dict[str, Any]], args: argparse.Namespace, seconds: float
) -> dict[str, Any]:
    ratios = {
        "current_over_before": over(results, "current", "before", "sustained_rate"),
        "current_over_minimal": over(results, "current", "minimal", "sustained_rate"),
    }
    billable = {k: v["actions_per_order"]["billable"] for k, v in results.items()}
    return {
        "rates": args.rates,
        "seconds": args.seconds,
        "variants": results,
        "sustained_rate": {k: v["sustained_rate"] for k, v in results.items()},
        "ratios": ratios,
        "goals": GOALS,
        "goals_met": {k: (r is not None and r >= GOALS[k]) for k, r in ratios.items()},
        "billable_actions_per_order": billable,
        "settings": {
            "sustained": f"share >= {SHARE_GOAL:g} delivered in time and p95 < {P95_GOAL_S:g} s",
            "grace_s": args.grace,
            "drain_s": args.drain,
            "before": args.before,
            "feedback_window_s": FEEDBACK_WINDOW_S,
            "staff_poll_s": args.poll,
            "courier_step_s": args.courier_step,
            "company_scale": COMPANY_SCALE,
        },
        "machine": common.machine(),
        "total_seconds": round(seconds, 1),
    }


# --- docs/benchmarks.md --------------------------------------------------------------------------

HEADING = "## Capacity: the whole stack against a minimal order and the code before"
COLUMNS = (
    "date",
    "command",
    "code: current / before",
    "sustained orders/s: current / minimal / before",
    "current / before",
    "current / minimal",
    "delivered in time by rate (current)",
    "billable actions per order: current / minimal / before",
    "machine",
)
HEADER = f"""{HEADING}

`bench/capacity_bench.py` pushes signed takeout orders open loop at rising rates through the
whole stack: simulator, gateway, worker and staff API (each its own process), PostgreSQL, the
simulated staff acting at once through the staff API, takeout confirmed automatically. The same
ramp runs for a minimal order (`bench/minimal.py`: five empty activities, one update, one
timer) and for the code of an earlier commit (`--before`, default HEAD), each rate on each
system in turn, on one dev server; each order system has its own database and namespace. A
rate is sustained when at least {SHARE_GOAL:.0%} of its orders reached `delivered` by the end
of the window plus the grace (10 s), with p95 push-to-delivered under {P95_GOAL_S:g} s; a
system's ramp ends at its first rate not sustained. Goals: current at least
{GOALS["current_over_before"]:g} times before, and at least {GOALS["current_over_minimal"]:g}
times the minimal order. Billable actions per order: starts, activities, timers, signals,
updates, search-attribute upserts and child starts, from the histories of the first rate's
orders.

""" + common.table_head(COLUMNS)


def record(result: dict[str, Any], command: str) -> None:
    rates = result["sustained_rate"]
    actions = result["billable_actions_per_order"]

    def each(values: dict[str, Any]) -> str:
        return " / ".join(f"{values[v]:g}" if v in values else "-" for v in VARIANTS)

    def ratio(name: str) -> str:
        value = result["ratios"][name]
        return "-" if value is None else f"**{value:.2f}**"

    variants = result["variants"]
    code = " / ".join(variants[v]["code"] if v in variants else "-" for v in ("current", "before"))
    current = variants.get("current", {}).get("steps", [])
    shares = ", ".join(f"{s['rate']:g}/s {s['share']:.0%}" for s in current) or "-"
    line = (
        f"| {common.today()} | `{command}` | {code} | {each(rates)} | "
        f"{ratio('current_over_before')} | {ratio('current_over_minimal')} | {shares} | "
        f"{each(actions)} | {result['machine']} |"
    )
    common.record(HEADING, HEADER, line)


def rates_list(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates are positive numbers, comma-separated")
    return rates


def variants_list(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(chosen) - set(VARIANTS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"variants are some of {', '.join(VARIANTS)}")
    return chosen


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m bench.capacity_bench", description=(__doc__ or "").split("\n")[0]
    )
    made.add_argument("--rates", type=rates_list, default=list(RATES), help="orders/s, in turn")
    made.add_argument("--seconds", type=float, default=60.0, help="arrivals per rate, s (60)")
    made.add_argument("--grace", type=float, default=10.0, help="after the window, s (10)")
    made.add_argument("--drain", type=float, default=60.0, help="wait for the rest, s (60)")
    made.add_argument("--before", default="HEAD", help="the earlier commit (HEAD)")
    made.add_argument("--variants", type=variants_list, default=list(VARIANTS))
    made.add_argument("--full-ramp", action="store_true", help="go on past a rate not sustained")
    made.add_argument("--seed", type=int, default=7, help="seed of the orders and people (7)")
    made.add_argument("--poll", type=float, default=0.5, help="staff look for work every, s")
    made.add_argument("--courier-step", type=float, default=0.25, help="courier status step, s")
    made.add_argument("--sample", type=int, default=50, help="orders whose actions are counted")
    made.add_argument(
        "--no-record", action="store_true", help="do not append to docs/benchmarks.md"
    )
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("WARNING")  # the in-process services' lines on stderr, not in the JSON
    result = common.run(bench(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_record:
        shown = " ".join(argv if argv is not None else sys.argv[1:])
        record(result, f".venv/bin/python -m bench.capacity_bench {shown}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
